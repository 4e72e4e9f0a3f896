"""
Tests for what C{crl-revoked} is made of: the test CA's CRLs
(L{TestCA.certificateRevocationList}), the small HTTP server that serves
them (L{tlsreply.scenarios._httpfiles}), and the scenario served by
L{startTLSReplyServer}, its CRL on the server's own reactor.
"""

from __future__ import annotations

import datetime
import socket
import ssl
import subprocess
import sys
import urllib.error
import urllib.request

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from twisted.internet import reactor
from twisted.trial.unittest import SynchronousTestCase, TestCase

from tests.support import fetchWithSSL, inThread, temporaryDirectory
from tlsreply.errors import ConfigurationError
from tlsreply.scenarios._httpfiles import HTTPFiles
from tlsreply.scenarios.ca import CRL_LIFETIME, TestCA
from tlsreply.testing import startTLSReplyServer


def httpGet(url: str) -> tuple[bytes, str]:
    """
    Fetch a URL directly (no proxy): its body and content type.
    """
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url, timeout=10) as response:
        return response.read(), response.headers.get_content_type()


class CertificateRevocationListTests(SynchronousTestCase):
    """
    L{TestCA.certificateRevocationList}.
    """

    def test_listsWhatItIsGiven(self) -> None:
        """
        The CRL is the CA's, signed by it, fresh for a day from a minute
        ago, numbered, and lists exactly the certificates given, revoked a
        minute ago.
        """
        ca = TestCA().createIntermediate("issuer")
        revoked = ca.issueServerCertificate(["a.test"]).certificate
        kept = ca.issueServerCertificate(["b.test"]).certificate
        before = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
        crl = ca.certificateRevocationList([revoked], number=7)
        self.assertEqual(crl.issuer, ca.certificate.subject)
        publicKey = ca.certificate.public_key()
        assert isinstance(publicKey, ec.EllipticCurvePublicKey)
        self.assertTrue(crl.is_signature_valid(publicKey))
        self.assertTrue(
            before - datetime.timedelta(minutes=1, seconds=1)
            <= crl.last_update_utc
            <= datetime.datetime.now(datetime.UTC)
        )
        assert crl.next_update_utc is not None
        self.assertEqual(
            crl.next_update_utc - crl.last_update_utc,
            CRL_LIFETIME + datetime.timedelta(minutes=1),
        )
        self.assertEqual(crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number, 7)
        entry = crl.get_revoked_certificate_by_serial_number(revoked.serial_number)
        assert entry is not None
        self.assertEqual(entry.revocation_date_utc, crl.last_update_utc)
        self.assertIsNone(crl.get_revoked_certificate_by_serial_number(kept.serial_number))
        self.assertEqual(len(ca.certificateRevocationList()), 0)

    def test_onlyItsOwnCertificates(self) -> None:
        """
        A CA does not revoke a certificate another CA issued.
        """
        other = TestCA("someone else").issueServerCertificate(["a.test"]).certificate
        with self.assertRaises(ConfigurationError) as caught:
            TestCA().certificateRevocationList([other])
        self.assertIn("did not issue", str(caught.exception))


class HTTPFilesTests(TestCase):
    """
    L{HTTPFiles}: bound when made, served once started, closed when stopped.
    """

    async def test_servesOnceStarted(self) -> None:
        """
        A file's URL is known before anything runs; the port is already
        bound (a client waits in its queue), and the file is served with
        its type once started on a reactor; an unknown path is a 404.
        """
        files = HTTPFiles()
        self.addCleanup(files.stop)
        url = files.url("a.crl")
        self.assertEqual(url, f"http://127.0.0.1:{files.port}/a.crl")
        self.assertEqual(files.add("a.crl", b"\x30\x00", "application/pkix-crl"), url)
        socket.create_connection(("127.0.0.1", files.port), timeout=2).close()
        files.start(reactor)
        self.assertEqual(await inThread(httpGet, url), (b"\x30\x00", "application/pkix-crl"))
        with self.assertRaises(urllib.error.HTTPError) as caught:
            await inThread(httpGet, files.url("other"))
        self.assertEqual(caught.exception.code, 404)

    async def test_stopCloses(self) -> None:
        """
        After L{HTTPFiles.stop}, nothing listens on the port, whether it
        was ever served or not; stopping twice is harmless, and starting
        after a stop is an error.
        """
        for serve in (True, False):
            files = HTTPFiles()
            if serve:
                files.start(reactor)
            await files.stop()
            await files.stop()
            with self.assertRaises(ConnectionRefusedError):
                socket.create_connection(("127.0.0.1", files.port), timeout=2).close()
            with self.assertRaises(RuntimeError):
                files.start(reactor)

    def test_importWarnsOfNothing(self) -> None:
        """
        The scenarios (which bring this module, and so C{twisted.web}) and
        the fixtures import without a warning, which users' pytest runs
        would show.
        """
        result = subprocess.run(
            [sys.executable, "-W", "error", "-c",
             "import tlsreply.scenarios.servers, tlsreply.testing.server"],
            capture_output=True, timeout=60, check=False,
        )
        self.assertEqual((result.returncode, result.stderr), (0, b""))

    def test_oneSegmentNames(self) -> None:
        """
        A file's name is one path segment.
        """
        files = HTTPFiles()
        self.addCleanup(files.stop)
        for name in ("", "a/b", "/a"):
            with self.assertRaises(ValueError):
                files.url(name)
        self.assertIn(str(files.port), repr(files))


class CRLRevokedServerTests(TestCase):
    """
    C{crl-revoked} from L{startTLSReplyServer}.
    """

    async def test_servedWithItsCRL(self) -> None:
        """
        The server's reactor serves the CRL its certificate points to; a
        Python client that checks it sees exactly the expected outcome, and
        once the server stops, the CRL's port is closed too.
        """
        server = startTLSReplyServer(scenario="crl-revoked")
        try:
            leaf = x509.load_der_x509_certificate(
                (await inThread(fetchWithSSL, server.port, server.sslContext())).peerCertificate
                or b""
            )
            [point] = leaf.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
            assert point.full_name is not None
            url = str(point.full_name[0].value)
            body, _ = await inThread(httpGet, url)
            crlPath = temporaryDirectory(self) / "crl.pem"
            crlPath.write_bytes(
                x509.load_der_x509_crl(body).public_bytes(serialization.Encoding.PEM)
            )
            context = server.sslContext()
            context.load_verify_locations(crlPath)
            context.verify_flags |= ssl.VERIFY_CRL_CHECK_LEAF
            with self.assertRaises(ssl.SSLCertVerificationError) as caught:
                await inThread(fetchWithSSL, server.port, context)
            self.assertEqual(caught.exception.verify_message, server.expectedOutcome.message)
            self.assertEqual(server.expectedOutcome.kind, "certificate-revoked")
        finally:
            await server.stop()
        with self.assertRaises(urllib.error.URLError):
            await inThread(httpGet, url)
