"""
The stapled OCSP responses of the test CA as other TLS stacks verify them:
GnuTLS (C{gnutls-cli --ocsp}), curl on OpenSSL (C{--cert-status}), Java's
JSSE (revocation checking on) and OpenSSL's own C{ocsp} verifier, fed the
response a client received on the wire.

Each stack looks for the response's signer in its own way: GnuTLS by the
responder's name in its trust list, or among the certificates in the
response; OpenSSL (and so curl) among the certificates in the response and
those the server sent, and curl also needs the leaf's issuer among those to
compute the certificate's ID. A response by key hash with no certificate
in it, for a leaf served alone, satisfies none of them.
"""

from __future__ import annotations

import socket
from dataclasses import replace
from pathlib import Path

from cryptography import x509
from cryptography.x509 import ocsp
from OpenSSL import SSL
from twisted.trial.unittest import SynchronousTestCase, TestCase

from tests.support import (
    LOOPBACK,
    inThread,
    requireCommand,
    runCommand,
    startServer,
    temporaryDirectory,
)
from tlsreply import buildServerContexts
from tlsreply.scenarios.ca import TestCA
from tlsreply.testing import startTLSReplyServer
from tlsreply.tls.certificates import certificatesPEM

#: A small JSSE client: trusts one CA file, checks the host name, and with
#: C{-Dcom.sun.net.ssl.checkRevocation=true} checks revocation, which with
#: no responder URL in the certificate means the stapled response.
JAVA_CLIENT = """
import java.io.FileInputStream;
import java.io.InputStream;
import java.security.KeyStore;
import java.security.cert.CertificateFactory;
import javax.net.ssl.*;

public class TLSClient {
    public static void main(String[] args) throws Exception {
        KeyStore trusted = KeyStore.getInstance(KeyStore.getDefaultType());
        trusted.load(null, null);
        try (InputStream in = new FileInputStream(args[2])) {
            trusted.setCertificateEntry("ca",
                CertificateFactory.getInstance("X.509").generateCertificate(in));
        }
        TrustManagerFactory factory = TrustManagerFactory.getInstance("PKIX");
        factory.init(trusted);
        SSLContext context = SSLContext.getInstance("TLS");
        context.init(null, factory.getTrustManagers(), null);
        try (SSLSocket socket = (SSLSocket) context.getSocketFactory()
                .createSocket(args[0], Integer.parseInt(args[1]))) {
            SSLParameters parameters = socket.getSSLParameters();
            parameters.setEndpointIdentificationAlgorithm("HTTPS");
            socket.setSSLParameters(parameters);
            socket.startHandshake();
            System.out.println("ACCEPTED " + socket.getSession().getProtocol());
        } catch (Exception e) {
            System.out.println("REFUSED " + e);
        }
    }
}
"""


def compileJavaClient(testCase: SynchronousTestCase) -> tuple[str, Path]:
    """
    Compile L{JAVA_CLIENT} (or skip the test without a JDK).

    @return: the C{java} command and the class folder.
    """
    javac = requireCommand(testCase, "javac")
    java = requireCommand(testCase, "java")
    folder = temporaryDirectory(testCase)
    (folder / "TLSClient.java").write_text(JAVA_CLIENT)
    result = runCommand([javac, "-d", str(folder), str(folder / "TLSClient.java")], timeout=120)
    testCase.assertEqual(result.returncode, 0, result.stderr)
    return java, folder


def stapledResponse(port: int, caPath: Path) -> tuple[bytes, list[x509.Certificate]]:
    """
    Connect with pyOpenSSL asking for a staple (TLS 1.2 and 1.3 alike),
    verify the chain against C{caPath} for C{localhost}, and keep the
    stapled response exactly as received.

    @return: the DER response and the certificates the server sent.
    """
    staples: list[bytes] = []

    def keep(connection: SSL.Connection, response: bytes, data: object) -> bool:
        staples.append(response)
        return True

    context = SSL.Context(SSL.TLS_CLIENT_METHOD)
    context.load_verify_locations(str(caPath))
    context.set_verify(SSL.VERIFY_PEER)
    context.set_ocsp_client_callback(keep)
    with socket.create_connection((LOOPBACK, port), timeout=10) as raw:
        raw.setblocking(True)  # pyOpenSSL on a socket with a timeout raises WantRead
        connection = SSL.Connection(context, raw)
        connection.set_tlsext_host_name(b"localhost")
        connection.request_ocsp()
        connection.set_connect_state()
        connection.do_handshake()
        chain = connection.get_peer_cert_chain(as_cryptography=True) or []
    return staples[0], list(chain)


class RevokedScenarioTests(TestCase):
    """
    C{revoked}: every stack that checks the staple verifies its signature
    and reports the certificate revoked, rather than failing to verify the
    response.
    """

    async def test_gnutlsReportsRevocation(self) -> None:
        """
        GnuTLS finds the response's signer and refuses the certificate as
        revoked (before: "The received OCSP status response is invalid").
        """
        gnutls = requireCommand(self, "gnutls-cli")
        server = startTLSReplyServer(self, scenario="revoked")
        result = await inThread(
            runCommand,
            [gnutls, "--ocsp", "--x509cafile", str(server.caCertificatePath),
             "-p", str(server.port), "localhost"],
        )
        output = (result.stdout + result.stderr).decode("utf-8", "replace")
        self.assertNotEqual(result.returncode, 0, output)
        self.assertIn("The certificate chain is revoked", output)
        self.assertNotIn("OCSP status response is invalid", output)
        self.assertNotIn("signer could not be found", output)

    async def test_curlReportsRevocation(self) -> None:
        """
        C{curl --cert-status} verifies the response and refuses the
        certificate as revoked (error 91 with the revocation's reason;
        before: "OCSP response verification failed").
        """
        curl = requireCommand(self, "curl")
        server = startTLSReplyServer(self, scenario="revoked")
        result = await inThread(
            runCommand,
            [curl, "--silent", "--show-error", "--http0.9", "--noproxy", "*",
             "--cert-status", "--cacert", str(server.caCertificatePath), server.url()],
        )
        stderr = result.stderr.decode("utf-8", "replace")
        self.assertEqual(result.returncode, 91, stderr)
        self.assertIn("SSL certificate revocation reason", stderr)

    async def test_javaReportsRevocation(self) -> None:
        """
        Java's JSSE with revocation checking takes the stapled response and
        refuses the certificate as revoked.
        """
        java, classes = compileJavaClient(self)
        server = startTLSReplyServer(self, scenario="revoked")
        result = await inThread(
            runCommand,
            [java, "-Dcom.sun.net.ssl.checkRevocation=true",
             "-Djdk.tls.client.enableStatusRequestExtension=true",
             "-cp", str(classes), "TLSClient", "localhost", str(server.port),
             str(server.caCertificatePath)],
            timeout=120,
        )
        output = result.stdout.decode("utf-8", "replace")
        self.assertIn("REFUSED", output, result.stderr)
        self.assertIn("Certificate has been revoked", output)

    async def test_opensslVerifiesTheStapledResponse(self) -> None:
        """
        The response a client receives verifies with C{openssl ocsp}, given
        only the trusted root and the certificates the server sent (what
        OpenSSL-based clients such as curl have), and says revoked.
        """
        openssl = requireCommand(self, "openssl")
        server = startTLSReplyServer(self, scenario="revoked")
        response, chain = await inThread(stapledResponse, server.port, server.caCertificatePath)
        leaf = chain[0]
        issuers = [c for c in chain[1:] if c.subject == leaf.issuer]
        self.assertEqual(len(issuers), 1, "the leaf's issuer is in the served chain")
        folder = temporaryDirectory(self)
        (folder / "response.der").write_bytes(response)
        (folder / "leaf.pem").write_bytes(certificatesPEM(leaf))
        (folder / "served.pem").write_bytes(certificatesPEM(*chain))
        (folder / "issuer.pem").write_bytes(certificatesPEM(issuers[0]))
        result = await inThread(
            runCommand,
            [openssl, "ocsp", "-respin", str(folder / "response.der"),
             "-CAfile", str(server.caCertificatePath),
             "-verify_other", str(folder / "served.pem"),
             "-issuer", str(folder / "issuer.pem"), "-cert", str(folder / "leaf.pem")],
        )
        output = (result.stdout + result.stderr).decode("utf-8", "replace")
        self.assertIn("Response verify OK", output)
        self.assertIn(f"{folder / 'leaf.pem'}: revoked", output)


class GoodStapleTests(TestCase):
    """
    A "good" response from L{TestCA.ocspResponse}, stapled by a server
    built with the public API: clients that check the staple accept it.
    """

    async def _serve(self, sendIssuer: bool) -> tuple[int, Path]:
        """
        Serve a leaf from a new root with a good staple, alone or followed
        by its issuer.

        @return: the port and the root's file.
        """
        ca = TestCA()
        credentials = ca.issueServerCertificate(["localhost", LOOPBACK])
        credentials = replace(
            credentials,
            chain=(ca.certificate,) if sendIssuer else (),
            ocspResponse=ca.ocspResponse(credentials, "good"),
        )
        server = await startServer(self, contextFactory=buildServerContexts(credentials))
        return server.port, ca.writeCertificate(temporaryDirectory(self) / "ca.pem")

    async def test_gnutlsAcceptsLeafAlone(self) -> None:
        """
        C{gnutls-cli --ocsp} verifies the response for a leaf served alone
        (the signer, named, is in its trust list), finds the certificate
        good and connects.
        """
        gnutls = requireCommand(self, "gnutls-cli")
        port, caPath = await self._serve(sendIssuer=False)
        result = await inThread(
            runCommand,
            [gnutls, "--ocsp", "--x509cafile", str(caPath), "-p", str(port), "localhost"],
        )
        output = (result.stdout + result.stderr).decode("utf-8", "replace")
        self.assertEqual(result.returncode, 0, output)
        self.assertIn("The certificate is trusted", output)
        self.assertIn("test\n", output)

    async def test_curlAcceptsWithIssuer(self) -> None:
        """
        C{curl --cert-status} verifies the response when the issuer is
        served (it needs it for the certificate's ID) and prints the reply.
        """
        curl = requireCommand(self, "curl")
        port, caPath = await self._serve(sendIssuer=True)
        result = await inThread(
            runCommand,
            [curl, "--silent", "--show-error", "--http0.9", "--noproxy", "*",
             "--cert-status", "--cacert", str(caPath), f"https://localhost:{port}/"],
        )
        self.assertEqual((result.returncode, result.stdout), (0, b"test\n"), result.stderr)


class ResponseShapeTests(SynchronousTestCase):
    """
    What makes L{TestCA.ocspResponse} verifiable by every stack.
    """

    def test_responderByNameWithItsCertificate(self) -> None:
        """
        The responder is named (not identified by key hash), and its
        certificate travels in the response: GnuTLS finds a named signer in
        its trust list, OpenSSL finds it in the response.
        """
        ca = TestCA().createIntermediate("issuer")
        credentials = ca.issueServerCertificate(["localhost"])
        response = ocsp.load_der_ocsp_response(ca.ocspResponse(credentials, "revoked"))
        self.assertEqual(response.responder_name, ca.certificate.subject)
        self.assertIsNone(response.responder_key_hash)
        self.assertEqual(response.certificates, [ca.certificate])
        self.assertEqual(response.issuer_name_hash, ocsp.OCSPRequestBuilder()
                         .add_certificate(credentials.certificate, ca.certificate,
                                          response.hash_algorithm)
                         .build().issuer_name_hash)

    def test_rootIssuerServedForRevoked(self) -> None:
        """
        C{revoked} serves its leaf with the root that issued it: curl
        computes the certificate's ID from an issuer among the certificates
        the server sent, and finds none in a leaf served alone.
        """
        from tlsreply.scenarios.servers import buildScenario

        ca = TestCA()
        setup = buildScenario("revoked", ca, temporaryDirectory(self))
        [credentials] = setup.credentials
        self.assertEqual(credentials.chain, (ca.certificate,))
        self.assertIsNotNone(credentials.ocspResponse)
        intermediate = TestCA().createIntermediate("issuer")
        setup = buildScenario("revoked", intermediate, temporaryDirectory(self))
        self.assertEqual(setup.credentials[0].chain, intermediate.chain)

