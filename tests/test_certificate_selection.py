"""
Which certificate a client is served, proven on the wire: several
C{--cert}s (one per key type, each with its own C{--chain}; others chosen
by the server name), C{--cert-dir}, and the OCSP responses stapled for
them (C{--ocsp-response}).
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass
from pathlib import Path

import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509 import ocsp

from tests.policyserver import anyName, ciphers, fetch, sClient, serve, writeCombined
from tests.support import (
    WireTestCase,
    clientContext,
    makeCertificates,
    onMemoryBIO,
    temporaryDirectory,
)

# Certificates and OCSP responses.


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


# Certificate selection.


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

    async def test_exactNameWinsOverWildcard(self) -> None:
        """
        A certificate for the exact name the client asks for is chosen over
        a wildcard that also matches it, whichever was configured first;
        the wildcard serves the rest of its names.
        """
        directory = temporaryDirectory(self)
        ca = trustme.CA()
        caPath = directory / "ca.pem"
        ca.cert_pem.write_to_path(str(caPath))
        wildcard = ca.issue_cert("*.w.test")
        exact = ca.issue_cert("a.w.test")
        wildcardPath = writeCombined(directory / "w.pem", wildcard)
        exactPath = writeCombined(directory / "a.pem", exact)
        context = clientContext(str(caPath))
        for order in ((wildcardPath, exactPath), (exactPath, wildcardPath)):
            server = serve(self, "--cert", str(order[0]), "--cert", str(order[1]))
            for serverName, leaf in [("a.w.test", exact), ("A.W.test", exact),
                                     ("b.w.test", wildcard)]:
                result = await fetch(server, context, serverName=serverName)
                self.assertEqual(
                    result.peerCertificate, der(certificateOf(leaf)),
                    f"for {serverName}, configured as {[p.name for p in order]}",
                )
            await server.service.stopService()

    async def test_certificateDirectory(self) -> None:
        """
        C{--cert-dir} serves every certificate in a folder: a certificate
        with its key in C{NAME.key}, one with its key in the same file, one
        with an OCSP response in C{NAME.ocsp} (stapled for C{s_client
        -status}), a PEM certificate named C{.cer}; other files are
        ignored, and the first certificate in name order serves unknown
        names.
        """
        directory = temporaryDirectory(self)
        folder = directory / "certs"
        folder.mkdir()
        ca = trustme.CA()
        caPath = directory / "ca.pem"
        ca.cert_pem.write_to_path(str(caPath))
        a, b, c, d = (ca.issue_cert(f"{n}.test") for n in "abcd")
        (folder / "a.pem").write_bytes(b"".join(p.bytes() for p in a.cert_chain_pems))
        a.private_key_pem.write_to_path(str(folder / "a.key"))
        writeCombined(folder / "b.pem", b)
        (folder / "c.crt").write_bytes(b"".join(p.bytes() for p in c.cert_chain_pems))
        c.private_key_pem.write_to_path(str(folder / "c.key"))
        (folder / "c.ocsp").write_bytes(ocspResponse(ca, certificateOf(c)))
        (folder / "d.cer").write_bytes(b"".join(p.bytes() for p in d.cert_chain_pems))
        d.private_key_pem.write_to_path(str(folder / "d.key"))
        (folder / "README.txt").write_text("not a certificate\n")
        server = serve(self, "--cert-dir", str(folder))
        context = clientContext(str(caPath), anyName)
        for serverName, leaf in [
            ("a.test", a), ("b.test", b), ("c.test", c), ("d.test", d), ("other.test", a),
            (None, a),
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


# OCSP stapling.


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


# The same tests with TLS over memory BIOs (haproxy: and embedders' endpoints).
CertificateSelectionTestsOnMemoryBIO = onMemoryBIO(CertificateSelectionTests)
OCSPStaplingTestsOnMemoryBIO = onMemoryBIO(OCSPStaplingTests)
