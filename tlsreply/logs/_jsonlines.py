# -*- test-case-name: tests.test_jsonlog -*-
"""
Logs as one JSON object per line (C{--log-format json}), for log
shippers (Vector, Fluent Bit, Promtail, the journal's JSON output).

Every line has C{time} (UTC, ISO 8601 with milliseconds), C{level},
C{namespace} and C{message} (the event's text, as the text log shows it),
then the event's own fields: for a connection, C{peer}, C{outcome} and
the TLS fields of its text line (L{tlsreply.logs.access.repliedFields}).

This is not the JSON that C{twist} writes when its output is not a
terminal (Twisted's C{jsonFileLogObserver}): that one serialises every
event whole, Twisted's own keys included, each prefixed with an ASCII
record separator (RFC 7464), to be read back by Twisted
(C{eventsFromJSONLogFile}); this one is flat, one plain object per line.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import IO, Any

from twisted.logger import ILogObserver, LogEvent, formatEvent
from zope.interface import implementer

#: Values written as they are; anything else is written as its text.
_PLAIN = (str, int, float, bool, type(None))

_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=str).encode


#: The last second formatted, and its text: connection lines come many a
#: second, and formatting a date costs more than the rest of the stamp.
_second: list[Any] = [None, ""]


def timestamp(seconds: float) -> str:
    """
    C{2026-11-30T06:57:06.859Z}: UTC, to the millisecond.
    """
    whole = int(seconds)
    if _second[0] != whole:
        _second[:] = [whole, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole))]
    return f"{_second[1]}.{int((seconds - whole) * 1000):03d}Z"


#: A string as a JSON string (quoted and escaped, not limited to ASCII).
jsonString: Any = json.encoder.encode_basestring


def jsonValue(value: str | bool | float | None) -> str:
    """
    A plain value as JSON, for lines written without an encoder.
    """
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str):
        return str(jsonString(value))
    return repr(value)


def _plain(value: Any) -> Any:
    if isinstance(value, _PLAIN):
        return value
    if isinstance(value, list | tuple):
        return [_plain(each) for each in value]
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    return str(value)


def jsonLine(
    when: float, level: str, namespace: str, message: str, fields: Mapping[str, Any]
) -> str:
    """
    One log line: the common keys, then C{fields} (plain JSON values as
    they are, anything else as its text).
    """
    line: dict[str, Any] = {
        "time": timestamp(when),
        "level": level,
        "namespace": namespace,
        "message": message,
    }
    for key, value in fields.items():
        line.setdefault(key, value if isinstance(value, _PLAIN) else _plain(value))
    return _encode(line) + "\n"


def eventAsJSONLine(event: LogEvent) -> str:
    """
    A C{twisted.logger} event as one line: its fields are the keys that do
    not start with C{log_}; a failure adds C{error} and C{traceback}.
    """
    level = event.get("log_level")
    fields = {k: v for k, v in event.items() if not k.startswith("log_")}
    failure = event.get("log_failure")
    if failure is not None:
        fields["error"] = failure.getErrorMessage()
        fields["traceback"] = failure.getTraceback()
    return jsonLine(
        event.get("log_time") or time.time(),
        level.name if level is not None else "info",
        event.get("log_namespace") or event.get("log_system") or "-",
        formatEvent(event),
        fields,
    )


@implementer(ILogObserver)
class JSONLinesObserver:
    """
    Writes every event as one JSON line to a text stream, flushed at once
    (the server's own events are few: start-up, reloads, the shutdown;
    connection lines are written through L{tlsreply.logs.access.AccessLog}'s
    buffer, or come here only with C{--access-log log}).
    """

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream

    def __call__(self, event: LogEvent) -> None:
        self._stream.write(eventAsJSONLine(event))
        self._stream.flush()
