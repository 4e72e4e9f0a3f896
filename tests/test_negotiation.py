"""
What the server negotiates, each setting proven on the wire with real
clients (Python's C{ssl}, C{openssl s_client}): the TLS versions
(C{--min-tls}, C{--max-tls}, C{--insecure-min-tls}), the cipher suites
(C{--ciphers}, C{--ciphersuites}), the key-exchange groups (C{--groups})
and the application protocol (C{--alpn}).
"""

from __future__ import annotations

import socket
import ssl
import struct

from OpenSSL import SSL
from OpenSSL._util import lib

from tests.policyserver import (
    ciphers,
    fetch,
    legacyVersion,
    recordConnections,
    sClient,
    serve,
    tls12,
    tls13,
)
from tests.support import LOOPBACK, WireTestCase, clientContext, inThread, onMemoryBIO


def groupNegotiatedBy(port: int, caPath: str, groups: str) -> str | None:
    """
    Connect with a pyOpenSSL client whose OpenSSL (3.5 or later, as
    C{cryptography} bundles it) sends a key share for each group in
    C{groups} marked C{*}; read the reply and return the group the client
    negotiated.
    """
    context = SSL.Context(SSL.TLS_METHOD)
    context.set_min_proto_version(SSL.TLS1_3_VERSION)
    context.load_verify_locations(caPath)
    context.set_verify(SSL.VERIFY_PEER)
    # pyOpenSSL has no public call for groups (see tlsreply._openssl).
    assert lib.SSL_CTX_set1_curves_list(context._context, groups.encode()) == 1, groups
    with socket.create_connection((LOOPBACK, port), timeout=10) as raw:
        # Blocking, as pyOpenSSL needs, but never for more than 10 s.
        raw.settimeout(None)
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("ll", 10, 0))
        connection = SSL.Connection(context, raw)
        connection.set_connect_state()
        connection.set_tlsext_host_name(b"localhost")
        connection.do_handshake()
        reply = b""
        try:
            while chunk := connection.recv(1024):
                reply += chunk
        except SSL.ZeroReturnError:
            pass
        assert reply == b"test\n", reply
        group = connection.get_group_name()
        connection.shutdown()
        return group


# Versions.


class VersionTests(WireTestCase):
    """
    C{--min-tls}, C{--max-tls} and C{--insecure-min-tls} set the versions
    the server negotiates.
    """

    async def test_minimumTLS13RefusesTLS12(self) -> None:
        """
        With C{--min-tls 1.3} a TLS 1.2-only client is refused with a
        protocol_version alert, and a client offering both gets TLS 1.3.
        """
        server = serve(self, "--min-tls", "1.3")
        with self.assertRaises(ssl.SSLError) as caught:
            await fetch(server, clientContext(server.caPath, tls12))
        self.assertIn("PROTOCOL_VERSION", str(caught.exception).upper())
        event = await server.lastEvent()
        self.assertEqual(event["outcome"], "handshake-failed")
        self.assertIn("unsupported protocol", event["reason"])
        result = await fetch(server, clientContext(server.caPath))
        self.assertEqual((result.data, result.version), (b"test\n", "TLSv1.3"))

    async def test_maximumTLS12(self) -> None:
        """
        With C{--max-tls 1.2} a client that offers TLS 1.3 gets TLS 1.2, as
        the client and the log both say; a TLS 1.3-only client is refused.
        """
        server = serve(self, "--max-tls", "1.2")
        result = await fetch(server, clientContext(server.caPath))
        self.assertEqual((result.data, result.version), (b"test\n", "TLSv1.2"))
        self.assertEqual((await server.lastEvent())["tlsVersion"], "TLSv1.2")
        with self.assertRaises(ssl.SSLError):
            await fetch(server, clientContext(server.caPath, tls13))
        self.assertEqual((await server.lastEvent())["outcome"], "handshake-failed")

    async def assertInsecureMinimum(
        self, setting: str, allowed: ssl.TLSVersion, name: str
    ) -> None:
        """
        With C{--insecure-min-tls SETTING} a client offering only that
        version (which Python's C{ssl} calls C{name}) is served, with a CBC
        suite, and the policy warns.
        """
        server = serve(self, "--insecure-min-tls", setting)
        warning = f"INSECURE: TLSv{setting} is allowed"
        self.assertTrue(
            any(warning in w for w in server.options.config.policy.warnings()),
            server.options.config.policy.warnings(),
        )
        self.assertTrue(
            any(warning in str(e.get("policyWarning")) for e in server.events), server.events
        )
        result = await fetch(server, clientContext(server.caPath, legacyVersion(allowed)))
        self.assertEqual((result.data, result.version), (b"test\n", name))
        event = await server.lastEvent()
        self.assertEqual(event["tlsVersion"], name)
        self.assertRegex(event["cipher"], "^ECDHE-ECDSA-AES(128|256)-SHA$")
        # Modern clients still get TLS 1.3.
        modern = await fetch(server, clientContext(server.caPath))
        self.assertEqual(modern.version, "TLSv1.3")

    async def test_insecureMinimumTLS11(self) -> None:
        """
        C{--insecure-min-tls 1.1} serves a TLS 1.1-only client (and warns),
        but still refuses TLS 1.0.
        """
        await self.assertInsecureMinimum("1.1", ssl.TLSVersion.TLSv1_1, "TLSv1.1")
        server = serve(self, "--insecure-min-tls", "1.1")
        with self.assertRaises(ssl.SSLError) as caught:
            await fetch(
                server,
                clientContext(server.caPath, legacyVersion(ssl.TLSVersion.TLSv1)),
            )
        self.assertIn("PROTOCOL_VERSION", str(caught.exception).upper())

    async def test_insecureMinimumTLS10(self) -> None:
        """
        C{--insecure-min-tls 1.0} serves a TLS 1.0-only client, and warns.
        """
        await self.assertInsecureMinimum("1.0", ssl.TLSVersion.TLSv1, "TLSv1")


# Cipher suites and groups.


class CipherTests(WireTestCase):
    """
    C{--ciphers} (TLS 1.2) and C{--ciphersuites} (TLS 1.3) choose the
    suites, in the server's order of preference.
    """

    SERVER_ORDER = (
        "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:"
        "ECDHE-ECDSA-AES128-GCM-SHA256"
    )

    async def test_tls12ServerOrderWins(self) -> None:
        """
        A TLS 1.2 client that prefers the server's last suite gets the
        server's first one that it offers; a client with no suite in
        common is refused with "no shared cipher".
        """
        server = serve(self, "--ciphers", self.SERVER_ORDER)
        for offered, expected in [
            ("ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-CHACHA20-POLY1305:"
             "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-ECDSA-AES256-GCM-SHA384"),
            ("ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-CHACHA20-POLY1305",
             "ECDHE-ECDSA-CHACHA20-POLY1305"),
        ]:
            result = await fetch(server, clientContext(server.caPath, ciphers(offered)))
            self.assertEqual((result.version, result.cipher), ("TLSv1.2", expected))
            self.assertEqual((await server.lastEvent())["cipher"], expected)
        with self.assertRaises(ssl.SSLError):
            await fetch(
                server, clientContext(server.caPath, ciphers("ECDHE-ECDSA-AES128-SHA256"))
            )
        self.assertIn("no shared cipher", (await server.lastEvent())["reason"])

    async def test_tls13ServerOrderWins(self) -> None:
        """
        C{--ciphersuites} sets the TLS 1.3 suites in the server's order:
        Python's client (which prefers AES-256-GCM) and an C{s_client} that
        prefers AES-128-GCM both get ChaCha20-Poly1305, the server's first;
        a client offering only a suite left out is refused.
        """
        server = serve(
            self, "--ciphersuites", "TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256"
        )
        result = await fetch(server, clientContext(server.caPath))
        self.assertEqual(
            (result.version, result.cipher), ("TLSv1.3", "TLS_CHACHA20_POLY1305_SHA256")
        )
        status, output = await sClient(
            self, server, "-servername", "localhost", "-CAfile", server.caPath,
            "-ciphersuites", "TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256",
        )
        self.assertEqual(status, 0, output)
        self.assertIn("Cipher is TLS_CHACHA20_POLY1305_SHA256", output)
        self.assertEqual((await server.lastEvent())["cipher"], "TLS_CHACHA20_POLY1305_SHA256")
        status, output = await sClient(
            self, server, "-servername", "localhost", "-CAfile", server.caPath,
            "-ciphersuites", "TLS_AES_256_GCM_SHA384",
        )
        self.assertNotEqual(status, 0, output)
        event = await server.lastEvent()
        self.assertEqual(event["outcome"], "handshake-failed")
        self.assertIn("no shared cipher", event["reason"])


class GroupTests(WireTestCase):
    """
    C{--groups} sets the key-exchange groups.
    """

    async def test_p384(self) -> None:
        """
        With C{--groups P-384}, TLS 1.3 and TLS 1.2 clients (which would
        pick X25519) both use secp384r1, as the log and C{s_client}'s
        "Server Temp Key" say; a client without P-384 is refused.
        """
        server = serve(self, "--groups", "P-384")
        for configure in (None, tls12):
            result = await fetch(server, clientContext(server.caPath, configure))
            self.assertEqual(result.data, b"test\n")
            self.assertEqual((await server.lastEvent())["group"], "secp384r1")
        status, output = await sClient(
            self, server, "-servername", "localhost", "-CAfile", server.caPath
        )
        self.assertEqual(status, 0, output)
        self.assertIn("Server Temp Key: ECDH, secp384r1", output)
        status, output = await sClient(
            self, server, "-servername", "localhost", "-CAfile", server.caPath,
            "-groups", "X25519:P-256",
        )
        self.assertNotEqual(status, 0, output)
        self.assertEqual((await server.lastEvent())["outcome"], "handshake-failed")

    async def test_serverOrderWins(self) -> None:
        """
        C{--groups} is the server's order of preference: a TLS 1.3 client
        that sends key shares for both X25519 and P-384, in either order,
        gets the server's first choice, as the client itself reports it;
        so does a TLS 1.2 C{s_client} whose list puts another group first
        ("Server Temp Key").
        """
        for serverOrder, expected in (("P-384:X25519:P-256", "secp384r1"),
                                      ("X25519:P-384:P-256", "x25519")):
            server = serve(self, "--groups", serverOrder)
            records = recordConnections(server)
            for clientOrder in ("*X25519:*P-384", "*P-384:*X25519"):
                del records[:]
                negotiated = await inThread(
                    groupNegotiatedBy, server.port, server.caPath, clientOrder
                )
                await server.idle()
                [record] = records
                self.assertEqual(
                    sorted(record.offeredKeyShares), ["secp384r1", "x25519"], clientOrder
                )
                self.assertEqual(
                    (negotiated, record.group), (expected, expected),
                    f"server {serverOrder}, client {clientOrder}",
                )
            status, output = await sClient(
                self, server, "-servername", "localhost", "-CAfile", server.caPath,
                "-tls1_2", "-groups", "P-256:X25519:P-384",
            )
            self.assertEqual(status, 0, output)
            temporaryKey = {"secp384r1": "ECDH, secp384r1", "x25519": "X25519"}[expected]
            self.assertIn(f"Server Temp Key: {temporaryKey}, ", output)
            await server.service.stopService()

    async def test_negotiatedGroupIsNamedAsOffered(self) -> None:
        """
        The log and the connection record name the negotiated group the way
        the ClientHello parser names the groups a client offers (IANA's
        names), so that what was offered and what was chosen can be
        compared: a TLS 1.3 C{s_client} offering only C{X25519}, C{P-256}
        or C{P-384} negotiates C{x25519}, C{secp256r1} or C{secp384r1}, not
        OpenSSL's own C{X25519} or C{prime256v1}. (Over TLS 1.2 a client
        offering only X25519 or P-384 would be refused: there its groups
        also bound the curve of the server's ECDSA P-256 certificate.)
        """
        server = serve(self, "--groups", "X25519:P-256:P-384")
        records = recordConnections(server)
        for offered, expected in [
            ("X25519", "x25519"), ("P-256", "secp256r1"), ("P-384", "secp384r1")
        ]:
            del records[:]
            status, output = await sClient(
                self, server, "-servername", "localhost", "-CAfile", server.caPath,
                "-tls1_3", "-groups", offered,
            )
            self.assertEqual(status, 0, output)
            self.assertIn("\ntest\n", output)
            event = await server.lastEvent()
            [record] = records
            self.assertEqual(
                (event["group"], record.group), (expected, expected), f"for {offered}"
            )


# ALPN.


class ALPNTests(WireTestCase):
    """
    C{--alpn} negotiates application protocols in the server's order.
    """

    async def test_serverOrderAndNoOverlap(self) -> None:
        """
        With C{--alpn h2,http/1.1} a client preferring http/1.1 but offering
        h2 gets h2; one offering only http/1.1 gets it; one offering neither,
        or nothing, is served without ALPN. The log names the protocol.
        """
        server = serve(self, "--alpn", "h2,http/1.1")
        for offered, expected in [
            (["http/1.1", "h2"], "h2"),
            (["http/1.1"], "http/1.1"),
            (["spdy/3", "acme-tls/1"], None),
            ([], None),
        ]:

            def configure(context: ssl.SSLContext, offered: list[str] = offered) -> None:
                if offered:
                    context.set_alpn_protocols(offered)

            result = await fetch(server, clientContext(server.caPath, configure))
            self.assertEqual((result.data, result.alpnProtocol), (b"test\n", expected))
            self.assertEqual((await server.lastEvent())["alpnProtocol"], expected)


# The same tests with TLS over memory BIOs (haproxy: and embedders' endpoints).
VersionTestsOnMemoryBIO = onMemoryBIO(VersionTests)
CipherTestsOnMemoryBIO = onMemoryBIO(CipherTests)
GroupTestsOnMemoryBIO = onMemoryBIO(GroupTests)
ALPNTestsOnMemoryBIO = onMemoryBIO(ALPNTests)
