"""
L{tlsreply.testing} used the way a Twisted project's trial suite would use
it: one call, a Twisted TLS client, assertions on the recorded handshakes.
"""

from __future__ import annotations

import io
import json
import socket
import ssl
import tempfile
from contextlib import redirect_stdout

from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import TCP4ClientEndpoint, wrapClientTLS
from twisted.internet.protocol import Factory, Protocol, connectionDone
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase, TestCase

from tests.support import (
    fetchWithSSL,
    inThread,
    requireCommand,
    runCommand,
    temporaryDirectory,
)
from tlsreply.command.cli import main
from tlsreply.command.tap import Options as ServerOptions
from tlsreply.errors import ConfigurationError
from tlsreply.testing import SCENARIOS, startTLSReplyServer


class ReplyReader(Protocol):
    """
    Collect what the server sends until it closes.
    """

    def __init__(self) -> None:
        self.data = b""
        self.done: Deferred[bytes] = Deferred()

    def dataReceived(self, data: bytes) -> None:
        self.data += data

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self.done.callback(self.data)


async def fetchWithTwisted(server: object) -> bytes:
    """
    Read the reply with Twisted's own TLS client.
    """
    endpoint = wrapClientTLS(
        server.clientTLSOptions(),  # type: ignore[attr-defined]
        TCP4ClientEndpoint(reactor, server.host, server.port),  # type: ignore[attr-defined]
    )
    reader = ReplyReader()
    await endpoint.connect(Factory.forProtocol(lambda: reader))
    return await reader.done


class TestingModuleTests(TestCase):
    """
    L{startTLSReplyServer} in a trial test.
    """

    async def test_twistedClientGetsReplyAndIsRecorded(self) -> None:
        """
        One call gives a listening server whose client options verify it;
        the connection is recorded with what was negotiated.
        """
        server = startTLSReplyServer(self)
        self.assertEqual(server.host, "127.0.0.1")
        self.assertEqual(await fetchWithTwisted(server), b"test\n")
        [record] = await server.whenRecorded(1)
        self.assertEqual(record.outcome, "replied")
        self.assertEqual(record.tlsVersion, "TLSv1.3")
        self.assertEqual(record.requestedServerName, "localhost")
        self.assertEqual(record.serverName, "localhost")
        self.assertIsNotNone(record.group)
        self.assertFalse(record.resumed)

    async def test_pythonSSLResumptionIsRecorded(self) -> None:
        """
        The records show a client resuming its session on the second
        connect, which is what a test of client-side session caching wants
        to assert.
        """
        server = startTLSReplyServer(self)
        context = server.sslContext()
        first = await inThread(fetchWithSSL, server.port, context)
        second = await inThread(fetchWithSSL, server.port, context, session=first.session)
        records = await server.whenRecorded(2)
        self.assertEqual([r.resumed for r in records], [False, True])
        self.assertTrue(second.sessionReused)

    async def test_failedHandshakeIsRecorded(self) -> None:
        """
        A client that does not trust the server fails, and the record says
        the handshake failed and why.
        """
        server = startTLSReplyServer(self, scenario="expired")
        with self.assertRaises(ssl.SSLCertVerificationError):
            await inThread(fetchWithSSL, server.port, server.sslContext())
        [record] = await server.whenRecorded(1)
        self.assertTrue(record.handshakeFailed)
        self.assertIsNotNone(record.failureReason)
        self.assertIsNone(record.tlsVersion)

    async def test_httpReply(self) -> None:
        """
        With C{http=True}, C{curl --cacert} receives the reply as an HTTP
        response body.
        """
        curl = requireCommand(self, "curl")
        server = startTLSReplyServer(self, http=True, reply=b"healthy\n")
        result = await inThread(
            runCommand,
            [curl, "--silent", "--show-error", "--noproxy", "*", "--include",
             "--cacert", str(server.caCertificatePath), server.url("/health")],
        )
        self.assertEqual(result.returncode, 0, result.stderr)
        head, _, body = result.stdout.partition(b"\r\n\r\n")
        self.assertEqual(body, b"healthy\n")
        self.assertIn(b"HTTP/1.1 200 OK", head)
        self.assertIn(b"Content-Length: 8", head)
        self.assertIn(b"Connection: close", head)

    async def test_httpStatusAndHeaders(self) -> None:
        """
        C{httpStatus} and C{httpHeaders} (a mapping, or pairs where a name
        repeats) shape the HTTP response, as C{--http-status} and
        C{--http-header} do, and imply C{http=True}, as they do; the reply
        is the body.
        """
        server = startTLSReplyServer(
            self, reply=b"gone\n", httpStatus=410,
            httpHeaders={"Content-Type": "application/json", "X-Test": "1"},
        )
        result = await inThread(fetchWithSSL, server.port, server.sslContext())
        head, _, body = result.data.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        self.assertEqual(lines[0], b"HTTP/1.1 410 Gone")
        self.assertIn(b"Content-Type: application/json", lines)
        self.assertNotIn(b"Content-Type: text/plain; charset=utf-8", lines)
        self.assertIn(b"X-Test: 1", lines)
        self.assertEqual(body, b"gone\n")
        pairs = startTLSReplyServer(
            self, http=True, reply=b"", httpHeaders=[("Set-Cookie", "a=1"), ("Set-Cookie", "b=2")]
        )
        result = await inThread(fetchWithSSL, pairs.port, pairs.sslContext())
        lines = result.data.split(b"\r\n")
        self.assertEqual(lines[0], b"HTTP/1.1 200 OK")
        self.assertEqual(
            [line for line in lines if line.startswith(b"Set-Cookie")],
            [b"Set-Cookie: a=1", b"Set-Cookie: b=2"],
        )
        self.assertIn(b"Content-Length: 0", lines)

    def test_badHTTPShapeIsRefusedAndCleanedUp(self) -> None:
        """
        A header or status that C{httpResponse} refuses is its
        L{ConfigurationError}, before anything listens; the server's
        temporary folder is removed.
        """
        private = temporaryDirectory(self)
        self.patch(tempfile, "tempdir", str(private))
        with self.assertRaises(ConfigurationError) as caught:
            startTLSReplyServer(self, httpHeaders={"Content-Length": "5"})
        self.assertIn("Content-Length", str(caught.exception))
        with self.assertRaises(ConfigurationError):
            startTLSReplyServer(self, scenario="crl-revoked", httpStatus=42)
        self.assertEqual(list(private.iterdir()), [])

    async def test_expectedOutcome(self) -> None:
        """
        The server says what a correct client sees of its scenario: the
        catalogue's outcome, which a Python client meets exactly.
        """
        self.assertEqual(startTLSReplyServer(self).expectedOutcome.kind, "accept")
        server = startTLSReplyServer(self, scenario="tls1.0-only")
        outcome = server.expectedOutcome
        self.assertEqual(outcome, SCENARIOS["tls1.0-only"].expectedOutcome)
        self.assertEqual(
            (outcome.accepted, outcome.kind, outcome.message),
            (False, "protocol-version", "tlsv1 alert protocol version"),
        )
        with self.assertRaises(ssl.SSLError) as caught:
            await inThread(fetchWithSSL, server.port, server.sslContext())
        assert outcome.message is not None
        self.assertIn(outcome.message, str(caught.exception))

    async def test_stopClosesThePort(self) -> None:
        """
        After C{stop()} nothing listens on the port any more.
        """
        server = startTLSReplyServer()
        await server.stop()
        with self.assertRaises(ConnectionRefusedError):
            socket.create_connection(server.address, timeout=2).close()


class ScenarioListingTests(SynchronousTestCase):
    """
    C{tlsreply scenarios --json}.
    """

    def test_jsonListsEveryScenario(self) -> None:
        """
        The listing names every scenario with its expected outcome.
        """
        out = io.StringIO()
        self.assertEqual(main(["scenarios", "--json"], out), 0)
        listed = {s["name"]: s for s in json.loads(out.getvalue())}
        for name in ("valid", "expired", "wrong-host", "no-session-resumption",
                     "client-cert-required", "revoked", "1000-sans", "tls1.0-only",
                     "tls1.1-only", "cn-only", "rsa1024", "expired-intermediate",
                     "crl-revoked", "must-staple-no-staple", "pq-hybrid-only"):
            self.assertIn(name, listed)
        self.assertEqual(listed["valid"]["expected"], "accept")
        self.assertEqual(
            listed["valid"]["expectedOutcome"],
            {"accepted": True, "kind": "accept", "message": None, "requires": None},
        )
        self.assertEqual(
            listed["expired-intermediate"]["expectedOutcome"],
            {"accepted": False, "kind": "certificate-expired",
             "message": "certificate has expired", "requires": None},
        )
        crl = listed["crl-revoked"]["expectedOutcome"]
        self.assertEqual(crl["message"], "certificate revoked")
        self.assertIn("VERIFY_CRL_CHECK_LEAF", crl["requires"])

    def test_twistdListsTheSame(self) -> None:
        """
        C{twistd tlsreply --list-scenarios} prints the very listing of
        C{tlsreply scenarios --json}.
        """
        out = io.StringIO()
        main(["scenarios", "--json"], out)
        written = io.StringIO()
        with self.assertRaises(SystemExit) as caught, redirect_stdout(written):
            ServerOptions().parseOptions(["--list-scenarios"])
        self.assertEqual(caught.exception.code, 0)
        self.assertEqual(json.loads(written.getvalue()), json.loads(out.getvalue()))

    def test_textSaysWhatAClientNeeds(self) -> None:
        """
        The text listing gives each scenario's expected outcome in one
        line, and what a client must do to see it where that is more than
        Python's defaults.
        """
        out = io.StringIO()
        self.assertEqual(main(["scenarios"], out), 0)
        lines = out.getvalue().splitlines()
        at = next(i for i, line in enumerate(lines) if line.startswith("cn-only "))
        width = max(map(len, SCENARIOS))
        self.assertEqual(
            lines[at], f"{'cn-only':<{width}}  expect: Hostname mismatch, certificate is not "
            "valid for 'localhost'.",
        )
        self.assertTrue(lines[at + 1].strip().startswith("requires: not falling back"))
        at = next(i for i, line in enumerate(lines) if line.startswith("expired "))
        self.assertNotIn("requires", lines[at + 1])
