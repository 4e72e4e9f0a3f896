# -*- test-case-name: tests.test_metrics -*-
"""
Why a handshake failed, in a few fixed words, for a metric's label.

A connection's log line says why its handshake failed in OpenSSL's own
reason strings (C{"no shared cipher"}, C{"tlsv1 alert unknown ca"}) or
tlsreply's (C{"handshake not completed within 10s"}, C{"peer closed the
connection"}). Those are too many, and some carry numbers, to be a
Prometheus label: every distinct value is a time series. L{failureReason}
maps each to one of L{FAILURE_REASONS}, so the label's cardinality is fixed
whatever clients send; the log line keeps the exact reason.
"""

from __future__ import annotations

from typing import Final

#: The handshake timeout expired (L{tlsreply.connection.registry}).
TIMEOUT: Final = "timeout"
#: The client closed or reset the connection before the handshake ended
#: (also a TCP health check that connects and closes).
CLIENT_CLOSED: Final = "client_closed"
#: Nothing in common: cipher suites, signature algorithms or groups.
NO_SHARED_CIPHER: Final = "no_shared_cipher"
#: The client offered no TLS version the server allows.
UNSUPPORTED_VERSION: Final = "unsupported_version"
#: The bytes were not TLS (plain HTTP, an SSLv2 hello, noise).
NOT_TLS: Final = "not_tls"
#: The client refused the server with an alert (most often: it does not
#: trust the certificate).
ALERT: Final = "alert"
#: The client sent no client certificate, or one that does not verify
#: (C{--verify-client require}).
CLIENT_CERTIFICATE: Final = "client_certificate"
#: tlsreply aborted the connection: the shutdown's grace expired, a second
#: stop signal, an internal error.
ABORTED: Final = "aborted"
#: A C{haproxy:} port refused the connection's PROXY header (or it had
#: none): L{tlsreply.transport.proxyheader}.
PROXY_HEADER: Final = "proxy_header"
#: Anything else (a malformed or unexpected message, ...).
OTHER: Final = "other"

#: Every value L{failureReason} returns.
FAILURE_REASONS: Final = (
    TIMEOUT,
    CLIENT_CLOSED,
    NO_SHARED_CIPHER,
    UNSUPPORTED_VERSION,
    NOT_TLS,
    ALERT,
    CLIENT_CERTIFICATE,
    ABORTED,
    PROXY_HEADER,
    OTHER,
)

#: (substring, reason), the first match wins: tlsreply's own words first
#: (a refused PROXY header's first of all: its line quotes the peer's
#: bytes, which may hold any of the others), then OpenSSL's reason strings
#: (C{ssl/ssl_err.c}), lower case.
_RULES: Final = (
    ("proxy header", PROXY_HEADER),
    ("handshake not completed within", TIMEOUT),
    ("peer closed", CLIENT_CLOSED),
    ("unexpected eof", CLIENT_CLOSED),
    ("aborted", ABORTED),
    ("internal error", ABORTED),
    ("no shared cipher", NO_SHARED_CIPHER),
    ("no shared signature", NO_SHARED_CIPHER),
    ("no suitable signature", NO_SHARED_CIPHER),
    ("no suitable key share", NO_SHARED_CIPHER),
    ("no shared group", NO_SHARED_CIPHER),
    ("unsupported protocol", UNSUPPORTED_VERSION),
    ("version too low", UNSUPPORTED_VERSION),
    ("version too high", UNSUPPORTED_VERSION),
    ("alert protocol version", UNSUPPORTED_VERSION),
    ("inappropriate fallback", UNSUPPORTED_VERSION),
    ("http request", NOT_TLS),
    ("http proxy request", NOT_TLS),
    ("wrong version number", NOT_TLS),
    ("unknown protocol", NOT_TLS),
    ("length too long", NOT_TLS),
    ("record layer failure", NOT_TLS),
    ("peer did not return a certificate", CLIENT_CERTIFICATE),
    ("certificate verify failed", CLIENT_CERTIFICATE),
    ("alert", ALERT),
)


def failureReason(closed: str) -> str:
    """
    The label for a failed handshake's reason, one of L{FAILURE_REASONS}.

    @param closed: why the connection ended, as its log line says it.
    """
    text = closed.lower()
    for substring, reason in _RULES:
        if substring in text:
            return reason
    return OTHER
