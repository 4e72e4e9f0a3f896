"""
Renegotiation on the wire: a real C{twistd -n tlsreply}, run under an
C{openssl.cnf} that allows client renegotiation (C{Options =
ClientRenegotiation}, through C{OPENSSL_CONF}), and a TLS 1.2 pyOpenSSL
client that asks to renegotiate right after the handshake, on both
connection paths (C{tcp:}, tlsreply's own; C{haproxy:tcp:}, TLS over memory
BIOs).

The attempt reaches OpenSSL's renegotiation code only while the server is
still sending its reply: once close_notify is out, OpenSSL discards every
handshake record. So the reply is large (32 MiB, more than the socket
buffers of both ends hold): on tlsreply's own ports it is written as the
client reads it, and the ClientHello arrives while it is; the server must
answer it with the no_renegotiation alert. Over memory BIOs Twisted
encrypts the whole reply and the close_notify at once, so the attempt
arrives after close_notify there: the client must still get its whole reply
and no second handshake. The contexts themselves are tested in
L{tests.test_renegotiation}.
"""

from __future__ import annotations

import re
import socket
import struct
import time
from dataclasses import dataclass

from OpenSSL import SSL
from twisted.trial.unittest import SynchronousTestCase

from tests.support import LOOPBACK, makeCertificates, queuedBytes, temporaryDirectory
from tests.test_plugin import SCRIPTS, Daemon

#: The reply: far more than the socket buffers of both ends hold, so that
#: the server is still writing it when the client's ClientHello comes.
REPLY_SIZE = 32 << 20

#: An OpenSSL configuration that allows client renegotiation in every
#: context it makes (C{SSL_OP_ALLOW_CLIENT_RENEGOTIATION}; see
#: L{tests.test_renegotiation.RenegotiationTests.test_configurationSetsTheOption}).
ALLOWING_CONFIGURATION = (
    "openssl_conf = openssl_init\n"
    "[openssl_init]\nssl_conf = ssl_section\n"
    "[ssl_section]\nsystem_default = system_default_section\n"
    "[system_default_section]\nOptions = ClientRenegotiation\n"
)


@dataclass
class Attempt:
    """
    What the client saw of its renegotiation attempt.

    @ivar received: the reply bytes it read.
    @ivar error: the error that ended the connection, or L{None} for the
        server's close_notify.
    @ivar renegotiated: whether a second handshake completed.
    """

    received: int
    error: str | None
    renegotiated: bool


def waitUntilStalled(raw: socket.socket, timeout: float = 10.0) -> None:
    """
    Read nothing until the server has filled the socket buffers between it
    and this client: the bytes waiting here stop growing (for half a
    second), or fail after C{timeout}. The server is then blocked in the
    middle of its reply: its writes would block, so it is back in its
    reactor, where a ClientHello in its socket is read at once.
    """
    deadline = time.monotonic() + timeout
    waiting, unchanged = -1, 0
    while unchanged < 5:
        if time.monotonic() > deadline:
            raise AssertionError(f"the server kept writing for {timeout} s")
        time.sleep(0.1)
        now = queuedBytes(raw)
        unchanged = unchanged + 1 if now == waiting else 0
        waiting = now


def renegotiate(port: int, caPath: str, proxyHeader: bytes = b"") -> Attempt:
    """
    Complete a TLS 1.2 handshake, read a little of the reply, ask to
    renegotiate, then read on (which sends the ClientHello and drives the
    renegotiation, as C{s_client}'s C{R} command does) until the
    connection ends.

    The ClientHello must reach a server still writing its reply, which it
    only reads once its writes would block: a client that reads as fast as
    the server writes never blocks it, and the server writes the whole
    reply before it reads anything, and the attempt proves nothing. So the
    client lets the server fill the buffers between them
    (L{waitUntilStalled}), reads only until the ClientHello is out, and
    lets them fill again before it reads on.
    """
    context = SSL.Context(SSL.TLS_METHOD)
    context.set_max_proto_version(SSL.TLS1_2_VERSION)
    context.load_verify_locations(caPath)
    context.set_verify(SSL.VERIFY_PEER)
    started: list[bool] = []

    def info(connection: SSL.Connection, where: int, ret: int) -> None:
        if where & SSL.SSL_CB_HANDSHAKE_START and connection.total_renegotiations():
            started.append(True)

    context.set_info_callback(info)
    with socket.create_connection((LOOPBACK, port), timeout=10) as raw:
        raw.sendall(proxyHeader)
        # Blocking, as pyOpenSSL needs, but never for more than 10 s.
        raw.settimeout(None)
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("ll", 10, 0))
        connection = SSL.Connection(context, raw)
        connection.set_connect_state()
        connection.set_tlsext_host_name(b"localhost")
        connection.do_handshake()
        assert connection.get_protocol_version_name() == "TLSv1.2"
        received = len(connection.recv(1024))
        connection.renegotiate()
        waitUntilStalled(raw)
        for _ in range(8):
            if started:
                break
            received += len(connection.recv(65536))
        assert started, "the client did not send its ClientHello"
        waitUntilStalled(raw)
        error = None
        deadline = time.monotonic() + 30
        try:
            while time.monotonic() < deadline:
                try:
                    received += len(connection.recv(65536))
                except SSL.WantReadError:
                    continue
            error = "the connection did not end within 30 s"
        except SSL.ZeroReturnError:
            pass
        except SSL.Error as e:
            error = str(e)
        return Attempt(received, error, connection.total_renegotiations() > 0
                       and not connection.renegotiate_pending())


class RenegotiationOnTheWireTests(SynchronousTestCase):
    """
    C{twistd -n tlsreply} where OpenSSL's configuration allows client
    renegotiation.
    """

    def setUp(self) -> None:
        directory = temporaryDirectory(self)
        certificates = makeCertificates(directory)
        self.caPath = str(certificates.caPath)
        reply = directory / "reply.bin"
        reply.write_bytes(b"r" * REPLY_SIZE)
        configuration = directory / "openssl.cnf"
        configuration.write_text(ALLOWING_CONFIGURATION)
        self.daemon = Daemon(
            [str(SCRIPTS / "twistd"), "-n", "--pidfile=", "tlsreply",
             "--port", f"tcp:0:interface={LOOPBACK}",
             "--listen", f"haproxy:tcp:0:interface={LOOPBACK}",
             "--cert", str(certificates.certificatePath),
             "--key", str(certificates.keyPath), "--reply-file", str(reply),
             "--access-log", "log"],
            directory,
            environment={"OPENSSL_CONF": str(configuration)},
        )
        self.addCleanup(lambda: self.daemon.process.poll() is None and self.daemon.stop())
        listening = self.daemon.waitFor(
            r"listening on \['127\.0\.0\.1:(\d+)', '127\.0\.0\.1:(\d+)'\]; TLS policy: .*"
        )
        self.assertIn("renegotiation=off", listening.string)
        self.ownPort, self.proxiedPort = (int(p) for p in listening.groups())

    def test_refusedOnTlsreplysOwnPorts(self) -> None:
        """
        On a C{tcp:} port the server answers the ClientHello with the
        no_renegotiation alert (the client's OpenSSL reports "no
        renegotiation"): no second handshake; the connection is logged.
        """
        attempt = renegotiate(self.ownPort, self.caPath)
        self.assertEqual(attempt.error, "[('SSL routines', '', 'no renegotiation')]", attempt)
        self.assertFalse(attempt.renegotiated)
        self.assertLess(attempt.received, REPLY_SIZE)
        line = self.daemon.waitFor(r"\[tlsreply\.access#info\] (replied|handshake failed).*")
        self.assertIn(" TLSv1.2 ", line.string)
        self.assertEqual(self.daemon.stop(), 0)
        self.assertNotIn("Traceback", "".join(self.daemon.output))

    def test_noSecondHandshakeOverMemoryBIOs(self) -> None:
        """
        On a C{haproxy:} port (TLS over memory BIOs) the attempt arrives
        after the server's close_notify: the client gets its whole reply
        and the close_notify, and no second handshake.
        """
        attempt = renegotiate(
            self.proxiedPort, self.caPath, b"PROXY TCP4 198.51.100.7 192.0.2.1 5555 443\r\n"
        )
        self.assertEqual(
            (attempt.received, attempt.error, attempt.renegotiated), (REPLY_SIZE, None, False)
        )
        line = self.daemon.waitFor(r"\[tlsreply\.access#info\] replied to 198\.51\.100\.7:5555: .*")
        self.assertIn(" TLSv1.2 ", line.string)
        self.assertEqual(self.daemon.stop(), 0)
        self.assertIsNone(re.search("Traceback", "".join(self.daemon.output)))
