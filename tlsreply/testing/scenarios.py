# -*- test-case-name: tests.test_scenarios -*-
"""
Deliberately broken or unusual TLS servers, made on the fly from a
L{TestCA}: a local badssl.com for testing TLS clients.

Each scenario is a set of certificates and a L{TLSPolicy} that
L{buildServerContexts} turns into a server, plus the outcome a correct
client sees. "A correct client" is defined concretely, so that the promise
can be tested: Python's C{ssl.create_default_context()} trusting only the
test CA's root, connecting with C{server_hostname="localhost"}. A client
under test that disagrees with it has either a bug or a deliberate policy
worth knowing about. The error texts are those of OpenSSL 3, which
Python's C{ssl} reports (OpenSSL 1.1.1 wrote "self signed certificate",
without the hyphen).

Certificates are made fresh for every build, valid for C{localhost},
C{127.0.0.1} and C{::1} unless the scenario says otherwise, and nothing is
cached between builds (except whether this OpenSSL can serve a SHA-1
certificate at all, which cannot change while the process runs).
"""

from __future__ import annotations

import datetime
import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Final, TypedDict

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from OpenSSL import SSL
from twisted.internet.ssl import TLSVersion

from tlsreply.credentials import ServerCredentials
from tlsreply.errors import ConfigurationError
from tlsreply.policy import DEFAULT_TLS12_CIPHERS, TLSPolicy
from tlsreply.testing.ca import (
    KeyType,
    TestCA,
    certificatesPEM,
    selfSignedCertificate,
    writePrivateKey,
)
from tlsreply.tlscontext import buildServerContexts

#: The names every scenario's certificate is for, unless it says otherwise.
NAMES: Final = ("localhost", "127.0.0.1", "::1")

#: The outcome of a scenario that a correct client accepts: the handshake
#: completes and the reply arrives.
ACCEPT: Final = "accept"

#: The server name a correct client connects with.
SERVER_NAME: Final = "localhost"

#: The names the wrong-host certificate is for (C{.example} is reserved:
#: it can never be a real host).
WRONG_HOST_NAMES: Final = ("wrong.host.example",)

#: How many subjectAltName entries the 1000-sans certificate has.
MANY_NAMES_COUNT: Final = 1000

#: The file names C{buildScenario} writes into its directory.
CA_FILE: Final = "ca.pem"
CLIENT_CERTIFICATE_FILE: Final = "client.pem"
CLIENT_KEY_FILE: Final = "client.key"


@dataclass(frozen=True)
class Scenario:
    """
    A kind of server a TLS client should be tested against.

    @ivar name: what it is called (C{"expired"}), as on badssl.com where
        there is an equivalent.
    @ivar description: what is unusual or broken about it, and why a
        client should care.
    @ivar expectedOutcome: what a correct client (Python's C{ssl} with
        C{create_default_context()}, trusting only the test CA, connecting
        to C{localhost}) sees: L{ACCEPT}, or the error it reports, exactly
        (OpenSSL's certificate verification message, Python's hostname
        mismatch message, or the TLS alert OpenSSL reports). The one
        exception is C{revoked}, which says C{"revoked"}: Python's C{ssl}
        does not check OCSP at all, and the description says so.
    """

    name: str
    description: str
    expectedOutcome: str


@dataclass(frozen=True)
class ScenarioSetup:
    """
    Everything needed to serve a scenario and to point a client at it.

    @ivar scenario: which scenario this is.
    @ivar credentials: the certificates to serve, for
        L{buildServerContexts}.
    @ivar policy: the TLS policy to serve them with.
    @ivar caPath: the test CA's root certificate (PEM), the only thing a
        correct client trusts.
    @ivar serverName: the name a client connects with.
    @ivar clientCertificatePath: for C{client-cert-required}, a client
        certificate the server accepts: one PEM file (mode 0600) with the
        certificate, any intermediates and the private key, as C{curl
        --cert}, Python's C{load_cert_chain(path)} and Twisted's
        C{PrivateCertificate.loadPEM} take it.
    @ivar clientKeyPath: the private key alone (PEM, mode 0600), for
        clients that want it in a file of its own.
    """

    scenario: Scenario
    credentials: list[ServerCredentials]
    policy: TLSPolicy
    caPath: Path
    serverName: str = SERVER_NAME
    clientCertificatePath: Path | None = None
    clientKeyPath: Path | None = None


@dataclass
class _Built:
    """
    What a scenario's builder makes; L{buildScenario} adds the rest.
    """

    credentials: list[ServerCredentials]
    policy: TLSPolicy = field(default_factory=TLSPolicy)
    clientCertificatePath: Path | None = None
    clientKeyPath: Path | None = None


_Builder = Callable[[TestCA, Path], _Built]

_REGISTRY: dict[str, tuple[Scenario, _Builder]] = {}


def _scenario(
    name: str, expectedOutcome: str, description: str
) -> Callable[[_Builder], _Builder]:
    """
    Register a scenario and its builder, in definition order (the order of
    L{SCENARIOS} and of every listing).
    """

    def register(builder: _Builder) -> _Builder:
        _REGISTRY[name] = (Scenario(name, " ".join(description.split()), expectedOutcome), builder)
        return builder

    return register


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


@_scenario(
    "valid",
    ACCEPT,
    """A certificate for localhost, 127.0.0.1 and ::1 from the test CA,
    ECDSA P-256, valid for 30 days: the control case that every client must
    accept.""",
)
def _valid(ca: TestCA, directory: Path) -> _Built:
    return _Built([ca.issueServerCertificate(NAMES)])


@_scenario(
    "expired",
    "certificate has expired",
    """A certificate from the test CA whose validity ended a day ago (it
    ran from 30 days ago until yesterday).""",
)
def _expired(ca: TestCA, directory: Path) -> _Built:
    now = _now()
    return _Built(
        [
            ca.issueServerCertificate(
                NAMES,
                notBefore=now - datetime.timedelta(days=30),
                notAfter=now - datetime.timedelta(days=1),
            )
        ]
    )


@_scenario(
    "not-yet-valid",
    "certificate is not yet valid",
    """A certificate from the test CA whose validity starts tomorrow: a
    client whose clock is right must refuse it.""",
)
def _notYetValid(ca: TestCA, directory: Path) -> _Built:
    now = _now()
    return _Built(
        [
            ca.issueServerCertificate(
                NAMES,
                notBefore=now + datetime.timedelta(days=1),
                notAfter=now + datetime.timedelta(days=30),
            )
        ]
    )


@_scenario(
    "wrong-host",
    f"Hostname mismatch, certificate is not valid for '{SERVER_NAME}'.",
    """A valid certificate from the test CA, but for wrong.host.example
    only: a client asking for localhost must refuse it although the chain
    verifies. The message is Python's own for OpenSSL's hostname
    mismatch.""",
)
def _wrongHost(ca: TestCA, directory: Path) -> _Built:
    return _Built([ca.issueServerCertificate(WRONG_HOST_NAMES)])


@_scenario(
    "self-signed",
    "self-signed certificate",
    """A certificate for localhost signed by its own key, not by the test
    CA: only a client that trusts that very certificate accepts it.""",
)
def _selfSigned(ca: TestCA, directory: Path) -> _Built:
    return _Built([selfSignedCertificate(NAMES)])


@_scenario(
    "untrusted-root",
    "self-signed certificate in certificate chain",
    """A certificate from another root CA, sent with that root, as
    badssl.com's untrusted-root does: the client has the whole chain but
    does not trust its root.""",
)
def _untrustedRoot(ca: TestCA, directory: Path) -> _Built:
    other = TestCA("tlsreply untrusted root CA")
    credentials = other.issueServerCertificate(NAMES)
    return _Built([replace(credentials, chain=(other.certificate,))])


@_scenario(
    "incomplete-chain",
    "unable to get local issuer certificate",
    """A certificate from an intermediate of the test CA, served without
    that intermediate. Browsers may fetch it from the authority information
    access URL or a cache; a client that does not cannot build the path.""",
)
def _incompleteChain(ca: TestCA, directory: Path) -> _Built:
    intermediate = ca.createIntermediate("tlsreply test intermediate CA")
    return _Built([intermediate.issueServerCertificate(NAMES, sendChain=False)])


@_scenario(
    "reversed-chain",
    ACCEPT,
    """A certificate from a second-level intermediate of the test CA, sent
    with both intermediates in the wrong order (the root's child first).
    TLS 1.3 (RFC 8446, 4.4.2) asks clients to cope, and OpenSSL builds the
    path from the certificates in any order, so a correct client accepts; a
    client that insists on issuer order fails here.""",
)
def _reversedChain(ca: TestCA, directory: Path) -> _Built:
    upper = ca.createIntermediate("tlsreply test intermediate CA 1")
    lower = upper.createIntermediate("tlsreply test intermediate CA 2")
    credentials = lower.issueServerCertificate(NAMES)
    # Issuer first would be (lower, upper, *ca.chain).
    return _Built([replace(credentials, chain=(upper.certificate, lower.certificate, *ca.chain))])


@_scenario(
    "sha1-signature",
    "CA signature digest algorithm too weak",
    """A certificate signed by the test CA with SHA-1 (everything else is
    SHA-256). OpenSSL 3 refuses SHA-1 signatures at its default security
    level, as browsers have since 2017. Served only where the OpenSSL in
    use can still serve such a certificate (at security level 0 if it must
    be).""",
)
def _sha1Signature(ca: TestCA, directory: Path) -> _Built:
    policy, reason = _sha1Support()
    if policy is None:
        raise ConfigurationError(f"scenario sha1-signature is unavailable: {reason}")
    return _Built([ca.issueServerCertificate(NAMES, signatureHash=hashes.SHA1())], policy)


def _keyScenario(name: str, keyType: KeyType, what: str) -> None:
    @_scenario(
        name,
        ACCEPT,
        f"""A valid certificate from the test CA with {what}, which also
        signs the handshake: a client must support it.""",
    )
    def build(ca: TestCA, directory: Path) -> _Built:
        return _Built([ca.issueServerCertificate(NAMES, keyType=keyType)])


_keyScenario("rsa2048", "rsa2048", "an RSA 2048-bit key (the most common key)")
_keyScenario("rsa4096", "rsa4096", "an RSA 4096-bit key (larger signatures, slower handshakes)")
_keyScenario("ecdsa-p256", "ecdsa-p256", "an ECDSA P-256 key")
_keyScenario("ecdsa-p384", "ecdsa-p384", "an ECDSA P-384 key")


def manyNames() -> tuple[str, ...]:
    """
    The 1000-sans certificate's names: 997 names under C{tlsreply.example},
    then C{localhost}, C{127.0.0.1} and C{::1} last, so that a client must
    read them all to find its own.
    """
    filler = MANY_NAMES_COUNT - len(NAMES)
    return (*(f"san-{i:04d}.tlsreply.example" for i in range(1, filler + 1)), *NAMES)


@_scenario(
    "1000-sans",
    ACCEPT,
    """A valid certificate from the test CA with 1,000 subjectAltName
    entries (localhost, 127.0.0.1 and ::1 the last of them), some 30 KB:
    clients with small limits on names or certificate size fail here.""",
)
def _manySans(ca: TestCA, directory: Path) -> _Built:
    return _Built([ca.issueServerCertificate(manyNames())])


@_scenario(
    "tls1.2-only",
    ACCEPT,
    """The valid certificate, served with TLS 1.2 only: a client that
    offers TLS 1.2 negotiates it; one that insists on TLS 1.3 is refused
    with a protocol_version alert.""",
)
def _tls12Only(ca: TestCA, directory: Path) -> _Built:
    return _Built(
        [ca.issueServerCertificate(NAMES)], TLSPolicy(maximumVersion=TLSVersion.TLSv1_2)
    )


@_scenario(
    "tls1.3-only",
    ACCEPT,
    """The valid certificate, served with TLS 1.3 only: a client that
    offers TLS 1.3 negotiates it; one that offers only TLS 1.2 is refused
    with a protocol_version alert.""",
)
def _tls13Only(ca: TestCA, directory: Path) -> _Built:
    return _Built(
        [ca.issueServerCertificate(NAMES)], TLSPolicy(minimumVersion=TLSVersion.TLSv1_3)
    )


@_scenario(
    "client-cert-required",
    "tlsv13 alert certificate required",
    f"""The valid certificate; the server requires a client certificate
    issued by the test CA; {CLIENT_CERTIFICATE_FILE} holds one it accepts,
    with its key (also alone in {CLIENT_KEY_FILE}). A client without one is refused: in TLS 1.3 its
    handshake completes and the server's certificate_required alert
    arrives on its first read (handshake_failure in TLS 1.2).""",
)
def _clientCertificateRequired(ca: TestCA, directory: Path) -> _Built:
    certificate, key = ca.issueClientCertificate("tlsreply test client")
    keyPath = writePrivateKey(directory / CLIENT_KEY_FILE, key)
    certificatePath = writePrivateKey(
        directory / CLIENT_CERTIFICATE_FILE, key, certificates=(certificate, *ca.chain)
    )
    return _Built(
        [ca.issueServerCertificate(NAMES)],
        TLSPolicy(clientCAPath=directory / CA_FILE, verifyClient="require"),
        certificatePath,
        keyPath,
    )


@_scenario(
    "revoked",
    "revoked",
    """A certificate from the test CA with a stapled OCSP response, signed
    by the test CA, saying it is revoked. A client that asks for and checks
    the stapled response (openssl s_client -status shows "Cert Status:
    revoked") must refuse it. Python's ssl does not check OCSP at all: it
    accepts this server, and so does every client that ignores
    stapling.""",
)
def _revoked(ca: TestCA, directory: Path) -> _Built:
    credentials = ca.issueServerCertificate(NAMES)
    return _Built([replace(credentials, ocspResponse=ca.ocspResponse(credentials, "revoked"))])


@_scenario(
    "no-session-resumption",
    ACCEPT,
    """The valid certificate, with the server's session cache and session
    tickets off: every connection is a full handshake, and a client
    offering an earlier session (TLS 1.2 or 1.3) must fall back to one
    instead of failing.""",
)
def _noSessionResumption(ca: TestCA, directory: Path) -> _Built:
    return _Built(
        [ca.issueServerCertificate(NAMES)],
        TLSPolicy(sessionCache=False, sessionTickets=False),
    )


#: Every scenario by name, in a stable order.
SCENARIOS: Final[Mapping[str, Scenario]] = MappingProxyType(
    {name: scenario for name, (scenario, _) in _REGISTRY.items()}
)


def _lookUp(name: str) -> tuple[Scenario, _Builder]:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ConfigurationError(
            f"unknown scenario {name!r} (known: {', '.join(_REGISTRY)})"
        ) from None


def unavailableReason(name: str) -> str | None:
    """
    Why a scenario cannot be served here, or L{None} if it can.

    Only C{sha1-signature} can be unavailable: it depends on the OpenSSL
    that pyOpenSSL uses being able to serve a SHA-1-signed certificate.

    @raise ConfigurationError: for an unknown scenario, listing the known
        ones.
    """
    _lookUp(name)
    if name == "sha1-signature":
        return _sha1Support()[1]
    return None


def buildScenario(name: str, ca: TestCA, directory: Path | str) -> ScenarioSetup:
    """
    Make a scenario's certificates (fresh, from C{ca}) and policy, and
    write what a client needs into C{directory}: the root it trusts
    (L{CA_FILE}), and for C{client-cert-required} a client certificate and
    key.

    @param ca: the test CA a correct client trusts. It may be an
        intermediate: clients trust its root, and servers send its chain.
    @param directory: created if missing.
    @raise ConfigurationError: for an unknown scenario (listing the known
        ones), or one that is unavailable here (with the reason).
    """
    scenario, builder = _lookUp(name)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    caPath = directory / CA_FILE
    caPath.write_bytes(certificatesPEM(ca.root))
    built = builder(ca, directory)
    return ScenarioSetup(
        scenario,
        built.credentials,
        built.policy,
        caPath,
        clientCertificatePath=built.clientCertificatePath,
        clientKeyPath=built.clientKeyPath,
    )


class ScenarioDescription(TypedDict):
    """
    A scenario as plain values, as L{describeScenarios} lists it.

    @ivar expected: L{Scenario.expectedOutcome}.
    @ivar unavailable: why it cannot be served here (L{unavailableReason}),
        or L{None} when C{available}.
    """

    name: str
    description: str
    expected: str
    available: bool
    unavailable: str | None


def describeScenarios() -> list[ScenarioDescription]:
    """
    Every scenario as plain values, in order, for a C{--json} listing: its
    name, description and expected outcome, whether it is available here
    and if not, why not.
    """
    listing: list[ScenarioDescription] = []
    for name, scenario in SCENARIOS.items():
        reason = unavailableReason(name)
        listing.append(
            {
                "name": name,
                "description": scenario.description,
                "expected": scenario.expectedOutcome,
                "available": reason is None,
                "unavailable": reason,
            }
        )
    return listing


# Can this OpenSSL serve a SHA-1 certificate?


#: Appended to the TLS 1.2 cipher string when the default security level
#: refuses to serve a SHA-1 certificate.
SECURITY_LEVEL_0: Final = ":@SECLEVEL=0"


@functools.cache
def _sha1Support() -> tuple[TLSPolicy | None, str | None]:
    """
    The policy under which this OpenSSL serves a SHA-1-signed certificate
    (the default one if it can, else security level 0), or the reason it
    cannot; found once, by a handshake in memory.
    """
    version = SSL.OpenSSL_version(SSL.OPENSSL_VERSION).decode("ascii", "replace")
    try:
        credentials = TestCA("tlsreply SHA-1 probe CA").issueServerCertificate(
            [SERVER_NAME], signatureHash=hashes.SHA1()
        )
    except Exception as e:
        return None, f"cannot sign a certificate with SHA-1 here ({version}): {e}"
    problems = []
    for policy in (TLSPolicy(), TLSPolicy(tls12Ciphers=DEFAULT_TLS12_CIPHERS + SECURITY_LEVEL_0)):
        try:
            served = _servedCertificate(buildServerContexts(credentials, policy).fallback)
        except (SSL.Error, ConfigurationError) as e:
            problems.append(str(e) or type(e).__name__)
            continue
        if served == credentials.certificate:
            return policy, None
        problems.append("the client did not receive the certificate")
    return None, (
        f"{version} does not serve a SHA-1-signed certificate, even at security "
        f"level 0: {'; '.join(problems)}"
    )


def _servedCertificate(context: SSL.Context) -> x509.Certificate | None:
    """
    Hand-shake in memory with a server made from C{context}, as a client
    that verifies nothing, and return the certificate it received.
    """
    clientContext = SSL.Context(SSL.TLS_CLIENT_METHOD)
    clientContext.set_cipher_list(b"DEFAULT" + SECURITY_LEVEL_0.encode())
    client = SSL.Connection(clientContext, None)
    client.set_connect_state()
    client.set_tlsext_host_name(SERVER_NAME.encode())
    server = SSL.Connection(context, None)
    server.set_accept_state()
    done = {client: False, server: False}
    for _ in range(20):
        for this, other in ((client, server), (server, client)):
            if not done[this]:
                try:
                    this.do_handshake()
                    done[this] = True
                except SSL.WantReadError:
                    pass
            while True:
                try:
                    data = this.bio_read(65536)
                except SSL.WantReadError:
                    break
                other.bio_write(data)
        if all(done.values()):
            return client.get_peer_certificate(as_cryptography=True)
    raise SSL.Error("the in-memory handshake did not finish")


#: The policy fields a scenario decides: what it is about (versions,
#: sessions, client certificates). A command line that sets one of them
#: differently from the default is refused, not quietly overruled.
SCENARIO_DECIDES: Final = (
    "minimumVersion",
    "maximumVersion",
    "insecureMinimumVersion",
    "sessionCache",
    "sessionTickets",
    "sessionTimeout",
    "clientCAPath",
    "verifyClient",
)


def decidedByScenario(commandPolicy: TLSPolicy) -> list[str]:
    """
    The fields of a command line's policy that a scenario decides and that
    were set away from their defaults.
    """
    defaults = TLSPolicy()
    return [
        name
        for name in SCENARIO_DECIDES
        if getattr(commandPolicy, name) != getattr(defaults, name)
    ]


def withCommandPolicy(scenarioPolicy: TLSPolicy, commandPolicy: TLSPolicy) -> TLSPolicy:
    """
    A scenario's policy with what a command line may still choose: ALPN,
    groups, ciphers (where the scenario sets none) and the key log.
    """
    return replace(
        scenarioPolicy,
        alpnProtocols=commandPolicy.alpnProtocols,
        groups=commandPolicy.groups,
        tls12Ciphers=commandPolicy.tls12Ciphers or scenarioPolicy.tls12Ciphers,
        tls13Ciphersuites=commandPolicy.tls13Ciphersuites,
        keyLogPath=commandPolicy.keyLogPath,
    )
