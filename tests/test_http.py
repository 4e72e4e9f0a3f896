"""
HTTP reply mode from the command line: C{--http-status}, C{--http-header}
and C{--http-body} as parsed, their errors, and the response real HTTP
clients get from a server the command line built, with their request on
record.
"""

from __future__ import annotations

import time
from typing import Any

from twisted.internet import reactor
from twisted.internet.task import deferLater
from twisted.internet.testing import MemoryReactor
from twisted.trial.unittest import SynchronousTestCase

from tests.support import (
    LOOPBACK,
    WireTestCase,
    clientContext,
    fetchWithSSL,
    inThread,
    makeCertificates,
    onMemoryBIO,
    requireCommand,
    runCommand,
    temporaryDirectory,
)
from tests.test_tap import parse, replyFactoryOf
from tlsreply.command.tap import makeService
from tlsreply.config import ServerConfig
from tlsreply.connection.records import ConnectionRecord
from tlsreply.errors import ConfigurationError
from tlsreply.protocol import ReplyFactory
from tlsreply.service import TLSReplyService


class HTTPOptionsTests(SynchronousTestCase):
    """
    What the HTTP options parse to, and the one line each mistake gives.
    """

    def assertUsageError(self, message: str, *arguments: str) -> None:
        """
        Parsing C{arguments} exits with one line that contains C{message}.
        """
        with self.assertRaises(SystemExit) as caught:
            parse(*arguments)
        text = str(caught.exception.code)
        self.assertIn(message, text)
        self.assertNotIn("\n", text)
        self.assertTrue(text.startswith("tlsreply: "), text)

    def test_statusHeadersAndBody(self) -> None:
        """
        A status, headers in order (one replacing a default) and a body
        with escapes make the response sent.
        """
        config = parse(
            "--http-status", "404",
            "--http-header", "Content-Type: application/json",
            "--http-header", "X-Trace:\tabc  ",
            "--http-header", "Set-Cookie: a=1",
            "--http-body", '{"error": "none here"}\\n',
        ).config
        self.assertEqual(
            (config.http, config.httpStatus, config.httpHeaders),
            (True, 404, (("Content-Type", "application/json"), ("X-Trace", "abc"),
                         ("Set-Cookie", "a=1"))),
        )
        self.assertEqual(
            config.reply,
            b"HTTP/1.1 404 Not Found\r\n"
            b"Content-Length: 23\r\n"
            b"Cache-Control: no-store\r\n"
            b"Connection: close\r\n"
            b"Content-Type: application/json\r\n"
            b"X-Trace: abc\r\n"
            b"Set-Cookie: a=1\r\n"
            b"\r\n"
            b'{"error": "none here"}\n',
        )

    def test_eachImpliesHTTP(self) -> None:
        """
        Each of C{--http-status}, C{--http-header} and C{--http-body} alone
        turns HTTP mode on: none of them means anything without it.
        """
        for arguments in (("--http-status", "503"), ("--http-header", "X-A: b"),
                          ("--http-body", "ok")):
            config = parse(*arguments).config
            self.assertTrue(config.http, arguments)
            self.assertTrue(config.reply.startswith(b"HTTP/1.1 "), arguments)
        self.assertEqual(parse("--http-body", "ok").config.replyBody, b"ok")
        self.assertEqual(parse("--http-status", "503").config.replyBody, b"test\n")
        self.assertFalse(parse().config.http)

    def test_replyIsTheBodyToo(self) -> None:
        """
        C{--reply} and C{--reply-file} still give the body with C{--http}
        or any option that implies it.
        """
        config = parse("--http-status", "201", "--reply", "made\\n").config
        self.assertTrue(config.reply.startswith(b"HTTP/1.1 201 Created\r\n"))
        self.assertTrue(config.reply.endswith(b"\r\n\r\nmade\n"))

    def test_emptyBody(self) -> None:
        """
        In HTTP mode the body may be empty (C{Content-Length: 0}); a plain
        reply still may not.
        """
        for arguments in (("--http-body", ""), ("--http", "--reply", "")):
            config = parse(*arguments).config
            self.assertEqual(config.replyBody, b"", arguments)
            self.assertTrue(config.reply.endswith(
                b"Content-Length: 0\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n"
            ))
        self.assertUsageError("--reply: the reply is empty", "--reply", "")

    def test_emptyReplyFileWithHTTP(self) -> None:
        """
        An empty C{--reply-file} is an empty body in HTTP mode.
        """
        path = temporaryDirectory(self) / "empty"
        path.write_bytes(b"")
        config = parse("--http-status", "200", "--reply-file", str(path)).config
        self.assertEqual(config.replyBody, b"")

    def test_noBodyStatus(self) -> None:
        """
        With a status that has no body (204 here) the body is left out,
        and with it Content-Length, whatever the reply.
        """
        config = parse("--http-status", "204", "--reply", "ignored").config
        self.assertEqual(
            config.reply,
            b"HTTP/1.1 204 No Content\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n",
        )

    def test_badStatus(self) -> None:
        """
        A status must be three digits from 100 to 599.
        """
        for value in ("abc", "99", "600", "2000", "", "20x", "+200", "\u0662\u0660\u0660"):
            self.assertUsageError(
                f"--http-status: expected a status code from 100 to 599, got {value!r}",
                "--http-status", value,
            )

    def test_badHeaders(self) -> None:
        """
        A header without a colon, with a name that is no token, a framing
        header, or a CR/LF/NUL in its value is refused, naming the option.
        """
        for line, message in [
            ("NoColon", "--http-header: expected 'Name: value', got 'NoColon'"),
            (": value", "--http-header: expected 'Name: value', got ': value'"),
            ("Bad Name: x", "--http-header: HTTP header name 'Bad Name' is not a token"),
            ("X-A : x", "--http-header: HTTP header name 'X-A ' is not a token"),
            ("Content-Length: 5", "--http-header: HTTP header Content-Length: tlsreply sets"),
            ("connection: keep-alive", "--http-header: HTTP header connection: tlsreply sets"),
            ("Transfer-Encoding: chunked", "tlsreply sets Transfer-Encoding itself"),
            ("X-A: a\rb", "CR, LF and NUL are not allowed in a value"),
            ("X-A: a\nX-B: b", "CR, LF and NUL are not allowed in a value"),
            ("X-A: \udcff", "--http-header: HTTP header X-A: its value '\\udcff' is not valid UTF-8"),
        ]:
            self.assertUsageError(message, "--http-header", line)

    def test_oneReplyOnly(self) -> None:
        """
        C{--reply}, C{--reply-file} and C{--http-body} each give the body:
        only one of them may be given.
        """
        self.assertUsageError("--reply and --http-body: give one reply, not both",
                              "--reply", "a", "--http-body", "b")
        self.assertUsageError("--reply-file and --http-body: give one reply, not both",
                              "--reply-file", "/etc/hosts", "--http-body", "b")
        self.assertUsageError(
            "--reply and --reply-file and --http-body: give one reply, not all three",
            "--reply", "a", "--reply-file", "/etc/hosts", "--http-body", "b",
        )

    def test_bodyEscapes(self) -> None:
        """
        C{--http-body} decodes escapes as C{--reply} does, and names itself
        in an error.
        """
        self.assertEqual(parse("--http-body", "a\\r\\nb").config.replyBody, b"a\r\nb")
        self.assertUsageError("--http-body: bad escape \\q at position 1",
                              "--http-body", "a\\q")

    def test_showConfig(self) -> None:
        """
        C{--show-config} (L{ServerConfig.describe}) shows the status and
        headers.
        """
        described = parse("--http-status", "418", "--http-header", "X-A: b").config.describe()
        self.assertEqual(
            (described["http"], described["httpStatus"], described["httpHeaders"]),
            (True, 418, [["X-A", "b"]]),
        )

    def test_serverConfig(self) -> None:
        """
        An application's L{ServerConfig} is checked as the command line is:
        a bad status or header, or a status or headers without C{http},
        is refused when it is made.
        """
        self.assertRaises(ConfigurationError, ServerConfig, http=True, httpStatus=700)
        self.assertRaises(ConfigurationError, ServerConfig, http=True,
                          httpHeaders=(("Connection", "keep-alive"),))
        error = self.assertRaises(ConfigurationError, ServerConfig, httpStatus=404)
        self.assertIn("http=True", str(error))
        self.assertEqual(ServerConfig(http=True, replyBody=b"").replyBody, b"")
        self.assertRaises(ConfigurationError, ServerConfig, replyBody=b"")

    def test_wiredIntoTheFactory(self) -> None:
        """
        The service the command line makes sends that response.
        """
        certificates = makeCertificates(temporaryDirectory(self))
        memory = MemoryReactor()
        options = parse("--cert", str(certificates.certificatePath),
                        "--key", str(certificates.keyPath),
                        "--http-status", "503", "--http-header", "Retry-After: 10")
        makeService(options, reactor=memory).privilegedStartService()
        [(_, factory, _, _)] = memory.tcpServers
        reply = replyFactoryOf(factory).reply
        self.assertEqual(reply, options.config.reply)
        self.assertIn(b"\r\nRetry-After: 10\r\n", reply)


class HTTPWireTests(WireTestCase):
    """
    Real HTTP clients against a server built from a command line: the
    status, headers and body they get, and their request on record.
    """

    async def serve(self, *arguments: str) -> tuple[int, str, list[ConnectionRecord]]:
        """
        Start the server for a command line (with a test certificate, on an
        ephemeral 127.0.0.1 port) and record its connections.

        @return: its port, the test CA's path and the records list.
        """
        certificates = makeCertificates(temporaryDirectory(self))
        options = parse("--cert", str(certificates.certificatePath),
                        "--key", str(certificates.keyPath),
                        "--port", f"tcp:0:interface={LOOPBACK}", "--access-log", "off",
                        *arguments)
        service: Any = makeService(options, reactor=reactor, socketTLS=self.socketTLS)
        service.privilegedStartService()
        service.startService()
        self.addCleanup(service.stopService)
        [server] = [child for child in service if isinstance(child, TLSReplyService)]
        replyFactory: ReplyFactory = server.replyFactory
        records: list[ConnectionRecord] = []
        replyFactory.recorders.append(records.append)
        port = server.listeningPorts[0].getHost().port  # type: ignore[attr-defined]
        return port, str(certificates.caPath), records

    async def recorded(self, records: list[ConnectionRecord]) -> ConnectionRecord:
        deadline = time.monotonic() + 10
        while not records:
            self.assertLess(time.monotonic(), deadline, "no record after 10 s")
            await deferLater(reactor, 0.01, lambda: None)
        return records[0]

    async def test_curl(self) -> None:
        """
        curl gets the status with its reason phrase, the headers and the
        body; its request is on record.
        """
        curl = requireCommand(self, "curl")
        port, caPath, records = await self.serve(
            "--http-status", "418", "--http-header", "Content-Type: application/json",
            "--http-header", "X-Test: yes", "--http-body", '{"ok": false}',
        )
        result = await inThread(
            runCommand,
            [curl, "--silent", "--show-error", "--include", "--noproxy", "*",
             "--cacert", caPath, "-H", "X-Client: 1", f"https://localhost:{port}/teapot"],
        )
        self.assertEqual(result.returncode, 0, result.stderr)
        head, _, body = result.stdout.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        self.assertEqual(lines[0], b"HTTP/1.1 418 I'm a Teapot")
        self.assertIn(b"Content-Type: application/json", lines)
        self.assertIn(b"X-Test: yes", lines)
        self.assertNotIn(b"Content-Type: text/plain; charset=utf-8", lines)
        self.assertEqual(body, b'{"ok": false}')
        record = await self.recorded(records)
        self.assertTrue(record.received.startswith(b"GET /teapot HTTP/1.1\r\n"), record.received)
        self.assertIn(b"\r\nX-Client: 1\r\n", record.received)

    async def test_noContent(self) -> None:
        """
        A 204 response ends at its header: curl reads no body and does not
        wait for one.
        """
        curl = requireCommand(self, "curl")
        port, caPath, _ = await self.serve("--http-status", "204")
        result = await inThread(
            runCommand,
            [curl, "--silent", "--show-error", "--include", "--noproxy", "*",
             "--max-time", "5", "--cacert", caPath, f"https://localhost:{port}/"],
        )
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(
            result.stdout,
            b"HTTP/1.1 204 No Content\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n",
        )

    async def test_headGetsTheBodyToo(self) -> None:
        """
        The response is the same whatever the request: a C{HEAD} gets the
        status, the headers and the body, byte for byte what a C{GET}
        gets, and its request is on record.
        """
        port, caPath, records = await self.serve("--http-body", "the body\\n")
        responses = {}
        for method in ("GET", "HEAD"):
            request = f"{method} /health HTTP/1.1\r\nHost: localhost\r\n\r\n".encode()
            result = await inThread(
                fetchWithSSL, port, clientContext(caPath), sendFirst=request
            )
            responses[method] = result.data
        self.assertEqual(responses["HEAD"], responses["GET"])
        head, _, body = responses["HEAD"].partition(b"\r\n\r\n")
        self.assertTrue(head.startswith(b"HTTP/1.1 200 OK\r\n"), head)
        self.assertIn(b"\r\nContent-Length: 9", head)
        self.assertEqual(body, b"the body\n")
        deadline = time.monotonic() + 10
        while len(records) < 2:
            self.assertLess(time.monotonic(), deadline, "no record after 10 s")
            await deferLater(reactor, 0.01, lambda: None)
        self.assertEqual(
            sorted(r.received.split(b" ", 1)[0] for r in records), [b"GET", b"HEAD"]
        )

    async def test_pythonHTTPClient(self) -> None:
        """
        Python's C{http.client} reads the status, reason and headers, and
        its request line and headers are on record.
        """
        import http.client
        import ssl

        port, caPath, records = await self.serve(
            "--http-status", "503", "--http-header", "Retry-After: 120",
        )

        def fetch() -> tuple[int, str, str | None, bytes]:
            context = ssl.create_default_context(cafile=caPath)
            connection = http.client.HTTPSConnection("localhost", port, context=context)
            try:
                connection.request("POST", "/submit", body=b"a=1", headers={"X-Id": "7"})
                response = connection.getresponse()
                return (response.status, response.reason, response.getheader("Retry-After"),
                        response.read())
            finally:
                connection.close()

        self.assertEqual(await inThread(fetch), (503, "Service Unavailable", "120", b"test\n"))
        record = await self.recorded(records)
        self.assertTrue(record.received.startswith(b"POST /submit HTTP/1.1\r\n"))
        self.assertIn(b"\r\nX-Id: 7\r\n", record.received)
        self.assertTrue(record.received.endswith(b"\r\n\r\na=1"), record.received)


HTTPWireTestsOnMemoryBIO = onMemoryBIO(HTTPWireTests)
