# -*- test-case-name: tests.test_scenarios -*-
"""
The catalogue's scenarios about the certificate itself: its validity, the
names it is for, the chain it comes with, its key and its signature.

A new scenario is one builder, decorated with C{_scenario} (its name, the
outcome a correct client sees, and a description), returning a
L{BuiltScenario}; they are listed in the order they are defined here.
"""

from __future__ import annotations

import datetime
from dataclasses import replace
from pathlib import Path
from typing import Final

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa

from tlsreply.errors import ConfigurationError
from tlsreply.scenarios._sha1probe import sha1Support
from tlsreply.scenarios.base import (
    ACCEPT,
    NAMES,
    SERVER_NAME,
    BuiltScenario,
    CatalogueEntry,
    now,
    refused,
    registrar,
)
from tlsreply.scenarios.ca import KeyType, TestCA, selfSignedCertificate
from tlsreply.tls.policy import DEFAULT_TLS12_CIPHERS, TLSPolicy

#: The names the wrong-host certificate is for (C{.example} is reserved:
#: it can never be a real host).
WRONG_HOST_NAMES: Final = ("wrong.host.example",)

#: How many subjectAltName entries the 1000-sans certificate has.
MANY_NAMES_COUNT: Final = 1000

#: The security level at which OpenSSL 3 and 4 serve an RSA-1024 key (their
#: default, 2, refuses it as "ee key too small").
RSA_1024_SECURITY_LEVEL: Final = ":@SECLEVEL=1"

#: The hostname mismatch message of Python's C{ssl}.
HOSTNAME_MISMATCH: Final = f"Hostname mismatch, certificate is not valid for '{SERVER_NAME}'."

ENTRIES: list[CatalogueEntry] = []
_scenario = registrar(ENTRIES)


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
    refused("certificate-expired", "certificate has expired"),
    """A certificate from the test CA whose validity ended a day ago (it
    ran from 30 days ago until yesterday).""",
)
def _expired(ca: TestCA, directory: Path) -> BuiltScenario:
    return BuiltScenario(
        [
            ca.issueServerCertificate(
                NAMES,
                notBefore=now() - datetime.timedelta(days=30),
                notAfter=now() - datetime.timedelta(days=1),
            )
        ]
    )


@_scenario(
    "not-yet-valid",
    refused("certificate-not-yet-valid", "certificate is not yet valid"),
    """A certificate from the test CA whose validity starts tomorrow: a
    client whose clock is right must refuse it.""",
)
def _notYetValid(ca: TestCA, directory: Path) -> BuiltScenario:
    return BuiltScenario(
        [
            ca.issueServerCertificate(
                NAMES,
                notBefore=now() + datetime.timedelta(days=1),
                notAfter=now() + datetime.timedelta(days=30),
            )
        ]
    )


@_scenario(
    "wrong-host",
    refused("hostname-mismatch", HOSTNAME_MISMATCH),
    """A valid certificate from the test CA, but for wrong.host.example
    only: a client asking for localhost must refuse it although the chain
    verifies. The message is Python's own for OpenSSL's hostname
    mismatch.""",
)
def _wrongHost(ca: TestCA, directory: Path) -> BuiltScenario:
    return BuiltScenario([ca.issueServerCertificate(WRONG_HOST_NAMES)])


@_scenario(
    "cn-only",
    refused(
        "hostname-mismatch",
        HOSTNAME_MISMATCH,
        requires="not falling back to the common name: Python's ssl does by default "
        "and accepts; set hostname_checks_common_name = False",
    ),
    """A valid certificate from the test CA with localhost in its common
    name only, and no subjectAltName extension. RFC 9525 (which replaced
    RFC 6125) forbids matching a host name against the common name, and
    publicly trusted certificates must carry a subjectAltName; browsers and
    Go refuse such a certificate. Python's ssl still falls back to the
    common name by default, and so accepts it, unless
    hostname_checks_common_name is False; so does every other stack
    tried (OpenSSL with host name checks, Node.js, Java, GnuTLS,
    BoringSSL as curl runs it).""",
)
def _cnOnly(ca: TestCA, directory: Path) -> BuiltScenario:
    return BuiltScenario([ca.issueServerCertificate([SERVER_NAME], subjectAltName=False)])


@_scenario(
    "self-signed",
    refused("self-signed", "self-signed certificate"),
    """A certificate for localhost signed by its own key, not by the test
    CA: only a client that trusts that very certificate accepts it.""",
)
def _selfSigned(ca: TestCA, directory: Path) -> BuiltScenario:
    return BuiltScenario([selfSignedCertificate(NAMES)])


@_scenario(
    "untrusted-root",
    refused("untrusted-root", "self-signed certificate in certificate chain"),
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
    refused("unknown-issuer", "unable to get local issuer certificate"),
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
    "expired-intermediate",
    refused("certificate-expired", "certificate has expired"),
    """A valid certificate for localhost from an intermediate of the test
    CA whose own validity ended yesterday, sent with that intermediate:
    every certificate on the path must be valid, not only the leaf.""",
)
def _expiredIntermediate(ca: TestCA, directory: Path) -> BuiltScenario:
    intermediate = ca.createIntermediate(
        "tlsreply expired intermediate CA",
        notBefore=now() - datetime.timedelta(days=60),
        notAfter=now() - datetime.timedelta(days=1),
    )
    return BuiltScenario([intermediate.issueServerCertificate(NAMES)])


@_scenario(
    "sha1-signature",
    refused("weak-signature", "CA signature digest algorithm too weak"),
    """A certificate signed by the test CA with SHA-1 (everything else is
    SHA-256). OpenSSL 3 refuses SHA-1 signatures at its default security
    level, as browsers have since 2017 (Java 17's JSSE and BoringSSL, as
    curl_cffi's browser profiles run it, still accept it). Served only where the OpenSSL in
    use can still serve such a certificate (at security level 0 if it must
    be).""",
    unavailable=lambda: sha1Support()[1],
    outcomes={"java": ACCEPT, "boringssl": ACCEPT},
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


@_scenario(
    "rsa1024",
    refused("weak-key", "EE certificate key too weak"),
    """A certificate from the test CA with an RSA 1024-bit key, which also
    signs the handshake: about 80 bits of security, refused by browsers
    since 2014 and by OpenSSL 3 at security level 2 (Python's ssl default
    since 3.10); Node.js, Java 17, GnuTLS 3.7 and BoringSSL still accept
    it. The server lowers its OpenSSL security level to 1 for this
    scenario only: at the default level OpenSSL will not serve the
    key.""",
    outcomes={
        "node": ACCEPT,
        "java": ACCEPT,
        "gnutls": ACCEPT,
        "boringssl": ACCEPT,
    },
)
def _rsa1024(ca: TestCA, directory: Path) -> BuiltScenario:
    key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    return BuiltScenario(
        [ca.issueServerCertificate(NAMES, privateKey=key)],
        TLSPolicy(tls12Ciphers=DEFAULT_TLS12_CIPHERS + RSA_1024_SECURITY_LEVEL),
    )


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
