# -*- test-case-name: tests.test_assembly,tests.test_options,tests.test_http -*-
"""
The one check of each kind of setting value: seconds, a whole number, an
HTTP status code.

L{tlsreply.config.ServerConfig} checks its fields with these, and so do
the command lines' coercers (L{tlsreply.command} and L{tlsreply.check}),
after turning the text into a number: a rule changed here changes for an
application and for the operator at once, and the messages read alike
(C{--handshake-timeout: expected seconds (a number >= 0), got '-1'},
C{ServerConfig.handshakeTimeout: expected seconds (a number >= 0), got -1}).

Each check raises L{ConfigurationError} naming what it checked (C{name});
a coercer passes the text the operator typed as C{text}, which the
message quotes instead of the number read from it.
"""

from __future__ import annotations

from typing import Final

from tlsreply.errors import ConfigurationError

#: The lowest and the highest HTTP status code a reply may have.
HTTP_STATUS_RANGE: Final = (100, 599)


def _shown(value: object, text: str | None) -> str:
    return repr(value if text is None else text)


def seconds(
    value: object, name: str, positive: bool = False, text: str | None = None
) -> float:
    """
    A finite number of seconds, 0 or more (more than 0 if C{positive}).

    @return: C{value}, as given.
    @raise ConfigurationError: for anything else (NaN, infinity, a bool).
    """
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if (0 < value if positive else 0 <= value) and value < float("inf"):
            return value
    expected = "a positive number of seconds" if positive else "seconds (a number >= 0)"
    raise ConfigurationError(f"{name}: expected {expected}, got {_shown(value, text)}")


def wholeNumber(
    value: object,
    name: str,
    maximum: int | None = None,
    why: str = "",
    text: str | None = None,
) -> int:
    """
    A whole number from 1 (to C{maximum}, with C{why} as the reason for
    that bound, said when a number passes it).

    @return: C{value}, as given.
    @raise ConfigurationError: for anything else (a bool, a float).
    """
    tooLarge = False
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
        tooLarge = maximum is not None and value > maximum
        if not tooLarge:
            return value
    bound = f"from 1 to {maximum}" if maximum is not None else ">= 1"
    message = f"{name}: expected a whole number {bound}, got {_shown(value, text)}"
    raise ConfigurationError(f"{message} ({why})" if why and tooLarge else message)


def httpStatus(value: object, name: str = "HTTP status", text: str | None = None) -> int:
    """
    An HTTP status code, a whole number from 100 to 599.

    @return: C{value}, as given.
    @raise ConfigurationError: for anything else.
    """
    lowest, highest = HTTP_STATUS_RANGE
    if isinstance(value, int) and not isinstance(value, bool) and lowest <= value <= highest:
        return value
    raise ConfigurationError(
        f"{name}: expected a status code from {lowest} to {highest}, got {_shown(value, text)}"
    )
