"""
The fingerprint code against real ClientHellos: bytes captured from
curl_cffi's Chrome, Firefox and Safari profiles and from Python's C{ssl}
(C{tests/data/clienthellos/}, made by C{scripts/capture_clienthellos.py}),
each with its JA4 as FoxIO publishes it (Chrome) or as an independent
implementation computes it (FoxIO's C{ja4plus}; by hand from FoxIO's
specification where ja4plus departs from it, the derivation written in
the manifest), never as tlsreply's own code does. And the first
ClientHello kept across a HelloRetryRequest, on the wire.
"""

from __future__ import annotations

import json
import socket
import ssl
import threading
from pathlib import Path
from typing import Any

from twisted.trial.unittest import SynchronousTestCase, TestCase

from tests.support import inThread
from tlsreply.clienthello.parser import ClientHelloParser
from tlsreply.testing import startTLSReplyServer

DATA = Path(__file__).parent / "data" / "clienthellos"
MANIFEST: dict[str, Any] = json.loads((DATA / "manifest.json").read_text())

#: FoxIO's published JA4 of Chrome 120 to 131 (TLS over TCP).
FOXIO_CHROME = "t13d1516h2_8daaf6152771_02713d6af862"


def parsed(name: str) -> Any:
    return ClientHelloParser().feed((DATA / MANIFEST["hellos"][name]["file"]).read_bytes())


class CapturedHelloTests(SynchronousTestCase):
    """
    Each captured hello's JA4 and JA4_r, as tlsreply computes them, are
    the independent values.
    """

    def test_chromePublished(self) -> None:
        """
        Chrome 120 and 131 (curl_cffi's impersonations) give exactly
        FoxIO's published JA4.
        """
        for name in ("chrome120", "chrome131"):
            self.assertEqual(MANIFEST["hellos"][name]["published"], FOXIO_CHROME)
            self.assertEqual(parsed(name).ja4, FOXIO_CHROME, name)

    def test_everyCapture(self) -> None:
        """
        Every capture's JA4 and JA4_r are the manifest's, Firefox's and
        Safari's included.
        """
        self.assertGreaterEqual(len(MANIFEST["hellos"]), 8)
        for name, entry in MANIFEST["hellos"].items():
            hello = parsed(name)
            self.assertEqual(hello.ja4, entry["ja4"], name)
            expectedRaw = entry["ja4_r"]
            if "derivation" in entry:
                expectedRaw = entry["ja4"][:10] + expectedRaw[10:]
            self.assertEqual(hello.ja4Raw, expectedRaw, name)

    def test_noSNI(self) -> None:
        """
        Without SNI the third character is C{i}, and the hello has no
        server name; with it, C{d}.
        """
        self.assertEqual(parsed("python-no-sni").ja4[3], "i")
        self.assertIsNone(parsed("python-no-sni").serverName)
        self.assertEqual(parsed("python-default").ja4[3], "d")
        self.assertEqual(parsed("python-default").serverName, "localhost")

    def test_alpnEdges(self) -> None:
        """
        No ALPN is C{00}; a one-character ALPN (C{h}) is that character
        twice; one whose first byte is not alphanumeric (C{*x}) is the
        first and last hex digits of its bytes, C{28}, as FoxIO's
        specification says (ja4plus writes C{*x}: the manifest keeps both).
        """
        self.assertEqual(parsed("python-default").ja4[8:10], "00")
        self.assertEqual(parsed("python-alpn-one-character").ja4[8:10], "hh")
        odd = parsed("python-alpn-not-alphanumeric")
        self.assertEqual(odd.alpnProtocols[0], "*x")
        self.assertEqual(odd.ja4[8:10], "28")
        entry = MANIFEST["hellos"]["python-alpn-not-alphanumeric"]
        self.assertEqual(entry["ja4plus"][8:10], "*x")


def firstHello(context: ssl.SSLContext) -> bytes:
    """
    The first ClientHello C{context} sends, captured by a raw server.
    """
    listener = socket.create_server(("127.0.0.1", 0))
    kept: list[bytes] = []

    def serve() -> None:
        connection, _ = listener.accept()
        with connection:
            parser = ClientHelloParser()
            while True:
                chunk = connection.recv(65536)
                kept.append(chunk)
                if parser.feed(chunk) is not None or not chunk:
                    return

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        with socket.create_connection(listener.getsockname(), timeout=5) as raw:
            context.wrap_socket(raw, server_hostname="localhost")
    except (OSError, ssl.SSLError):
        pass
    thread.join(10)
    listener.close()
    return b"".join(kept)


class HelloRetryRequestTests(TestCase):
    """
    Across a HelloRetryRequest, the record keeps the client's first
    ClientHello, the one fingerprinting is about.
    """

    async def test_firstHelloKept(self) -> None:
        """
        Python's C{ssl} sends a key share for X25519 only; a server that
        accepts P-384 alone asks it to retry, and its second hello carries
        a P-384 share. The connection is made over P-384, and the record
        has the first hello's key shares (X25519) and its JA4, as the same
        client's first hello, captured on its own, has them.
        """
        context = ssl.create_default_context()
        server = startTLSReplyServer(self, groups="P-384")
        context.load_verify_locations(cadata=server.caCertificatePEM.decode())
        captured = ClientHelloParser().feed(firstHello(context))
        assert captured is not None
        self.assertEqual(captured.codes.keyShareGroups, (0x001D,))

        def fetch() -> bytes:
            with socket.create_connection(server.address, timeout=10) as raw:
                with context.wrap_socket(raw, server_hostname="localhost") as tls:
                    return tls.recv(100)

        self.assertEqual(await inThread(fetch), b"test\n")
        [record] = await server.whenRecorded(1)
        self.assertEqual(record.group, "secp384r1")
        self.assertEqual(record.offeredKeyShares, ("x25519",))
        self.assertEqual(record.ja4, captured.ja4)
