"""
Tests for L{tlsreply.scenarios.ca} (the test certificate authority) and
L{tlsreply.scenarios.servers} (the deliberately broken servers made from it).

Every scenario is served for real on 127.0.0.1 and met by the client the
scenarios promise an outcome for: Python's C{ssl} trusting only the test
CA, connecting to C{localhost}. What makes each scenario what it claims to
be (the chain on the wire, the key, the names, the versions, the stapled
response, the missing resumption) is checked with the certificates the
client received or with C{openssl s_client}.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import os
import re
import ssl
import stat
import warnings
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from twisted.internet import reactor
from twisted.trial.unittest import SynchronousTestCase, TestCase

from tests.capture import CapturingRelay, parseClientHello
from tests.support import (
    LOOPBACK,
    RunningServer,
    SSLResult,
    clientContext,
    fetchWithSSL,
    inThread,
    requireCommand,
    runCommand,
    startServer,
    temporaryDirectory,
)
from tests.test_revocation import httpGet
from tests.test_testing import fetchWithTwisted
from tlsreply.errors import ConfigurationError
from tlsreply.scenarios.ca import (
    LEAF_BACKDATE,
    LEAF_LIFETIME,
    TestCA,
    selfSignedCertificate,
    writePrivateKey,
)
from tlsreply.scenarios.catalogue import (
    ACCEPT,
    CA_FILE,
    MANY_NAMES_COUNT,
    NAMES,
    OUTCOME_KINDS,
)
from tlsreply.scenarios.protocol import HYBRID_GROUP
from tlsreply.scenarios.servers import (
    SCENARIOS,
    ScenarioSetup,
    buildScenario,
    describeScenarios,
    unavailableReason,
)
from tlsreply.testing import startTLSReplyServer
from tlsreply.tls.contexts import buildServerContexts
from tlsreply.tls.credentials import loadCredentials
from tlsreply.tls.policy import TLSPolicy

Configure = Callable[[ssl.SSLContext], None]

#: How public keys are compared: as DER SubjectPublicKeyInfo.
_SPKI = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)

#: IANA's code point of the hybrid group X25519MLKEM768 (draft-ietf-tls-ecdhe-mlkem).
X25519MLKEM768 = 0x11EC


def tls12(context: ssl.SSLContext) -> None:
    """
    Offer TLS 1.2 only (with session tickets, as clients do by default).
    """
    context.maximum_version = ssl.TLSVersion.TLSv1_2


def tls12SessionID(context: ssl.SSLContext) -> None:
    """
    Offer TLS 1.2 only, without session tickets: resumption can only be by
    session ID.
    """
    tls12(context)
    context.options |= ssl.OP_NO_TICKET


def tls13(context: ssl.SSLContext) -> None:
    """
    Offer TLS 1.3 only.
    """
    context.minimum_version = ssl.TLSVersion.TLSv1_3


def verifyNothing(context: ssl.SSLContext) -> None:
    """
    Accept any certificate, to look at what a broken server sends.
    """
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE


def errorText(error: ssl.SSLError) -> str:
    """
    What a client reports for a failed handshake: OpenSSL's verification
    message for a certificate it refused, else OpenSSL's reason text
    (C{"tlsv13 alert certificate required"} from
    C{"[SSL: TLSV13_ALERT_CERTIFICATE_REQUIRED] tlsv13 alert certificate
    required (_ssl.c:2580)"}).
    """
    if isinstance(error, ssl.SSLCertVerificationError):
        return str(error.verify_message)
    match = re.fullmatch(r"\[SSL: \w+\] (.*) \(_ssl\.c:\d+\)", str(error))
    return match.group(1) if match else str(error)


#: The outcome kinds that Python's C{ssl} reports as a certificate it
#: refused (C{ssl.SSLCertVerificationError}); the others are TLS alerts.
VERIFICATION_KINDS = {
    "certificate-expired", "certificate-not-yet-valid", "hostname-mismatch", "self-signed",
    "untrusted-root", "unknown-issuer", "weak-signature", "weak-key", "certificate-revoked",
}


def noCommonNameFallback(context: ssl.SSLContext) -> None:
    """
    Match the host name against the subjectAltName only, never the common
    name.
    """
    context.hostname_checks_common_name = False


def withoutProxies() -> dict[str, str]:
    """
    This environment without proxy settings, for a client that must reach
    127.0.0.1 itself.
    """
    return {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}


def camelCase(name: str) -> str:
    """
    A scenario's name as a camelCase method name part: C{"tls1.2-only"}
    becomes C{"tls12Only"}.
    """
    first, *rest = name.replace(".", "").split("-")
    return first + "".join(part[:1].upper() + part[1:] for part in rest)


# The test CA.


class TestCATests(SynchronousTestCase):
    """
    L{TestCA} makes roots, intermediates that carry their chain, server and
    client certificates with the requested properties, and OCSP responses.
    """

    def test_rootIsSelfSignedCA(self) -> None:
        """
        A new L{TestCA} is a self-signed CA certificate with its own fresh
        key (two CAs never share one), and its PEM is that certificate.
        """
        ca, other = TestCA("my CA"), TestCA()
        certificate = ca.certificate
        self.assertEqual(certificate.subject, certificate.issuer)
        certificate.verify_directly_issued_by(certificate)
        constraints = certificate.extensions.get_extension_for_class(x509.BasicConstraints)
        self.assertTrue(constraints.value.ca)
        self.assertIn("CN=my CA", certificate.subject.rfc4514_string())
        self.assertEqual((ca.root, ca.chain), (certificate, ()))
        self.assertEqual(x509.load_pem_x509_certificate(ca.certificatePEM), certificate)
        self.assertNotEqual(
            ca.certificate.public_key().public_bytes(*_SPKI),
            other.certificate.public_key().public_bytes(*_SPKI),
        )

    def test_intermediateChain(self) -> None:
        """
        An intermediate's chain is its own certificate then its issuers up
        to, not including, the root; a leaf it issues carries that chain,
        issuer first, unless told not to, and every link verifies.
        """
        root = TestCA()
        upper = root.createIntermediate("upper")
        lower = upper.createIntermediate("lower", keyType="ecdsa-p384")
        self.assertEqual(upper.chain, (upper.certificate,))
        self.assertEqual(lower.chain, (lower.certificate, upper.certificate))
        self.assertEqual((upper.root, lower.root), (root.certificate, root.certificate))
        upper.certificate.verify_directly_issued_by(root.certificate)
        lower.certificate.verify_directly_issued_by(upper.certificate)
        self.assertIsInstance(lower.privateKey, ec.EllipticCurvePrivateKey)
        credentials = lower.issueServerCertificate(["localhost"])
        self.assertEqual(credentials.chain, lower.chain)
        credentials.certificate.verify_directly_issued_by(lower.certificate)
        bare = lower.issueServerCertificate(["localhost"], sendChain=False)
        self.assertEqual(bare.chain, ())
        self.assertEqual(root.issueServerCertificate(["localhost"]).chain, ())

    def test_serverCertificateDefaults(self) -> None:
        """
        A server certificate is valid from an hour ago for 30 days, for its
        names as DNS names and IP addresses, for server authentication
        only, signed with SHA-256, with an ECDSA P-256 key that matches.
        """
        before = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
        credentials = TestCA().issueServerCertificate(["localhost", "127.0.0.1", "::1"])
        after = datetime.datetime.now(datetime.UTC)
        certificate = credentials.certificate
        self.assertTrue(
            before - LEAF_BACKDATE <= certificate.not_valid_before_utc <= after - LEAF_BACKDATE
        )
        self.assertTrue(
            before + LEAF_LIFETIME <= certificate.not_valid_after_utc <= after + LEAF_LIFETIME
        )
        self.assertEqual(LEAF_LIFETIME, datetime.timedelta(days=30))
        names = certificate.extensions.get_extension_for_class(
            x509.SubjectAlternativeName
        ).value
        self.assertEqual(names.get_values_for_type(x509.DNSName), ["localhost"])
        self.assertEqual(
            names.get_values_for_type(x509.IPAddress),
            [ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1")],
        )
        usage = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
        self.assertEqual(list(usage.value), [ExtendedKeyUsageOID.SERVER_AUTH])
        constraints = certificate.extensions.get_extension_for_class(x509.BasicConstraints)
        self.assertFalse(constraints.value.ca)
        self.assertIsInstance(certificate.signature_hash_algorithm, hashes.SHA256)
        self.assertEqual(credentials.keyDescription, "ECDSA-P-256")
        self.assertEqual(
            certificate.public_key().public_bytes(*_SPKI),
            credentials.privateKey.public_key().public_bytes(*_SPKI),
        )

    def test_chosenValidityKeyAndHash(self) -> None:
        """
        Validity dates, the key type and a SHA-384 signature are as asked.
        """
        notBefore = datetime.datetime(2020, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)
        notAfter = datetime.datetime(2020, 2, 3, 4, 5, 6, tzinfo=datetime.UTC)
        credentials = TestCA().issueServerCertificate(
            ["example.test"], keyType="ecdsa-p384", notBefore=notBefore,
            notAfter=notAfter, signatureHash=hashes.SHA384(),
        )
        certificate = credentials.certificate
        self.assertEqual(
            (certificate.not_valid_before_utc, certificate.not_valid_after_utc),
            (notBefore, notAfter),
        )
        self.assertEqual(credentials.keyDescription, "ECDSA-P-384")
        self.assertIsInstance(certificate.signature_hash_algorithm, hashes.SHA384)

    def test_sha1Signature(self) -> None:
        """
        C{signatureHash=SHA1()} makes a certificate that says it is signed
        with SHA-1 and whose signature verifies with the CA's key under
        SHA-1, for ECDSA and RSA CAs alike; the rest of it is unchanged.
        """
        for keyType in ("ecdsa-p256", "rsa2048"):
            ca = TestCA(keyType=keyType)
            certificate = ca.issueServerCertificate(
                ["localhost"], signatureHash=hashes.SHA1()
            ).certificate
            self.assertIsInstance(certificate.signature_hash_algorithm, hashes.SHA1)
            self.assertEqual(certificate.issuer, ca.certificate.subject)
            publicKey = ca.certificate.public_key()
            if isinstance(publicKey, rsa.RSAPublicKey):
                publicKey.verify(
                    certificate.signature, certificate.tbs_certificate_bytes,
                    padding.PKCS1v15(), hashes.SHA1(),
                )
            else:
                assert isinstance(publicKey, ec.EllipticCurvePublicKey)
                publicKey.verify(
                    certificate.signature, certificate.tbs_certificate_bytes,
                    ec.ECDSA(hashes.SHA1()),
                )
            names = certificate.extensions.get_extension_for_class(
                x509.SubjectAlternativeName
            ).value
            self.assertEqual(names.get_values_for_type(x509.DNSName), ["localhost"])

    def test_clientCertificate(self) -> None:
        """
        A client certificate is for client authentication, issued by the CA,
        with the common name asked for and a matching key.
        """
        ca = TestCA()
        certificate, key = ca.issueClientCertificate("alice")
        certificate.verify_directly_issued_by(ca.certificate)
        self.assertIn("CN=alice", certificate.subject.rfc4514_string())
        usage = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
        self.assertEqual(list(usage.value), [ExtendedKeyUsageOID.CLIENT_AUTH])
        self.assertEqual(
            certificate.public_key().public_bytes(*_SPKI),
            key.public_key().public_bytes(*_SPKI),
        )

    def test_ocspResponse(self) -> None:
        """
        An OCSP response parses with C{cryptography}, is successful, is
        about the certificate's serial number, says what it was asked to
        (revoked as of now), runs from now for a day, and is signed by the
        issuing CA, here an intermediate.
        """
        ca = TestCA().createIntermediate("issuer")
        credentials = ca.issueServerCertificate(["localhost"])
        for status, expected in [
            ("good", ocsp.OCSPCertStatus.GOOD),
            ("revoked", ocsp.OCSPCertStatus.REVOKED),
        ]:
            before = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
            response = ocsp.load_der_ocsp_response(
                ca.ocspResponse(credentials, status)  # type: ignore[arg-type]
            )
            self.assertEqual(response.response_status, ocsp.OCSPResponseStatus.SUCCESSFUL)
            self.assertEqual(response.certificate_status, expected)
            self.assertEqual(response.serial_number, credentials.certificate.serial_number)
            self.assertTrue(
                before <= response.this_update_utc <= datetime.datetime.now(datetime.UTC)
            )
            assert response.next_update_utc is not None
            self.assertEqual(
                response.next_update_utc - response.this_update_utc,
                datetime.timedelta(days=1),
            )
            if status == "revoked":
                self.assertEqual(response.revocation_time_utc, response.this_update_utc)
            else:
                self.assertIsNone(response.revocation_time_utc)
            publicKey = ca.certificate.public_key()
            assert isinstance(publicKey, ec.EllipticCurvePublicKey)
            assert response.signature_hash_algorithm is not None
            publicKey.verify(
                response.signature, response.tbs_response_bytes,
                ec.ECDSA(response.signature_hash_algorithm),
            )

    def test_ocspResponseOnlyFromIssuer(self) -> None:
        """
        A CA refuses to speak for a certificate it did not issue, and an
        unknown status is refused.
        """
        ca = TestCA()
        credentials = TestCA("someone else").issueServerCertificate(["localhost"])
        with self.assertRaises(ConfigurationError) as caught:
            ca.ocspResponse(credentials, "good")
        self.assertIn("did not issue", str(caught.exception))
        with self.assertRaises(ConfigurationError) as caught:
            ca.ocspResponse(ca.issueServerCertificate(["localhost"]), "maybe")  # type: ignore[arg-type]
        self.assertIn("unknown OCSP status 'maybe'", str(caught.exception))

    def test_badRequests(self) -> None:
        """
        An unknown key type names the known ones; a server certificate
        needs a name, and a single string is one name.
        """
        with self.assertRaises(ConfigurationError) as caught:
            TestCA(keyType="dsa1024")  # type: ignore[arg-type]
        self.assertEqual(
            str(caught.exception),
            "unknown key type 'dsa1024' (known: ecdsa-p256, ecdsa-p384, rsa2048, rsa4096)",
        )
        with self.assertRaises(ConfigurationError):
            TestCA().issueServerCertificate([])
        single = TestCA().issueServerCertificate("localhost")
        self.assertEqual(single.subjectNames, ("localhost",))
        with self.assertRaises(ConfigurationError):
            selfSignedCertificate([])

    def test_filesLoadAsCredentials(self) -> None:
        """
        The CA certificate and a private key written to files are what
        L{loadCredentials} and clients read; the key file is private.
        """
        directory = temporaryDirectory(self)
        ca = TestCA()
        credentials = ca.issueServerCertificate(["localhost"])
        caPath = ca.writeCertificate(directory / "ca.pem")
        self.assertEqual(x509.load_pem_x509_certificate(caPath.read_bytes()), ca.certificate)
        certificatePath = directory / "server.pem"
        certificatePath.write_bytes(
            credentials.certificate.public_bytes(serialization.Encoding.PEM)
        )
        assert isinstance(credentials.privateKey, ec.EllipticCurvePrivateKey)
        keyPath = writePrivateKey(directory / "server.key", credentials.privateKey)
        self.assertEqual(stat.S_IMODE(os.stat(keyPath).st_mode), 0o600)
        loaded = loadCredentials(certificatePath, keyPath)
        self.assertEqual(loaded.certificate, credentials.certificate)



# The catalogue.


class ScenarioCatalogueTests(SynchronousTestCase):
    """
    L{SCENARIOS}, L{describeScenarios}, L{unavailableReason} and
    L{buildScenario} name every scenario in a stable order and refuse
    unknown ones.
    """

    def test_namesInOrder(self) -> None:
        """
        Every scenario is listed, in this order, under its own name.
        """
        self.assertEqual(
            list(SCENARIOS),
            [
                # The certificate.
                "valid", "expired", "not-yet-valid", "wrong-host", "cn-only",
                "self-signed", "untrusted-root", "incomplete-chain", "reversed-chain",
                "expired-intermediate", "sha1-signature", "rsa2048", "rsa4096",
                "ecdsa-p256", "ecdsa-p384", "rsa1024", "1000-sans",
                # The protocol.
                "tls1.2-only", "tls1.3-only", "tls1.0-only", "tls1.1-only",
                "pq-hybrid-only", "client-cert-required", "no-session-resumption",
                # Revocation.
                "revoked", "crl-revoked", "must-staple-no-staple",
                # Hostile servers.
                "truncated-reply", "reset-after-reply", "stall-handshake",
                "stall-after-handshake", "slow-reply", "one-byte-records",
                "hello-retry-request", "renegotiation-request", "alert-instead-of-reply",
                "close-during-handshake",
            ],
        )
        for name, scenario in SCENARIOS.items():
            self.assertEqual(scenario.name, name)
            self.assertTrue(scenario.description.endswith("."), name)
            self.assertNotIn("  ", scenario.description)

    def test_outcomesAreConsistent(self) -> None:
        """
        Every expected outcome is an accept with nothing more to say, or a
        refusal of a known kind; a refusal has Python's message unless
        Python's C{ssl} cannot see it, and then says what can
        (C{requires}). Outcomes are frozen values.
        """
        self.assertIn("accept", OUTCOME_KINDS)
        for name, scenario in SCENARIOS.items():
            outcome = scenario.expectedOutcome
            self.assertIn(outcome.kind, OUTCOME_KINDS, name)
            self.assertEqual(outcome.accepted, outcome.kind == "accept", name)
            if outcome.accepted:
                self.assertEqual(outcome, ACCEPT, name)
                self.assertEqual(outcome.summary, "accept")
            elif outcome.message is None:
                self.assertIsNotNone(outcome.requires, name)
                self.assertEqual(outcome.summary, outcome.kind)
            else:
                self.assertEqual(outcome.summary, outcome.message)
        with self.assertRaises(AttributeError):
            ACCEPT.accepted = False  # type: ignore[misc]

    def test_everyScenarioHasAnOutcomeTest(self) -> None:
        """
        L{ScenarioOutcomeTests} has a test for every scenario (for the
        hostile ones, L{HostileScenarioOutcomeTests}), so a new scenario
        cannot ship without proof of its promised outcome.
        """
        from tests.test_hostilescenarios import HostileScenarioOutcomeTests

        for name in SCENARIOS:
            self.assertTrue(
                any(
                    callable(getattr(tests, f"test_{camelCase(name)}", None))
                    for tests in (ScenarioOutcomeTests, HostileScenarioOutcomeTests)
                ),
                name,
            )

    def test_describeScenarios(self) -> None:
        """
        The listing is plain JSON values: name, description, expected
        outcome, and whether (and if not, why not) the scenario is
        available here.
        """
        listing = json.loads(json.dumps(describeScenarios()))
        self.assertEqual([each["name"] for each in listing], list(SCENARIOS))
        for each in listing:
            scenario = SCENARIOS[each["name"]]
            outcome = scenario.expectedOutcome
            self.assertEqual(
                each,
                {
                    "name": scenario.name,
                    "description": scenario.description,
                    "expected": outcome.summary,
                    "expectedOutcome": {
                        "accepted": outcome.accepted,
                        "kind": outcome.kind,
                        "message": outcome.message,
                        "requires": outcome.requires,
                    },
                    "outcomes": {
                        **{stack: o.describe() for stack, o in scenario.outcomes.items()},
                        "correct": outcome.describe(),
                    },
                    "available": unavailableReason(scenario.name) is None,
                    "unavailable": unavailableReason(scenario.name),
                },
            )
        available = {each["name"] for each in listing if each["available"]}
        self.assertEqual(available | {"sha1-signature"}, set(SCENARIOS))

    def test_unknownScenario(self) -> None:
        """
        An unknown name is a L{ConfigurationError} that lists every known
        one, from L{buildScenario} and L{unavailableReason} alike.
        """
        message = "unknown scenario 'bogus' (known: " + ", ".join(SCENARIOS) + ")"
        with self.assertRaises(ConfigurationError) as caught:
            buildScenario("bogus", TestCA(), temporaryDirectory(self))
        self.assertEqual(str(caught.exception), message)
        with self.assertRaises(ConfigurationError) as caught:
            unavailableReason("bogus")
        self.assertEqual(str(caught.exception), message)

    def test_buildWritesTheRootForClients(self) -> None:
        """
        L{buildScenario} creates its directory and writes the root of the
        CA it was given there, also when that CA is an intermediate (whose
        chain the server then sends).
        """
        root = TestCA()
        intermediate = root.createIntermediate("issuing CA")
        directory = temporaryDirectory(self) / "new" / "folder"
        setup = buildScenario("valid", intermediate, directory)
        self.assertEqual(setup.caPath, directory / CA_FILE)
        self.assertEqual(
            x509.load_pem_x509_certificate(setup.caPath.read_bytes()), root.certificate
        )
        [credentials] = setup.credentials
        self.assertEqual(credentials.chain, (intermediate.certificate,))
        self.assertEqual(setup.serverName, "localhost")
        self.assertIsNone(setup.clientCertificatePath)


# Every scenario on the wire.


def pemCertificates(output: str) -> list[x509.Certificate]:
    """
    The certificates in C{openssl s_client -showcerts} output, in the order
    the server sent them.
    """
    return [
        x509.load_pem_x509_certificate(block.encode())
        for block in re.findall(
            r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", output, re.DOTALL
        )
    ]


class ScenarioOutcomeTests(TestCase):
    """
    Each scenario, served on 127.0.0.1, gives the correct client exactly
    the outcome it promises, and is what it says it is.
    """

    async def serve(self, name: str) -> tuple[ScenarioSetup, RunningServer]:
        """
        Build a scenario from a fresh test CA and serve it, with its
        helpers (C{crl-revoked}'s CRL) on the reactor.
        """
        setup = buildScenario(name, TestCA(), temporaryDirectory(self))
        self.addCleanup(setup.stopHelpers)
        server = await startServer(self, policy=setup.policy, contextFactory=setup.serverContexts())
        setup.startHelpers(reactor)
        return setup, server

    async def fetch(
        self, setup: ScenarioSetup, server: RunningServer, configure: Configure | None = None
    ) -> SSLResult:
        """
        Fetch the reply with the correct client (Python's C{ssl} trusting
        only the test CA, connecting to C{localhost}), configured further if
        asked.
        """
        result: SSLResult = await inThread(
            fetchWithSSL, server.port, clientContext(str(setup.caPath), configure),
            serverName=setup.serverName,
        )
        return result

    async def assertFails(
        self, setup: ScenarioSetup, server: RunningServer, expected: str | None,
        configure: Configure | None = None,
    ) -> ssl.SSLError:
        """
        The client fails with exactly this error text.
        """
        with self.assertRaises(ssl.SSLError) as caught:
            await self.fetch(setup, server, configure)
        self.assertEqual(errorText(caught.exception), expected)
        return caught.exception

    async def assertAccepted(
        self, setup: ScenarioSetup, server: RunningServer, configure: Configure | None = None
    ) -> SSLResult:
        """
        The client receives the reply, with the scenario's certificate.
        """
        result = await self.fetch(setup, server, configure)
        self.assertEqual(result.data, b"test\n")
        self.assertEqual(
            x509.load_der_x509_certificate(result.peerCertificate or b""),
            setup.credentials[0].certificate,
        )
        return result

    async def assertOutcome(
        self, name: str, correctClient: Configure | None = None
    ) -> tuple[ScenarioSetup, RunningServer]:
        """
        Serve a scenario and check that the correct client sees exactly its
        expected outcome (L{checkOutcome}).
        """
        setup, server = await self.serve(name)
        await self.checkOutcome(setup, server, correctClient)
        return setup, server

    async def checkOutcome(
        self, setup: ScenarioSetup, server: RunningServer, correctClient: Configure | None = None
    ) -> None:
        """
        The correct client sees exactly the scenario's expected outcome: the
        reply, or the error with exactly its message, raised as a
        certificate verification error for a certificate's kinds and as an
        alert for the others.

        Where the outcome C{requires} more than Python's default context,
        that default client accepts (as C{requires} says), and
        C{correctClient} configures it as C{requires} asks; without one
        (C{revoked}: OCSP, which Python's C{ssl} cannot check) the outcome
        has no message, and the scenario's own test checks it otherwise.
        """
        expected = setup.scenario.expectedOutcome
        if expected.requires is not None:
            await self.assertAccepted(setup, server)
            if correctClient is None:
                self.assertIsNone(expected.message)
                return
        else:
            self.assertIsNone(correctClient, "this outcome requires nothing more")
        if expected.accepted:
            await self.assertAccepted(setup, server, correctClient)
            return
        error = await self.assertFails(setup, server, expected.message, correctClient)
        self.assertEqual(
            isinstance(error, ssl.SSLCertVerificationError),
            expected.kind in VERIFICATION_KINDS,
            expected.kind,
        )

    async def servedCertificates(
        self, setup: ScenarioSetup, server: RunningServer, *arguments: str
    ) -> tuple[list[x509.Certificate], str]:
        """
        The certificates the server sends, in order, as C{openssl s_client
        -showcerts} receives them, and the whole output.
        """
        openssl = requireCommand(self, "openssl")
        result = await inThread(
            runCommand,
            [openssl, "s_client", "-connect", f"{LOOPBACK}:{server.port}", "-servername",
             setup.serverName, "-CAfile", str(setup.caPath), "-showcerts", "-ign_eof",
             *arguments],
        )
        output = (result.stdout + result.stderr).decode("utf-8", "replace")
        return pemCertificates(output), output

    async def test_valid(self) -> None:
        """
        The control: accepted, and only the leaf is sent (the test CA is a
        root, which servers do not send).
        """
        setup, server = await self.assertOutcome("valid")
        served, _ = await self.servedCertificates(setup, server)
        self.assertEqual(served, [setup.credentials[0].certificate])

    async def test_expired(self) -> None:
        """
        Refused as expired: the certificate ended yesterday.
        """
        setup, _ = await self.assertOutcome("expired")
        notAfter = setup.credentials[0].certificate.not_valid_after_utc
        self.assertLess(notAfter, datetime.datetime.now(datetime.UTC))

    async def test_notYetValid(self) -> None:
        """
        Refused as not yet valid: the certificate starts tomorrow.
        """
        setup, _ = await self.assertOutcome("not-yet-valid")
        notBefore = setup.credentials[0].certificate.not_valid_before_utc
        self.assertGreater(notBefore, datetime.datetime.now(datetime.UTC))

    async def test_wrongHost(self) -> None:
        """
        Refused for the name; the same client without the name check
        accepts it, so the chain itself is fine.
        """
        setup, server = await self.assertOutcome("wrong-host")

        def chainOnly(context: ssl.SSLContext) -> None:
            context.check_hostname = False

        result = await self.fetch(setup, server, chainOnly)
        self.assertEqual(result.data, b"test\n")

    async def test_selfSigned(self) -> None:
        """
        Refused as self-signed: the leaf is its own issuer.
        """
        setup, _ = await self.assertOutcome("self-signed")
        certificate = setup.credentials[0].certificate
        self.assertEqual(certificate.issuer, certificate.subject)
        certificate.verify_directly_issued_by(certificate)

    async def test_untrustedRoot(self) -> None:
        """
        Refused for an untrusted root in the chain; the server sends the
        leaf and that other root.
        """
        setup, server = await self.assertOutcome("untrusted-root")
        served, _ = await self.servedCertificates(setup, server)
        leaf, root = served
        self.assertEqual(leaf, setup.credentials[0].certificate)
        self.assertEqual(root.subject, root.issuer)
        self.assertIn("untrusted root", root.subject.rfc4514_string())
        leaf.verify_directly_issued_by(root)

    async def test_incompleteChain(self) -> None:
        """
        Refused for a missing issuer; the server sends the leaf alone,
        although an intermediate issued it.
        """
        setup, server = await self.assertOutcome("incomplete-chain")
        served, _ = await self.servedCertificates(setup, server)
        [leaf] = served
        ca = x509.load_pem_x509_certificate(setup.caPath.read_bytes())
        self.assertNotEqual(leaf.issuer, ca.subject)

    async def test_reversedChain(self) -> None:
        """
        Accepted, although the server sends the two intermediates root side
        first: each is issued by the one after it, not the one before.
        """
        setup, server = await self.assertOutcome("reversed-chain")
        served, output = await self.servedCertificates(setup, server)
        self.assertIn("Verify return code: 0 (ok)", output)
        leaf, upper, lower = served
        ca = x509.load_pem_x509_certificate(setup.caPath.read_bytes())
        upper.verify_directly_issued_by(ca)
        lower.verify_directly_issued_by(upper)
        leaf.verify_directly_issued_by(lower)

    async def test_sha1Signature(self) -> None:
        """
        Refused for its SHA-1 signature, where this OpenSSL can serve one
        at all; the certificate served is signed with SHA-1.
        """
        reason = unavailableReason("sha1-signature")
        if reason is not None:
            self.skipTest(reason)
        setup, server = await self.assertOutcome("sha1-signature")
        result = await self.fetch(setup, server, verifyNothing)
        served = x509.load_der_x509_certificate(result.peerCertificate or b"")
        self.assertIsInstance(served.signature_hash_algorithm, hashes.SHA1)

    async def assertKey(self, name: str, description: str) -> None:
        """
        The scenario is accepted, with a certificate (the one the client
        received, as L{assertOutcome} checks) whose public key is of this
        type and size, and a private key to match.
        """
        setup, _ = await self.assertOutcome(name)
        [credentials] = setup.credentials
        publicKey = credentials.certificate.public_key()
        if isinstance(publicKey, rsa.RSAPublicKey):
            found = f"RSA-{publicKey.key_size}"
        else:
            assert isinstance(publicKey, ec.EllipticCurvePublicKey)
            found = {"secp256r1": "ECDSA-P-256", "secp384r1": "ECDSA-P-384"}[
                publicKey.curve.name
            ]
        self.assertEqual((found, credentials.keyDescription), (description, description))

    async def test_rsa2048(self) -> None:
        """
        Accepted, with an RSA 2048-bit key.
        """
        await self.assertKey("rsa2048", "RSA-2048")

    async def test_rsa4096(self) -> None:
        """
        Accepted, with an RSA 4096-bit key.
        """
        await self.assertKey("rsa4096", "RSA-4096")

    async def test_ecdsaP256(self) -> None:
        """
        Accepted, with an ECDSA P-256 key.
        """
        await self.assertKey("ecdsa-p256", "ECDSA-P-256")

    async def test_ecdsaP384(self) -> None:
        """
        Accepted, with an ECDSA P-384 key.
        """
        await self.assertKey("ecdsa-p384", "ECDSA-P-384")

    async def test_1000Sans(self) -> None:
        """
        Accepted, with a certificate that really has 1,000 names, the
        client's own among them.
        """
        setup, _ = await self.assertOutcome("1000-sans")
        names = setup.credentials[0].subjectNames
        self.assertEqual(len(names), MANY_NAMES_COUNT)
        self.assertEqual(len(set(names)), MANY_NAMES_COUNT)
        self.assertEqual(names[-3:], NAMES)

    async def test_tls12Only(self) -> None:
        """
        Accepted over TLS 1.2 by a client that offers 1.3 too; a TLS
        1.3-only client is refused with a protocol_version alert.
        """
        setup, server = await self.assertOutcome("tls1.2-only")
        result = await self.fetch(setup, server)
        self.assertEqual(result.version, "TLSv1.2")
        await self.assertFails(setup, server, "tlsv1 alert protocol version", tls13)

    async def test_tls13Only(self) -> None:
        """
        Accepted over TLS 1.3; a TLS 1.2-only client is refused with a
        protocol_version alert.
        """
        setup, server = await self.assertOutcome("tls1.3-only")
        result = await self.fetch(setup, server)
        self.assertEqual(result.version, "TLSv1.3")
        await self.assertFails(setup, server, "tlsv1 alert protocol version", tls12)

    async def test_clientCertRequired(self) -> None:
        """
        A client without a certificate gets certificate_required (TLS 1.3)
        or handshake_failure (TLS 1.2); one presenting the scenario's client
        certificate is served, over either version, from the combined file
        alone or with the separate key file. Both files are private.
        """
        setup, server = await self.assertOutcome("client-cert-required")
        await self.assertFails(setup, server, "sslv3 alert handshake failure", tls12)
        assert setup.clientCertificatePath is not None
        assert setup.clientKeyPath is not None
        for path in (setup.clientCertificatePath, setup.clientKeyPath):
            self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o600)
        certificatePath = setup.clientCertificatePath
        for keyPath in (None, setup.clientKeyPath):
            for version in (tls13, tls12):

                def configure(
                    context: ssl.SSLContext,
                    keyPath: Path | None = keyPath,
                    version: Configure = version,
                ) -> None:
                    context.load_cert_chain(certificatePath, keyPath)
                    version(context)

                result = await self.fetch(setup, server, configure)
                self.assertEqual(result.data, b"test\n")

    async def test_revoked(self) -> None:
        """
        Python's C{ssl}, which does not check OCSP, accepts; C{openssl
        s_client -status} verifies the chain and receives the stapled
        response, which says revoked, about the served certificate.
        """
        setup, server = await self.assertOutcome("revoked")
        _, output = await self.servedCertificates(setup, server, "-status")
        self.assertIn("Verify return code: 0 (ok)", output)
        self.assertIn("OCSP Response Status: successful (0x0)", output)
        self.assertIn("Cert Status: revoked", output)
        serial = re.search(r"Serial Number: ([0-9A-Fa-f]+)", output)
        assert serial is not None, output
        self.assertEqual(
            int(serial.group(1), 16), setup.credentials[0].certificate.serial_number
        )

    async def test_cnOnly(self) -> None:
        """
        Refused for the name by a client that does not fall back to the
        common name (as browsers, Go and RFC 9525 do not); Python's default
        client, which still does, accepts (L{checkOutcome}). The
        certificate has no subjectAltName, and localhost as its common name.
        """
        setup, _ = await self.assertOutcome("cn-only", noCommonNameFallback)
        certificate = setup.credentials[0].certificate
        with self.assertRaises(x509.ExtensionNotFound):
            certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        self.assertEqual(
            [a.value for a in certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)],
            ["localhost"],
        )

    async def test_expiredIntermediate(self) -> None:
        """
        Refused as expired: the server sends a leaf that is valid now and
        the intermediate that issued it, whose validity ended yesterday and
        which the test CA issued.
        """
        setup, server = await self.assertOutcome("expired-intermediate")
        served, _ = await self.servedCertificates(setup, server)
        leaf, intermediate = served
        now = datetime.datetime.now(datetime.UTC)
        self.assertTrue(leaf.not_valid_before_utc < now < leaf.not_valid_after_utc)
        self.assertLess(intermediate.not_valid_after_utc, now)
        leaf.verify_directly_issued_by(intermediate)
        intermediate.verify_directly_issued_by(
            x509.load_pem_x509_certificate(setup.caPath.read_bytes())
        )

    async def test_rsa1024(self) -> None:
        """
        Refused for its weak key. A client at security level 0 that
        verifies nothing receives a certificate with an RSA 1024-bit key;
        the server serves it at security level 1, because at OpenSSL's
        default level it will not.
        """
        setup, server = await self.assertOutcome("rsa1024")

        def anyKey(context: ssl.SSLContext) -> None:
            verifyNothing(context)
            context.set_ciphers("DEFAULT:@SECLEVEL=0")

        result = await self.fetch(setup, server, anyKey)
        publicKey = x509.load_der_x509_certificate(result.peerCertificate or b"").public_key()
        assert isinstance(publicKey, rsa.RSAPublicKey)
        self.assertEqual(publicKey.key_size, 1024)
        self.assertTrue(setup.policy.effectiveTLS12Ciphers.endswith(":@SECLEVEL=1"))
        with self.assertRaises(ConfigurationError) as caught:
            buildServerContexts(setup.credentials, TLSPolicy())
        self.assertIn("ee key too small", str(caught.exception))

    async def assertOldVersionOnly(self, name: str, version: str) -> None:
        """
        Refused by the correct client (TLS 1.2 at least) with a
        protocol_version alert; a client that allows TLS 1.0 to 1.3 at
        security level 0 is served, with the old version alone. At a
        security level above 0, OpenSSL does not serve it at all.
        """
        setup, server = await self.assertOutcome(name)

        def allowOld(context: ssl.SSLContext) -> None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                context.minimum_version = ssl.TLSVersion.TLSv1
            context.set_ciphers("DEFAULT:@SECLEVEL=0")

        result = await self.fetch(setup, server, allowOld)
        self.assertEqual((result.data, result.version), (b"test\n", version))
        self.assertTrue(setup.policy.effectiveTLS12Ciphers.endswith(":@SECLEVEL=0"))
        self.assertIn("security level to 0", setup.scenario.description)
        unlowered = replace(
            setup,
            policy=replace(setup.policy, tls12Ciphers="ECDHE-ECDSA-AES128-SHA:@SECLEVEL=1"),
        )
        refusing = await startServer(self, contextFactory=unlowered.serverContexts())
        await self.assertFails(setup, refusing, "tlsv1 alert protocol version", allowOld)

    async def test_tls10Only(self) -> None:
        """
        TLS 1.0 only.
        """
        await self.assertOldVersionOnly("tls1.0-only", "TLSv1")

    async def test_tls11Only(self) -> None:
        """
        TLS 1.1 only.
        """
        await self.assertOldVersionOnly("tls1.1-only", "TLSv1.1")

    async def test_pqHybridOnly(self) -> None:
        """
        The catalogue's outcome for Python's C{ssl} is what a real
        handshake of this Python's C{ssl} does: served if its ClientHello
        (as a relay saw it, read outside tlsreply) offers X25519MLKEM768
        (OpenSSL 3.5 and later), else refused with the catalogue's
        handshake_failure message. A Twisted client on pyOpenSSL's OpenSSL
        4, which offers it, is served over TLS 1.3 with that group, as its
        record shows.
        """
        setup, server = await self.serve("pq-hybrid-only")
        relay = CapturingRelay(self, server.port)
        expected = setup.scenario.expectedOutcome
        try:
            result = await inThread(
                fetchWithSSL, relay.port, clientContext(str(setup.caPath))
            )
        except ssl.SSLError as e:
            accepted, error = False, str(e)
        else:
            accepted, error = result.data == b"test\n", ""
        [flight] = relay.sent
        offersHybrid = X25519MLKEM768 in parseClientHello(bytes(flight)).groups
        self.assertEqual(
            (expected.accepted, expected.accepted), (accepted, offersHybrid), error
        )
        if not accepted:
            assert expected.message is not None
            self.assertIn(expected.message, error)
        fixture = startTLSReplyServer(self, scenario="pq-hybrid-only")
        self.assertEqual(await fetchWithTwisted(fixture), b"test\n")
        [record] = await fixture.whenRecorded(1)
        self.assertEqual((record.tlsVersion, record.group), ("TLSv1.3", HYBRID_GROUP))

    async def test_crlRevoked(self) -> None:
        """
        The certificate names a CRL distribution point on 127.0.0.1, where
        a CRL signed by the test CA lists it as revoked. Python's default
        client accepts (L{checkOutcome}); one that loads that CRL and
        checks the leaf against it is refused with "certificate revoked",
        and so is C{openssl verify -crl_check -crl_download}, which fetches
        the CRL itself.
        """
        setup, server = await self.serve("crl-revoked")
        leaf = setup.credentials[0].certificate
        [point] = leaf.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
        assert point.full_name is not None
        [location] = point.full_name
        url = str(location.value)
        self.assertRegex(url, r"\Ahttp://127\.0\.0\.1:\d+/crl-revoked\.crl\Z")
        body, contentType = await inThread(httpGet, url)
        self.assertEqual(contentType, "application/pkix-crl")
        crl = x509.load_der_x509_crl(body)
        ca = x509.load_pem_x509_certificate(setup.caPath.read_bytes())
        publicKey = ca.public_key()
        assert isinstance(publicKey, ec.EllipticCurvePublicKey)
        self.assertTrue(crl.is_signature_valid(publicKey))
        self.assertIsNotNone(crl.get_revoked_certificate_by_serial_number(leaf.serial_number))
        directory = temporaryDirectory(self)
        crlPath = directory / "crl.pem"
        crlPath.write_bytes(crl.public_bytes(serialization.Encoding.PEM))

        def checkCRL(context: ssl.SSLContext) -> None:
            context.load_verify_locations(crlPath)
            context.verify_flags |= ssl.VERIFY_CRL_CHECK_LEAF

        await self.checkOutcome(setup, server, checkCRL)
        openssl = requireCommand(self, "openssl")
        leafPath = directory / "leaf.pem"
        leafPath.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
        result = await inThread(
            runCommand,
            [openssl, "verify", "-CAfile", str(setup.caPath), "-crl_check", "-crl_download",
             str(leafPath)],
            env=withoutProxies(),
        )
        self.assertNotEqual(result.returncode, 0)
        self.assertIn(b"certificate revoked", result.stdout + result.stderr)

    async def test_mustStapleNoStaple(self) -> None:
        """
        Accepted by Python's C{ssl}, which ignores the extension; the
        certificate it received has the TLS Feature extension asking for
        status_request, and C{openssl s_client -status}, asking for a
        staple, verifies the chain and gets none.
        """
        setup, server = await self.assertOutcome("must-staple-no-staple")
        result = await self.fetch(setup, server)
        served = x509.load_der_x509_certificate(result.peerCertificate or b"")
        feature = served.extensions.get_extension_for_class(x509.TLSFeature)
        self.assertEqual(list(feature.value), [x509.TLSFeatureType.status_request])
        _, output = await self.servedCertificates(setup, server, "-status")
        self.assertIn("OCSP response: no response sent", output)
        self.assertIn("Verify return code: 0 (ok)", output)

    async def resumptions(self, name: str) -> dict[str, bool]:
        """
        Serve a scenario; for TLS 1.3, TLS 1.2 with tickets and TLS 1.2 by
        session ID, connect, then connect again offering the first session.

        @return: whether each second connection resumed.
        """
        setup, server = await self.assertOutcome(name)
        found = {}
        for kind, configure in [
            ("TLSv1.3", tls13), ("TLSv1.2 ticket", tls12),
            ("TLSv1.2 session ID", tls12SessionID),
        ]:
            context = clientContext(str(setup.caPath), configure)
            first: SSLResult = await inThread(fetchWithSSL, server.port, context)
            self.assertIsNotNone(first.session, kind)
            second: SSLResult = await inThread(
                fetchWithSSL, server.port, context, session=first.session
            )
            self.assertEqual(second.data, b"test\n")
            found[kind] = second.sessionReused
        return found

    async def test_noSessionResumption(self) -> None:
        """
        No second connection resumes, for TLS 1.3 and TLS 1.2 (by ticket
        or session ID); the same clients do resume with the valid
        scenario, so they did offer their sessions.
        """
        self.assertEqual(
            await self.resumptions("no-session-resumption"),
            {"TLSv1.3": False, "TLSv1.2 ticket": False, "TLSv1.2 session ID": False},
        )
        self.assertEqual(
            await self.resumptions("valid"),
            {"TLSv1.3": True, "TLSv1.2 ticket": True, "TLSv1.2 session ID": True},
        )
