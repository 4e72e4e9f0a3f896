"""
The hostile scenarios (L{tlsreply.scenarios.hostile}) on the wire:
each served by the trial helper (L{startTLSReplyServer}) on 127.0.0.1,
each met by a real client (Python's C{ssl}, C{openssl s_client}, a raw
reader of the TLS records), each doing what it says, and each connection's
record saying what the server did.
"""

from __future__ import annotations

import contextlib
import re
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import fields
from typing import Any

from twisted.internet import reactor
from twisted.trial.unittest import SynchronousTestCase, TestCase

from tests.support import inThread, requireCommand, runCommand, temporaryDirectory
from tlsreply.command.tap import Options
from tlsreply.config import ServerConfig
from tlsreply.connection.records import ConnectionRecord
from tlsreply.protocol import ReplyFactory
from tlsreply.scenarios._tlsrecords import (
    APPLICATION_DATA,
    ClientHellos,
    RecordReader,
    decryptRecord,
    encryptedAlert,
)
from tlsreply.scenarios.ca import TestCA
from tlsreply.scenarios.misbehaving import (
    HostileReplyFactory,
    HostileServerFactory,
    HostileSettings,
)
from tlsreply.scenarios.servers import SCENARIOS, buildScenario, scenarioReplyFactory
from tlsreply.scenarios.timings import TIMINGS
from tlsreply.testing import startTLSReplyServer
from tlsreply.testing.server import TestServer
from tlsreply.tls.policy import TLSPolicy
from tlsreply.transport.listening import servesOnSocket
from tlsreply.transport.tlsmemory import wrapWithTLS

#: The hostile scenarios, in the catalogue's order.
HOSTILE = (
    "truncated-reply", "reset-after-reply", "stall-handshake", "stall-after-handshake",
    "slow-reply", "one-byte-records", "hello-retry-request", "renegotiation-request",
    "alert-instead-of-reply", "close-during-handshake",
)

REPLY = b"test\n"


def errorText(error: BaseException) -> str:
    """
    What Python's C{ssl} reports, without its code's place and its
    reason's code: C{"tlsv1 alert internal error"} from C{"[SSL:
    TLSV1_ALERT_INTERNAL_ERROR] tlsv1 alert internal error (_ssl.c:2580)"}.
    """
    text = re.sub(r" \(_ssl\.c:\d+\)$", "", str(error))
    return re.sub(r"^\[SSL: \w+\] ", "", text)


def readAll(
    server: TestServer,
    raggedEOFs: bool = False,
    timeout: float = 10.0,
    configure: Callable[[ssl.SSLContext], None] | None = None,
    readTimeout: float | None = None,
) -> bytes:
    """
    Python's C{ssl} as a client author uses it: connect, read to the end.

    @param raggedEOFs: suppress a missing close_notify (Python's default).
    @param timeout: for connecting and the handshake (and reading, unless
        C{readTimeout}).
    @param readTimeout: for each read once the handshake is done.
    """
    context = server.sslContext()
    if configure is not None:
        configure(context)
    with socket.create_connection(server.address, timeout=timeout) as raw:
        with context.wrap_socket(
            raw, server_hostname="localhost", suppress_ragged_eofs=raggedEOFs
        ) as tls:
            if readTimeout is not None:
                tls.settimeout(readTimeout)
            data = b""
            while chunk := tls.recv(4096):
                data += chunk
            return data


class RawTLSClient:
    """
    A Python C{ssl} client over memory BIOs on a plain socket, that keeps
    every byte the server sent: to count the server's records, and to see
    how TCP ended below TLS.
    """

    def __init__(self, server: TestServer, maximumVersion: ssl.TLSVersion | None = None) -> None:
        context = server.sslContext()
        if maximumVersion is not None:
            context.maximum_version = maximumVersion
        self.raw = socket.create_connection(server.address, timeout=10)
        self.incoming, self.outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.tls = context.wrap_bio(self.incoming, self.outgoing, server_hostname="localhost")
        self.received = bytearray()
        while True:
            try:
                self.tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                self._exchange()
        self.raw.sendall(self.outgoing.read())

    def _exchange(self) -> bytes:
        self.raw.sendall(self.outgoing.read())
        data = self.raw.recv(65536)
        self.received += data
        if data:
            self.incoming.write(data)
        else:
            self.incoming.write_eof()
        return data

    def readUntilClosed(self) -> tuple[bytes, BaseException | None]:
        """
        Read and decrypt until TCP ends, answering the server's close_notify
        with the client's: the reply, and the socket error that ended TCP
        (L{None} for a FIN).
        """
        reply = b""
        closing = False
        while True:
            while not closing:
                try:
                    chunk = self.tls.read(65536)
                except ssl.SSLWantReadError:
                    break
                if not chunk:  # the server's close_notify
                    closing = True
                    with contextlib.suppress(ssl.SSLError):
                        self.tls.unwrap()
                reply += chunk
            try:
                if not self._exchange():
                    return reply, None
            except OSError as e:
                return reply, e

    def recordTypes(self) -> list[int]:
        """
        The types of all the records the server sent.
        """
        return [record.type for record in RecordReader().feed(bytes(self.received))]

    def close(self) -> None:
        self.raw.close()


class HostileTestCase(TestCase):
    """
    Serves a hostile scenario with the trial helper.
    """

    def serve(self, scenario: str, **settings: Any) -> TestServer:
        return startTLSReplyServer(self, scenario=scenario, reactor=reactor, **settings)

    async def recorded(self, server: TestServer, count: int = 1) -> list[ConnectionRecord]:
        return await server.whenRecorded(count)


class HostileScenarioOutcomeTests(HostileTestCase):
    """
    Each hostile scenario, met by Python's C{ssl} (its correct client, and
    its default where the two differ) and by other real clients.
    """

    async def test_truncatedReply(self) -> None:
        """
        The reply arrives, then TCP ends without close_notify: the correct
        client (ragged EOFs not suppressed) gets the promised error after
        the whole reply; Python's default takes the reply as complete, as
        its stack outcome says; the record says the server truncated.
        """
        server = self.serve("truncated-reply")
        scenario = SCENARIOS["truncated-reply"]
        with self.assertRaises(ssl.SSLEOFError) as caught:
            await inThread(readAll, server)
        self.assertEqual(errorText(caught.exception), scenario.expectedOutcome.message)
        self.assertEqual(await inThread(readAll, server, True), REPLY)
        self.assertTrue(scenario.expectedOutcomeFor("python-ssl").accepted)
        # TLS 1.2, where an alert is a record of its own type (21).
        client = await inThread(RawTLSClient, server, ssl.TLSVersion.TLSv1_2)
        reply, error = await inThread(client.readUntilClosed)
        client.close()
        self.assertEqual((reply, error), (REPLY, None))
        self.assertNotIn(21, client.recordTypes())  # no close_notify
        for record in await self.recorded(server, 3):
            self.assertTrue(
                record.closed.startswith(
                    "truncated: the reply, then TCP FIN without close_notify; "
                ),
                record.closed,
            )

    async def test_resetAfterReply(self) -> None:
        """
        The reply arrives, then a TCP reset: a raw reader decrypts the whole
        reply, then its socket raises C{ConnectionResetError}; Python's
        C{ssl} words the reset as a ragged EOF (the promised message), and
        hides it by default.
        """
        server = self.serve("reset-after-reply")
        client = await inThread(RawTLSClient, server)
        reply, error = await inThread(client.readUntilClosed)
        client.close()
        self.assertEqual(reply, REPLY)
        self.assertIsInstance(error, ConnectionResetError)
        with self.assertRaises(ssl.SSLEOFError) as caught:
            await inThread(readAll, server)
        self.assertEqual(
            errorText(caught.exception), SCENARIOS["reset-after-reply"].expectedOutcome.message
        )
        self.assertEqual(await inThread(readAll, server, True), REPLY)
        for record in await self.recorded(server, 3):
            self.assertTrue(
                record.closed.startswith("reset: the reply, then a TCP reset; "), record.closed
            )

    async def test_stallHandshake(self) -> None:
        """
        The ClientHello is never answered: the client's own handshake
        timeout ends it, with the promised message, and the record (which
        has the ClientHello) says the server stalled until the client left.
        With a short stall limit, the server closes first.
        """
        server = self.serve("stall-handshake")
        with self.assertRaises(TimeoutError) as caught:
            await inThread(readAll, server, timeout=0.5)
        self.assertIn(SCENARIOS["stall-handshake"].expectedOutcome.message, str(caught.exception))
        [record] = await self.recorded(server)
        self.assertEqual(
            record.closed,
            "stalled: the ClientHello read and never answered; peer closed the connection",
        )
        self.assertEqual(record.outcome, "handshake-failed")
        self.assertEqual(record.requestedServerName, "localhost")
        limited = self.serve("stall-handshake", stallLimit=0.2)
        with self.assertRaises(ssl.SSLError):
            await inThread(readAll, limited, timeout=10)
        [record] = await self.recorded(limited)
        self.assertIn("closed by the server at the 0.2s stall limit", record.closed)

    async def test_stallAfterHandshake(self) -> None:
        """
        The handshake completes and nothing follows: the client's read
        timeout ends it; with a short stall limit the server closes TCP,
        without close_notify.
        """
        server = self.serve("stall-after-handshake")
        with self.assertRaises(TimeoutError) as caught:
            await inThread(readAll, server, readTimeout=0.5)
        self.assertEqual(
            str(caught.exception), SCENARIOS["stall-after-handshake"].expectedOutcome.message
        )
        [record] = await self.recorded(server)
        self.assertTrue(record.closed.startswith("stalled: the handshake done, then nothing; "))
        self.assertEqual(record.tlsVersion, "TLSv1.3")
        limited = self.serve("stall-after-handshake", stallLimit=0.2)
        with self.assertRaises(ssl.SSLEOFError):
            await inThread(readAll, limited)
        [record] = await self.recorded(limited)
        self.assertIn("closed by the server at the 0.2s stall limit", record.closed)

    async def test_slowReply(self) -> None:
        """
        The reply comes one byte a record, C{byteDelay} apart: the correct
        client receives all of it, no sooner than the delays allow.
        """
        delay = 0.05
        server = self.serve("slow-reply", byteDelay=delay)
        client = await inThread(RawTLSClient, server, ssl.TLSVersion.TLSv1_2)
        started = time.monotonic()
        reply, error = await inThread(client.readUntilClosed)
        elapsed = time.monotonic() - started
        client.close()
        self.assertEqual((reply, error), (REPLY, None))
        self.assertEqual(client.recordTypes().count(APPLICATION_DATA), len(REPLY))
        self.assertGreaterEqual(elapsed, (len(REPLY) - 1) * delay)
        self.assertEqual(await inThread(readAll, server), REPLY)
        [record, _] = await self.recorded(server, 2)
        self.assertTrue(
            record.closed.startswith("slow: the reply one byte a record, 0.05s apart; "),
            record.closed,
        )

    async def test_oneByteRecords(self) -> None:
        """
        The reply in one-byte records: a raw reader (TLS 1.2, where every
        application record after the handshake is the reply's) counts one
        record for each byte, and the correct client reads it whole.
        """
        reply = b"0123456789" * 3
        server = self.serve("one-byte-records", reply=reply)
        client = await inThread(RawTLSClient, server, ssl.TLSVersion.TLSv1_2)
        received, error = await inThread(client.readUntilClosed)
        client.close()
        self.assertEqual((received, error), (reply, None))
        self.assertEqual(client.recordTypes().count(APPLICATION_DATA), len(reply))
        self.assertEqual(await inThread(readAll, server), reply)
        [record, _] = await self.recorded(server, 2)
        self.assertTrue(record.closed.startswith("one-byte records: the reply in 30 records; "))

    async def test_helloRetryRequest(self) -> None:
        """
        The server's only group is P-384, for which no client sends a key
        share: C{openssl s_client -msg} sends a second ClientHello after the
        server's HelloRetryRequest, is served, and the records say so, with
        the group and the first ClientHello's key shares.
        """
        openssl = requireCommand(self, "openssl")
        server = self.serve("hello-retry-request")
        self.assertEqual(await inThread(readAll, server), REPLY)
        result = await inThread(
            runCommand,
            [openssl, "s_client", "-connect", f"127.0.0.1:{server.port}", "-servername",
             "localhost", "-CAfile", str(server.caCertificatePath), "-msg", "-quiet"],
        )
        output = (result.stdout + result.stderr).decode("utf-8", "replace")
        sent = [line for line in output.splitlines() if line.startswith(">>>")]
        self.assertEqual(len([line for line in sent if line.endswith("ClientHello")]), 2, output)
        self.assertIn(REPLY.decode(), output)
        for record in await self.recorded(server, 2):
            self.assertTrue(
                record.closed.startswith(
                    "hello retry: 2 ClientHellos, the second after a HelloRetryRequest; "
                ),
                record.closed,
            )
            self.assertEqual(record.group, "secp384r1")
            self.assertNotIn("secp384r1", record.offeredKeyShares)

    async def test_renegotiationRequest(self) -> None:
        """
        TLS 1.2, a HelloRequest after the handshake: Python's C{ssl}
        renegotiates and reads the reply; one that refuses renegotiation is
        answered with OpenSSL's handshake_failure at once (it does not
        hang); C{openssl s_client -msg} shows the HelloRequest.
        """
        openssl = requireCommand(self, "openssl")
        server = self.serve("renegotiation-request")
        self.assertEqual(await inThread(readAll, server), REPLY)

        def refuse(context: ssl.SSLContext) -> None:
            context.options |= ssl.OP_NO_RENEGOTIATION

        started = time.monotonic()
        with self.assertRaises(ssl.SSLError) as caught:
            await inThread(readAll, server, configure=refuse)
        self.assertLess(time.monotonic() - started, 5)
        self.assertEqual(errorText(caught.exception), "sslv3 alert handshake failure")
        result = await inThread(
            runCommand,
            [openssl, "s_client", "-connect", f"127.0.0.1:{server.port}", "-servername",
             "localhost", "-CAfile", str(server.caCertificatePath), "-msg", "-quiet"],
        )
        output = (result.stdout + result.stderr).decode("utf-8", "replace")
        self.assertIn("HelloRequest", output)
        first, refused, shown = await self.recorded(server, 3)
        renegotiated = "renegotiation: a HelloRequest, then the reply; the client renegotiated (1); "
        self.assertTrue(first.closed.startswith(renegotiated), first.closed)
        self.assertEqual(
            refused.closed, "renegotiation: a HelloRequest, then the reply; no renegotiation"
        )
        self.assertTrue(shown.closed.startswith(renegotiated), shown.closed)
        self.assertEqual(first.tlsVersion, "TLSv1.2")

    async def test_alertInsteadOfReply(self) -> None:
        """
        TLS 1.3, then a fatal internal_error alert where the reply belongs:
        the client reports the promised alert, and C{openssl s_client} its
        own; the record says the server sent it.
        """
        openssl = requireCommand(self, "openssl")
        server = self.serve("alert-instead-of-reply")
        with self.assertRaises(ssl.SSLError) as caught:
            await inThread(readAll, server)
        self.assertEqual(
            errorText(caught.exception), SCENARIOS["alert-instead-of-reply"].expectedOutcome.message
        )
        result = await inThread(
            runCommand,
            [openssl, "s_client", "-connect", f"127.0.0.1:{server.port}", "-servername",
             "localhost", "-CAfile", str(server.caCertificatePath), "-quiet"],
        )
        self.assertIn(b"tlsv1 alert internal error", result.stdout + result.stderr)
        for record in await self.recorded(server, 2):
            self.assertTrue(
                record.closed.startswith(
                    "alert: a fatal internal_error alert instead of the reply; "
                ),
                record.closed,
            )

    async def test_closeDuringHandshake(self) -> None:
        """
        TCP closes right after the ClientHello: the client's handshake
        fails with the promised error, and the record keeps the ClientHello.
        """
        server = self.serve("close-during-handshake")
        with self.assertRaises(ssl.SSLEOFError) as caught:
            await inThread(readAll, server)
        self.assertEqual(
            errorText(caught.exception), SCENARIOS["close-during-handshake"].expectedOutcome.message
        )
        [record] = await self.recorded(server)
        self.assertEqual(
            record.closed,
            "closed: TCP closed right after the ClientHello, unanswered; peer closed the connection",
        )
        self.assertEqual(record.requestedServerName, "localhost")
        self.assertIsNone(record.tlsVersion)


class HostileServerTests(HostileTestCase):
    """
    What every hostile server shares: its path, its bounds, its settings.
    """

    def test_servedOnMemoryBIOs(self) -> None:
        """
        A hostile scenario's server is never served on tlsreply's own
        socket path (which runs the plain reply only); tlsreply's own is.
        """
        contexts = buildScenario("valid", TestCA(), temporaryDirectory(self)).serverContexts()
        hostile = wrapWithTLS(contexts, HostileReplyFactory("truncated-reply", REPLY, reactor))
        self.assertIsInstance(hostile, HostileServerFactory)
        self.assertFalse(servesOnSocket(reactor, hostile))
        self.assertTrue(servesOnSocket(reactor, wrapWithTLS(contexts, ReplyFactory(REPLY, reactor))))

    async def test_stopAbortsAStall(self) -> None:
        """
        Stopping the server ends a stalled connection at its grace, and
        the record says so.
        """
        server = self.serve("stall-handshake")
        raw = socket.create_connection(server.address)
        self.addCleanup(raw.close)
        context = server.sslContext()
        tls = context.wrap_bio(ssl.MemoryBIO(), (out := ssl.MemoryBIO()), server_hostname="localhost")
        with self.assertRaises(ssl.SSLWantReadError):
            tls.do_handshake()
        raw.sendall(out.read())
        while not server.service.connections.inProgress:
            await inThread(time.sleep, 0.01)
        await server.stop()
        [record] = server.records
        self.assertEqual(
            record.closed,
            "stalled: the ClientHello read and never answered; aborted at shutdown after the 2s grace",
        )

    async def test_renegotiationRefusedByOpenSSL(self) -> None:
        """
        Where OpenSSL will not ask to renegotiate (renegotiation off in the
        policy), the server says so in the record and replies, rather than
        raising into the TLS layer.
        """
        server = self.serve("renegotiation-request", insecureServerRenegotiation=False)
        self.assertEqual(await inThread(readAll, server), REPLY)
        [record] = await self.recorded(server)
        self.assertTrue(
            record.closed.startswith(
                "renegotiation: OpenSSL would not ask (no renegotiation), so the reply; "
            ),
            record.closed,
        )

    def test_settings(self) -> None:
        """
        Hostile settings are seconds, a stall limit above zero; they are
        refused for a scenario that does not misbehave, and by the trial
        helper with its other unknown settings' message.
        """
        self.assertEqual(HostileSettings(), HostileSettings(60.0, 0.2))
        for bad in ({"stallLimit": 0}, {"byteDelay": -1}, {"stallLimit": True},
                    {"stallLimit": float("inf")}, {"byteDelay": float("nan")}):
            with self.assertRaises(ValueError):
                HostileSettings(**bad)
        from tlsreply.errors import ConfigurationError

        with self.assertRaises(ConfigurationError):
            scenarioReplyFactory("valid", REPLY, reactor, hostile=HostileSettings())
        self.assertIs(type(scenarioReplyFactory("valid", REPLY, reactor)), ReplyFactory)
        factory = scenarioReplyFactory("slow-reply", REPLY, reactor, hostile=HostileSettings(9, 1))
        assert isinstance(factory, HostileReplyFactory)
        self.assertEqual((factory.misbehaviour, factory.settings), ("slow-reply", HostileSettings(9, 1)))

    def test_renegotiationPolicy(self) -> None:
        """
        Only the renegotiation scenario lets the server renegotiate, and
        its policy says so and warns.
        """
        policy = TLSPolicy(insecureServerRenegotiation=True)
        self.assertEqual(policy.describe()["renegotiation"], "server-initiated")
        self.assertEqual(TLSPolicy().describe()["renegotiation"], "off")
        self.assertIn("renegotiate", " ".join(policy.warnings()))
        self.assertEqual(TLSPolicy().warnings(), [])
        ca, directory = TestCA(), temporaryDirectory(self)
        self.assertEqual(
            [
                name
                for name in HOSTILE
                if buildScenario(name, ca, directory).policy.insecureServerRenegotiation
            ],
            ["renegotiation-request"],
        )


class RecordTests(SynchronousTestCase):
    """
    The TLS records the hostile servers read and write below OpenSSL.
    """

    def test_recordReader(self) -> None:
        """
        Records come whole, whatever the reads' boundaries.
        """
        stream = b"\x16\x03\x01\x00\x02ab" + b"\x17\x03\x03\x00\x01c"
        reader = RecordReader()
        found = [record for byte in stream for record in reader.feed(bytes([byte]))]
        self.assertEqual([(r.type, r.payload) for r in found], [(22, b"ab"), (23, b"c")])

    def test_clientHellos(self) -> None:
        """
        ClientHellos are counted across records, until the first encrypted
        record; other handshake messages are not.
        """
        hello = b"\x01\x00\x00\x03xyz"
        hellos = ClientHellos()
        hellos.feed(b"\x16\x03\x01\x00\x04" + hello[:4] + b"\x16\x03\x01\x00\x03" + hello[4:])
        hellos.feed(b"\x14\x03\x03\x00\x01\x01")
        hellos.feed(b"\x16\x03\x03\x00\x05\x02\x00\x00\x01q" + b"\x16\x03\x03\x00\x07" + hello)
        hellos.feed(b"\x17\x03\x03\x00\x01z" + b"\x16\x03\x03\x00\x07" + hello)
        self.assertEqual(hellos.count, 2)

    def test_encryptedAlert(self) -> None:
        """
        The alert record decrypts, with the same secret and sequence
        number, to a fatal internal_error alert, for every TLS 1.3 suite.
        """
        for suite, length in (("TLS_AES_128_GCM_SHA256", 32), ("TLS_AES_256_GCM_SHA384", 48),
                              ("TLS_CHACHA20_POLY1305_SHA256", 32)):
            secret = bytes(range(length))
            record = encryptedAlert(suite, secret, 2)
            self.assertEqual(record[:5], b"\x17\x03\x03\x00\x13")
            self.assertEqual(decryptRecord(suite, secret, 2, record), b"\x02\x50\x15")
            self.assertNotEqual(encryptedAlert(suite, secret, 3), record)


class CatalogueTests(SynchronousTestCase):
    """
    The hostile scenarios in the catalogue.
    """

    def test_listed(self) -> None:
        """
        They come last, each with an outcome for every stack, each naming
        the standard a correct client follows (or the matrix's finding).
        """
        self.assertEqual(tuple(SCENARIOS)[-len(HOSTILE):], HOSTILE)
        for name in HOSTILE:
            self.assertEqual(len(SCENARIOS[name].outcomes), 6)
            self.assertIn("RFC ", SCENARIOS[name].description, name)

    def test_timingsNamed(self) -> None:
        """
        The scenarios that use a timing (L{TIMINGS}, which the command line
        and L{ServerConfig} go by to refuse a timing that would do nothing)
        are hostile, and are the ones whose description names its setting
        and option; every timing is a L{HostileSettings} field, a
        L{ServerConfig} field and an option.
        """
        self.assertEqual({t.setting for t in TIMINGS}, set(vars(HostileSettings())))
        configFields = {f.name for f in fields(ServerConfig)}
        for timing in TIMINGS:
            self.assertIn(timing.config, configFields)
            self.assertIn(timing.option, {o[0] for o in Options.optParameters})
            self.assertTrue(set(timing.users) <= set(HOSTILE), timing.users)
            naming = tuple(
                name
                for name in HOSTILE
                if f"{timing.setting}=, --{timing.option}" in SCENARIOS[name].description
            )
            self.assertEqual(naming, timing.users)
