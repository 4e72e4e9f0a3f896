# -*- test-case-name: tests.test_options -*-
"""
The checks of the command line's option values: Twisted C{usage.Options}
coercers that turn a string into its value or refuse it with a message
naming the option (C{--min-tls: expected 1.2 or 1.3, got '1.1'}), so that
a mistake is one line the operator can act on.

L{tlsreply.command.tap} declares the options with these; twistd's own prefix for a
refused value (L{COERCION_PREFIX}) is taken off the message there.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, Final

from tlsreply import values
from tlsreply.errors import ConfigurationError
from tlsreply.workers.supervisor import workerCount

#: Twisted's prefix for an option whose value its coercer refused; every
#: coercer here names its option, so the prefix goes.
COERCION_PREFIX: Final = "Parameter type enforcement failed: "

#: Why C{--min-tls} and C{--max-tls} stop at TLS 1.2, for their errors.
LEGACY_HINT: Final = "TLS 1.0 and 1.1 are insecure: allow them with --insecure-min-tls"

#: The option that sets each policy field, for messages (a field a
#: scenario decides, a value OpenSSL refuses).
POLICY_OPTIONS: Final = {
    "minimumVersion": "--min-tls",
    "maximumVersion": "--max-tls",
    "insecureMinimumVersion": "--insecure-min-tls",
    "tls12Ciphers": "--ciphers",
    "tls13Ciphersuites": "--ciphersuites",
    "groups": "--groups",
    "sessionCache": "--session-cache",
    "sessionTickets": "--session-tickets",
    "sessionTimeout": "--session-timeout",
    "clientCAPath": "--client-ca",
    "verifyClient": "--verify-client",
}

Coercer = Callable[[str], Any]


def _documented(coerce: Coercer, doc: str) -> Coercer:
    # Not Twisted's coerceDoc: --help would show it after the default.
    coerce.valuesDoc = doc  # type: ignore[attr-defined]
    return coerce


def documentValues(parameters: list[list[Any]]) -> list[list[Any]]:
    """
    C{usage.Options.optParameters} with what each coercer here takes said
    in the option's help text, before the C{[default: ...]} that Twisted
    adds: Twisted's own C{coerceDoc} comes after it, which reads as
    C{[default: 1.2]. One of: 1.2, 1.3}.
    """
    documented = []
    for parameter in parameters:
        coerce = parameter[4] if len(parameter) > 4 else None
        valuesDoc = getattr(coerce, "valuesDoc", None)
        if valuesDoc is not None:
            parameter = [*parameter[:3], f"{parameter[3]} {valuesDoc}", *parameter[4:]]
        documented.append(parameter)
    return documented


def _refused(error: ConfigurationError) -> ValueError:
    # Twisted's usage.Options reports a coercer's ValueError, naming it.
    return ValueError(str(error))


def seconds(option: str, positive: bool = False) -> Coercer:
    """
    A number of seconds, 0 or more (more than 0 if C{positive}):
    C{--handshake-timeout 2.5}, checked as L{ServerConfig} checks it
    (L{tlsreply.values.seconds}).
    """

    def coerce(value: str) -> float:
        try:
            number = float(value)
        except ValueError:
            number = float("nan")
        try:
            return values.seconds(number, f"--{option}", positive, text=value)
        except ConfigurationError as e:
            raise _refused(e) from None

    # Undocumented: the option's own help begins with "Seconds".
    return coerce


def wholeNumber(option: str, maximum: int | None = None, why: str = "") -> Coercer:
    """
    A whole number from 1 (to C{maximum}, with C{why} as its reason), in
    ASCII digits, checked by L{tlsreply.values.wholeNumber}.
    """
    bound = f"from 1 to {maximum}" if maximum is not None else ">= 1"

    def coerce(value: str) -> int:
        number = int(value) if re.fullmatch("[0-9]+", value) else 0
        try:
            return values.wholeNumber(number, f"--{option}", maximum, why, text=value)
        except ConfigurationError as e:
            raise _refused(e) from None

    return _documented(coerce, f"A whole number {bound}.")


def choice(option: str, *choices: str, hint: str | None = None) -> Coercer:
    """
    One of C{choices}; C{hint} says what to do instead of the others.
    """

    def coerce(value: str) -> str:
        if value not in choices:
            expected = ", ".join(choices[:-1]) + f" or {choices[-1]}"
            message = f"--{option}: expected {expected}, got {value!r}"
            raise ValueError(f"{message} ({hint})" if hint else message)
        return value

    return _documented(coerce, "One of: " + ", ".join(choices) + ".")


def onOff(option: str) -> Coercer:
    """
    C{on} or C{off}.
    """
    return choice(option, "on", "off")


def nonEmpty(option: str) -> Coercer:
    """
    Any text but none: an empty value (C{--port "$PORT"} with C{PORT}
    unset) is a mistake, not "use the default".
    """

    def coerce(value: str) -> str:
        if not value.strip():
            raise ValueError(f"--{option}: expected a value, got {value!r}")
        return value

    return coerce


def httpStatus(value: str) -> int:
    """
    An HTTP status code, 100 to 599, in three ASCII digits, checked by
    L{tlsreply.values.httpStatus}.
    """
    number = int(value) if re.fullmatch("[0-9]{3}", value) else None
    try:
        return values.httpStatus(number, "--http-status", text=value)
    except ConfigurationError as e:
        raise _refused(e) from None


def workers(value: str) -> int:
    """
    C{--workers}: a number of processes, or C{auto} (see
    L{tlsreply.workers.supervisor.workerCount}).
    """
    try:
        return workerCount(value)
    except ValueError as e:
        raise ValueError(f"--workers: {e}") from None
