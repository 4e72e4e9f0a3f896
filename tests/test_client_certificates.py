"""
Client certificates, proven on the wire: C{--client-ca} with
C{--verify-client none}, C{optional} or C{require}, and what the log says
about the certificate each client presented.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

import trustme

from tests.policyserver import Configure, fetch, sClient, serve, tls12, tls13
from tests.support import WireTestCase, clientContext, onMemoryBIO, temporaryDirectory


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


# The same tests with TLS over memory BIOs (haproxy: and embedders' endpoints).
ClientCertificateTestsOnMemoryBIO = onMemoryBIO(ClientCertificateTests)
