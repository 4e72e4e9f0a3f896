# -*- test-case-name: tests.test_scenarios -*-
"""
The catalogue of scenarios: every deliberately broken or unusual server,
each with the builder that makes its certificates and policy.

This is where scenarios are added; how they are served, listed and
combined with a command line is L{tlsreply.testing.scenarios}, which reads
L{CATALOGUE}. A new scenario is one builder, decorated with L{_scenario}
(its name, the outcome a correct client sees, and a description),
returning a L{BuiltScenario}; scenarios are listed in the order they are
defined here. A scenario that cannot be served everywhere also registers
why not (see C{sha1-signature}).
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Final

from cryptography.hazmat.primitives import hashes
from twisted.internet.ssl import TLSVersion

from tlsreply.credentials import ServerCredentials
from tlsreply.errors import ConfigurationError
from tlsreply.policy import TLSPolicy
from tlsreply.testing.ca import (
    KeyType,
    TestCA,
    selfSignedCertificate,
    writePrivateKey,
)
from tlsreply.testing.sha1probe import sha1Support

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

#: The files in a scenario's directory: the test CA's root, which
#: L{tlsreply.testing.scenarios.buildScenario} writes for every scenario,
#: and the client certificate and key that C{client-cert-required} writes.
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


@dataclass
class BuiltScenario:
    """
    What a scenario's builder makes; L{tlsreply.testing.scenarios.buildScenario}
    adds the rest.
    """

    credentials: list[ServerCredentials]
    policy: TLSPolicy = field(default_factory=TLSPolicy)
    clientCertificatePath: Path | None = None
    clientKeyPath: Path | None = None


#: Makes a scenario's certificates and policy from the test CA, writing any
#: files a client needs into the directory.
ScenarioBuilder = Callable[[TestCA, Path], BuiltScenario]


@dataclass(frozen=True)
class CatalogueEntry:
    """
    One scenario of the catalogue: what it is, and how it is built.

    @ivar unavailable: for a scenario that cannot be served everywhere, a
        function that says why it cannot be served here (L{None} if it
        can); L{None} for one that can.
    """

    scenario: Scenario
    build: ScenarioBuilder
    unavailable: Callable[[], str | None] | None = None


_entries: dict[str, CatalogueEntry] = {}

#: Every scenario by name, in the order they are defined below.
CATALOGUE: Final[Mapping[str, CatalogueEntry]] = MappingProxyType(_entries)


def _scenario(
    name: str,
    expectedOutcome: str,
    description: str,
    unavailable: Callable[[], str | None] | None = None,
) -> Callable[[ScenarioBuilder], ScenarioBuilder]:
    """
    Add a scenario and its builder to the catalogue, in definition order
    (the order of every listing).

    @param description: free text; its line breaks and indentation are
        folded into single spaces.
    @param unavailable: see L{CatalogueEntry.unavailable}.
    """

    def register(builder: ScenarioBuilder) -> ScenarioBuilder:
        scenario = Scenario(name, " ".join(description.split()), expectedOutcome)
        _entries[name] = CatalogueEntry(scenario, builder, unavailable)
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
def _valid(ca: TestCA, directory: Path) -> BuiltScenario:
    return BuiltScenario([ca.issueServerCertificate(NAMES)])


@_scenario(
    "expired",
    "certificate has expired",
    """A certificate from the test CA whose validity ended a day ago (it
    ran from 30 days ago until yesterday).""",
)
def _expired(ca: TestCA, directory: Path) -> BuiltScenario:
    now = _now()
    return BuiltScenario(
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
def _notYetValid(ca: TestCA, directory: Path) -> BuiltScenario:
    now = _now()
    return BuiltScenario(
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
def _wrongHost(ca: TestCA, directory: Path) -> BuiltScenario:
    return BuiltScenario([ca.issueServerCertificate(WRONG_HOST_NAMES)])


@_scenario(
    "self-signed",
    "self-signed certificate",
    """A certificate for localhost signed by its own key, not by the test
    CA: only a client that trusts that very certificate accepts it.""",
)
def _selfSigned(ca: TestCA, directory: Path) -> BuiltScenario:
    return BuiltScenario([selfSignedCertificate(NAMES)])


@_scenario(
    "untrusted-root",
    "self-signed certificate in certificate chain",
    """A certificate from another root CA, sent with that root, as
    badssl.com's untrusted-root does: the client has the whole chain but
    does not trust its root.""",
)
def _untrustedRoot(ca: TestCA, directory: Path) -> BuiltScenario:
    other = TestCA("tlsreply untrusted root CA")
    credentials = other.issueServerCertificate(NAMES)
    return BuiltScenario([replace(credentials, chain=(other.certificate,))])


@_scenario(
    "incomplete-chain",
    "unable to get local issuer certificate",
    """A certificate from an intermediate of the test CA, served without
    that intermediate. Browsers may fetch it from the authority information
    access URL or a cache; a client that does not cannot build the path.""",
)
def _incompleteChain(ca: TestCA, directory: Path) -> BuiltScenario:
    intermediate = ca.createIntermediate("tlsreply test intermediate CA")
    return BuiltScenario([intermediate.issueServerCertificate(NAMES, sendChain=False)])


@_scenario(
    "reversed-chain",
    ACCEPT,
    """A certificate from a second-level intermediate of the test CA, sent
    with both intermediates in the wrong order (the root's child first).
    TLS 1.3 (RFC 8446, 4.4.2) asks clients to cope, and OpenSSL builds the
    path from the certificates in any order, so a correct client accepts; a
    client that insists on issuer order fails here.""",
)
def _reversedChain(ca: TestCA, directory: Path) -> BuiltScenario:
    upper = ca.createIntermediate("tlsreply test intermediate CA 1")
    lower = upper.createIntermediate("tlsreply test intermediate CA 2")
    credentials = lower.issueServerCertificate(NAMES)
    # Issuer first would be (lower, upper, *ca.chain).
    return BuiltScenario([replace(credentials, chain=(upper.certificate, lower.certificate, *ca.chain))])


@_scenario(
    "sha1-signature",
    "CA signature digest algorithm too weak",
    """A certificate signed by the test CA with SHA-1 (everything else is
    SHA-256). OpenSSL 3 refuses SHA-1 signatures at its default security
    level, as browsers have since 2017. Served only where the OpenSSL in
    use can still serve such a certificate (at security level 0 if it must
    be).""",
    unavailable=lambda: sha1Support()[1],
)
def _sha1Signature(ca: TestCA, directory: Path) -> BuiltScenario:
    policy, reason = sha1Support()
    if policy is None:
        raise ConfigurationError(f"scenario sha1-signature is unavailable: {reason}")
    return BuiltScenario([ca.issueServerCertificate(NAMES, signatureHash=hashes.SHA1())], policy)


def _keyScenario(name: str, keyType: KeyType, what: str) -> None:
    @_scenario(
        name,
        ACCEPT,
        f"""A valid certificate from the test CA with {what}, which also
        signs the handshake: a client must support it.""",
    )
    def build(ca: TestCA, directory: Path) -> BuiltScenario:
        return BuiltScenario([ca.issueServerCertificate(NAMES, keyType=keyType)])


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
def _manySans(ca: TestCA, directory: Path) -> BuiltScenario:
    return BuiltScenario([ca.issueServerCertificate(manyNames())])


@_scenario(
    "tls1.2-only",
    ACCEPT,
    """The valid certificate, served with TLS 1.2 only: a client that
    offers TLS 1.2 negotiates it; one that insists on TLS 1.3 is refused
    with a protocol_version alert.""",
)
def _tls12Only(ca: TestCA, directory: Path) -> BuiltScenario:
    return BuiltScenario(
        [ca.issueServerCertificate(NAMES)], TLSPolicy(maximumVersion=TLSVersion.TLSv1_2)
    )


@_scenario(
    "tls1.3-only",
    ACCEPT,
    """The valid certificate, served with TLS 1.3 only: a client that
    offers TLS 1.3 negotiates it; one that offers only TLS 1.2 is refused
    with a protocol_version alert.""",
)
def _tls13Only(ca: TestCA, directory: Path) -> BuiltScenario:
    return BuiltScenario(
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
def _clientCertificateRequired(ca: TestCA, directory: Path) -> BuiltScenario:
    certificate, key = ca.issueClientCertificate("tlsreply test client")
    keyPath = writePrivateKey(directory / CLIENT_KEY_FILE, key)
    certificatePath = writePrivateKey(
        directory / CLIENT_CERTIFICATE_FILE, key, certificates=(certificate, *ca.chain)
    )
    return BuiltScenario(
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
def _revoked(ca: TestCA, directory: Path) -> BuiltScenario:
    credentials = ca.issueServerCertificate(NAMES)
    return BuiltScenario([replace(credentials, ocspResponse=ca.ocspResponse(credentials, "revoked"))])


@_scenario(
    "no-session-resumption",
    ACCEPT,
    """The valid certificate, with the server's session cache and session
    tickets off: every connection is a full handshake, and a client
    offering an earlier session (TLS 1.2 or 1.3) must fall back to one
    instead of failing.""",
)
def _noSessionResumption(ca: TestCA, directory: Path) -> BuiltScenario:
    return BuiltScenario(
        [ca.issueServerCertificate(NAMES)],
        TLSPolicy(sessionCache=False, sessionTickets=False),
    )
