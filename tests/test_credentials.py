"""
Tests for L{tlsreply.tls.credentials}: loading a certificate, its key and its
chain from PEM files, the one-line errors for every way those files can be
wrong, and the judgement of a certificate's validity dates.

Every certificate and key is made at test time (with C{trustme}, or
C{cryptography} where a test needs something trustme cannot make) and
written to a temporary directory that is removed after the test.
"""

from __future__ import annotations

import datetime
import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa, x25519
from cryptography.x509.oid import NameOID
from twisted.trial.unittest import SynchronousTestCase

from tests.support import requireCommand, temporaryDirectory
from tlsreply.errors import ConfigurationError
from tlsreply.tls.credentials import (
    ServerCredentials,
    ServerPrivateKey,
    loadCertificates,
    loadCredentials,
    loadPrivateKey,
    validityProblem,
)


def writeFile(directory: Path, name: str, *parts: bytes) -> Path:
    """
    Write the concatenation of C{parts} to C{directory/name}.
    """
    path = directory / name
    path.write_bytes(b"".join(parts))
    return path


def certificateOf(pem: trustme.Blob) -> x509.Certificate:
    """
    Parse a trustme PEM blob holding one certificate.
    """
    return x509.load_pem_x509_certificate(pem.bytes())


def publicKeyBytes(certificateOrKey: x509.Certificate | ServerPrivateKey) -> bytes:
    """
    The DER SubjectPublicKeyInfo of a certificate or private key, to
    compare keys by value.
    """
    return certificateOrKey.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def unencryptedPEM(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> bytes:
    """
    A private key as unencrypted PKCS#8 PEM.
    """
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


class LoadCredentialsTests(SynchronousTestCase):
    """
    L{loadCredentials} reads the layouts operators use: separate certificate
    and key files, one combined file, and a chain after the leaf or in a
    file of its own.
    """

    def setUp(self) -> None:
        self.directory = temporaryDirectory(self)
        self.ca = trustme.CA()
        self.leaf = self.ca.issue_cert("localhost", "127.0.0.1")
        self.leafPEM = self.leaf.cert_chain_pems[0].bytes()
        self.keyPEM = self.leaf.private_key_pem.bytes()

    def assertIsLeaf(self, credentials: ServerCredentials) -> None:
        """
        C{credentials} hold the test leaf certificate and its private key.
        """
        self.assertEqual(
            credentials.certificate, x509.load_pem_x509_certificate(self.leafPEM)
        )
        self.assertEqual(
            publicKeyBytes(credentials.privateKey),
            publicKeyBytes(credentials.certificate),
        )

    def test_separateFiles(self) -> None:
        """
        A certificate file and a key file give the leaf, its key, no chain,
        and remember where the certificate came from.
        """
        certificatePath = writeFile(self.directory, "cert.pem", self.leafPEM)
        keyPath = writeFile(self.directory, "key.pem", self.keyPEM)
        credentials = loadCredentials(certificatePath, keyPath)
        self.assertIsLeaf(credentials)
        self.assertEqual(credentials.chain, ())
        self.assertEqual(credentials.certificatePath, certificatePath)

    def test_stringPaths(self) -> None:
        """
        Paths may be given as strings, as the command line hands them over.
        """
        certificatePath = writeFile(self.directory, "cert.pem", self.leafPEM)
        keyPath = writeFile(self.directory, "key.pem", self.keyPEM)
        credentials = loadCredentials(str(certificatePath), str(keyPath))
        self.assertIsLeaf(credentials)
        self.assertEqual(credentials.certificatePath, certificatePath)

    def test_combinedFile(self) -> None:
        """
        With no key path, the key is read from the certificate file, which
        then holds both (the classic C{server.pem}).
        """
        combined = writeFile(self.directory, "server.pem", self.leafPEM, self.keyPEM)
        credentials = loadCredentials(combined)
        self.assertIsLeaf(credentials)
        self.assertEqual(credentials.chain, ())

    def test_combinedFileKeyFirst(self) -> None:
        """
        A combined file may put the key before the certificate.
        """
        combined = writeFile(self.directory, "server.pem", self.keyPEM, self.leafPEM)
        self.assertIsLeaf(loadCredentials(combined))

    def makeChain(self) -> tuple[trustme.LeafCert, x509.Certificate, x509.Certificate]:
        """
        A leaf issued by intermediate C{i1}, which was issued by C{i2},
        which was issued by a root.

        @return: the leaf, C{i1} and C{i2}.
        """
        root = trustme.CA()
        i2 = root.create_child_ca()
        i1 = i2.create_child_ca()
        return (
            i1.issue_cert("localhost"),
            certificateOf(i1.cert_pem),
            certificateOf(i2.cert_pem),
        )

    def test_chainInCertificateFile(self) -> None:
        """
        Certificates after the leaf in the certificate file are the chain,
        kept in file order: the leaf's issuer first.
        """
        leaf, i1, i2 = self.makeChain()
        certificatePath = writeFile(
            self.directory,
            "fullchain.pem",
            leaf.cert_chain_pems[0].bytes(),
            i1.public_bytes(serialization.Encoding.PEM),
            i2.public_bytes(serialization.Encoding.PEM),
        )
        keyPath = writeFile(self.directory, "key.pem", leaf.private_key_pem.bytes())
        credentials = loadCredentials(certificatePath, keyPath)
        self.assertEqual(
            credentials.certificate, certificateOf(leaf.cert_chain_pems[0])
        )
        self.assertEqual(credentials.chain, (i1, i2))
        self.assertEqual(credentials.chain[0].subject, credentials.certificate.issuer)
        self.assertEqual(credentials.chain[1].subject, credentials.chain[0].issuer)

    def test_chainInSeparateFile(self) -> None:
        """
        A separate chain file supplies the intermediates, leaf's issuer
        first.
        """
        leaf, i1, i2 = self.makeChain()
        certificatePath = writeFile(
            self.directory, "cert.pem", leaf.cert_chain_pems[0].bytes()
        )
        keyPath = writeFile(self.directory, "key.pem", leaf.private_key_pem.bytes())
        chainPath = writeFile(
            self.directory,
            "chain.pem",
            i1.public_bytes(serialization.Encoding.PEM),
            i2.public_bytes(serialization.Encoding.PEM),
        )
        credentials = loadCredentials(certificatePath, keyPath, chainPath)
        self.assertEqual(credentials.chain, (i1, i2))

    def test_chainFileAppendedAfterCertificateFileChain(self) -> None:
        """
        Intermediates in the certificate file come first, then those of the
        chain file, so that a chain split across the two stays in order.
        """
        leaf, i1, i2 = self.makeChain()
        certificatePath = writeFile(
            self.directory,
            "cert.pem",
            leaf.cert_chain_pems[0].bytes(),
            i1.public_bytes(serialization.Encoding.PEM),
        )
        keyPath = writeFile(self.directory, "key.pem", leaf.private_key_pem.bytes())
        chainPath = writeFile(
            self.directory, "chain.pem", i2.public_bytes(serialization.Encoding.PEM)
        )
        credentials = loadCredentials(certificatePath, keyPath, chainPath)
        self.assertEqual(credentials.chain, (i1, i2))

    def test_loadCertificatesInFileOrder(self) -> None:
        """
        L{loadCertificates} returns every certificate of a file, in order,
        and ignores a private key in the same file.
        """
        leaf, i1, i2 = self.makeChain()
        path = writeFile(
            self.directory,
            "bundle.pem",
            leaf.cert_chain_pems[0].bytes(),
            leaf.private_key_pem.bytes(),
            i1.public_bytes(serialization.Encoding.PEM),
            i2.public_bytes(serialization.Encoding.PEM),
        )
        self.assertEqual(
            loadCertificates(path), [certificateOf(leaf.cert_chain_pems[0]), i1, i2]
        )

    def test_loadPrivateKeyFromCombinedFile(self) -> None:
        """
        L{loadPrivateKey} finds the key between certificates.
        """
        path = writeFile(
            self.directory,
            "server.pem",
            self.leafPEM,
            self.keyPEM,
            self.ca.cert_pem.bytes(),
        )
        key = loadPrivateKey(path)
        self.assertEqual(
            publicKeyBytes(key),
            publicKeyBytes(certificateOf(self.leaf.cert_chain_pems[0])),
        )

    def test_loadPrivateKeyRSA(self) -> None:
        """
        An unencrypted RSA key in the traditional C{BEGIN RSA PRIVATE KEY}
        form loads too.
        """
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        path = writeFile(
            self.directory,
            "rsa.pem",
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.TraditionalOpenSSL,
                serialization.NoEncryption(),
            ),
        )
        loaded = loadPrivateKey(path)
        self.assertIsInstance(loaded, rsa.RSAPrivateKey)
        self.assertEqual(publicKeyBytes(loaded), publicKeyBytes(key))


class CredentialErrorTests(SynchronousTestCase):
    """
    Every problem with a certificate, key or chain file is a
    L{ConfigurationError} whose message is one line that names the file and
    says what is wrong with it.
    """

    def setUp(self) -> None:
        self.directory = temporaryDirectory(self)
        self.ca = trustme.CA()
        self.leaf = self.ca.issue_cert("localhost")
        self.certificatePath = writeFile(
            self.directory, "cert.pem", self.leaf.cert_chain_pems[0].bytes()
        )
        self.keyPath = writeFile(
            self.directory, "key.pem", self.leaf.private_key_pem.bytes()
        )

    def assertConfigurationError(
        self, call: Callable[[], object], path: Path, *fragments: str
    ) -> str:
        """
        C{call} raises a L{ConfigurationError} whose message is a single
        line naming C{path} and containing every one of C{fragments}.

        @return: the message.
        """
        error = self.assertRaises(ConfigurationError, call)
        message = str(error)
        self.assertNotIn("\n", message)
        self.assertIn(str(path), message)
        for fragment in fragments:
            self.assertIn(fragment, message)
        return message

    def test_missingCertificateFile(self) -> None:
        """
        A certificate path that does not exist is reported as not found.
        """
        missing = self.directory / "nope.pem"
        self.assertConfigurationError(
            lambda: loadCredentials(missing, self.keyPath),
            missing,
            "certificate file not found",
        )

    def test_missingKeyFile(self) -> None:
        """
        A key path that does not exist is reported as a missing private key
        file, not as a certificate problem.
        """
        missing = self.directory / "nope.key"
        self.assertConfigurationError(
            lambda: loadCredentials(self.certificatePath, missing),
            missing,
            "private key file not found",
        )

    def test_missingChainFile(self) -> None:
        """
        A chain path that does not exist is reported as a missing chain
        file.
        """
        missing = self.directory / "nope-chain.pem"
        self.assertConfigurationError(
            lambda: loadCredentials(self.certificatePath, self.keyPath, missing),
            missing,
            "chain file not found",
        )

    def test_certificatePathIsDirectory(self) -> None:
        """
        A directory given as the certificate is reported as a directory.
        """
        self.assertConfigurationError(
            lambda: loadCredentials(self.directory, self.keyPath),
            self.directory,
            "certificate path is a directory",
        )

    def test_keyPathIsDirectory(self) -> None:
        """
        A directory given as the key is reported as a directory.
        """
        self.assertConfigurationError(
            lambda: loadCredentials(self.certificatePath, self.directory),
            self.directory,
            "private key path is a directory",
        )

    def test_unreadableFile(self) -> None:
        """
        A certificate file that cannot be read is reported with the
        operating system's reason.
        """
        if os.geteuid() == 0:
            self.skipTest("root can read a file whatever its mode")
        self.certificatePath.chmod(0)
        self.addCleanup(self.certificatePath.chmod, 0o600)
        self.assertConfigurationError(
            lambda: loadCredentials(self.certificatePath, self.keyPath),
            self.certificatePath,
            "cannot read certificate file",
            "Permission denied",
        )

    def test_derCertificate(self) -> None:
        """
        A DER certificate is not mistaken for a malformed PEM one: the file
        holds no PEM certificate.
        """
        der = certificateOf(self.leaf.cert_chain_pems[0]).public_bytes(
            serialization.Encoding.DER
        )
        path = writeFile(self.directory, "cert.der", der)
        self.assertConfigurationError(
            lambda: loadCredentials(path, self.keyPath),
            path,
            "holds no PEM certificate",
        )

    def test_randomText(self) -> None:
        """
        A file of text that is not PEM holds no PEM certificate.
        """
        path = writeFile(self.directory, "notes.txt", b"this is not a certificate\n")
        self.assertConfigurationError(
            lambda: loadCredentials(path, self.keyPath),
            path,
            "holds no PEM certificate",
        )

    def test_emptyFile(self) -> None:
        """
        An empty certificate file holds no PEM certificate.
        """
        path = writeFile(self.directory, "empty.pem")
        self.assertConfigurationError(
            lambda: loadCredentials(path, self.keyPath),
            path,
            "holds no PEM certificate",
        )

    def test_malformedCertificate(self) -> None:
        """
        A PEM certificate block whose content is not a certificate is
        reported as malformed.
        """
        path = writeFile(
            self.directory,
            "bad.pem",
            b"-----BEGIN CERTIFICATE-----\nMAMCAQA=\n-----END CERTIFICATE-----\n",
        )
        self.assertConfigurationError(
            lambda: loadCredentials(path, self.keyPath),
            path,
            "malformed PEM certificate",
        )

    def test_truncatedCertificate(self) -> None:
        """
        A PEM certificate cut off before its END line is reported as
        malformed.
        """
        pem = self.leaf.cert_chain_pems[0].bytes()
        path = writeFile(self.directory, "cut.pem", pem[: len(pem) // 2])
        self.assertConfigurationError(
            lambda: loadCredentials(path, self.keyPath),
            path,
            "malformed PEM certificate",
        )

    def test_malformedChainCertificate(self) -> None:
        """
        A malformed certificate in the chain file is reported against the
        chain file.
        """
        path = writeFile(
            self.directory,
            "chain.pem",
            b"-----BEGIN CERTIFICATE-----\nMAMCAQA=\n-----END CERTIFICATE-----\n",
        )
        self.assertConfigurationError(
            lambda: loadCredentials(self.certificatePath, self.keyPath, path),
            path,
            "chain file",
            "malformed PEM certificate",
        )

    def test_keyFileWithoutKey(self) -> None:
        """
        A key file that holds only a certificate holds no PEM private key.
        """
        self.assertConfigurationError(
            lambda: loadCredentials(self.certificatePath, self.certificatePath),
            self.certificatePath,
            "holds no PEM private key",
        )

    def test_certificateFileWithoutKeyAndNoKeyPath(self) -> None:
        """
        With no key path, a certificate file without a key is reported as
        holding no private key: the operator forgot C{--key}.
        """
        self.assertConfigurationError(
            lambda: loadCredentials(self.certificatePath),
            self.certificatePath,
            "holds no PEM private key",
        )

    def test_derKey(self) -> None:
        """
        A DER private key holds no PEM private key.
        """
        key = ec.generate_private_key(ec.SECP256R1())
        path = writeFile(
            self.directory,
            "key.der",
            key.private_bytes(
                serialization.Encoding.DER,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ),
        )
        self.assertConfigurationError(
            lambda: loadCredentials(self.certificatePath, path),
            path,
            "holds no PEM private key",
        )

    def test_malformedKey(self) -> None:
        """
        A PEM private key block whose content is not a key is reported as
        malformed.
        """
        path = writeFile(
            self.directory,
            "bad.key",
            b"-----BEGIN PRIVATE KEY-----\nMAMCAQA=\n-----END PRIVATE KEY-----\n",
        )
        self.assertConfigurationError(
            lambda: loadCredentials(self.certificatePath, path),
            path,
            "malformed or unsupported key",
        )

    def test_encryptedPKCS8Key(self) -> None:
        """
        An encrypted PKCS#8 key (C{BEGIN ENCRYPTED PRIVATE KEY}) is reported
        as encrypted, since tlsreply takes no passphrase.
        """
        key = ec.generate_private_key(ec.SECP256R1())
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"passphrase"),
        )
        self.assertIn(b"BEGIN ENCRYPTED PRIVATE KEY", pem)
        path = writeFile(self.directory, "encrypted.key", pem)
        self.assertConfigurationError(
            lambda: loadPrivateKey(path), path, "is encrypted"
        )

    def test_encryptedLegacyRSAKey(self) -> None:
        """
        A legacy encrypted RSA key (C{Proc-Type: 4,ENCRYPTED} headers) is
        reported as encrypted.
        """
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.BestAvailableEncryption(b"passphrase"),
        )
        self.assertIn(b"Proc-Type: 4,ENCRYPTED", pem)
        path = writeFile(self.directory, "legacy.key", pem)
        self.assertConfigurationError(
            lambda: loadPrivateKey(path), path, "is encrypted"
        )

    def test_encryptedKeyInCombinedFile(self) -> None:
        """
        An encrypted key in a combined file is reported as encrypted, naming
        the combined file.
        """
        key = ec.generate_private_key(ec.SECP256R1())
        path = writeFile(
            self.directory,
            "server.pem",
            self.leaf.cert_chain_pems[0].bytes(),
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.BestAvailableEncryption(b"passphrase"),
            ),
        )
        self.assertConfigurationError(
            lambda: loadCredentials(path), path, "is encrypted"
        )

    def test_keyThatCannotSign(self) -> None:
        """
        A key type that cannot sign a TLS handshake (X25519) is refused by
        name.
        """
        path = writeFile(
            self.directory,
            "x25519.key",
            x25519.X25519PrivateKey.generate().private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ),
        )
        self.assertConfigurationError(
            lambda: loadPrivateKey(path), path, "X25519PrivateKey", "cannot sign"
        )

    def test_mismatchedKey(self) -> None:
        """
        A valid key that belongs to another certificate is refused, naming
        both files.
        """
        otherKey = writeFile(
            self.directory,
            "other.key",
            unencryptedPEM(ec.generate_private_key(ec.SECP256R1())),
        )
        message = self.assertConfigurationError(
            lambda: loadCredentials(self.certificatePath, otherKey),
            otherKey,
            "does not match",
        )
        self.assertIn(str(self.certificatePath), message)


REFERENCE_TIME = datetime.datetime(2030, 6, 1, 12, 0, tzinfo=datetime.UTC)
NOT_BEFORE = REFERENCE_TIME - datetime.timedelta(days=30)
NOT_AFTER = REFERENCE_TIME + datetime.timedelta(days=60)


class ValidityProblemTests(SynchronousTestCase):
    """
    L{validityProblem} makes an expired, not yet valid or soon expiring
    certificate impossible to miss, and says nothing about a good one.
    """

    def setUp(self) -> None:
        leaf = trustme.CA().issue_cert(
            "localhost", not_before=NOT_BEFORE, not_after=NOT_AFTER
        )
        key = serialization.load_pem_private_key(
            leaf.private_key_pem.bytes(), password=None
        )
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        self.path = Path("/etc/tlsreply/cert.pem")
        self.credentials = ServerCredentials(
            certificateOf(leaf.cert_chain_pems[0]), key, (), self.path
        )

    def test_expired(self) -> None:
        """
        After C{notAfter} the certificate is an error, shouted as EXPIRED,
        with the path and the expiry date.
        """
        problem = validityProblem(
            self.credentials, NOT_AFTER + datetime.timedelta(seconds=1)
        )
        assert problem is not None
        self.assertEqual(problem.severity, "error")
        self.assertIn("EXPIRED", problem.message)
        self.assertIn(str(self.path), problem.message)
        self.assertIn(f"{NOT_AFTER:%Y-%m-%d %H:%M:%S}", problem.message)
        self.assertNotIn("\n", problem.message)

    def test_notYetValid(self) -> None:
        """
        Before C{notBefore} the certificate is a warning that says when it
        becomes valid.
        """
        problem = validityProblem(
            self.credentials, NOT_BEFORE - datetime.timedelta(days=1)
        )
        assert problem is not None
        self.assertEqual(problem.severity, "warn")
        self.assertIn("NOT YET VALID", problem.message)
        self.assertIn(str(self.path), problem.message)
        self.assertIn(f"{NOT_BEFORE:%Y-%m-%d %H:%M:%S}", problem.message)

    def test_expiringWithinTwoWeeks(self) -> None:
        """
        A certificate that expires in less than 14 days is a warning naming
        the expiry date.
        """
        problem = validityProblem(
            self.credentials, NOT_AFTER - datetime.timedelta(days=13)
        )
        assert problem is not None
        self.assertEqual(problem.severity, "warn")
        self.assertIn("expires soon", problem.message)
        self.assertIn(f"{NOT_AFTER:%Y-%m-%d %H:%M:%S}", problem.message)

    def test_fine(self) -> None:
        """
        A certificate inside its validity period and more than 14 days from
        expiry is no problem at all.
        """
        self.assertIsNone(validityProblem(self.credentials, REFERENCE_TIME))
        self.assertIsNone(
            validityProblem(self.credentials, NOT_AFTER - datetime.timedelta(days=15))
        )
        self.assertIsNone(validityProblem(self.credentials, NOT_BEFORE))


def certificateWithoutSubjectAlternativeName() -> x509.Certificate:
    """
    A self-signed certificate with only a common name, which trustme cannot
    make.
    """
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "legacy.example")])
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )


class IdentityTests(SynchronousTestCase):
    """
    L{ServerCredentials.fingerprint} and L{ServerCredentials.subjectNames}
    are what the start-up log shows, so they must match what an operator's
    own tools say about the certificate.
    """

    def test_fingerprintMatchesOpenSSL(self) -> None:
        """
        The fingerprint is exactly what C{openssl x509 -noout -fingerprint
        -sha256} prints after its C{=}.
        """
        openssl = requireCommand(self, "openssl")
        directory = temporaryDirectory(self)
        leaf = trustme.CA().issue_cert("localhost")
        certificatePath = writeFile(
            directory, "cert.pem", leaf.cert_chain_pems[0].bytes()
        )
        keyPath = writeFile(directory, "key.pem", leaf.private_key_pem.bytes())
        credentials = loadCredentials(certificatePath, keyPath)
        result = subprocess.run(
            [
                openssl,
                "x509",
                "-noout",
                "-fingerprint",
                "-sha256",
                "-in",
                str(certificatePath),
            ],
            capture_output=True,
            check=True,
            timeout=30,
        )
        printed = result.stdout.decode("ascii").strip()
        label, _, fingerprint = printed.partition("=")
        self.assertIn("Fingerprint", label)
        self.assertEqual(credentials.fingerprint, fingerprint)

    def test_fingerprintFormat(self) -> None:
        """
        The fingerprint is 32 upper-case hex bytes joined by colons.
        """
        leaf = trustme.CA().issue_cert("localhost")
        certificate = certificateOf(leaf.cert_chain_pems[0])
        credentials = ServerCredentials(
            certificate, ec.generate_private_key(ec.SECP256R1())
        )
        parts = credentials.fingerprint.split(":")
        self.assertEqual(len(parts), 32)
        self.assertEqual(
            bytes.fromhex("".join(parts)),
            certificate.fingerprint(hashes.SHA256()),
        )
        self.assertEqual(credentials.fingerprint, credentials.fingerprint.upper())

    def test_subjectNames(self) -> None:
        """
        The subject names are the certificate's DNS names, then its IP
        addresses in their usual text form.
        """
        leaf = trustme.CA().issue_cert(
            "localhost", "www.example.org", "127.0.0.1", "::1"
        )
        credentials = ServerCredentials(
            certificateOf(leaf.cert_chain_pems[0]),
            ec.generate_private_key(ec.SECP256R1()),
        )
        self.assertEqual(
            credentials.subjectNames,
            ("localhost", "www.example.org", "127.0.0.1", "::1"),
        )

    def test_noSubjectAlternativeName(self) -> None:
        """
        A certificate without a subjectAltName extension has no subject
        names (its common name is not one: clients ignore it).
        """
        credentials = ServerCredentials(
            certificateWithoutSubjectAlternativeName(),
            ec.generate_private_key(ec.SECP256R1()),
        )
        self.assertEqual(credentials.subjectNames, ())
