"""
C{tlsreply check} (L{tlsreply.check}): a TLS client that reports a
server's handshake and checks verification, the reply and resumption.

The servers are tlsreply in this process, and, for the behaviours tlsreply
never has (closing without close_notify, never closing, not speaking TLS),
small servers on a thread; every connection is to 127.0.0.1.
"""

from __future__ import annotations

import io
import json
import os
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from twisted.internet.ssl import TLSVersion
from twisted.trial.unittest import SynchronousTestCase, TestCase

from tests.support import (
    LOOPBACK,
    inThread,
    makeCertificates,
    requireCommand,
    runCommand,
    startServer,
    temporaryDirectory,
)
from tests.test_plugin import CHECKOUT
from tlsreply import TLSPolicy
from tlsreply.check import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    CheckUsageError,
    parseArguments,
    parseTarget,
    runCheck,
)

if TYPE_CHECKING:
    # Imported by name only for typing: pytest would try to collect it.
    from tests.support import TestCertificates

RESUMPTION_PROBLEM = (
    "problem: no session resumption: the second connection did a full handshake"
)

#: OpenSSL's reasons for a chain whose root is not trusted: the first when
#: verification stops there, the second when it goes on to the end.
UNTRUSTED_REASON = (
    "(unable to get local issuer certificate|unable to verify the first certificate)"
)


def runCheckCapturing(argv: list[str]) -> tuple[int, str]:
    """
    Run the checker (blocking) and return its exit status and output.
    """
    out = io.StringIO()
    status = runCheck(argv, out)
    return status, out.getvalue()


async def check(*argv: str) -> tuple[int, str]:
    """
    Run the checker in a thread, so that a server in this process keeps
    serving meanwhile.
    """
    result: tuple[int, str] = await inThread(runCheckCapturing, list(argv))
    return result


def field(output: str, label: str) -> str:
    """
    The value on the C{label:} line of the human-readable output.
    """
    for line in output.splitlines():
        if line.startswith(label + ":"):
            return line[len(label) + 1 :].strip()
    raise AssertionError(f"no {label!r} line in:\n{output}")


class ThreadedServer:
    """
    A TCP server on 127.0.0.1 that hands each connection, in turn, to a
    blocking C{handle} on a thread of its own; stopped at test end.
    """

    def __init__(
        self, testCase: SynchronousTestCase, handle: Callable[[socket.socket], None]
    ) -> None:
        self.listener = socket.create_server((LOOPBACK, 0))
        self.listener.settimeout(0.1)
        self.port: int = self.listener.getsockname()[1]
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._serve, args=(handle,), daemon=True)
        self.thread.start()
        testCase.addCleanup(self.stop)

    def _serve(self, handle: Callable[[socket.socket], None]) -> None:
        while not self.stopping.is_set():
            try:
                connection, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            connection.settimeout(10)
            try:
                handle(connection)
            except OSError:
                pass
            finally:
                connection.close()

    def stop(self) -> None:
        """
        Stop accepting and wait for the thread.
        """
        self.stopping.set()
        self.thread.join(10)
        self.listener.close()


def pythonTLSServer(
    testCase: SynchronousTestCase, after: Callable[[ssl.SSLSocket], object]
) -> tuple[ThreadedServer, TestCertificates]:
    """
    A TLS server made with Python's C{ssl}, whose connections do C{after}
    once the handshake is done (and are then closed without close_notify).
    """
    certificates = makeCertificates(temporaryDirectory(testCase))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certificates.certificatePath, certificates.keyPath)

    def handle(connection: socket.socket) -> None:
        with context.wrap_socket(connection, server_side=True) as tls:
            after(tls)

    return ThreadedServer(testCase, handle), certificates


class GoodServerTests(TestCase):
    """
    Against tlsreply with the default policy, every check passes.
    """

    async def test_tls13ServerPasses(self) -> None:
        """
        With the test CA trusted, the checker reports TLS 1.3, a group, the
        certificate, the reply, a close_notify and a resumed second
        connection, and exits 0; the server saw one full and one resumed
        handshake.
        """
        server = await startServer(self)
        status, output = await check(
            f"{LOOPBACK}:{server.port}", "--ca", server.caPath
        )
        self.assertEqual(status, EXIT_OK, output)
        self.assertEqual(field(output, "TLS version"), "TLSv1.3")
        self.assertTrue(field(output, "cipher").startswith("TLS_"), output)
        self.assertNotIn(field(output, "group"), ("", "none reported"))
        self.assertEqual(field(output, "ALPN"), "none")
        self.assertIn("DNS:localhost", field(output, "SANs"))
        self.assertIn("IP:127.0.0.1", field(output, "SANs"))
        self.assertRegex(field(output, "SHA-256"), "^([0-9A-F]{2}:){31}[0-9A-F]{2}$")
        self.assertRegex(field(output, "notAfter"), r"^\d{4}-\d\d-\d\dT[\d:]{8}Z$")
        self.assertTrue(field(output, "verification").startswith("ok"), output)
        self.assertEqual(field(output, "reply"), r"b'test\n' (5 bytes)")
        self.assertEqual(field(output, "closed with"), "close_notify")
        self.assertRegex(field(output, "handshake time"), r"^\d+\.\d ms$")
        self.assertTrue(field(output, "resumption").startswith("resumed (TLSv1.3"))
        self.assertNotIn("problem:", output)
        self.assertTrue(output.endswith("session resumed\n"), output)
        await server.service.stopService()
        self.assertEqual(
            [e.get("resumed") for e in server.connectionEvents()], [False, True]
        )

    async def test_pythonDashM(self) -> None:
        """
        C{python -m tlsreply check}, a process of its own, checks a real
        server: its report ends with the verdict, it exits 0, and the
        server saw the two connections (the second resumed).
        """
        server = await startServer(self)
        result = await inThread(
            runCommand,
            [sys.executable, "-m", "tlsreply", "check", f"{LOOPBACK}:{server.port}",
             "--ca", server.caPath],
            cwd=temporaryDirectory(self),
            env={**os.environ, "PYTHONPATH": str(CHECKOUT)},
        )
        output = result.stdout.decode()
        self.assertEqual((result.returncode, result.stderr), (EXIT_OK, b""), output)
        self.assertEqual(field(output, "reply"), r"b'test\n' (5 bytes)")
        self.assertTrue(
            output.endswith("OK: certificate verified, reply received, session resumed\n"), output
        )
        await server.service.stopService()
        self.assertEqual(
            [e.get("resumed") for e in server.connectionEvents()], [False, True]
        )

    async def test_tls12OnlyServerResumes(self) -> None:
        """
        A server limited to TLS 1.2 is checked over TLS 1.2 and resumes
        too (with a session ticket).
        """
        server = await startServer(
            self, policy=TLSPolicy(maximumVersion=TLSVersion.TLSv1_2)
        )
        status, output = await check(
            f"{LOOPBACK}:{server.port}", "--ca", server.caPath
        )
        self.assertEqual(status, EXIT_OK, output)
        self.assertEqual(field(output, "TLS version"), "TLSv1.2")
        self.assertTrue(field(output, "cipher").startswith("ECDHE-"), output)
        self.assertTrue(field(output, "resumption").startswith("resumed (TLSv1.2"))

    async def test_tls12SessionIDResumes(self) -> None:
        """
        Without session tickets, a TLS 1.2 server resumes by session ID
        from its cache, and the checker sees that as resumption too.
        """
        server = await startServer(
            self,
            policy=TLSPolicy(maximumVersion=TLSVersion.TLSv1_2, sessionTickets=False),
        )
        status, output = await check(
            f"{LOOPBACK}:{server.port}", "--ca", server.caPath
        )
        self.assertEqual(status, EXIT_OK, output)
        self.assertTrue(field(output, "resumption").startswith("resumed (TLSv1.2"))

    async def test_serverNameIsSentAndChecked(self) -> None:
        """
        C{--servername} is sent as SNI, and the certificate is checked
        against that name instead of the address.
        """
        server = await startServer(self)
        status, output = await check(
            f"{LOOPBACK}:{server.port}", "--ca", server.caPath,
            "--servername", "localhost",
        )
        self.assertEqual(status, EXIT_OK, output)
        self.assertIn("SNI localhost", field(output, "target"))
        self.assertIn("name localhost", field(output, "verification"))
        await server.service.stopService()
        self.assertEqual(
            [e.get("serverName") for e in server.connectionEvents()],
            ["localhost", "localhost"],
        )

    async def test_alpn(self) -> None:
        """
        With C{--alpn}, the protocol the server chose is reported.
        """
        server = await startServer(
            self, policy=TLSPolicy(alpnProtocols=("h2", "http/1.1"))
        )
        status, output = await check(
            f"{LOOPBACK}:{server.port}", "--ca", server.caPath,
            "--alpn", "http/1.1,spdy/3",
        )
        self.assertEqual(status, EXIT_OK, output)
        self.assertEqual(field(output, "ALPN"), "http/1.1")

    async def test_json(self) -> None:
        """
        C{--json} prints one JSON object with the facts of both connections
        and the (empty) list of problems.
        """
        server = await startServer(self, reply=b"x" * 300)
        status, output = await check(
            f"{LOOPBACK}:{server.port}", "--ca", server.caPath, "--json"
        )
        self.assertEqual(status, EXIT_OK, output)
        facts: dict[str, Any] = json.loads(output)
        self.assertEqual(facts["ok"], True)
        self.assertEqual(facts["problems"], [])
        self.assertEqual(facts["target"], f"{LOOPBACK}:{server.port}")
        self.assertEqual(facts["address"], LOOPBACK)
        self.assertIsNone(facts["serverName"])
        self.assertEqual(facts["tlsVersion"], "TLSv1.3")
        self.assertIsInstance(facts["cipher"], str)
        self.assertIsInstance(facts["group"], str)
        self.assertIsNone(facts["alpnProtocol"])
        certificate = facts["certificate"]
        self.assertIn("IP:127.0.0.1", certificate["subjectAltNames"])
        self.assertEqual(len(certificate["sha256"]), 32 * 3 - 1)
        for key in ("subject", "issuer", "notAfter"):
            self.assertIsInstance(certificate[key], str)
        self.assertEqual(
            facts["verification"],
            {"ok": True, "trust": server.caPath, "chain": "ok", "name": "ok"},
        )
        self.assertEqual(
            facts["reply"], {"length": 300, "text": "x" * 300, "truncated": False}
        )
        self.assertEqual(facts["closing"], "close_notify")
        self.assertGreater(facts["handshakeSeconds"], 0)
        self.assertEqual(facts["resumption"]["resumed"], True)
        self.assertEqual(facts["resumption"]["tlsVersion"], "TLSv1.3")
        self.assertIsNone(facts["resumption"]["error"])


class ProblemTests(TestCase):
    """
    Each missing property is one line saying what was missing, and a
    non-zero exit status; the facts are still printed.
    """

    async def test_noResumption(self) -> None:
        """
        A server with neither a session cache nor tickets makes the second
        connection a full handshake: that is the one problem reported.
        """
        server = await startServer(
            self, policy=TLSPolicy(sessionCache=False, sessionTickets=False)
        )
        status, output = await check(
            f"{LOOPBACK}:{server.port}", "--ca", server.caPath
        )
        self.assertEqual(status, EXIT_FAILED, output)
        self.assertEqual(
            [line for line in output.splitlines() if line.startswith("problem:")],
            [RESUMPTION_PROBLEM],
        )
        self.assertTrue(field(output, "resumption").startswith("NOT resumed"))
        self.assertEqual(field(output, "reply"), r"b'test\n' (5 bytes)")

    async def test_untrustedCertificate(self) -> None:
        """
        Without C{--ca}, the test CA is not in the system store: the
        handshake still completes and is reported, and the problem names
        OpenSSL's reason and the trust used.
        """
        server = await startServer(self)
        status, output = await check(f"{LOOPBACK}:{server.port}")
        self.assertEqual(status, EXIT_FAILED, output)
        problems = [line for line in output.splitlines() if line.startswith("problem:")]
        self.assertEqual(len(problems), 1, output)
        # OpenSSL's final result, as openssl s_client reports it.
        self.assertRegex(
            problems[0],
            f"^problem: certificate verification failed: {UNTRUSTED_REASON} "
            r"\(trusting the system store\)$",
        )
        self.assertTrue(field(output, "verification").startswith("FAILED: "))
        self.assertEqual(field(output, "TLS version"), "TLSv1.3")
        self.assertTrue(field(output, "resumption").startswith("resumed"))

    async def test_untrustedCertificateJSON(self) -> None:
        """
        The same failure in JSON: C{ok} is false and the problem is listed.
        """
        server = await startServer(self)
        status, output = await check(f"{LOOPBACK}:{server.port}", "--json")
        self.assertEqual(status, EXIT_FAILED, output)
        facts = json.loads(output)
        self.assertEqual(facts["ok"], False)
        self.assertEqual(facts["verification"]["ok"], False)
        self.assertRegex(facts["verification"]["chain"], f"^{UNTRUSTED_REASON}$")
        self.assertEqual(facts["verification"]["name"], "ok")
        self.assertEqual(len(facts["problems"]), 1)

    async def test_wrongServerName(self) -> None:
        """
        A trusted certificate that does not name the server fails
        verification, naming the name.
        """
        server = await startServer(self)
        status, output = await check(
            f"{LOOPBACK}:{server.port}", "--ca", server.caPath,
            "--servername", "wrong.example",
        )
        self.assertEqual(status, EXIT_FAILED, output)
        self.assertIn(
            "problem: certificate verification failed: the certificate is not "
            "valid for the name 'wrong.example'",
            output.splitlines(),
        )

    async def test_closeWithoutCloseNotify(self) -> None:
        """
        A server that closes TCP without close_notify is reported as such;
        the reply still counts, and the session stays resumable (the
        checker never lets the bare close spoil it).
        """
        server, certificates = pythonTLSServer(self, lambda tls: tls.sendall(b"bye\n"))
        status, output = await check(
            f"{LOOPBACK}:{server.port}", "--ca", str(certificates.caPath)
        )
        self.assertEqual(field(output, "closed with"), "a TCP close without close_notify")
        self.assertEqual(field(output, "reply"), r"b'bye\n' (4 bytes)")
        self.assertTrue(field(output, "resumption").startswith("resumed"), output)
        self.assertEqual(status, EXIT_OK, output)

    async def test_noReplyAndNoClose(self) -> None:
        """
        A server that completes the handshake and then waits (as an HTTPS
        server waits for a request) is read for C{--timeout} seconds and
        reported as sending no reply, with the options that send a request.
        """
        server, certificates = pythonTLSServer(self, lambda tls: tls.recv(100))
        status, output = await check(
            f"{LOOPBACK}:{server.port}", "--ca", str(certificates.caPath),
            "--timeout", "0.3",
        )
        self.assertEqual(status, EXIT_FAILED, output)
        self.assertEqual(
            field(output, "closed with"),
            "neither close_notify nor a TCP close within 0.3s",
        )
        self.assertIn(
            "problem: no reply: the server sent no data within 0.3s; it may be "
            "waiting for a request: try --send TEXT or --http",
            output.splitlines(),
        )


class RequestTests(TestCase):
    """
    Against servers that wait for a request: C{--send} and C{--http}.
    """

    async def test_send(self) -> None:
        """
        C{--send} sends its text, escapes decoded, after each handshake; an
        echo server's reply is that text.
        """

        def echo(tls: ssl.SSLSocket) -> None:
            tls.sendall(tls.recv(100))
            tls.unwrap()

        server, certificates = pythonTLSServer(self, echo)
        status, output = await check(
            f"{LOOPBACK}:{server.port}", "--ca", str(certificates.caPath),
            "--send", "PING\\r\\n", "--json",
        )
        self.assertEqual(json.loads(output)["reply"]["text"], "PING\r\n", output)

    async def test_http(self) -> None:
        """
        C{--http} sends C{GET /} with the host name, as an HTTPS server
        expects before it answers.
        """
        requests: list[bytes] = []

        def web(tls: ssl.SSLSocket) -> None:
            request = b""
            while b"\r\n\r\n" not in request:
                request += tls.recv(1000)
            requests.append(request)
            tls.sendall(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n")
            tls.unwrap()

        server, certificates = pythonTLSServer(self, web)
        status, output = await check(
            f"localhost:{server.port}", "--ca", str(certificates.caPath), "--http"
        )
        self.assertIn("HTTP/1.1 204", field(output, "reply"))
        self.assertTrue(requests[0].startswith(b"GET / HTTP/1.1\r\n"), requests)
        self.assertIn(f"Host: localhost:{server.port}\r\n".encode(), requests[0])

    async def test_serverWaitingForARequest(self) -> None:
        """
        Against a server that waits for a request (C{openssl s_server
        -www}), the problem line says to try C{--send} or C{--http}, and
        the second connection, made for resumption, does not wait the
        whole timeout again for a reply the first one never got; with
        C{--http}, as advised, the check passes.
        """
        openssl = requireCommand(self, "openssl")
        certificates = makeCertificates(temporaryDirectory(self))
        server = subprocess.Popen(
            [openssl, "s_server", "-www", "-accept", f"{LOOPBACK}:0",
             "-cert", str(certificates.certificatePath), "-key", str(certificates.keyPath)],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )
        assert server.stdout is not None
        self.addCleanup(server.stdout.close)
        self.addCleanup(server.wait)
        self.addCleanup(server.kill)
        port = None
        for line in iter(server.stdout.readline, b""):
            if line.startswith(b"ACCEPT"):
                port = int(line.rsplit(b":", 1)[1])
                break
        assert port is not None, "s_server did not start"
        timeout = 3.0
        started = time.monotonic()
        status, output = await check(
            f"{LOOPBACK}:{port}", "--ca", str(certificates.caPath), "--timeout", f"{timeout:g}"
        )
        elapsed = time.monotonic() - started
        self.assertEqual(status, EXIT_FAILED, output)
        self.assertIn(
            "problem: no reply: the server sent no data within 3s; it may be waiting "
            "for a request: try --send TEXT or --http",
            output.splitlines(),
        )
        self.assertTrue(field(output, "resumption").startswith("resumed"), output)
        # One timeout, not two (it was 6 s): the margin is for a busy machine.
        self.assertLess(elapsed, 2 * timeout - 1, output)
        status, output = await check(
            f"{LOOPBACK}:{port}", "--ca", str(certificates.caPath), "--http"
        )
        self.assertEqual(status, EXIT_OK, output)
        self.assertTrue(field(output, "reply").startswith("b'HTTP/1.0 200 ok"), output)

    async def test_binaryReplyInJSON(self) -> None:
        """
        A reply that is not UTF-8 is base64 in the JSON output.
        """

        def binary(tls: ssl.SSLSocket) -> None:
            tls.sendall(b"\xff\xfe\x00")
            tls.unwrap()

        server, certificates = pythonTLSServer(self, binary)
        status, output = await check(
            f"{LOOPBACK}:{server.port}", "--ca", str(certificates.caPath), "--json"
        )
        self.assertEqual(
            json.loads(output)["reply"], {"length": 3, "base64": "//4A", "truncated": False}
        )


class UnreachableTests(TestCase):
    """
    When no handshake completes, the output is one line and the exit
    status non-zero, never a traceback.
    """

    def assertOneLine(self, status: int, output: str, expected: str) -> None:
        """
        The output is exactly C{expected}, on one line, and the status 1.
        """
        self.assertEqual((status, output), (EXIT_FAILED, f"tlsreply check: {expected}\n"))

    async def test_refused(self) -> None:
        """
        A port where nothing listens (held, so nothing else can take it).
        """
        with socket.socket() as held:
            held.bind((LOOPBACK, 0))
            port = held.getsockname()[1]
            status, output = await check(f"{LOOPBACK}:{port}")
        self.assertOneLine(status, output, f"connection refused by {LOOPBACK}:{port}")

    async def test_refusedJSON(self) -> None:
        """
        With C{--json}, the one line is a JSON object naming the error.
        """
        with socket.socket() as held:
            held.bind((LOOPBACK, 0))
            port = held.getsockname()[1]
            status, output = await check(f"{LOOPBACK}:{port}", "--json")
        self.assertEqual(status, EXIT_FAILED)
        self.assertEqual(output.count("\n"), 1)
        self.assertEqual(
            json.loads(output),
            {"ok": False, "target": f"{LOOPBACK}:{port}",
             "error": f"connection refused by {LOOPBACK}:{port}"},
        )

    async def test_handshakeTimeout(self) -> None:
        """
        A listener that accepts TCP (in the kernel) but never answers the
        ClientHello times out after C{--timeout} seconds.
        """
        with socket.create_server((LOOPBACK, 0)) as silent:
            port = silent.getsockname()[1]
            status, output = await check(f"{LOOPBACK}:{port}", "--timeout", "0.3")
        self.assertOneLine(
            status, output,
            f"timed out after 0.3s waiting for the TLS handshake with {LOOPBACK}:{port}",
        )

    async def test_notTLS(self) -> None:
        """
        A server that answers with something other than TLS fails the
        handshake with OpenSSL's reason.
        """

        def sshBanner(connection: socket.socket) -> None:
            connection.sendall(b"SSH-2.0-OpenSSH_9.6\r\n")
            connection.recv(1000)

        server = ThreadedServer(self, sshBanner)
        status, output = await check(f"{LOOPBACK}:{server.port}", "--timeout", "5")
        self.assertEqual(status, EXIT_FAILED, output)
        self.assertEqual(output.count("\n"), 1, output)
        self.assertTrue(
            output.startswith(
                f"tlsreply check: TLS handshake with {LOOPBACK}:{server.port} failed: "
            ),
            output,
        )

    async def test_closedDuringHandshake(self) -> None:
        """
        A server that closes at once is reported in one line.
        """
        server = ThreadedServer(self, lambda connection: None)
        status, output = await check(f"{LOOPBACK}:{server.port}")
        self.assertEqual(status, EXIT_FAILED, output)
        self.assertEqual(output.count("\n"), 1, output)
        self.assertIn(f"{LOOPBACK}:{server.port}", output)
        self.assertNotIn("Traceback", output)


class ArgumentTests(SynchronousTestCase):
    """
    The command line: targets, options, and one line for every mistake.
    """

    def test_targets(self) -> None:
        """
        HOST is a name, an IPv4 address, or an IPv6 address in brackets.
        """
        name = parseTarget("example.com:443")
        self.assertEqual((name.host, name.port, name.address), ("example.com", 443, None))
        ipv4 = parseTarget("192.0.2.1:8443")
        self.assertEqual((ipv4.host, str(ipv4.address)), ("192.0.2.1", "192.0.2.1"))
        ipv6 = parseTarget("[2001:db8::1]:443")
        self.assertEqual((ipv6.host, str(ipv6.address)), ("2001:db8::1", "2001:db8::1"))
        self.assertEqual(str(ipv6), "[2001:db8::1]:443")
        self.assertEqual(parseTarget("bücher.example:443").host, "bücher.example")

    def test_defaultPort(self) -> None:
        """
        Without a port, a target is on 443, as for any HTTPS client.
        """
        self.assertEqual(parseTarget("example.com").port, 443)
        self.assertEqual(parseTarget("192.0.2.1").port, 443)
        self.assertEqual(str(parseTarget("[::1]")), "[::1]:443")

    def test_defaultServerName(self) -> None:
        """
        A name target is also the server name; an address target sends no
        SNI unless C{--servername} says so.
        """
        options = parseArguments(["example.com:443"])
        assert options is not None
        self.assertEqual(options.serverName, "example.com")
        options = parseArguments(["[::1]:443"])
        assert options is not None
        self.assertIsNone(options.serverName)
        options = parseArguments(["127.0.0.1:443", "--servername", "localhost"])
        assert options is not None
        self.assertEqual(options.serverName, "localhost")
        self.assertEqual(options.timeout, 10.0)

    def test_badTargets(self) -> None:
        """
        Each malformed target is refused with a message naming it.
        """
        for text, message in [
            ("localhost:", "bad port ''"),
            (":443", "no host in ':443'"),
            ("localhost:https", "bad port 'https'"),
            ("localhost:0", "bad port '0'"),
            ("localhost:65536", "bad port '65536'"),
            ("::1:443", "put an IPv6 address in brackets"),
            ("[::1]443", "expected [IPv6]:PORT"),
            ("[example.com]:443", "not an IPv6 address in brackets"),
            ("exa mple.com:443", "not a host name: 'exa mple.com'"),
        ]:
            with self.assertRaises(CheckUsageError, msg=text) as caught:
                parseTarget(text)
            self.assertIn(message, str(caught.exception))

    def test_badArgumentsAreOneLine(self) -> None:
        """
        Every bad command line is one line and exit status 2, before any
        connection is attempted.
        """
        directory = temporaryDirectory(self)
        notPEM = directory / "not.pem"
        notPEM.write_text("hello\n")
        for argv, message in [
            ([], "which server? (HOST[:PORT])"),
            (["127.0.0.1:1", "--timeout", "0"], "--timeout: expected a positive number"),
            (["127.0.0.1:1", "--timeout", "soon"], "--timeout: expected a positive number"),
            (["127.0.0.1:1", "--bogus"], "option --bogus not recognized"),
            (["127.0.0.1:1", "another:2"], "Wrong number of arguments"),
            (["127.0.0.1:1", "--servername", "127.0.0.1"], "--servername must be"),
            (["127.0.0.1:1", "--alpn", " , "], "--alpn: needs at least one protocol name"),
            (["127.0.0.1:1", "--send", "x", "--http"], "--send or --http, not both"),
            (["127.0.0.1:1", "--send", "bad\\q"], "--send: bad escape"),
            (["127.0.0.1:1", "--ca", str(directory / "missing.pem")], "--ca: no such file"),
            (["127.0.0.1:1", "--ca", str(notPEM)], "--ca: no PEM certificate"),
        ]:
            status, output = runCheckCapturing(argv)
            self.assertEqual(status, EXIT_USAGE, (argv, output))
            self.assertEqual(output.count("\n"), 1, (argv, output))
            self.assertTrue(output.startswith("tlsreply check: "), output)
            self.assertIn(message, output)

    def test_help(self) -> None:
        """
        C{--help} prints the usage text and exits 0.
        """
        status, output = runCheckCapturing(["--help"])
        self.assertEqual(status, EXIT_OK)
        self.assertTrue(output.startswith("Usage: tlsreply check HOST[:PORT]"), output)
        for option in ("--ca=", "--servername=", "--alpn=", "--send=", "--http", "--json",
                       "--timeout="):
            self.assertIn(option, output)

    def test_optionsOnEitherSide(self) -> None:
        """
        Options may come before or after the target.
        """
        before = parseArguments(["--json", "--timeout", "3", "example.com"])
        after = parseArguments(["example.com", "--json", "--timeout=3"])
        self.assertEqual(before, after)
        self.assertEqual((after.json, after.timeout), (True, 3.0))
