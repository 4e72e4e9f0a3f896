"""
The TLS policy options, each proven on the wire: a tlsreply server started
from its command line (L{tlsreply.tap}) on 127.0.0.1 with an ephemeral
port, and real clients (Python's C{ssl}, C{openssl s_client}) that show
what each option does. Invalid values are tested through the same command
line: each is one line and a non-zero exit.
"""

from __future__ import annotations

import datetime
import io
import json
import os
import re
import ssl
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509 import ocsp
from twisted.internet import reactor
from twisted.internet.ssl import TLSVersion
from twisted.internet.task import deferLater
from twisted.internet.testing import MemoryReactor
from twisted.logger import LogEvent
from twisted.trial.unittest import SynchronousTestCase, TestCase

from tests.support import (
    LOOPBACK,
    SSLResult,
    WireTestCase,
    captureLogEvents,
    clientContext,
    fetchWithSSL,
    inThread,
    makeCertificates,
    onMemoryBIO,
    requireCommand,
    runCommand,
    temporaryDirectory,
)
from tlsreply.errors import ConfigurationError
from tlsreply.records import ConnectionRecord
from tlsreply.service import TLSReplyService
from tlsreply.tap import Options, makeService
from tlsreply.tlscontext import TLSPolicy

if TYPE_CHECKING:
    # Not imported at run time: pytest would try to collect it as tests.
    from tests.support import TestCertificates

Configure = Callable[[ssl.SSLContext], None]


# Servers and clients.


@dataclass
class PolicyServer:
    """
    A tlsreply server started from a command line, listening on 127.0.0.1.

    @ivar options: the parsed command line.
    @ivar caPath: the CA that issued the default test certificate, if the
        command line did not name certificates of its own.
    """

    port: int
    service: TLSReplyService
    options: Options
    events: list[LogEvent]
    caPath: str = ""

    def connectionEvents(self) -> list[LogEvent]:
        """
        The per-connection log events so far, in the order connections
        ended.
        """
        return [e for e in self.events if "outcome" in e]

    async def idle(self) -> list[LogEvent]:
        """
        Wait until no connection is in progress (so that every connection so
        far is logged), then return the per-connection events.
        """
        await self.service.connections.whenIdle()
        return self.connectionEvents()

    async def lastEvent(self) -> LogEvent:
        """
        The log event of the connection that ended last, once it has.
        """
        return (await self.idle())[-1]


def serve(testCase: TestCase, *arguments: str) -> PolicyServer:
    """
    Start tlsreply the way C{twistd tlsreply ARGUMENTS} does, on an
    ephemeral 127.0.0.1 port, with the default test certificate unless the
    arguments name certificates; stop it at the end of the test.
    """
    events = captureLogEvents(testCase)
    caPath = ""
    if "--cert" not in arguments and "--cert-dir" not in arguments:
        certificates = makeCertificates(temporaryDirectory(testCase))
        caPath = str(certificates.caPath)
        arguments = (
            "--cert", str(certificates.certificatePath),
            "--key", str(certificates.keyPath),
            *arguments,
        )
    options = Options()
    options.parseOptions(["--port", f"tcp:0:interface={LOOPBACK}", *arguments])
    socketTLS = testCase.socketTLS if isinstance(testCase, WireTestCase) else True
    top = makeService(options, reactor=reactor, socketTLS=socketTLS)
    top.privilegedStartService()
    top.startService()
    testCase.addCleanup(top.stopService)
    [service] = [s for s in top if isinstance(s, TLSReplyService)]  # type: ignore[attr-defined]
    port: int = getattr(service.listeningPorts[0].getHost(), "port", 0)
    return PolicyServer(port, service, options, events, caPath)


async def fetch(
    server: PolicyServer,
    context: ssl.SSLContext,
    serverName: str | None = "localhost",
    session: ssl.SSLSession | None = None,
) -> SSLResult:
    """
    Fetch the reply with Python's C{ssl} in a thread, and wait until the
    server has logged the connection (also when the client failed).
    """
    try:
        result: SSLResult = await inThread(
            fetchWithSSL, server.port, context, session=session,
            serverName=serverName,
        )
    finally:
        await server.idle()
    return result


async def sClient(
    testCase: TestCase, server: PolicyServer, *arguments: str
) -> tuple[int, str]:
    """
    Run C{openssl s_client} against the server until it closes, and wait
    until the server has logged the connection.

    @return: the exit status and the output (stdout and stderr).
    """
    openssl = requireCommand(testCase, "openssl")
    result = await inThread(
        runCommand,
        [openssl, "s_client", "-connect", f"{LOOPBACK}:{server.port}", "-ign_eof",
         *arguments],
    )
    await server.idle()
    return result.returncode, (result.stdout + result.stderr).decode("utf-8", "replace")


def tls12(context: ssl.SSLContext) -> None:
    """
    Offer TLS 1.2 only (with session tickets, as clients do by default).
    """
    context.maximum_version = ssl.TLSVersion.TLSv1_2


def tls12SessionID(context: ssl.SSLContext) -> None:
    """
    Offer TLS 1.2 only, without session tickets: resumption can only be by
    session ID, from the server's session cache.
    """
    tls12(context)
    context.options |= ssl.OP_NO_TICKET


def tls13(context: ssl.SSLContext) -> None:
    """
    Offer TLS 1.3 only.
    """
    context.minimum_version = ssl.TLSVersion.TLSv1_3


def legacyVersion(version: ssl.TLSVersion) -> Configure:
    """
    Offer only TLS 1.0 or 1.1, which the client's own OpenSSL allows only at
    security level 0.
    """

    def configure(context: ssl.SSLContext) -> None:
        context.set_ciphers("DEFAULT:@SECLEVEL=0")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            context.minimum_version = version
            context.maximum_version = version

    return configure


def ciphers(names: str) -> Configure:
    """
    Offer TLS 1.2 only, with these cipher suites in this order.
    """

    def configure(context: ssl.SSLContext) -> None:
        tls12(context)
        context.set_ciphers(names)

    return configure


def anyName(context: ssl.SSLContext) -> None:
    """
    Verify the chain but not the name, to see which certificate an unknown
    (or missing) server name gets.
    """
    context.check_hostname = False


def both(*steps: Configure | None) -> Configure:
    """
    Apply several client configurations in order.
    """

    def configure(context: ssl.SSLContext) -> None:
        for step in steps:
            if step is not None:
                step(context)

    return configure


CLIENT_KINDS: dict[str, Configure] = {
    "TLSv1.3 ticket": tls13,
    "TLSv1.2 ticket": tls12,
    "TLSv1.2 session ID": tls12SessionID,
}


def recordConnections(server: PolicyServer) -> list[ConnectionRecord]:
    """
    Record every connection from now on, with what its client offered (a
    recorder makes the server parse each ClientHello in full).
    """
    records: list[ConnectionRecord] = []
    server.service.replyFactory.recorders.append(records.append)
    return records


# Certificates.


def certificateOf(leaf: trustme.LeafCert) -> x509.Certificate:
    """
    The leaf certificate itself.
    """
    return x509.load_pem_x509_certificate(leaf.cert_chain_pems[0].bytes())


def der(certificate: x509.Certificate) -> bytes:
    """
    A certificate's DER bytes, as a client receives them.
    """
    return certificate.public_bytes(serialization.Encoding.DER)


def writeCombined(path: Path, leaf: trustme.LeafCert) -> Path:
    """
    Write key, certificate and intermediates to one file, as
    C{--cert FILE} alone takes them.
    """
    leaf.private_key_and_cert_chain_pem.write_to_path(str(path))
    return path


@dataclass
class SeparateFiles:
    """
    A leaf certificate, its key and its chain, each in a file of its own.
    """

    certificate: Path
    key: Path
    chain: Path

    def arguments(self) -> list[str]:
        """
        The command-line options that serve these files.
        """
        return ["--cert", str(self.certificate), "--key", str(self.key),
                "--chain", str(self.chain)]


def writeSeparate(
    directory: Path, stem: str, leaf: trustme.LeafCert, issuer: trustme.CA
) -> SeparateFiles:
    """
    Write the leaf, its key, and its issuing intermediate to three files.
    """
    files = SeparateFiles(
        directory / f"{stem}.pem", directory / f"{stem}.key", directory / f"{stem}-chain.pem"
    )
    files.certificate.write_bytes(leaf.cert_chain_pems[0].bytes())
    leaf.private_key_pem.write_to_path(str(files.key))
    issuer.cert_pem.write_to_path(str(files.chain))
    return files


def ocspResponse(issuer: trustme.CA, leaf: x509.Certificate) -> bytes:
    """
    A DER OCSP response, signed by the issuing CA, that says C{leaf} is
    good.
    """
    key = serialization.load_pem_private_key(issuer.private_key_pem.bytes(), None)
    assert isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey)
    issuerCertificate = x509.load_pem_x509_certificate(issuer.cert_pem.bytes())
    now = datetime.datetime.now(datetime.UTC)
    response = (
        ocsp.OCSPResponseBuilder()
        .add_response(
            cert=leaf,
            issuer=issuerCertificate,
            algorithm=hashes.SHA1(),
            cert_status=ocsp.OCSPCertStatus.GOOD,
            this_update=now - datetime.timedelta(minutes=5),
            next_update=now + datetime.timedelta(days=1),
            revocation_time=None,
            revocation_reason=None,
        )
        .responder_id(ocsp.OCSPResponderEncoding.HASH, issuerCertificate)
        .sign(key, hashes.SHA256())
    )
    return response.public_bytes(serialization.Encoding.DER)


def stapledSerial(output: str) -> int | None:
    """
    The serial number of the certificate that the OCSP response printed by
    C{s_client -status} is about, or L{None} if none was stapled.
    """
    if "OCSP response: no response sent" in output:
        return None
    match = re.search(r"Serial Number: ([0-9A-Fa-f]+)", output)
    assert match is not None, output
    return int(match.group(1), 16)


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


# Certificates.


class CertificateSelectionTests(WireTestCase):
    """
    Several C{--cert}s: one per key type for the same names, and others
    chosen by SNI; C{--cert-dir} loads them from a folder.
    """

    async def test_rsaAndECDSAEachWithItsOwnChain(self) -> None:
        """
        An RSA and an ECDSA certificate for the same name, each issued by a
        different intermediate and given its own C{--chain}: a TLS 1.2
        client offering only ECDHE-RSA suites gets the RSA one, one offering
        only ECDHE-ECDSA suites gets the ECDSA one, and both verify them
        trusting only the root (so each got its own intermediate). In TLS
        1.3 the client's signature algorithms choose, as C{s_client
        -sigalgs} shows.
        """
        directory = temporaryDirectory(self)
        root = trustme.CA()
        rsaIssuer, ecdsaIssuer = root.create_child_ca(), root.create_child_ca()
        rsaLeaf = rsaIssuer.issue_cert("localhost", key_type=trustme.KeyType.RSA)
        ecdsaLeaf = ecdsaIssuer.issue_cert("localhost", key_type=trustme.KeyType.ECDSA)
        rootPath = directory / "root.pem"
        root.cert_pem.write_to_path(str(rootPath))
        server = serve(
            self,
            *writeSeparate(directory, "rsa", rsaLeaf, rsaIssuer).arguments(),
            *writeSeparate(directory, "ecdsa", ecdsaLeaf, ecdsaIssuer).arguments(),
        )
        for suites, leaf in [
            ("ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-CHACHA20-POLY1305", rsaLeaf),
            ("ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-CHACHA20-POLY1305", ecdsaLeaf),
        ]:
            result = await fetch(server, clientContext(str(rootPath), ciphers(suites)))
            self.assertEqual(result.data, b"test\n")
            self.assertEqual(result.peerCertificate, der(certificateOf(leaf)))
        for sigalgs, leaf, signature in [
            ("rsa_pss_rsae_sha256", rsaLeaf, "RSA-PSS"),
            ("ecdsa_secp256r1_sha256", ecdsaLeaf, "ECDSA"),
        ]:
            status, output = await sClient(
                self, server, "-servername", "localhost", "-CAfile", str(rootPath),
                "-verify_return_error", "-sigalgs", sigalgs,
            )
            self.assertEqual(status, 0, output)
            self.assertIn(f"Peer signature type: {signature}", output)
            self.assertIn("Verification: OK", output)
            [unit] = certificateOf(leaf).subject.get_attributes_for_oid(
                x509.NameOID.ORGANIZATIONAL_UNIT_NAME
            )
            self.assertIn(f"OU = {unit.value!s}\n", output)
            self.assertIn("\ntest\n", output)

    async def test_serverNameChoosesCertificate(self) -> None:
        """
        Certificates for other names, one a wildcard, are chosen by the
        server name the client sends (in any case, with or without a final
        dot); a name that no certificate covers, a name two labels under the
        wildcard, and no name at all get the first certificate. The log
        names what the client asked for.
        """
        directory = temporaryDirectory(self)
        ca = trustme.CA()
        caPath = directory / "ca.pem"
        ca.cert_pem.write_to_path(str(caPath))
        first = ca.issue_cert("first.test")
        named = ca.issue_cert("a.test")
        wildcard = ca.issue_cert("*.w.test")
        server = serve(
            self,
            "--cert", str(writeCombined(directory / "first.pem", first)),
            "--cert", str(writeCombined(directory / "a.pem", named)),
            "--cert", str(writeCombined(directory / "w.pem", wildcard)),
        )
        context = clientContext(str(caPath), anyName)
        for serverName, leaf in [
            ("a.test", named),
            ("A.Test.", named),
            ("x.w.test", wildcard),
            ("first.test", first),
            ("deep.x.w.test", first),
            ("unknown.test", first),
            (None, first),
        ]:
            result = await fetch(server, context, serverName=serverName)
            self.assertEqual(
                result.peerCertificate, der(certificateOf(leaf)), f"for {serverName}"
            )
            event = await server.lastEvent()
            self.assertEqual(event["outcome"], "replied")
            firstName = {id(named): "a.test", id(wildcard): "*.w.test", id(first): "first.test"}
            self.assertEqual(event["certificate"], f"{firstName[id(leaf)]}/ECDSA-P-256")
            if serverName is None:
                self.assertIsNone(event["serverName"])
            else:
                self.assertEqual(event["serverName"].lower().rstrip("."),
                                 serverName.lower().rstrip("."))

    async def test_certificateDirectory(self) -> None:
        """
        C{--cert-dir} serves every certificate in a folder: a certificate
        with its key in C{NAME.key}, one with its key in the same file, one
        with an OCSP response in C{NAME.ocsp} (stapled for C{s_client
        -status}); other files are ignored, and the first certificate in
        name order serves unknown names.
        """
        directory = temporaryDirectory(self)
        folder = directory / "certs"
        folder.mkdir()
        ca = trustme.CA()
        caPath = directory / "ca.pem"
        ca.cert_pem.write_to_path(str(caPath))
        a, b, c = (ca.issue_cert(f"{n}.test") for n in "abc")
        (folder / "a.pem").write_bytes(b"".join(p.bytes() for p in a.cert_chain_pems))
        a.private_key_pem.write_to_path(str(folder / "a.key"))
        writeCombined(folder / "b.pem", b)
        (folder / "c.crt").write_bytes(b"".join(p.bytes() for p in c.cert_chain_pems))
        c.private_key_pem.write_to_path(str(folder / "c.key"))
        (folder / "c.ocsp").write_bytes(ocspResponse(ca, certificateOf(c)))
        (folder / "README.txt").write_text("not a certificate\n")
        server = serve(self, "--cert-dir", str(folder))
        context = clientContext(str(caPath), anyName)
        for serverName, leaf in [
            ("a.test", a), ("b.test", b), ("c.test", c), ("other.test", a), (None, a)
        ]:
            result = await fetch(server, context, serverName=serverName)
            self.assertEqual(
                result.peerCertificate, der(certificateOf(leaf)), f"for {serverName}"
            )
        for serverName, serial in [
            ("c.test", certificateOf(c).serial_number), ("a.test", None)
        ]:
            status, output = await sClient(
                self, server, "-servername", serverName, "-CAfile", str(caPath),
                "-status",
            )
            self.assertEqual(status, 0, output)
            self.assertEqual(stapledSerial(output), serial, output)


class OCSPStaplingTests(WireTestCase):
    """
    C{--ocsp-response} staples a DER OCSP response for the C{--cert} it
    follows.
    """

    async def test_stapledResponse(self) -> None:
        """
        C{s_client -status} receives the stapled response: successful, the
        certificate good, about the served certificate's serial number.
        """
        directory = temporaryDirectory(self)
        certificates = makeCertificates(directory)
        leaf = x509.load_pem_x509_certificate(certificates.certificatePath.read_bytes())
        ocspPath = directory / "server.ocsp"
        ocspPath.write_bytes(ocspResponse(certificates.ca, leaf))
        server = serve(
            self, "--cert", str(certificates.certificatePath),
            "--key", str(certificates.keyPath), "--ocsp-response", str(ocspPath),
        )
        status, output = await sClient(
            self, server, "-servername", "localhost", "-CAfile", str(certificates.caPath),
            "-status",
        )
        self.assertEqual(status, 0, output)
        self.assertIn("OCSP Response Status: successful (0x0)", output)
        self.assertIn("Cert Status: good", output)
        self.assertEqual(stapledSerial(output), leaf.serial_number)
        # A client that does not ask gets no staple, and is served as usual.
        result = await fetch(server, clientContext(str(certificates.caPath)))
        self.assertEqual(result.data, b"test\n")

    async def test_eachCertificateItsOwnResponse(self) -> None:
        """
        With an RSA and an ECDSA certificate for one name, each with its own
        C{--ocsp-response}, the client gets the response for the
        certificate it is served.
        """
        directory = temporaryDirectory(self)
        ca = trustme.CA()
        caPath = directory / "ca.pem"
        ca.cert_pem.write_to_path(str(caPath))
        arguments = []
        serials = {}
        for keyType, sigalgs in [
            (trustme.KeyType.RSA, "rsa_pss_rsae_sha256"),
            (trustme.KeyType.ECDSA, "ecdsa_secp256r1_sha256"),
        ]:
            leaf = ca.issue_cert("localhost", key_type=keyType)
            path = writeCombined(directory / f"{keyType.name}.pem", leaf)
            (directory / f"{keyType.name}.ocsp").write_bytes(
                ocspResponse(ca, certificateOf(leaf))
            )
            arguments += ["--cert", str(path), "--ocsp-response",
                          str(directory / f"{keyType.name}.ocsp")]
            serials[sigalgs] = certificateOf(leaf).serial_number
        server = serve(self, *arguments)
        for sigalgs, serial in serials.items():
            status, output = await sClient(
                self, server, "-servername", "localhost", "-CAfile", str(caPath),
                "-status", "-sigalgs", sigalgs,
            )
            self.assertEqual(status, 0, output)
            self.assertEqual(stapledSerial(output), serial, output)


# Sessions.


class SessionTests(WireTestCase):
    """
    C{--session-cache}, C{--session-tickets} and C{--session-timeout}
    decide which clients resume, for TLS 1.2 and 1.3.
    """

    async def resumption(
        self, server: PolicyServer, serverName: str = "localhost"
    ) -> dict[str, bool]:
        """
        For each kind of client, connect, then connect again with the
        session from the first connection.

        @return: whether each kind's second connection resumed, as the
            client saw it; the log must say the same.
        """
        found = {}
        for kind, configure in CLIENT_KINDS.items():
            context = clientContext(server.caPath, configure)
            first = await fetch(server, context, serverName)
            self.assertFalse((await server.lastEvent())["resumed"])
            second = await fetch(server, context, serverName, first.session)
            self.assertEqual(second.data, b"test\n")
            self.assertEqual((await server.lastEvent())["resumed"], second.sessionReused)
            found[kind] = second.sessionReused
        return found

    async def test_cacheAndTickets(self) -> None:
        """
        With the session cache and tickets on (the defaults), every kind of
        client resumes.
        """
        server = serve(self, "--session-cache", "on", "--session-tickets", "on")
        self.assertEqual(
            await self.resumption(server),
            {"TLSv1.3 ticket": True, "TLSv1.2 ticket": True, "TLSv1.2 session ID": True},
        )

    async def test_ticketsOnly(self) -> None:
        """
        With C{--session-cache off} TLS 1.2 clients resume only with a
        ticket, not by session ID; TLS 1.3 clients resume with tickets.
        """
        server = serve(self, "--session-cache", "off")
        self.assertEqual(
            await self.resumption(server),
            {"TLSv1.3 ticket": True, "TLSv1.2 ticket": True, "TLSv1.2 session ID": False},
        )

    async def test_cacheOnly(self) -> None:
        """
        With C{--session-tickets off} every client resumes from the
        server's session cache: TLS 1.2 by session ID (a client that would
        take a ticket gets none), TLS 1.3 by a ticket that only names a
        cached session.
        """
        server = serve(self, "--session-tickets", "off")
        self.assertEqual(
            await self.resumption(server),
            {"TLSv1.3 ticket": True, "TLSv1.2 ticket": True, "TLSv1.2 session ID": True},
        )
        context = clientContext(server.caPath, tls12)
        result = await fetch(server, context)
        assert result.session is not None
        self.assertFalse(result.session.has_ticket)

    async def test_neither(self) -> None:
        """
        With both off, no client resumes.
        """
        server = serve(self, "--session-cache", "off", "--session-tickets", "off")
        self.assertEqual(
            await self.resumption(server),
            {"TLSv1.3 ticket": False, "TLSv1.2 ticket": False, "TLSv1.2 session ID": False},
        )

    async def test_timeout(self) -> None:
        """
        With C{--session-timeout 1} tickets say they live 1 second, every
        kind of client resumes at once, and after 2 seconds no session
        resumes: TLS 1.2 clients still offer theirs (by ticket or session
        ID) and the server refuses them; TLS 1.3 clients, told the ticket's
        lifetime, no longer offer it.
        """
        server = serve(self, "--session-timeout", "1")
        for version in ("-tls1_3", "-tls1_2"):
            status, output = await sClient(
                self, server, "-servername", "localhost", "-CAfile", server.caPath, version
            )
            self.assertEqual(status, 0, output)
            self.assertIn("TLS session ticket lifetime hint: 1 (seconds)", output)
        sessions = {}
        for kind, configure in CLIENT_KINDS.items():
            context = clientContext(server.caPath, configure)
            first = await fetch(server, context)
            again = await fetch(server, context, session=first.session)
            self.assertTrue(again.sessionReused, kind)
            assert first.session is not None
            sessions[kind] = (context, first.session)
        await deferLater(reactor, 2.1, lambda: None)
        for kind, (context, session) in sessions.items():
            late = await fetch(server, context, session=session)
            self.assertEqual(late.data, b"test\n")
            self.assertFalse(late.sessionReused, kind)
            self.assertFalse((await server.lastEvent())["resumed"], kind)

    async def test_sessionsStayWithTheirServerName(self) -> None:
        """
        Sessions resume under every name (two on one certificate, two under
        a wildcard, unknown names, no name), and never under another name,
        for TLS 1.3 tickets, TLS 1.2 tickets and TLS 1.2 session IDs. The
        TLS 1.3 clients did offer their ticket under the other names: the
        server refused it.
        """
        directory = temporaryDirectory(self)
        ca = trustme.CA()
        caPath = directory / "ca.pem"
        ca.cert_pem.write_to_path(str(caPath))
        server = serve(
            self,
            "--cert", str(writeCombined(directory / "ab.pem", ca.issue_cert("a.test", "b.test"))),
            "--cert", str(writeCombined(directory / "w.pem", ca.issue_cert("*.w.test"))),
        )
        hellos = recordConnections(server)
        names = ["a.test", "b.test", "x.w.test", "y.w.test", "unknown-1.test",
                 "unknown-2.test", None]
        crossed = []
        for kind, configure in CLIENT_KINDS.items():
            context = clientContext(str(caPath), both(configure, anyName))
            for made in names:
                first = await fetch(server, context, made)
                for used in names:
                    del hellos[:]
                    result = await fetch(server, context, used, first.session)
                    if result.sessionReused != (made == used):
                        crossed.append((kind, made, used, result.sessionReused))
                    if kind.startswith("TLSv1.3"):
                        [hello] = hellos
                        self.assertTrue(hello.resumptionOffered, (made, used))
        self.assertEqual(crossed, [])


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


# Client certificates.


@dataclass
class ClientCertificates:
    """
    A client CA (written to a file), a client certificate it issued, and
    one from another CA.
    """

    caPath: Path
    valid: trustme.LeafCert
    stranger: trustme.LeafCert


def makeClientCertificates(directory: Path) -> ClientCertificates:
    """
    Make a client CA (with a recognisable name) and client certificates
    for C{alice}, from it, and C{mallory}, from a CA the server does not
    trust.
    """
    clientCA = trustme.CA(organization_unit_name="tlsreply test client CA")
    caPath = directory / "client-ca.pem"
    clientCA.cert_pem.write_to_path(str(caPath))
    return ClientCertificates(
        caPath,
        clientCA.issue_cert("alice.test", common_name="alice"),
        trustme.CA().issue_cert("mallory.test", common_name="mallory"),
    )


def presenting(leaf: trustme.LeafCert | None, *more: Configure) -> Configure:
    """
    A client that presents this certificate (or none).
    """

    def configure(context: ssl.SSLContext) -> None:
        if leaf is not None:
            leaf.configure_cert(context)
        for step in more:
            step(context)

    return configure


class ClientCertificateTests(WireTestCase):
    """
    C{--client-ca} with C{--verify-client optional} or C{require}.
    """

    async def test_requireRefusesWithoutValidCertificate(self) -> None:
        """
        With C{--verify-client require}, a client without a certificate is
        refused with certificate_required (TLS 1.3) or handshake_failure
        (TLS 1.2), one with a certificate from another CA with unknown_ca;
        each refusal is logged with OpenSSL's reason. A client with a
        certificate from the client CA is served and logged by subject.
        """
        clients = makeClientCertificates(temporaryDirectory(self))
        server = serve(self, "--client-ca", str(clients.caPath), "--verify-client", "require")
        for configure, alert, reason in [
            (presenting(None), "CERTIFICATE_REQUIRED", "peer did not return a certificate"),
            (presenting(None, tls12), "HANDSHAKE_FAILURE",
             "peer did not return a certificate"),
            (presenting(clients.stranger), "UNKNOWN_CA", "certificate verify failed"),
            (presenting(clients.stranger, tls12), "UNKNOWN_CA",
             "certificate verify failed"),
        ]:
            with self.assertRaises(ssl.SSLError) as caught:
                await fetch(server, clientContext(server.caPath, configure))
            self.assertIn(alert, str(caught.exception).upper())
            event = await server.lastEvent()
            self.assertEqual(event["outcome"], "handshake-failed")
            self.assertIn(reason, event["reason"])
        for configure in (presenting(clients.valid), presenting(clients.valid, tls12)):
            result = await fetch(server, clientContext(server.caPath, configure))
            self.assertEqual(result.data, b"test\n")
            event = await server.lastEvent()
            self.assertIn("CN=alice", event["clientCertificate"])
            self.assertEqual(event["clientVerification"], "ok")

    async def test_optionalServesEveryClientAndLogsVerification(self) -> None:
        """
        With C{--verify-client optional} every client is served; the log
        shows the subject of a client certificate and whether it verified.
        """
        clients = makeClientCertificates(temporaryDirectory(self))
        server = serve(self, "--client-ca", str(clients.caPath), "--verify-client", "optional")
        unknownIssuer = {
            "unable to get local issuer certificate",
            "unable to verify the first certificate",
        }
        for leaf, subject, verifications in [
            (None, None, {None}),
            (clients.valid, "CN=alice", {"ok"}),
            (clients.stranger, "CN=mallory", unknownIssuer),
        ]:
            for version in (tls13, tls12):
                context = clientContext(server.caPath, presenting(leaf, version))
                first = await fetch(server, context)
                # A resumed session reports the verification of the
                # handshake that made it.
                resumed = await fetch(server, context, session=first.session)
                self.assertTrue(resumed.sessionReused)
                for event in server.connectionEvents()[-2:]:
                    self.assertEqual(event["outcome"], "replied")
                    if subject is None:
                        self.assertIsNone(event["clientCertificate"])
                    else:
                        self.assertIn(subject, event["clientCertificate"])
                    self.assertIn(event["clientVerification"], verifications)

    async def test_noneAsksForNoCertificate(self) -> None:
        """
        With C{--verify-client none} (the default) the server sends no
        certificate request: a client with a certificate does not send it,
        and the log shows none.
        """
        clients = makeClientCertificates(temporaryDirectory(self))
        server = serve(self, "--verify-client", "none")
        status, output = await sClient(
            self, server, "-servername", "localhost", "-CAfile", server.caPath
        )
        self.assertEqual(status, 0, output)
        self.assertIn("No client certificate CA names sent", output)
        result = await fetch(server, clientContext(server.caPath, presenting(clients.valid)))
        self.assertEqual(result.data, b"test\n")
        event = await server.lastEvent()
        self.assertEqual((event["clientCertificate"], event["clientVerification"]),
                         (None, None))

    async def test_certificateRequestNamesClientCA(self) -> None:
        """
        The certificate request names the client CA, so that a client with
        several certificates can pick the right one.
        """
        clients = makeClientCertificates(temporaryDirectory(self))
        server = serve(self, "--client-ca", str(clients.caPath), "--verify-client", "optional")
        status, output = await sClient(
            self, server, "-servername", "localhost", "-CAfile", server.caPath
        )
        self.assertEqual(status, 0, output)
        self.assertIn("Acceptable client certificate CA names", output)
        self.assertIn("tlsreply test client CA", output)


# Key log.


def keyLogLines(path: Path) -> list[tuple[str, str, str]]:
    """
    The NSS key-log lines in a file: (label, client random, secret).
    """
    lines = []
    for line in path.read_text().splitlines():
        if line and not line.startswith("#"):
            label, clientRandom, secret = line.split(" ")
            lines.append((label, clientRandom, secret))
    return lines


class KeyLogTests(WireTestCase):
    """
    C{--keylog} writes the secrets of every connection in NSS key-log
    format.
    """

    async def test_keyLogMatchesClients(self) -> None:
        """
        After a TLS 1.3, a resumed TLS 1.3 and a TLS 1.2 connection, the
        server's key log holds exactly the lines the clients' own key logs
        (written by Python's C{ssl}) hold: one set per connection, keyed by
        its client random. The file is private to its owner, and the policy
        warns.
        """
        directory = temporaryDirectory(self)
        serverLog = directory / "server.keys"
        server = serve(self, "--keylog", str(serverLog))
        self.assertTrue(
            any("INSECURE: TLS session keys" in w for w in server.options.config.policy.warnings())
        )
        clientLogs = []
        for name, configure in [("tls13", None), ("tls12", tls12)]:
            clientLog = directory / f"{name}.keys"
            clientLogs.append(clientLog)

            def logKeys(context: ssl.SSLContext, path: Path = clientLog) -> None:
                context.keylog_filename = str(path)

            context = clientContext(server.caPath, both(configure, logKeys))
            first = await fetch(server, context)
            if name == "tls13":
                resumed = await fetch(server, context, session=first.session)
                self.assertTrue(resumed.sessionReused)
        serverLines = keyLogLines(serverLog)
        clientLines = [line for path in clientLogs for line in keyLogLines(path)]
        self.assertEqual(sorted(serverLines), sorted(clientLines))
        byConnection: dict[str, set[str]] = {}
        for label, clientRandom, _ in serverLines:
            byConnection.setdefault(clientRandom, set()).add(label)
        tls13Labels = {
            "CLIENT_HANDSHAKE_TRAFFIC_SECRET", "SERVER_HANDSHAKE_TRAFFIC_SECRET",
            "CLIENT_TRAFFIC_SECRET_0", "SERVER_TRAFFIC_SECRET_0", "EXPORTER_SECRET",
        }
        self.assertEqual(
            sorted(byConnection.values(), key=len),
            [{"CLIENT_RANDOM"}, tls13Labels, tls13Labels],
        )
        self.assertEqual(len(serverLines), 5 + 5 + 1)
        self.assertEqual(os.stat(serverLog).st_mode & 0o777, 0o600)


# Early data.


def ticketWithEarlyData(
    openssl: str, certificates: TestCertificates, sessionPath: Path
) -> None:
    """
    Get a TLS 1.3 session that allows early data, for C{localhost}, from
    C{openssl s_server -early_data} on an ephemeral port, serving the same
    certificate as tlsreply will.
    """
    server = subprocess.Popen(
        [openssl, "s_server", "-accept", f"{LOOPBACK}:0", "-naccept", "1", "-early_data",
         "-cert", str(certificates.certificatePath), "-key", str(certificates.keyPath)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    try:
        assert server.stdout is not None and server.stdin is not None
        port = None
        for line in iter(server.stdout.readline, b""):
            if line.startswith(b"ACCEPT"):
                port = int(line.rsplit(b":", 1)[1])
                break
        assert port is not None, "s_server did not start"
        # Hold stdin open until the ticket is saved: at EOF both ends close.
        client = subprocess.Popen(
            [openssl, "s_client", "-connect", f"{LOOPBACK}:{port}", "-servername",
             "localhost", "-CAfile", str(certificates.caPath), "-sess_out",
             str(sessionPath)],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not (
            sessionPath.exists()
            and b"-----END SSL SESSION PARAMETERS-----" in sessionPath.read_bytes()
        ):
            time.sleep(0.02)
        assert client.stdin is not None
        client.stdin.close()
        client.wait(10)
        server.stdin.close()
        server.wait(10)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()


class EarlyDataTests(WireTestCase):
    """
    tlsreply never accepts 0-RTT data; it says when a client offered it.
    """

    async def test_earlyDataOfferGetsFullHandshakeAndIsLogged(self) -> None:
        """
        A client that offers early data with a ticket tlsreply cannot
        decrypt (one that allows early data, from C{openssl s_server
        -early_data}) gets a full 1-RTT handshake, on the context for the
        name it asked for, and the reply; the log says it offered early
        data.
        """
        openssl = requireCommand(self, "openssl")
        directory = temporaryDirectory(self)
        certificates = makeCertificates(directory / "certs")
        sessionPath = directory / "session.pem"
        await inThread(ticketWithEarlyData, openssl, certificates, sessionPath)
        description = runCommand(
            [openssl, "sess_id", "-in", str(sessionPath), "-noout", "-text"]
        ).stdout.decode()
        self.assertRegex(description, r"Max Early Data: [1-9]")
        earlyPath = directory / "early.txt"
        earlyPath.write_bytes(b"GET /replayable HTTP/1.1\r\nHost: localhost\r\n\r\n")
        server = serve(
            self, "--cert", str(certificates.certificatePath),
            "--key", str(certificates.keyPath),
        )
        hellos = recordConnections(server)
        status, output = await sClient(
            self, server, "-servername", "localhost", "-CAfile", str(certificates.caPath),
            "-sess_in", str(sessionPath), "-early_data", str(earlyPath),
        )
        self.assertEqual(status, 0, output)
        self.assertIn("New, TLSv1.3", output)
        self.assertIn("Early data was rejected", output)
        self.assertIn("\ntest\n", output)
        [hello] = hellos
        self.assertEqual(
            (hello.requestedServerName, hello.earlyDataOffered), ("localhost", True)
        )
        event = await server.lastEvent()
        self.assertEqual(event["outcome"], "replied")
        self.assertIs(event["earlyDataOffered"], True)
        self.assertIs(event["resumed"], False)


# The command line: --show-config and invalid values.


class ShowConfigTests(SynchronousTestCase):
    """
    C{--show-config} prints the effective settings as JSON and exits 0.
    """

    def test_showConfig(self) -> None:
        """
        The JSON holds the certificate's facts and every TLS setting as it
        will be used, and the exit status is 0.
        """
        certificates = makeCertificates(temporaryDirectory(self))
        stdout = io.StringIO()
        self.patch(sys, "stdout", stdout)
        with self.assertRaises(SystemExit) as caught:
            Options().parseOptions([
                "--cert", str(certificates.certificatePath), "--key", str(certificates.keyPath),
                "--min-tls", "1.3", "--groups", "X25519:P-384", "--alpn", "h2,http/1.1",
                "--session-timeout", "60", "--session-tickets", "off",
                "--ciphersuites", "TLS_AES_128_GCM_SHA256",
                "--client-ca", str(certificates.caPath), "--verify-client", "optional",
                "--show-config",
            ])
        self.assertEqual(caught.exception.code, 0)
        settings = json.loads(stdout.getvalue())
        [certificate] = settings["certificates"]
        self.assertEqual(certificate["names"], ["localhost", "127.0.0.1", "::1"])
        self.assertEqual(certificate["key"], "ECDSA-P-256")
        tls = settings["tls"]
        self.assertEqual(
            {k: tls[k] for k in ("versions", "groups", "alpn", "sessionCache",
                                 "sessionTimeout", "sessionTickets", "tls13Ciphersuites",
                                 "verifyClient", "clientCA", "earlyData")},
            {
                "versions": "TLSv1.3-TLSv1.3",
                "groups": "X25519:P-384",
                "alpn": "h2,http/1.1",
                "sessionCache": True,
                "sessionTimeout": 60,
                "sessionTickets": False,
                "tls13Ciphersuites": "TLS_AES_128_GCM_SHA256",
                "verifyClient": "optional",
                "clientCA": str(certificates.caPath),
                "earlyData": "refused",
            },
        )


    def test_showConfigOnlyDescribes(self) -> None:
        """
        Without a certificate, C{--show-config} says a development
        certificate would be made, and makes none.
        """
        directory = temporaryDirectory(self)
        previous = Path.cwd()
        os.chdir(directory)
        self.addCleanup(os.chdir, previous)
        stdout = io.StringIO()
        self.patch(sys, "stdout", stdout)
        with self.assertRaises(SystemExit) as caught:
            Options().parseOptions(["--show-config"])
        self.assertEqual(caught.exception.code, 0)
        settings = json.loads(stdout.getvalue())
        self.assertIn("a development certificate, made at start in", settings["certificates"])
        self.assertEqual(list(directory.iterdir()), [])


class InvalidValueTests(SynchronousTestCase):
    """
    Every invalid policy value ends the program with one line naming it and
    a non-zero exit status.
    """

    def setUp(self) -> None:
        self.directory = temporaryDirectory(self)
        self.certificates = makeCertificates(self.directory)
        self.events = captureLogEvents(self)

    def assertRefused(self, message: str, *arguments: str) -> None:
        """
        Parsing C{arguments} (with the test certificate) and making the
        service exits with a one-line message containing C{message}; as
        the exit code is a message, Python exits with status 1.
        """
        with self.assertRaises(SystemExit) as caught:
            options = Options()
            options.parseOptions([
                "--cert", str(self.certificates.certificatePath),
                "--key", str(self.certificates.keyPath), *arguments,
            ])
            makeService(options, reactor=MemoryReactor())
        code = caught.exception.code
        assert isinstance(code, str), f"exit status {code!r} for {arguments}"
        self.assertTrue(code.startswith("tlsreply: "), code)
        self.assertNotIn("\n", code)
        self.assertIn(message, code)

    def test_versions(self) -> None:
        """
        Versions outside 1.2 and 1.3 (and insecure ones outside 1.0 and
        1.1), and a minimum above the maximum, are refused.
        """
        self.assertRefused(
            "--min-tls: expected 1.2 or 1.3, got '1.1' (TLS 1.0 and 1.1 are insecure: "
            "allow them with --insecure-min-tls)",
            "--min-tls", "1.1",
        )
        self.assertRefused("--max-tls: expected 1.2 or 1.3, got '1.4'", "--max-tls", "1.4")
        self.assertRefused(
            "--insecure-min-tls: expected 1.0 or 1.1, got '1.2'", "--insecure-min-tls", "1.2"
        )
        self.assertRefused(
            "minimum TLS version TLSv1.3 is above the maximum TLSv1.2",
            "--min-tls", "1.3", "--max-tls", "1.2",
        )

    def test_ciphersAndGroups(self) -> None:
        """
        A cipher string or ciphersuites that select nothing, and an unknown
        group, are refused by name.
        """
        self.assertRefused("cipher string 'NOPE' selects no cipher", "--ciphers", "NOPE")
        self.assertRefused(
            "TLS 1.3 ciphersuites 'TLS_NOPE_SHA256' select no suite",
            "--ciphersuites", "TLS_NOPE_SHA256",
        )
        self.assertRefused("unknown key-exchange group 'P-999'", "--groups", "X25519:P-999")
        self.assertRefused("needs at least one group", "--groups", ":")

    def test_sessions(self) -> None:
        """
        Session switches take on or off; the timeout a whole number of
        seconds from 1.
        """
        self.assertRefused("--session-cache: expected on or off, got 'yes'", "--session-cache", "yes")
        self.assertRefused("--session-tickets: expected on or off, got '1'", "--session-tickets", "1")
        for value in ("0", "-1", "1.5", "soon"):
            self.assertRefused("--session-timeout: expected a whole number", "--session-timeout", value)
            self.assertRefused(f"got {value!r}", "--session-timeout", value)

    def test_alpn(self) -> None:
        """
        An empty protocol list, and a protocol name too long for ALPN, are
        refused.
        """
        self.assertRefused("--alpn: needs at least one protocol name", "--alpn", " , ")
        self.assertRefused("bad ALPN protocol name", "--alpn", "h2," + "x" * 256)

    def test_clientCertificates(self) -> None:
        """
        C{--verify-client} takes none, optional or require; asking for
        client certificates needs a client CA, a client CA needs
        verification, and the client CA file must hold certificates.
        """
        self.assertRefused(
            "--verify-client: expected none, optional or require, got 'always'",
            "--verify-client", "always",
        )
        self.assertRefused(
            "verify-client require needs a client CA file (--client-ca)",
            "--verify-client", "require",
        )
        self.assertRefused(
            "--client-ca needs --verify-client optional or require",
            "--client-ca", str(self.certificates.caPath),
        )
        missing = self.directory / "missing.pem"
        self.assertRefused(
            f"client CA file not found: {missing}",
            "--client-ca", str(missing), "--verify-client", "optional",
        )
        notPEM = self.directory / "not.pem"
        notPEM.write_text("hello\n")
        self.assertRefused(
            f"client CA file {notPEM} holds no PEM certificate",
            "--client-ca", str(notPEM), "--verify-client", "require",
        )

    def test_ocspResponse(self) -> None:
        """
        An OCSP response file that is not DER OCSP, or is missing, is
        refused by name.
        """
        bad = self.directory / "bad.ocsp"
        bad.write_bytes(b"not an OCSP response")
        self.assertRefused(
            f"OCSP response file {bad} is not a DER OCSP response",
            "--ocsp-response", str(bad),
        )
        missing = self.directory / "missing.ocsp"
        self.assertRefused(
            f"OCSP response file not found: {missing}", "--ocsp-response", str(missing)
        )

    def test_keyLog(self) -> None:
        """
        A key-log file that cannot be opened is refused with the reason.
        """
        path = self.directory / "no-such-directory" / "keys.log"
        self.assertRefused(
            f"cannot open key-log file {path}: No such file or directory",
            "--keylog", str(path),
        )

    def test_certificateDirectory(self) -> None:
        """
        A certificate folder that is missing, empty, or holds a certificate
        without its key is refused by name.
        """
        missing = self.directory / "missing"
        self.assertRefused(
            f"cannot read certificate directory {missing}", "--cert-dir", str(missing)
        )
        empty = self.directory / "empty"
        empty.mkdir()
        self.assertRefused(
            f"certificate directory {empty} holds no certificate", "--cert-dir", str(empty)
        )
        keyless = self.directory / "keyless"
        keyless.mkdir()
        (keyless / "a.pem").write_bytes(self.certificates.certificatePath.read_bytes())
        self.assertRefused(
            f"certificate {keyless / 'a.pem'} in {keyless} has no key", "--cert-dir",
            str(keyless),
        )


# The same tests with TLS over memory BIOs (haproxy: and embedders' endpoints).
VersionTestsOnMemoryBIO = onMemoryBIO(VersionTests)
CipherTestsOnMemoryBIO = onMemoryBIO(CipherTests)
GroupTestsOnMemoryBIO = onMemoryBIO(GroupTests)
CertificateSelectionTestsOnMemoryBIO = onMemoryBIO(CertificateSelectionTests)
OCSPStaplingTestsOnMemoryBIO = onMemoryBIO(OCSPStaplingTests)
SessionTestsOnMemoryBIO = onMemoryBIO(SessionTests)
ALPNTestsOnMemoryBIO = onMemoryBIO(ALPNTests)
ClientCertificateTestsOnMemoryBIO = onMemoryBIO(ClientCertificateTests)
KeyLogTestsOnMemoryBIO = onMemoryBIO(KeyLogTests)
EarlyDataTestsOnMemoryBIO = onMemoryBIO(EarlyDataTests)


class PolicyValidationTests(SynchronousTestCase):
    """
    Every field of a L{TLSPolicy} is checked when the policy is made: a
    mistake is a L{ConfigurationError} naming the field, never a
    C{TypeError} later or silence.
    """

    def assertRefused(self, message: str, **fields: object) -> None:
        with self.assertRaises(ConfigurationError) as caught:
            TLSPolicy(**fields)  # type: ignore[arg-type]
        self.assertIn(message, str(caught.exception))

    def test_eachFieldIsChecked(self) -> None:
        """
        A string for ALPN (a slip for a tuple), a version as text, numbers
        where text belongs, and text where a flag belongs are refused.
        """
        self.assertRefused("TLSPolicy.alpnProtocols: expected a sequence", alpnProtocols="h2")
        self.assertRefused("TLSPolicy.minimumVersion: expected a TLSVersion", minimumVersion="1.3")
        self.assertRefused("TLSPolicy.maximumVersion: expected a TLSVersion", maximumVersion=1.3)
        self.assertRefused("TLSPolicy.groups: expected None or a non-empty", groups=7)
        self.assertRefused("TLSPolicy.tls12Ciphers", tls12Ciphers="")
        self.assertRefused("TLSPolicy.sessionCache: expected True or False", sessionCache="on")
        self.assertRefused("TLSPolicy.sessionTimeout: expected whole seconds", sessionTimeout=1.5)
        self.assertRefused("TLSPolicy.sessionTimeout", sessionTimeout=0)
        self.assertRefused("TLSPolicy.verifyClient", verifyClient="always")
        self.assertRefused("TLSPolicy.clientCAPath: expected None or a path", clientCAPath=3)
        self.assertRefused(
            "TLSPolicy.insecureMinimumVersion", insecureMinimumVersion=TLSVersion.TLSv1_2
        )
        self.assertRefused("bad ALPN protocol name", alpnProtocols=("h2", ""))

    def test_convenientFormsAreAccepted(self) -> None:
        """
        ALPN protocols as a list and paths as strings are taken as such.
        """
        policy = TLSPolicy(alpnProtocols=["h2"], keyLogPath="/tmp/keys")  # type: ignore[arg-type]
        self.assertEqual(policy.alpnProtocols, ("h2",))
        self.assertEqual(policy.keyLogPath, Path("/tmp/keys"))
