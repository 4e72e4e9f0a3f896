# -*- test-case-name: tests.test_options,tests.test_tap -*-
"""
The server's TLS policy: L{TLSPolicy}, the protocol-level choices that do
not depend on certificates (versions, cipher suites, groups, sessions,
ALPN, client certificates, key logging), and their checks.

It is separate from L{tlsreply.tls.contexts}, which turns a policy and
certificates into OpenSSL contexts, because the command line
(C{--show-config} included) and C{tlsreply check} need to validate and
describe a policy without building anything.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Final, Literal, NoReturn

from OpenSSL import SSL
from twisted.internet.ssl import TLSVersion

from tlsreply import _openssl
from tlsreply.errors import ConfigurationError

#: The TLS 1.2 cipher suites offered by default, in the server's order of
#: preference: forward-secret ECDHE key exchange with AEAD ciphers only
#: (Mozilla's "intermediate" profile without its finite-field DHE suites).
#: Twisted's default list still admits static-RSA key exchange and CBC.
#: TLS 1.3 suites are OpenSSL's defaults, all of which are AEAD.
DEFAULT_TLS12_CIPHERS: Final = ":".join(
    [
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        "ECDHE-RSA-AES128-GCM-SHA256",
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        "ECDHE-RSA-AES256-GCM-SHA384",
        "ECDHE-ECDSA-CHACHA20-POLY1305",
        "ECDHE-RSA-CHACHA20-POLY1305",
    ]
)

#: Added to the defaults when TLS 1.0 or 1.1 is allowed: those versions have
#: no AEAD suites, and OpenSSL's security level 1 forbids their SHA-1 based
#: handshake signatures.
LEGACY_TLS_CIPHERS: Final = (
    "ECDHE-ECDSA-AES128-SHA:ECDHE-RSA-AES128-SHA:"
    "ECDHE-ECDSA-AES256-SHA:ECDHE-RSA-AES256-SHA:@SECLEVEL=0"
)

#: OpenSSL's server default.
DEFAULT_SESSION_TIMEOUT: Final = 300

#: The longest session lifetime: a week, the most a TLS 1.3 ticket may say
#: (RFC 8446, 4.6.1), which OpenSSL caps it to anyway.
MAXIMUM_SESSION_TIMEOUT: Final = 604800

#: The versions by the names the command lines use (C{--min-tls 1.2}).
VERSIONS: Final = {
    "1.0": TLSVersion.TLSv1_0,
    "1.1": TLSVersion.TLSv1_1,
    "1.2": TLSVersion.TLSv1_2,
    "1.3": TLSVersion.TLSv1_3,
}
_VERSION_NAMES: Final = {version: f"TLSv{name}" for name, version in VERSIONS.items()}

#: The versions allowed only with C{insecureMinimumVersion}.
LEGACY_VERSIONS: Final = (TLSVersion.TLSv1_0, TLSVersion.TLSv1_1)

VerifyClient = Literal["none", "optional", "require"]


@dataclass(frozen=True)
class TLSPolicy:
    """
    The protocol-level choices tlsreply makes, independent of certificates.

    The defaults are the seed's: the highest version the client offers from
    TLS 1.2 to 1.3, OpenSSL's automatic ECDHE group choice, a server-side
    session cache and session tickets so that clients can resume, no early
    data, no compression, no renegotiation.

    @ivar minimumVersion: lowest version offered, TLS 1.2 or 1.3.
    @ivar maximumVersion: highest version offered, TLS 1.2 or 1.3.
    @ivar insecureMinimumVersion: TLS 1.0 or 1.1, to allow those broken
        versions (and the CBC suites and security level 0 they need); wins
        over C{minimumVersion}; a warning is logged.
    @ivar tls12Ciphers: OpenSSL cipher string for TLS 1.2 and below, in the
        server's preference order.
    @ivar tls13Ciphersuites: OpenSSL TLS 1.3 ciphersuites string, or
        C{None} for OpenSSL's default.
    @ivar groups: key-exchange groups in preference order (C{"X25519:P-256"}),
        or C{None} for OpenSSL's automatic choice.
    @ivar sessionCache: keep a server-side session cache (resumption by
        session ID in TLS 1.2; Twisted's default is off).
    @ivar sessionTimeout: seconds a session (or ticket) can be resumed, up
        to L{MAXIMUM_SESSION_TIMEOUT}.
    @ivar sessionTickets: issue session tickets (off by default in Twisted).
    @ivar alpnProtocols: application protocols to negotiate, in the
        server's preference order; with no overlap the handshake goes on
        without ALPN.
    @ivar clientCAPath: PEM file of CAs that client certificates are
        verified against, and whose names are sent in the certificate
        request.
    @ivar verifyClient: C{"none"}: never ask for a client certificate;
        C{"optional"}: ask, verify, log the result, serve anyway;
        C{"require"}: refuse a client without a valid certificate.
    @ivar keyLogPath: append NSS key-log lines for every connection here
        (this breaks confidentiality: for debugging only).
    @ivar insecureServerRenegotiation: let the server start a TLS 1.2
        renegotiation (OpenSSL's C{SSL_OP_NO_RENEGOTIATION} is not set; a
        client still cannot start one): for the C{renegotiation-request}
        test scenario only, which asks its clients to renegotiate; a
        warning is logged.
    """

    minimumVersion: TLSVersion = TLSVersion.TLSv1_2
    maximumVersion: TLSVersion = TLSVersion.TLSv1_3
    insecureMinimumVersion: TLSVersion | None = None
    tls12Ciphers: str | None = None
    tls13Ciphersuites: str | None = None
    groups: str | None = None
    sessionCache: bool = True
    sessionTimeout: int = DEFAULT_SESSION_TIMEOUT
    sessionTickets: bool = True
    alpnProtocols: tuple[str, ...] = ()
    clientCAPath: Path | None = None
    verifyClient: VerifyClient = "none"
    keyLogPath: Path | None = None
    insecureServerRenegotiation: bool = False

    def __post_init__(self) -> None:
        """
        Check every field, so that a mistake is one L{ConfigurationError}
        naming the field when the policy is made, not a C{TypeError} (or
        nothing) later: cipher strings, ciphersuites and groups are asked
        of OpenSSL now (L{PolicyFieldError}). Paths may be given as strings,
        ALPN protocols as any sequence of strings.
        """
        for name in ("minimumVersion", "maximumVersion"):
            version = getattr(self, name)
            if version not in _VERSION_NAMES:
                _refuse(name, "a TLSVersion (TLSVersion.TLSv1_2 or TLSVersion.TLSv1_3)", version)
            if version in LEGACY_VERSIONS:
                raise ConfigurationError(
                    f"TLSPolicy.{name}: {_VERSION_NAMES[version]} is insecure; allow it "
                    "only with insecureMinimumVersion (--insecure-min-tls)"
                )
        if self.insecureMinimumVersion not in (None, *LEGACY_VERSIONS):
            _refuse(
                "insecureMinimumVersion",
                "None, TLSVersion.TLSv1_0 or TLSVersion.TLSv1_1",
                self.insecureMinimumVersion,
            )
        if self.effectiveMinimumVersion > self.maximumVersion:
            raise ConfigurationError(
                f"minimum TLS version {_VERSION_NAMES[self.effectiveMinimumVersion]} "
                f"is above the maximum {_VERSION_NAMES[self.maximumVersion]}"
            )
        for name in ("tls12Ciphers", "tls13Ciphersuites", "groups"):
            value = getattr(self, name)
            if value is None:
                continue
            if not isinstance(value, str) or not value.strip() or not _printableASCII(value):
                _refuse(name, "None or a non-empty OpenSSL list string", value)
            problem = _openSSLRefusal(name, value)
            if problem is not None:
                raise PolicyFieldError(name, problem)
        for name in ("sessionCache", "sessionTickets", "insecureServerRenegotiation"):
            if not isinstance(getattr(self, name), bool):
                _refuse(name, "True or False", getattr(self, name))
        timeout = self.sessionTimeout
        if (
            not isinstance(timeout, int)
            or isinstance(timeout, bool)
            or not 1 <= timeout <= MAXIMUM_SESSION_TIMEOUT
        ):
            _refuse(
                "sessionTimeout",
                f"whole seconds from 1 to {MAXIMUM_SESSION_TIMEOUT} (a week)",
                timeout,
            )
        object.__setattr__(self, "alpnProtocols", validateALPN(self.alpnProtocols))
        for name in ("clientCAPath", "keyLogPath"):
            value = getattr(self, name)
            if isinstance(value, str) and value:
                object.__setattr__(self, name, Path(value))
            elif value is not None and not isinstance(value, Path):
                _refuse(name, "None or a path", value)
        if self.verifyClient not in ("none", "optional", "require"):
            _refuse("verifyClient", "'none', 'optional' or 'require'", self.verifyClient)
        if self.verifyClient != "none" and self.clientCAPath is None:
            raise ConfigurationError(
                f"TLSPolicy.verifyClient {self.verifyClient!r} needs clientCAPath "
                "(--client-ca)"
            )

    @property
    def effectiveMinimumVersion(self) -> TLSVersion:
        return self.insecureMinimumVersion or self.minimumVersion

    @property
    def effectiveTLS12Ciphers(self) -> str:
        if self.tls12Ciphers is not None:
            return self.tls12Ciphers
        if self.insecureMinimumVersion is not None:
            return DEFAULT_TLS12_CIPHERS + ":" + LEGACY_TLS_CIPHERS
        return DEFAULT_TLS12_CIPHERS

    def describe(self) -> dict[str, Any]:
        """
        The effective settings as plain values, for the start-up log and
        C{--show-config}.
        """
        return {
            "versions": f"{_VERSION_NAMES[self.effectiveMinimumVersion]}"
            f"-{_VERSION_NAMES[self.maximumVersion]}",
            "tls12Ciphers": self.effectiveTLS12Ciphers,
            "tls13Ciphersuites": self.tls13Ciphersuites or "OpenSSL default",
            "groups": self.groups or "OpenSSL automatic",
            "sessionCache": self.sessionCache,
            "sessionTimeout": self.sessionTimeout,
            "sessionTickets": self.sessionTickets,
            "alpn": ",".join(self.alpnProtocols) or "none",
            "verifyClient": self.verifyClient,
            "clientCA": str(self.clientCAPath) if self.clientCAPath else None,
            "keyLog": str(self.keyLogPath) if self.keyLogPath else None,
            "earlyData": "refused",
            "compression": "off",
            "renegotiation": "server-initiated" if self.insecureServerRenegotiation else "off",
        }

    def warnings(self) -> list[str]:
        """
        What this policy does that lowers security, one line each.
        """
        found = []
        if self.insecureMinimumVersion is not None:
            detail = (
                "with CBC cipher suites and OpenSSL security level 0"
                if self.tls12Ciphers is None
                else f"with the cipher string {self.tls12Ciphers!r}"
            )
            found.append(
                f"INSECURE: {_VERSION_NAMES[self.insecureMinimumVersion]} is allowed "
                f"({detail})"
            )
        if self.insecureServerRenegotiation:
            found.append(
                "INSECURE: the server may renegotiate TLS 1.2 connections (a test "
                "scenario that asks its clients to)"
            )
        if self.keyLogPath is not None:
            found.append(
                f"INSECURE: TLS session keys are written to {self.keyLogPath}; anyone "
                "who can read it can decrypt the traffic"
            )
        return found


class PolicyFieldError(ConfigurationError):
    """
    A L{TLSPolicy} field that cannot be used, by the field's name, so that
    the command line can name its option instead.

    @ivar field: the field, e.g. C{"groups"}.
    @ivar problem: what is wrong with its value, without the field's name.
    """

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"TLSPolicy.{field}: {problem}")
        self.field = field
        self.problem = problem


def _refuse(name: str, expected: str, value: object) -> NoReturn:
    raise PolicyFieldError(name, f"expected {expected}, got {value!r}")


def _printableASCII(value: str) -> bool:
    # OpenSSL reads a C string: a NUL would cut it short unseen.
    return value.isascii() and value.isprintable()


_probeLock = threading.Lock()


@lru_cache(maxsize=1)
def _probe() -> SSL.Context:
    # A context no connection is ever made from, only asked about lists.
    return SSL.Context(SSL.TLS_METHOD)


@lru_cache(maxsize=256)
def _openSSLRefusal(name: str, value: str) -> str | None:
    """
    What OpenSSL would refuse of a cipher string, TLS 1.3 ciphersuites or
    groups, or C{None}: asked of one context made for the purpose (the
    first costs about 80 µs), and remembered per value, as a program may
    make many policies with the same strings. A policy with all three
    strings set costs about 0.12 ms the first time in a process, 25 µs
    with strings not asked about before, and 5.5 µs (4.2 µs without any)
    with the same strings again (C{python -m timeit}).

    Ciphersuites are asked about one by one: OpenSSL drops an unknown
    suite beside a known one without a word. A cipher string is asked
    about as a whole (its syntax has keywords, exclusions and
    C{@SECLEVEL}): it is refused only if it selects nothing.
    """
    with _probeLock:
        return _askOpenSSL(_probe(), name, value)


def _askOpenSSL(probe: SSL.Context, name: str, value: str) -> str | None:
    if name == "groups":
        try:
            _openssl.checkGroups(value, probe)
        except ConfigurationError as e:
            return str(e)
    elif name == "tls13Ciphersuites":
        suites = [suite for suite in value.split(":") if suite]
        if not suites:
            return "needs at least one ciphersuite"
        for suite in suites:
            try:
                probe.set_tls13_ciphersuites(suite.encode())
            except SSL.Error:
                return f"unknown TLS 1.3 ciphersuite {suite!r}"
    else:
        try:
            probe.set_cipher_list(value.encode())
        except SSL.Error:
            return f"cipher string {value!r} selects no cipher"
    return None


def validateALPN(protocols: object) -> tuple[str, ...]:
    """
    ALPN protocol names as a tuple, each 1 to 255 bytes, in preference
    order: the one check for the command line, the policy and C{tlsreply
    check}.

    @raise ConfigurationError: for a string (a common slip for
        C{("h2",)}), anything else that is not a sequence of strings, or a
        name of the wrong size.
    """
    if isinstance(protocols, (str, bytes)) or not isinstance(protocols, (tuple, list)):
        raise ConfigurationError(
            "TLSPolicy.alpnProtocols: expected a sequence of protocol names such as "
            f"('h2', 'http/1.1'), got {protocols!r}"
        )
    for protocol in protocols:
        if not isinstance(protocol, str) or not 0 < len(protocol.encode()) < 256:
            raise ConfigurationError(f"bad ALPN protocol name {protocol!r} (1 to 255 bytes)")
    return tuple(protocols)


def parseALPN(text: str) -> tuple[str, ...]:
    """
    ALPN protocols as the command lines write them: C{h2,http/1.1}.

    @raise ConfigurationError: for an empty list or a bad name.
    """
    protocols = tuple(p.strip() for p in text.split(",") if p.strip())
    if not protocols:
        raise ConfigurationError("needs at least one protocol name, e.g. h2,http/1.1")
    return validateALPN(protocols)
