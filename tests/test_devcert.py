"""
Tests for L{tlsreply.tls.devcert.ensureDevelopmentCertificate}: the self-signed
certificate that lets C{twistd -n tlsreply} serve TLS with no set-up, made
once, reused, renewed before it expires, and trusted by clients that are
pointed at it; and for its two halves, which the command line runs apart
(made in memory at build, saved once the server listens).
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import ssl
import stat
from concurrent.futures import ThreadPoolExecutor

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from twisted.trial.unittest import SynchronousTestCase

from tests.support import temporaryDirectory
from tlsreply.errors import ConfigurationError
from tlsreply.testing.inmemory import handshakeInMemory
from tlsreply.tls.credentials import loadCredentials
from tlsreply.tls.devcert import (
    CERTIFICATE_NAME,
    PRIVATE_KEY_NAME,
    DevelopmentCertificate,
    ensureDevelopmentCertificate,
    prepareDevelopmentCertificate,
    saveDevelopmentCertificate,
)


class EnsureDevelopmentCertificateTests(SynchronousTestCase):
    """
    L{ensureDevelopmentCertificate} makes a usable certificate and key in a
    directory, and keeps reusing them until they near expiry.
    """

    def setUp(self) -> None:
        self.directory = temporaryDirectory(self) / "state" / "certs"

    def test_createsFilesInNewDirectory(self) -> None:
        """
        In a directory that does not exist yet, it creates the directory,
        then exactly C{dev-cert.pem} and C{dev-key.pem} (no temporary files
        left behind), and says it created them.
        """
        self.assertFalse(self.directory.exists())
        result = ensureDevelopmentCertificate(self.directory)
        self.assertTrue(result.created)
        self.assertEqual(result.certificatePath, self.directory / "dev-cert.pem")
        self.assertEqual(result.privateKeyPath, self.directory / "dev-key.pem")
        self.assertEqual(CERTIFICATE_NAME, "dev-cert.pem")
        self.assertEqual(PRIVATE_KEY_NAME, "dev-key.pem")
        # The files, and the lock that serialises concurrent first starts;
        # no temporary file is left behind.
        self.assertEqual(
            sorted(os.listdir(self.directory)),
            [".dev-cert.lock", "dev-cert.pem", "dev-key.pem"],
        )

    def test_privateKeyFileIsPrivate(self) -> None:
        """
        Only the owner can read or write the private key file.
        """
        result = ensureDevelopmentCertificate(self.directory)
        mode = stat.S_IMODE(result.privateKeyPath.stat().st_mode)
        self.assertEqual(mode, 0o600)

    def test_filesMatchReturnedCredentials(self) -> None:
        """
        The files on disk load as the credentials that were returned.
        """
        result = ensureDevelopmentCertificate(self.directory)
        loaded = loadCredentials(result.certificatePath, result.privateKeyPath)
        self.assertEqual(loaded.fingerprint, result.credentials.fingerprint)
        self.assertEqual(loaded.certificate, result.credentials.certificate)

    def test_subjectAlternativeNames(self) -> None:
        """
        The certificate is valid for exactly C{localhost}, C{127.0.0.1} and
        C{::1}, and for nothing else.
        """
        result = ensureDevelopmentCertificate(self.directory)
        certificate = loadCredentials(
            result.certificatePath, result.privateKeyPath
        ).certificate
        san = certificate.extensions.get_extension_for_class(
            x509.SubjectAlternativeName
        ).value
        self.assertEqual(san.get_values_for_type(x509.DNSName), ["localhost"])
        self.assertEqual(
            san.get_values_for_type(x509.IPAddress),
            [ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1")],
        )
        self.assertEqual(len(san), 3)
        self.assertEqual(
            result.credentials.subjectNames, ("localhost", "127.0.0.1", "::1")
        )

    def test_keyIsECDSAP256(self) -> None:
        """
        The key is an ECDSA key on curve P-256, the one every TLS client
        supports.
        """
        result = ensureDevelopmentCertificate(self.directory)
        loaded = loadCredentials(result.certificatePath, result.privateKeyPath)
        self.assertIsInstance(loaded.privateKey, ec.EllipticCurvePrivateKey)
        assert isinstance(loaded.privateKey, ec.EllipticCurvePrivateKey)
        self.assertIsInstance(loaded.privateKey.curve, ec.SECP256R1)
        publicKey = loaded.certificate.public_key()
        assert isinstance(publicKey, ec.EllipticCurvePublicKey)
        self.assertIsInstance(publicKey.curve, ec.SECP256R1)

    def test_secondCallReuses(self) -> None:
        """
        A second call finds the files, loads them and leaves them as they
        are: same fingerprint, same bytes, C{created} false.
        """
        first = ensureDevelopmentCertificate(self.directory)
        certificateBytes = first.certificatePath.read_bytes()
        keyBytes = first.privateKeyPath.read_bytes()
        second = ensureDevelopmentCertificate(self.directory)
        self.assertFalse(second.created)
        self.assertEqual(second.credentials.fingerprint, first.credentials.fingerprint)
        self.assertEqual(second.certificatePath.read_bytes(), certificateBytes)
        self.assertEqual(second.privateKeyPath.read_bytes(), keyBytes)

    def expiry(self, result: DevelopmentCertificate) -> datetime.datetime:
        """
        When C{result}'s certificate expires.
        """
        return result.credentials.certificate.not_valid_after_utc

    def test_reusedWellBeforeExpiry(self) -> None:
        """
        Fifteen days before expiry the certificate is still reused.
        """
        first = ensureDevelopmentCertificate(self.directory)
        later = self.expiry(first) - datetime.timedelta(days=15)
        second = ensureDevelopmentCertificate(self.directory, now=later)
        self.assertFalse(second.created)
        self.assertEqual(second.credentials.fingerprint, first.credentials.fingerprint)

    def test_renewedWithinTwoWeeksOfExpiry(self) -> None:
        """
        Less than 14 days before expiry a new certificate replaces the old
        one on disk, valid from that time on.
        """
        first = ensureDevelopmentCertificate(self.directory)
        later = self.expiry(first) - datetime.timedelta(days=13)
        second = ensureDevelopmentCertificate(self.directory, now=later)
        self.assertTrue(second.created)
        self.assertNotEqual(
            second.credentials.fingerprint, first.credentials.fingerprint
        )
        self.assertGreater(self.expiry(second), self.expiry(first))
        self.assertLessEqual(second.credentials.certificate.not_valid_before_utc, later)
        onDisk = loadCredentials(second.certificatePath, second.privateKeyPath)
        self.assertEqual(onDisk.fingerprint, second.credentials.fingerprint)

    def test_renewedAfterExpiry(self) -> None:
        """
        An expired development certificate is replaced.
        """
        first = ensureDevelopmentCertificate(self.directory)
        later = self.expiry(first) + datetime.timedelta(days=1)
        second = ensureDevelopmentCertificate(self.directory, now=later)
        self.assertTrue(second.created)
        self.assertNotEqual(
            second.credentials.fingerprint, first.credentials.fingerprint
        )

    def test_corruptedCertificateReplaced(self) -> None:
        """
        A certificate file that cannot be loaded is replaced by a new pair
        that can.
        """
        first = ensureDevelopmentCertificate(self.directory)
        first.certificatePath.write_bytes(b"-----BEGIN CERTIFICATE-----\ngarbage\n")
        second = ensureDevelopmentCertificate(self.directory)
        self.assertTrue(second.created)
        onDisk = loadCredentials(second.certificatePath, second.privateKeyPath)
        self.assertEqual(onDisk.fingerprint, second.credentials.fingerprint)

    def test_corruptedKeyReplaced(self) -> None:
        """
        A key file that cannot be loaded is replaced, with a certificate to
        match.
        """
        first = ensureDevelopmentCertificate(self.directory)
        first.privateKeyPath.write_bytes(b"not a key at all")
        second = ensureDevelopmentCertificate(self.directory)
        self.assertTrue(second.created)
        onDisk = loadCredentials(second.certificatePath, second.privateKeyPath)
        self.assertEqual(onDisk.fingerprint, second.credentials.fingerprint)

    def test_mismatchedPairReplaced(self) -> None:
        """
        A certificate and a key that do not belong together are replaced by
        a matching pair.
        """
        first = ensureDevelopmentCertificate(self.directory)
        elsewhere = ensureDevelopmentCertificate(temporaryDirectory(self))
        first.privateKeyPath.write_bytes(elsewhere.privateKeyPath.read_bytes())
        second = ensureDevelopmentCertificate(self.directory)
        self.assertTrue(second.created)
        loadCredentials(second.certificatePath, second.privateKeyPath)

    def test_missingKeyReplaced(self) -> None:
        """
        A certificate whose key file is gone is replaced by a new pair.
        """
        first = ensureDevelopmentCertificate(self.directory)
        first.privateKeyPath.unlink()
        second = ensureDevelopmentCertificate(self.directory)
        self.assertTrue(second.created)
        self.assertNotEqual(
            second.credentials.fingerprint, first.credentials.fingerprint
        )
        loadCredentials(second.certificatePath, second.privateKeyPath)

    def test_unwritableLocation(self) -> None:
        """
        A directory that cannot be created (its parent is a regular file,
        which stops root too) gives a one-line L{ConfigurationError} naming
        the directory.
        """
        parent = temporaryDirectory(self) / "a-file"
        parent.write_bytes(b"")
        directory = parent / "certs"
        error = self.assertRaises(
            ConfigurationError, ensureDevelopmentCertificate, directory
        )
        message = str(error)
        self.assertNotIn("\n", message)
        self.assertIn(str(directory), message)
        self.assertIn("cannot create the development certificate", message)

    def test_directoryIsAFile(self) -> None:
        """
        A regular file where the directory should be gives a one-line
        L{ConfigurationError} naming it.
        """
        path = temporaryDirectory(self) / "certs"
        path.write_bytes(b"")
        error = self.assertRaises(
            ConfigurationError, ensureDevelopmentCertificate, path
        )
        self.assertNotIn("\n", str(error))
        self.assertIn(str(path), str(error))


class ConcurrentStartTests(SynchronousTestCase):
    """
    Several tlsreply processes starting at once in the same folder.
    """

    def test_concurrentFirstStartsAgree(self) -> None:
        """
        Started together with no certificate yet, every caller ends up with
        the same certificate, and the key on disk matches it.
        """
        directory = temporaryDirectory(self) / "certs"
        with ThreadPoolExecutor(max_workers=6) as pool:
            results = list(pool.map(lambda _: ensureDevelopmentCertificate(directory),
                                    range(6)))
        self.assertEqual(len({r.credentials.fingerprint for r in results}), 1)
        self.assertEqual(sum(r.created for r in results), 1)
        onDisk = loadCredentials(directory / "dev-cert.pem", directory / "dev-key.pem")
        self.assertEqual(onDisk.fingerprint, results[0].credentials.fingerprint)


class PrepareThenSaveTests(SynchronousTestCase):
    """
    L{prepareDevelopmentCertificate} writes nothing;
    L{saveDevelopmentCertificate} puts what it made in place, unless
    another process saved one first.
    """

    def setUp(self) -> None:
        self.directory = temporaryDirectory(self) / "certs"

    def test_prepareWritesNothing(self) -> None:
        """
        With no certificate yet, a new one is made in memory: no folder,
        no file, no lock.
        """
        prepared = prepareDevelopmentCertificate(self.directory)
        self.assertTrue(prepared.created)
        self.assertFalse(self.directory.exists())
        self.assertEqual(prepared.certificatePath, self.directory / CERTIFICATE_NAME)

    def test_saveWritesWhatWasPrepared(self) -> None:
        """
        Saving writes the prepared certificate and key, the key 0600, and
        the next prepare reuses them.
        """
        prepared = prepareDevelopmentCertificate(self.directory)
        saved = saveDevelopmentCertificate(prepared)
        self.assertIs(saved, prepared)
        onDisk = loadCredentials(saved.certificatePath, saved.privateKeyPath)
        self.assertEqual(onDisk.fingerprint, prepared.credentials.fingerprint)
        self.assertEqual(stat.S_IMODE(saved.privateKeyPath.stat().st_mode), 0o600)
        again = prepareDevelopmentCertificate(self.directory)
        self.assertFalse(again.created)
        self.assertEqual(again.credentials.fingerprint, prepared.credentials.fingerprint)

    def test_savedMeanwhileWins(self) -> None:
        """
        Two starts that each prepared a new certificate: the second to save
        gets the first one's, and the files stay the first one's.
        """
        first = prepareDevelopmentCertificate(self.directory)
        second = prepareDevelopmentCertificate(self.directory)
        self.assertNotEqual(first.credentials.fingerprint, second.credentials.fingerprint)
        saveDevelopmentCertificate(first)
        kept = saveDevelopmentCertificate(second)
        self.assertFalse(kept.created)
        self.assertEqual(kept.credentials.fingerprint, first.credentials.fingerprint)
        onDisk = loadCredentials(kept.certificatePath, kept.privateKeyPath)
        self.assertEqual(onDisk.fingerprint, first.credentials.fingerprint)

    def test_unwritableAtSave(self) -> None:
        """
        A folder that cannot be made is found when saving, as one line.
        """
        parent = temporaryDirectory(self) / "a-file"
        parent.write_bytes(b"")
        prepared = prepareDevelopmentCertificate(parent / "certs")
        error = self.assertRaises(ConfigurationError, saveDevelopmentCertificate, prepared)
        self.assertIn("cannot create the development certificate", str(error))


class TrustTests(SynchronousTestCase):
    """
    Clients can trust the development certificate by being pointed at it
    (C{curl --cacert certs/dev-cert.pem}), which is why it is self-signed
    and reused.
    """

    def setUp(self) -> None:
        self.result = ensureDevelopmentCertificate(temporaryDirectory(self))

    def test_pythonSSLLoadsItAsTrustAnchor(self) -> None:
        """
        Python's C{ssl} accepts the certificate file as its only trust
        anchor.
        """
        context = ssl.create_default_context(cafile=str(self.result.certificatePath))
        self.assertEqual(context.cert_store_stats()["x509"], 1)
        context.load_verify_locations(cafile=str(self.result.certificatePath))

    def test_pythonSSLVerifiesEveryName(self) -> None:
        """
        A verifying Python C{ssl} client that trusts only the development
        certificate completes a handshake with a server using it, for each
        of its names.
        """
        server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        server.load_cert_chain(self.result.certificatePath, self.result.privateKeyPath)
        client = ssl.create_default_context(cafile=str(self.result.certificatePath))
        for name in ("localhost", "127.0.0.1", "::1"):
            handshakeInMemory(client, server, name)

    def test_pythonSSLRefusesOtherNames(self) -> None:
        """
        The same client refuses the certificate for a name it does not
        carry, so the previous test is not vacuous.
        """
        server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        server.load_cert_chain(self.result.certificatePath, self.result.privateKeyPath)
        client = ssl.create_default_context(cafile=str(self.result.certificatePath))
        self.assertRaises(
            ssl.SSLCertVerificationError,
            handshakeInMemory,
            client,
            server,
            "example.com",
        )
