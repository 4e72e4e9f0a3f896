"""
C{--log-format json}: one JSON object per line, for log shippers.
"""

from __future__ import annotations

import io
import json

from twisted.internet.task import Clock
from twisted.logger import LogLevel
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from tests.test_accesslog import HANDSHAKES
from tlsreply.accesslog import (
    FAILED_FORMAT,
    REPLIED_FORMAT,
    AccessLog,
    connectionFields,
    jsonConnectionLine,
)
from tlsreply.jsonlog import JSONLinesObserver, eventAsJSONLine, timestamp

WHEN = 1796021826.8594


def accessEvent(peer: str, closed: str, handshake: object) -> dict[str, object]:
    """
    The structured event a connection is logged as with C{--access-log
    log} (see L{tlsreply.protocol.ReplyFactory.report}).
    """
    return {
        "log_format": FAILED_FORMAT if handshake is None else REPLIED_FORMAT,
        "log_namespace": "tlsreply.access",
        "log_level": LogLevel.info,
        "log_time": WHEN,
        **connectionFields(peer, closed, handshake),  # type: ignore[arg-type]
    }


class LineTests(SynchronousTestCase):
    """
    The lines themselves.
    """

    def test_timestamp(self) -> None:
        self.assertEqual(timestamp(WHEN), "2026-11-30T06:57:06.859Z")
        self.assertEqual(timestamp(0), "1970-01-01T00:00:00.000Z")

    def test_connectionLineIsTheEventsLine(self) -> None:
        """
        A connection's line written directly (the buffered access log) is
        the line the observer writes for its structured event, served or
        failed: the two ways a connection reaches a JSON log agree.
        """
        for handshake in [*HANDSHAKES, None]:
            direct = jsonConnectionLine(
                WHEN, "tlsreply.access", "127.0.0.1:5000", "peer closed the connection",
                handshake,
            )
            observed = eventAsJSONLine(
                accessEvent("127.0.0.1:5000", "peer closed the connection", handshake)
            )
            self.assertEqual(json.loads(direct), json.loads(observed))
            self.assertTrue(direct.endswith("\n"))
            self.assertEqual(direct.count("\n"), 1)

    def test_servedConnectionFields(self) -> None:
        line = json.loads(jsonConnectionLine(
            WHEN, "tlsreply.access.worker2", "[::1]:5000", "peer closed the connection",
            HANDSHAKES[0],
        ))
        self.assertEqual(line["time"], "2026-11-30T06:57:06.859Z")
        self.assertEqual(line["level"], "info")
        self.assertEqual(line["namespace"], "tlsreply.access.worker2")
        self.assertTrue(line["message"].startswith("replied to [::1]:5000: TLSv1.3 "))
        self.assertEqual(
            {k: line[k] for k in ("peer", "outcome", "tlsVersion", "group", "resumed",
                                   "serverName", "alpnProtocol", "closed")},
            {"peer": "[::1]:5000", "outcome": "replied", "tlsVersion": "TLSv1.3",
             "group": "X25519MLKEM768", "resumed": False, "serverName": "localhost",
             "alpnProtocol": None, "closed": "peer closed the connection"},
        )
        self.assertAlmostEqual(line["handshakeMilliseconds"], 3.8)

    def test_anyEvent(self) -> None:
        """
        Fields that are not JSON values are written as their text; a
        failure adds its message and traceback; text is not escaped to
        ASCII; every line parses.
        """
        failure = Failure(ZeroDivisionError("division by zero"))
        line = json.loads(eventAsJSONLine({
            "log_format": "reloaded: serving {count} certificate(s) for {names}",
            "log_namespace": "tlsreply",
            "log_level": LogLevel.warn,
            "log_time": WHEN,
            "log_failure": failure,
            "count": 2,
            "names": ("a.test", "b.test"),
            "path": object(),
            "who": "müller",
        }))
        self.assertEqual(line["message"], "reloaded: serving 2 certificate(s) for ('a.test', 'b.test')")
        self.assertEqual(line["level"], "warn")
        self.assertEqual(line["names"], ["a.test", "b.test"])
        self.assertTrue(line["path"].startswith("<object object"))
        self.assertEqual(line["who"], "müller")
        self.assertEqual(line["error"], "division by zero")
        self.assertIn("ZeroDivisionError", line["traceback"])
        self.assertNotIn("log_format", line)

    def test_observerWritesOneLinePerEvent(self) -> None:
        stream = io.StringIO()
        observer = JSONLinesObserver(stream)
        observer(accessEvent("127.0.0.1:1", "peer closed the connection", None))
        observer({"log_format": "hello", "log_level": LogLevel.info, "log_time": WHEN,
                  "log_namespace": "tlsreply"})
        lines = stream.getvalue().splitlines()
        self.assertEqual([json.loads(x)["message"] for x in lines],
                         ["handshake failed with 127.0.0.1:1: peer closed the connection",
                          "hello"])


class AccessLogJSONTests(SynchronousTestCase):
    """
    The buffered access log writes JSON lines with C{json=True}.
    """

    def test_jsonLines(self) -> None:
        stream = io.BytesIO()
        clock = Clock()
        clock.advance(WHEN)
        log = AccessLog(stream, clock, json=True)
        for handshake in [*HANDSHAKES, None]:
            log.connectionEnded("127.0.0.1:5000", "peer closed the connection", handshake)
        log.flush()
        lines = [json.loads(x) for x in stream.getvalue().decode().splitlines()]
        self.assertEqual(
            [x["outcome"] for x in lines], ["replied"] * len(HANDSHAKES) + ["handshake-failed"]
        )
        self.assertEqual({x["time"] for x in lines}, {"2026-11-30T06:57:06.859Z"})
