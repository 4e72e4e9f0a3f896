# -*- test-case-name: tests.test_credentials -*-
"""
The one exception type that tlsreply raises for a bad configuration, the
wording of a failure to listen, and the reading of OpenSSL's own reasons
out of a pyOpenSSL error.
"""

from __future__ import annotations

import errno

from twisted.internet.error import CannotListenError

#: What the README ("Port 443 without running as root") documents for a
#: port below 1024, said where an operator meets the problem.
LOW_PORT_HINT = (
    "a port below 1024 needs privilege: run twistd --uid/--gid as root (it "
    "binds, then drops root), give Python CAP_NET_BIND_SERVICE, or let systemd "
    "bind it (socket activation, --port systemd:domain=INET:index=0)"
)


class ConfigurationError(Exception):
    """
    A setting, file or listening address that tlsreply cannot use.

    Its message is a single line that names the problem and the thing it is
    about (a path, an option, an endpoint description), written for the
    operator who typed it: the command line prints it as it is, with no
    traceback, and exits non-zero.
    """


def cannotListen(description: str, error: BaseException) -> ConfigurationError:
    """
    The error for a listening address that could not be bound: the
    address as given, the system's reason, and for a TCP port below 1024
    that the system refused (C{EACCES}), the ways to get one.

    @param description: the address as the operator wrote it.
    @param error: what listening raised, usually a C{CannotListenError}.
    """
    why = str(error) or type(error).__name__
    hint = ""
    if isinstance(error, CannotListenError) and error.socketError is not None:
        socketError = error.socketError
        why = getattr(socketError, "strerror", None) or str(socketError)
        port = error.port
        if (
            getattr(socketError, "errno", None) == errno.EACCES
            and isinstance(port, int)
            and 0 < port < 1024
        ):
            hint = f"; {LOW_PORT_HINT}"
    return ConfigurationError(f"cannot listen on {description}: {why}{hint}")


def openSSLReasons(error: Exception) -> str | None:
    """
    OpenSSL's own reason strings in a pyOpenSSL error, joined: e.g.
    C{"no shared cipher"}, C{"ee key too small"}, C{"tlsv1 alert unknown
    ca"}; C{None} if the error carries none (callers word that case).
    """
    details = error.args[0] if error.args else None
    if not isinstance(details, list):
        return None
    # An entry of the "system library" (a failed system call, such as a
    # reset) carries no reason of its own.
    reasons = [str(entry[-1]) for entry in details if isinstance(entry, tuple) and entry[-1]]
    return "; ".join(reasons) or None
