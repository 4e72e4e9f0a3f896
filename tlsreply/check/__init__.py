# -*- test-case-name: tests.test_check -*-
"""
C{tlsreply check HOST:PORT}: a TLS client that reports what a server's
handshake negotiated, and checks what tlsreply promises its users.

It connects once and prints the facts of the handshake (version, cipher,
key-exchange group, ALPN, the server's certificate and whether it verified,
the reply, how the server closed, how long the handshake took), then
connects again offering the session from the first connection and reports
whether the server resumed it. The exit status is 0 only when the
certificate verified, a non-empty reply arrived and the session was
resumed: the three things a health check, a certificate deployment or a
load-balancer change must not break.

It works against any TLS server, not only tlsreply: it sends nothing after
the handshake, reads whatever the server sends until the server closes (or
the timeout), and reports a server that never closes as such.

Its parts: L{tlsreply.check.options} (the command line),
L{tlsreply.check.client} (one connection and its facts) and
L{tlsreply.check.report} (the conclusion, the output and the exit status).
The server core never imports this package.
"""

from tlsreply.check.options import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    CheckOptions,
    CheckUsageError,
    Target,
    parseArguments,
    parseTarget,
)
from tlsreply.check.report import CheckResult, check, runCheck

__all__ = [
    "EXIT_FAILED",
    "EXIT_OK",
    "EXIT_USAGE",
    "CheckOptions",
    "CheckResult",
    "CheckUsageError",
    "Target",
    "check",
    "parseArguments",
    "parseTarget",
    "runCheck",
]
