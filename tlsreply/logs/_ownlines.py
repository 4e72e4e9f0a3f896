# -*- test-case-name: tests.test_ownlines,tests.test_jsonlog -*-
"""
Only lines tlsreply chose, in the server log it writes (L{tlsreply.logs.format}
puts this observer in front of the text or JSON one).

Twisted's running commentary is left out: a port "starting on" and
"(TCP Port 5443 Closed)", a factory's "Starting factory <...object at
0x...>" and "Stopping factory", the runner's "Starting reactor..." and the
reactor's "Main loop terminated.". tlsreply's own lines say the same for
the ports it serves, in its words and with its addresses ("listening on",
"stopped listening", "stopped").

What else Twisted logs is kept, in tlsreply's terms: an event of Twisted's
legacy C{twisted.python.log} (above all "Unhandled Error" with its
traceback, from C{log.err}) gets the namespace C{twisted} instead of
C{log_legacy} and loses C{system} C{"-"} and C{isError}; its failure
becomes the event's own, so that a JSON line carries C{error} and
C{traceback} as tlsreply's failures do. twistd's lines about itself (its
version at start-up, its reactor, "Server Shut Down.") are twistd's, under
the namespace C{twistd}.

An error is never left out: an event at level C{warn} or above, or one
with a failure, goes through whatever it says.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import IO, Final

from twisted.logger import ILogObserver, LogEvent, LogLevel
from twisted.python.failure import Failure
from zope.interface import implementer

#: Twisted's own formats that say nothing a tlsreply line does not.
NOISE_FORMATS: Final = frozenset(
    {
        "Starting factory {factory!r}",
        "Stopping factory {factory!r}",
        "Starting reactor...",
        "Main loop terminated.",
    }
)

#: What Twisted's ports log through the legacy log when they start and
#: stop listening (TCP, UNIX, UDP).
_PORT_TEXT: Final = re.compile(r".+ starting on .+|\((?:[A-Z]+ )?Port .+ Closed\)")

#: The namespaces of twistd's lines about itself.
_TWISTD_NAMESPACES: Final = frozenset(
    {"twisted.scripts._twistd_unix.UnixAppLogger", "twisted.application.app.AppLogger"}
)

_LEGACY: Final = "log_legacy"

#: What Twisted's legacy log adds to an event, which is written (if at all)
#: in tlsreply's terms instead.
_LEGACY_KEYS: Final = frozenset(
    {"isError", "message", "format", "failure", "why", "log_system", "system"}
)


def _isError(event: LogEvent) -> bool:
    level = event.get("log_level")
    return bool(
        event.get("log_failure") is not None
        or event.get("isError")
        or (level is not None and level >= LogLevel.warn)
    )


def isTwistedNoise(event: LogEvent) -> bool:
    """
    Is this one of Twisted's lines that tlsreply leaves out (never an
    error)?
    """
    if event.get("log_format") in NOISE_FORMATS:
        return not _isError(event)
    if event.get("log_namespace") == _LEGACY:
        text = event.get("log_text")
        return (
            isinstance(text, str)
            and _PORT_TEXT.fullmatch(text) is not None
            and not _isError(event)
        )
    return False


def translate(event: LogEvent) -> LogEvent:
    """
    The event as tlsreply logs it: legacy and twistd events under their
    own namespaces (a new event; the original is left as it is), every
    other one as it is.
    """
    namespace = event.get("log_namespace")
    if namespace in _TWISTD_NAMESPACES:
        return {**event, "log_namespace": "twistd"}
    if namespace != _LEGACY:
        return event
    translated = {
        key: value
        for key, value in event.items()
        if key not in _LEGACY_KEYS
    }
    translated["log_namespace"] = "twisted"
    system = event.get("log_system")
    if system not in (None, "-"):
        # Twisted's context for the call: a connection's log prefix.
        translated["log_system"] = translated["system"] = system
    failure = event.get("failure")
    if isinstance(failure, Failure) and event.get("isError"):
        # The legacy text holds the traceback already; as the failure of
        # the event, the traceback is written once, the way tlsreply's
        # own failures are.
        translated["log_failure"] = failure
        translated["log_format"] = "{log_text}"
        translated["log_text"] = event.get("why") or "Unhandled Error"
    return translated


@implementer(ILogObserver)
class OwnLinesObserver:
    """
    Hands every event but Twisted's noise (L{isTwistedNoise}) to
    C{observer}, translated (L{translate}).

    @ivar observer: the observer that writes the lines.
    """

    def __init__(self, observer: ILogObserver) -> None:
        self.observer = observer

    def __call__(self, event: LogEvent) -> None:
        if not isTwistedNoise(event):
            self.observer(translate(event))


class OwnLinesFactory:
    """
    A factory of observers for a stream (what C{twist} takes as its
    C{fileLogObserverFactory}), each behind an L{OwnLinesObserver}.

    @ivar factory: the factory of the observers that write the lines.
    """

    def __init__(self, factory: Callable[[IO[str]], ILogObserver]) -> None:
        self.factory = factory

    def __call__(self, stream: IO[str]) -> ILogObserver:
        return OwnLinesObserver(self.factory(stream))
