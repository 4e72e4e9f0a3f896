"""
Tests for L{tlsreply.testing.issuing}: a test server's CA (C{server.ca})
issues client and server certificates as files that Python's C{ssl},
Twisted and tlsreply itself take as they are, and a server that verifies
clients trusts them.
"""

from __future__ import annotations

import os
import ssl
import stat

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from twisted.trial.unittest import SynchronousTestCase, TestCase

from tests.support import fetchWithSSL, inThread, startServer, temporaryDirectory
from tlsreply import buildServerContexts
from tlsreply.errors import ConfigurationError
from tlsreply.testing import IssuedCertificate, IssuingCA, TestCA, startTLSReplyServer
from tlsreply.testing.issuing import ISSUED_DIRECTORY

_SPKI = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


class IssuingCATests(SynchronousTestCase):
    """
    What L{IssuingCA} writes, and what each L{IssuedCertificate} holds.
    """

    def test_clientCertificateFiles(self) -> None:
        """
        A client certificate is for client authentication, in the name
        asked for, issued by the CA; its certificate file is its PEM, its
        key file (private to its owner) its key's PEM, and both load into
        a Python C{ssl} context.
        """
        ca = TestCA()
        issuer = IssuingCA(ca, temporaryDirectory(self) / ISSUED_DIRECTORY)
        alice = issuer.issueClientCertificate("alice")
        self.assertIsInstance(alice, IssuedCertificate)
        self.assertEqual(
            [a.value for a in alice.certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)],
            ["alice"],
        )
        usage = alice.certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
        self.assertEqual(list(usage.value), [ExtendedKeyUsageOID.CLIENT_AUTH])
        alice.certificate.verify_directly_issued_by(ca.certificate)
        self.assertEqual(alice.certificatePath.read_bytes(), alice.certificatePEM)
        self.assertEqual(alice.privateKeyPath.read_bytes(), alice.privateKeyPEM)
        self.assertEqual(stat.S_IMODE(os.stat(alice.privateKeyPath).st_mode), 0o600)
        self.assertEqual(
            serialization.load_pem_private_key(alice.privateKeyPEM, None).public_key()
            .public_bytes(*_SPKI),
            alice.certificate.public_key().public_bytes(*_SPKI),
        )
        context = ssl.create_default_context()
        context.load_cert_chain(alice.certificatePath, alice.privateKeyPath)
        alice.configure(ssl.create_default_context())
        self.assertEqual(issuer.certificatePEM, ca.certificatePEM)

    def test_eachInFilesOfItsOwn(self) -> None:
        """
        Every certificate gets new files, even for the same name, named
        after it (in safe characters), in the CA's folder, which is made
        when needed.
        """
        directory = temporaryDirectory(self) / "server" / ISSUED_DIRECTORY
        issuer = IssuingCA(TestCA(), directory)
        first = issuer.issueClientCertificate("bob/../../etc")
        second = issuer.issueClientCertificate("bob/../../etc")
        self.assertNotEqual(first.certificatePath, second.certificatePath)
        self.assertNotEqual(first.certificate, second.certificate)
        for issued in (first, second):
            self.assertEqual(issued.certificatePath.parent, directory)
            self.assertEqual(issued.privateKeyPath.parent, directory)
        self.assertEqual(first.certificatePath.name, "001-bob_.._.._etc.pem")

    def test_nameRequired(self) -> None:
        """
        A client certificate without a name is refused with the method's
        own message, not cryptography's.
        """
        issuer = IssuingCA(TestCA(), temporaryDirectory(self))
        with self.assertRaises(ConfigurationError) as caught:
            issuer.issueClientCertificate("")
        self.assertEqual(
            str(caught.exception),
            "issueClientCertificate: the name must be a non-empty string, not ''",
        )

    def test_intermediateChain(self) -> None:
        """
        From an intermediate CA, the certificate file holds the certificate
        then the intermediate, as a client or server sends them; the PEM is
        what the root's clients trust, the root.
        """
        root = TestCA()
        intermediate = root.createIntermediate("issuing CA")
        issuer = IssuingCA(intermediate, temporaryDirectory(self))
        carol = issuer.issueClientCertificate("carol", keyType="rsa2048")
        self.assertEqual(carol.chain, (intermediate.certificate,))
        self.assertEqual(
            x509.load_pem_x509_certificates(carol.certificatePath.read_bytes()),
            [carol.certificate, intermediate.certificate],
        )
        self.assertEqual(issuer.certificatePEM, root.certificatePEM)

    def test_serverCertificate(self) -> None:
        """
        A server certificate is for its names (DNS names and IP addresses),
        and its credentials are what a tlsreply server takes.
        """
        issuer = IssuingCA(TestCA(), temporaryDirectory(self))
        issued = issuer.issueServerCertificate(["service.test", "127.0.0.1"])
        credentials = issued.credentials
        self.assertEqual(credentials.subjectNames, ("service.test", "127.0.0.1"))
        self.assertEqual(credentials.certificatePath, issued.certificatePath)
        self.assertEqual(issued.certificatePath.name, "001-service.test.pem")
        usage = issued.certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
        self.assertEqual(list(usage.value), [ExtendedKeyUsageOID.SERVER_AUTH])
        with self.assertRaises(ConfigurationError):
            issuer.issueServerCertificate([])


class ServerCATests(TestCase):
    """
    C{server.ca} of L{startTLSReplyServer}.
    """

    async def test_clientCertificateRequired(self) -> None:
        """
        A server that requires client certificates serves a client with any
        certificate its CA issued after it started, and records its name;
        without one, the client gets exactly the expected outcome's
        message.
        """
        server = startTLSReplyServer(self, scenario="client-cert-required")
        for name in ("alice", "bob"):
            issued = server.ca.issueClientCertificate(name)
            context = ssl.create_default_context(cafile=server.caCertificatePath)
            context.load_cert_chain(issued.certificatePath, issued.privateKeyPath)
            result = await inThread(fetchWithSSL, server.port, context)
            self.assertEqual(result.data, b"test\n")
        records = await server.whenRecorded(2)
        self.assertEqual(
            [r.clientCertificate for r in records],
            ["CN=alice,O=tlsreply test", "CN=bob,O=tlsreply test"],
        )
        self.assertEqual([r.clientVerification for r in records], ["ok", "ok"])
        with self.assertRaises(ssl.SSLError) as caught:
            await inThread(
                fetchWithSSL, server.port,
                ssl.create_default_context(cafile=server.caCertificatePath),
            )
        assert server.expectedOutcome.message is not None
        self.assertIn(server.expectedOutcome.message, str(caught.exception))

    async def test_intermediateCA(self) -> None:
        """
        With an intermediate as the test CA, issued client certificates
        carry it, and the server, which trusts the root, accepts them.
        """
        intermediate = TestCA().createIntermediate("issuing CA")
        server = startTLSReplyServer(self, scenario="client-cert-required", ca=intermediate)
        issued = server.ca.issueClientCertificate("dave")
        context = ssl.create_default_context(cafile=server.caCertificatePath)
        issued.configure(context)
        result = await inThread(fetchWithSSL, server.port, context)
        self.assertEqual(result.data, b"test\n")

    async def test_serverCertificateForAnotherServer(self) -> None:
        """
        A server certificate from C{server.ca}, served by a server of the
        test's own, is trusted by the clients of the first server.
        """
        server = startTLSReplyServer(self)
        issued = server.ca.issueServerCertificate(["localhost"])
        other = await startServer(self, contextFactory=buildServerContexts(issued.credentials))
        result = await inThread(fetchWithSSL, other.port, server.sslContext())
        self.assertEqual(result.data, b"test\n")

    async def test_filesGoWithTheServer(self) -> None:
        """
        Issued files are in the server's folder, and go when it stops.
        """
        server = startTLSReplyServer()
        issued = server.ca.issueClientCertificate("erin")
        self.assertTrue(issued.certificatePath.exists())
        await server.stop()
        self.assertFalse(issued.certificatePath.exists())
        self.assertFalse(issued.privateKeyPath.exists())

