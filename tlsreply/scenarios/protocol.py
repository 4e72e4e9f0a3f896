# -*- test-case-name: tests.test_scenarios,tests.test_resumption_tickets -*-
"""
The catalogue's scenarios about the protocol around a valid certificate:
the TLS versions and key-exchange groups the server accepts, the client
certificate it asks for, the sessions it will not resume.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable
from pathlib import Path
from typing import Final

from OpenSSL import SSL
from twisted.internet.ssl import TLSVersion

from tlsreply.scenarios.base import (
    ACCEPT,
    CA_FILE,
    CLIENT_CERTIFICATE_FILE,
    CLIENT_KEY_FILE,
    NAMES,
    BuiltScenario,
    CatalogueEntry,
    ExpectedOutcome,
    refused,
    registrar,
)
from tlsreply.scenarios.ca import TestCA, writePrivateKey
from tlsreply.scenarios.pythonssl import (
    HANDSHAKE_FAILURE_ALERT,
    HYBRID_GROUP,
    LEGACY_SIGALG,
    PROTOCOL_VERSION_ALERT,
    RUNNING,
    PythonSSLFacts,
)
from tlsreply.tls.policy import TLSPolicy

#: Whether Python's C{ssl} offers L{HYBRID_GROUP}: OpenSSL 3.5 and later
#: do by default; earlier ones (Debian's 3.0) do not know it.
PYTHON_SSL_OFFERS_HYBRID: Final = RUNNING.offersHybrid

ENTRIES: list[CatalogueEntry] = []
_scenario = registrar(ENTRIES)


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


def _onlyVersion(version: int) -> Callable[[SSL.Context], None]:
    def finish(context: SSL.Context) -> None:
        context.set_max_proto_version(version)

    return finish


def _legacyOutcome(version: ssl.TLSVersion) -> Callable[[PythonSSLFacts], ExpectedOutcome]:
    def outcome(python: PythonSSLFacts) -> ExpectedOutcome:
        if not python.offersVersion(version):
            return refused("protocol-version", PROTOCOL_VERSION_ALERT)
        if python.refusesSHA1Handshake:
            return refused("protocol-version", LEGACY_SIGALG)
        return ACCEPT

    return outcome


def _legacyScenario(
    name: str, version: TLSVersion, pythonVersion: ssl.TLSVersion, openSSLVersion: int, what: str
) -> None:
    @_scenario(
        name,
        _legacyOutcome(pythonVersion),
        f"""The valid certificate, served with {what} only, with CBC cipher
        suites: a client must refuse to go below TLS 1.2 (RFC 8996).
        CPython's ssl does (its minimum is TLS 1.2), which the server
        answers with a protocol_version alert; Debian's python3, whose
        minimum is OpenSSL's (TLS 1.0), negotiates {what} and refuses the
        server's SHA-1 handshake signature ("{LEGACY_SIGALG}"): the
        expected outcome is worked out for the Python that runs it. The server lowers its
        OpenSSL security level to 0 for this scenario only: OpenSSL 4
        refuses to serve {what} at any higher level. A client that allows
        {what} (and security level 0) is served: GnuTLS 3.7 by default
        is (its default priority still allows TLS 1.0 and 1.1), and the
        OpenSSL 3.0 command-line clients, which offer it too, refuse the
        server's SHA-1 signature as Debian's python3 does.""",
        outcomes={
            "openssl": refused("protocol-version", LEGACY_SIGALG),
            "gnutls": ACCEPT,
        },
    )
    def build(ca: TestCA, directory: Path) -> BuiltScenario:
        # The policy allows the old version (with the CBC suites and
        # security level 0 it needs) up to TLS 1.2; the context stops at it.
        return BuiltScenario(
            [ca.issueServerCertificate(NAMES)],
            TLSPolicy(insecureMinimumVersion=version, maximumVersion=TLSVersion.TLSv1_2),
            finishContext=_onlyVersion(openSSLVersion),
        )


_legacyScenario(
    "tls1.0-only", TLSVersion.TLSv1_0, ssl.TLSVersion.TLSv1, SSL.TLS1_VERSION, "TLS 1.0"
)
_legacyScenario(
    "tls1.1-only", TLSVersion.TLSv1_1, ssl.TLSVersion.TLSv1_1, SSL.TLS1_1_VERSION, "TLS 1.1"
)


@_scenario(
    "pq-hybrid-only",
    lambda python: (
        ACCEPT if python.offersHybrid else refused("handshake-failure", HANDSHAKE_FAILURE_ALERT)
    ),
    f"""The valid certificate, served over TLS 1.3 with one key exchange
    only: the hybrid post-quantum group {HYBRID_GROUP} (X25519 with
    ML-KEM-768). A client that offers it is served (OpenSSL 3.5 and later,
    so pyOpenSSL and Twisted on the OpenSSL that cryptography bundles,
    browsers, Go 1.24); one without it is refused with a handshake_failure
    alert. The expected outcome is for this Python's ssl: refused on an
    OpenSSL before 3.5, served from 3.5 on. BoringSSL, as curl_cffi's
    Chrome, Firefox and Safari profiles run it, offers the group and is
    served; OpenSSL 3.0, Node.js 20, Java 17 and GnuTLS 3.7 are
    refused.""",
    outcomes={"boringssl": ACCEPT},
)
def _pqHybridOnly(ca: TestCA, directory: Path) -> BuiltScenario:
    return BuiltScenario(
        [ca.issueServerCertificate(NAMES)],
        TLSPolicy(minimumVersion=TLSVersion.TLSv1_3, groups=HYBRID_GROUP),
    )


@_scenario(
    "client-cert-required",
    refused("client-certificate-required", "tlsv13 alert certificate required"),
    f"""The valid certificate; the server requires a client certificate
    issued by the test CA; {CLIENT_CERTIFICATE_FILE} holds one it accepts,
    with its key (also alone in {CLIENT_KEY_FILE}), and the server's test
    CA issues more. A client without one is refused: in TLS 1.3 its
    handshake completes and the server's certificate_required alert
    arrives on its first read (handshake_failure in TLS 1.2). The server
    reads on after the alert until the client closes, so a client that
    writes before it reads (Java's JSSE) reads the alert too, rather than
    a reset.""",
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


#: The TLS 1.3 tickets C{no-session-resumption} still sends: OpenSSL's
#: default number, which only C{SSL_CTX_set_num_tickets} changes, and
#: neither pyOpenSSL nor its binding has it.
NO_RESUMPTION_TLS13_TICKETS: Final = 2


@_scenario(
    "no-session-resumption",
    ACCEPT,
    """The valid certificate, with the server's session cache and session
    tickets off: every connection is a full handshake, and a client
    offering an earlier session (TLS 1.2 or 1.3) must fall back to one
    instead of failing. Over TLS 1.3 the server still sends OpenSSL's
    default two TLS 1.3 NewSessionTickets, which can never resume (they
    name sessions in a cache that keeps none): sending none takes
    SSL_CTX_set_num_tickets, which pyOpenSSL cannot call. A client that
    keeps one offers it on its next connection (about a hundred bytes
    more in its ClientHello) and gets a full handshake.""",
)
def _noSessionResumption(ca: TestCA, directory: Path) -> BuiltScenario:
    return BuiltScenario(
        [ca.issueServerCertificate(NAMES)],
        TLSPolicy(sessionCache=False, sessionTickets=False),
    )
