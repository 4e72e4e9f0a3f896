"""
Tests for L{tlsreply.testing.ca} (the test certificate authority) and
L{tlsreply.testing.scenarios} (the deliberately broken servers made from it).

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
from collections.abc import Callable
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID
from twisted.trial.unittest import SynchronousTestCase, TestCase

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
from tlsreply.credentials import loadCredentials
from tlsreply.errors import ConfigurationError
from tlsreply.testing.ca import (
    LEAF_BACKDATE,
    LEAF_LIFETIME,
    TestCA,
    selfSignedCertificate,
    writePrivateKey,
)
from tlsreply.testing.scenariocatalogue import (
    ACCEPT,
    CA_FILE,
    MANY_NAMES_COUNT,
    NAMES,
)
from tlsreply.testing.scenarios import (
    SCENARIOS,
    ScenarioSetup,
    buildScenario,
    describeScenarios,
    unavailableReason,
)
from tlsreply.tlscontext import buildServerContexts

Configure = Callable[[ssl.SSLContext], None]

#: How public keys are compared: as DER SubjectPublicKeyInfo.
_SPKI = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


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
                "valid", "expired", "not-yet-valid", "wrong-host", "self-signed",
                "untrusted-root", "incomplete-chain", "reversed-chain", "sha1-signature",
                "rsa2048", "rsa4096", "ecdsa-p256", "ecdsa-p384", "1000-sans",
                "tls1.2-only", "tls1.3-only", "client-cert-required", "revoked",
                "no-session-resumption",
            ],
        )
        for name, scenario in SCENARIOS.items():
            self.assertEqual(scenario.name, name)
            self.assertTrue(scenario.description.endswith("."), name)
            self.assertNotIn("  ", scenario.description)

    def test_everyScenarioHasAnOutcomeTest(self) -> None:
        """
        L{ScenarioOutcomeTests} has a test for every scenario, so a new
        scenario cannot ship without proof of its promised outcome.
        """
        for name in SCENARIOS:
            self.assertTrue(
                callable(getattr(ScenarioOutcomeTests, f"test_{camelCase(name)}", None)),
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
            self.assertEqual(
                each,
                {
                    "name": scenario.name,
                    "description": scenario.description,
                    "expected": scenario.expectedOutcome,
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
        Build a scenario from a fresh test CA and serve it.
        """
        setup = buildScenario(name, TestCA(), temporaryDirectory(self))
        server = await startServer(
            self,
            policy=setup.policy,
            contextFactory=buildServerContexts(setup.credentials, setup.policy),
        )
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
        self, setup: ScenarioSetup, server: RunningServer, expected: str,
        configure: Configure | None = None,
    ) -> ssl.SSLError:
        """
        The client fails with exactly this error text.
        """
        with self.assertRaises(ssl.SSLError) as caught:
            await self.fetch(setup, server, configure)
        self.assertEqual(errorText(caught.exception), expected)
        return caught.exception

    async def assertOutcome(self, name: str) -> tuple[ScenarioSetup, RunningServer]:
        """
        Serve a scenario and check that the correct client sees exactly its
        expected outcome: the reply for L{ACCEPT}, else the error. (For
        C{revoked} the correct client is one that checks OCSP, which
        Python's C{ssl} does not: it must get the reply, and
        L{test_revoked} checks the OCSP outcome with C{openssl s_client}.)
        """
        setup, server = await self.serve(name)
        expected = setup.scenario.expectedOutcome
        if expected in (ACCEPT, "revoked"):
            result = await self.fetch(setup, server)
            self.assertEqual(result.data, b"test\n")
            self.assertEqual(
                x509.load_der_x509_certificate(result.peerCertificate or b""),
                setup.credentials[0].certificate,
            )
        else:
            error = await self.assertFails(setup, server, expected)
            if setup.scenario.name != "client-cert-required":
                self.assertIsInstance(error, ssl.SSLCertVerificationError)
        return setup, server

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
