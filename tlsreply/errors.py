# -*- test-case-name: tests.test_credentials -*-
"""
The one exception type that tlsreply raises for a bad configuration, and
the reading of OpenSSL's own reasons out of a pyOpenSSL error.
"""

from __future__ import annotations


class ConfigurationError(Exception):
    """
    A setting, file or listening address that tlsreply cannot use.

    Its message is a single line that names the problem and the thing it is
    about (a path, an option, an endpoint description), written for the
    operator who typed it: the command line prints it as it is, with no
    traceback, and exits non-zero.
    """


def openSSLReasons(error: Exception) -> str | None:
    """
    OpenSSL's own reason strings in a pyOpenSSL error, joined: e.g.
    C{"no shared cipher"}, C{"ee key too small"}, C{"tlsv1 alert unknown
    ca"}; L{None} if the error carries none (callers word that case).
    """
    details = error.args[0] if error.args else None
    if not isinstance(details, list):
        return None
    # An entry of the "system library" (a failed system call, such as a
    # reset) carries no reason of its own.
    reasons = [str(entry[-1]) for entry in details if isinstance(entry, tuple) and entry[-1]]
    return "; ".join(reasons) or None
