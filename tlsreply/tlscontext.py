# -*- test-case-name: tests.test_wire,tests.test_policy -*-
"""
The server's TLS contexts: Twisted's L{CertificateOptions}, finished with
the seed's defaults where they differ from Twisted's, one per server name.

Every context is built once, completely, before the first connection:
pyOpenSSL refuses to change a context once a connection has been made from
it, and every connection must see the same policy.

Each configured server name gets a context of its own, and so a session
cache and session-ticket keys of its own: a session made under one name can
only ever be resumed under that name. The context is chosen from the server
name in the client's ClientHello (read by L{tlsreply.tlssocket} or
L{tlsreply.tlsmemory}) when the connection is created; a missing or unknown
name gets the fallback context, which serves the first certificate.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Final, Literal, NoReturn

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from OpenSSL import SSL
from twisted.internet.interfaces import IOpenSSLServerConnectionCreator
from twisted.internet.ssl import CertificateOptions, TLSVersion
from zope.interface import implementer

from tlsreply import _openssl
from tlsreply.credentials import ServerCredentials, loadCertificates
from tlsreply.errors import ConfigurationError, openSSLReasons

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

#: Up to this many configured names, each gets a context (and session
#: cache) of its own; beyond it (a certificate with 1,000 names), names on
#: the same certificates share one, to bound start-up time and memory.
MAXIMUM_NAME_CONTEXTS: Final = 64

VERSIONS: Final = {
    "1.0": TLSVersion.TLSv1_0,
    "1.1": TLSVersion.TLSv1_1,
    "1.2": TLSVersion.TLSv1_2,
    "1.3": TLSVersion.TLSv1_3,
}
_VERSION_NAMES: Final = {version: f"TLSv{name}" for name, version in VERSIONS.items()}
_LEGACY = (TLSVersion.TLSv1_0, TLSVersion.TLSv1_1)

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
        L{None} for OpenSSL's default.
    @ivar groups: key-exchange groups in preference order (C{"X25519:P-256"}),
        or L{None} for OpenSSL's automatic choice.
    @ivar sessionCache: keep a server-side session cache (resumption by
        session ID in TLS 1.2; Twisted's default is off).
    @ivar sessionTimeout: seconds a session (or ticket) can be resumed.
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

    def __post_init__(self) -> None:
        """
        Check every field, so that a mistake is one L{ConfigurationError}
        naming the field when the policy is made, not a C{TypeError} (or
        nothing) later. Paths may be given as strings, ALPN protocols as
        any sequence of strings.
        """
        for name in ("minimumVersion", "maximumVersion"):
            version = getattr(self, name)
            if version not in _VERSION_NAMES:
                _refuse(name, "a TLSVersion (TLSVersion.TLSv1_2 or TLSVersion.TLSv1_3)", version)
            if version in _LEGACY:
                raise ConfigurationError(
                    f"TLSPolicy.{name}: {_VERSION_NAMES[version]} is insecure; allow it "
                    "only with insecureMinimumVersion (--insecure-min-tls)"
                )
        if self.insecureMinimumVersion not in (None, *_LEGACY):
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
            if value is not None and (not isinstance(value, str) or not value.strip()):
                _refuse(name, "None or a non-empty OpenSSL list string", value)
        for name in ("sessionCache", "sessionTickets"):
            if not isinstance(getattr(self, name), bool):
                _refuse(name, "True or False", getattr(self, name))
        timeout = self.sessionTimeout
        if not isinstance(timeout, int) or isinstance(timeout, bool) or timeout < 1:
            _refuse("sessionTimeout", "whole seconds >= 1", timeout)
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
            "renegotiation": "off",
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
        if self.keyLogPath is not None:
            found.append(
                f"INSECURE: TLS session keys are written to {self.keyLogPath}; anyone "
                "who can read it can decrypt the traffic"
            )
        return found


def _refuse(name: str, expected: str, value: object) -> NoReturn:
    raise ConfigurationError(f"TLSPolicy.{name}: expected {expected}, got {value!r}")


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


def _selectALPN(preferred: tuple[bytes, ...]) -> Callable[[SSL.Connection, list[bytes]], Any]:
    """
    ALPN selection: the server's first preference that the client offers.

    With no overlap (or no protocol configured) the callback declines to
    acknowledge ALPN, which is what OpenSSL does without a callback and what
    RFC 7301 permits: the handshake goes on with no protocol. Twisted's own
    callback answers with an empty protocol name instead, and OpenSSL then
    aborts the handshake with C{internal_error}, which breaks every curl,
    browser and HTTP library client.
    """

    def select(connection: SSL.Connection, offered: list[bytes]) -> Any:
        for protocol in preferred:
            if protocol in offered:
                return protocol
        return SSL.NO_OVERLAPPING_PROTOCOLS

    return select


def _keyLogger(stream: IO[bytes]) -> Callable[[SSL.Connection, bytes], None]:
    def log(connection: SSL.Connection, line: bytes) -> None:
        stream.write(line + b"\n")
        stream.flush()

    return log


def _ocspStapler(
    responses: dict[bytes, bytes],
) -> Callable[[SSL.Connection, object], bytes]:
    """
    Staple the OCSP response of whichever certificate this connection is
    served (RSA or ECDSA), or nothing.
    """

    def staple(connection: SSL.Connection, data: object) -> bytes:
        certificate = connection.get_certificate(as_cryptography=True)
        if certificate is None:
            return b""
        return responses.get(certificate.fingerprint(hashes.SHA256()), b"")

    return staple


def _requireValidClientCertificate(
    connection: SSL.Connection, certificate: object, error: int, depth: int, ok: int
) -> bool:
    return bool(ok)


@contextmanager
def _stagedChains(credentials: Sequence[ServerCredentials]) -> Iterator[dict[int, bytes]]:
    """
    Write each certificate with its chain to a temporary PEM file, once per
    build however many contexts load it, for OpenSSL's chain-file call.

    @return: (as a context manager) the file path of each credential, keyed
        by C{id()}; the files are removed on exit.
    """
    try:
        with tempfile.TemporaryDirectory(prefix="tlsreply-chains-") as directory:
            paths = {}
            for index, each in enumerate(credentials):
                path = Path(directory) / f"{index}.pem"
                path.write_bytes(
                    b"".join(
                        c.public_bytes(serialization.Encoding.PEM)
                        for c in (each.certificate, *each.chain)
                    )
                )
                paths[id(each)] = str(path).encode()
            yield paths
    except OSError as e:
        raise ConfigurationError(
            f"cannot stage the certificates for OpenSSL: {e.strerror or e}"
        ) from None


def _useCertificate(
    context: SSL.Context, credentials: ServerCredentials, chainFile: bytes
) -> None:
    """
    Load one certificate, its own chain and its key into a context.

    A context can hold one certificate per key type (RSA and ECDSA side by
    side, each client getting the one it can verify); each needs its own
    chain, which only OpenSSL's chain-file call sets.
    """
    try:
        context.use_certificate_chain_file(chainFile)
        context.use_privatekey(credentials.privateKey)
        context.check_privatekey()
    except SSL.Error as e:
        # e.g. "ee key too small" (RSA-1024), "ca md too weak" (MD5 chain).
        where = credentials.certificatePath or credentials.certificate.subject.rfc4514_string()
        reason = openSSLReasons(e) or "unknown OpenSSL error"
        raise ConfigurationError(f"OpenSSL refuses certificate {where}: {reason}") from None


def _sessionIDContext(name: str) -> bytes:
    """
    A short, fixed session ID context per server name (at most 32 bytes,
    as OpenSSL requires).
    """
    return b"tlsreply:" + hashlib.sha256(name.encode()).digest()[:8].hex().encode()


def _buildContext(
    credentials: Sequence[ServerCredentials],
    policy: TLSPolicy,
    chainFiles: dict[int, bytes],
    keyLog: IO[bytes] | None,
) -> SSL.Context:
    """
    One finished context serving C{credentials}. (Its session ID context
    is set by the caller, see L{ServerContexts.contextForHandshake}.)
    """
    minimum = policy.effectiveMinimumVersion
    versionArguments: dict[str, Any] = {"lowerMaximumSecurityTo": policy.maximumVersion}
    if minimum in _LEGACY:
        versionArguments["insecurelyLowerMinimumTo"] = minimum
    else:
        versionArguments["raiseMinimumTo"] = minimum
    options = CertificateOptions(
        enableSessions=policy.sessionCache,
        enableSessionTickets=policy.sessionTickets,
        **versionArguments,
    )
    context = options.getContext()
    context.set_options(SSL.OP_NO_RENEGOTIATION)
    # Free each connection's record buffers while they are empty (nginx
    # does the same): a connection waiting for its client's close_notify
    # then holds a few kilobytes instead of two 16 KiB buffers.
    context.set_mode(SSL.MODE_RELEASE_BUFFERS)
    try:
        context.set_cipher_list(policy.effectiveTLS12Ciphers.encode())
    except SSL.Error:
        raise ConfigurationError(
            f"cipher string {policy.effectiveTLS12Ciphers!r} selects no cipher"
        ) from None
    if policy.tls13Ciphersuites is not None:
        try:
            context.set_tls13_ciphersuites(policy.tls13Ciphersuites.encode())
        except SSL.Error:
            raise ConfigurationError(
                f"TLS 1.3 ciphersuites {policy.tls13Ciphersuites!r} select no suite"
            ) from None
    if policy.groups is not None:
        _openssl.setGroups(context, policy.groups)
    context.set_timeout(policy.sessionTimeout)
    _openssl.refuseEarlyData(context)
    context.set_alpn_select_callback(
        _selectALPN(tuple(p.encode() for p in policy.alpnProtocols))
    )
    if policy.verifyClient != "none":
        assert policy.clientCAPath is not None
        path = str(policy.clientCAPath).encode()
        try:
            context.load_verify_locations(path)
            context.load_client_ca(path)
        except SSL.Error as e:
            raise ConfigurationError(
                f"OpenSSL refuses client CA file {policy.clientCAPath}: "
                f"{openSSLReasons(e) or 'unknown OpenSSL error'}"
            ) from None
        if policy.verifyClient == "require":
            context.set_verify(
                SSL.VERIFY_PEER | SSL.VERIFY_FAIL_IF_NO_PEER_CERT,
                _requireValidClientCertificate,
            )
        else:
            # Keep the handshake going whatever the verification result,
            # which the connection log reports.
            _openssl.verifyPeerKeepingResult(context)
    if keyLog is not None:
        context.set_keylog_callback(_keyLogger(keyLog))
    staples = {
        c.certificate.fingerprint(hashes.SHA256()): c.ocspResponse
        for c in credentials
        if c.ocspResponse
    }
    if staples:
        context.set_ocsp_server_callback(_ocspStapler(staples))
    for each in credentials:
        _useCertificate(context, each, chainFiles[id(each)])
    return context


def _names(credentials: ServerCredentials) -> list[str]:
    """
    The server names a certificate is for, lower-cased: its DNS names (and
    IP addresses) or, with no subjectAltName, its common name.
    """
    names = [n.lower() for n in credentials.subjectNames]
    if names:
        return names
    return [
        str(a.value).lower()
        for a in credentials.certificate.subject.get_attributes_for_oid(
            x509.NameOID.COMMON_NAME
        )
    ]


@implementer(IOpenSSLServerConnectionCreator)
@dataclass
class ServerContexts:
    """
    The finished contexts of a tlsreply server, one per configured server
    name, and the choice among them for each connection.

    @ivar credentials: every certificate served, the fallback's first.
    @ivar policy: the policy every context follows.
    @ivar fallback: the context for a missing or unknown server name.
    @ivar byName: exact names (and wildcard patterns like
        C{*.example.com}) to their contexts.
    @ivar dedicated: the contexts (by C{id}) that serve exactly one name
        (their session ID context was set once, when they were built); the
        others serve several (the fallback, wildcards, names beyond
        L{MAXIMUM_NAME_CONTEXTS}).
    """

    credentials: tuple[ServerCredentials, ...]
    policy: TLSPolicy
    fallback: SSL.Context
    byName: dict[str, SSL.Context] = field(default_factory=dict)
    dedicated: set[int] = field(default_factory=set)
    _sessionNames: dict[int, str] = field(default_factory=dict, repr=False)
    _served: dict[int, str] = field(default_factory=dict, repr=False)

    def servedCertificate(self, connection: SSL.Connection) -> str | None:
        """
        Which certificate a connection from these contexts was served, for
        its log line: the key type (C{"ECDSA-P-256"}), after the
        certificate's first name when there are several certificates
        (C{"a.test/RSA-2048"}). Worked out once per certificate.
        """
        key = _openssl.servedCertificateKey(connection)
        if not key:
            return None
        described = self._served.get(key)
        if described is None:
            served = connection.get_certificate(as_cryptography=True)
            if served is None:
                return None
            described = self._describe(served)
            self._served[key] = described
        return described

    def _describe(self, certificate: x509.Certificate) -> str:
        for each in self.credentials:
            if each.certificate == certificate:
                if len(self.credentials) == 1:
                    return each.keyDescription
                names = _names(each)
                return f"{names[0] if names else '?'}/{each.keyDescription}"
        return certificate.subject.rfc4514_string()

    def contextFor(self, serverName: str | None) -> SSL.Context:
        """
        The context for a server name: an exact match, else a wildcard
        match of the first label, else the fallback.
        """
        if serverName:
            name = serverName.lower().rstrip(".")
            context = self.byName.get(name)
            if context is not None:
                return context
            _, dot, parent = name.partition(".")
            if dot:
                context = self.byName.get(f"*.{parent}")
                if context is not None:
                    return context
        return self.fallback

    def contextForHandshake(self, serverName: str | None) -> SSL.Context:
        """
        The context to create a connection from, for a client that asked
        for C{serverName}, with the session ID context of that name in
        place.

        Sessions never cross server names (RFC 6066 forbids resuming a
        TLS 1.2 session under another name): OpenSSL resumes a session, by
        ticket or ID, TLS 1.2 or 1.3, only on a connection with the
        session's own session ID context, which a connection copies from
        its context when it is created. A context that serves one name had
        that name's set when it was built. One that serves several gets the
        requested name's written just before the connection is created, and
        only when it differs from the last one written there: pyOpenSSL
        binds no per-connection setter, and OpenSSL's servername callback
        runs after the session was already chosen, too late to choose it by
        name.
        """
        context = self.contextFor(serverName)
        key = id(context)
        if key in self.dedicated:
            return context
        name = serverName or ""
        if self._sessionNames.get(key) != name:
            _openssl.setSessionIDContext(context, _sessionIDContext(name))
            self._sessionNames[key] = name
        return context

    def serverConnectionForTLS(self, tlsProtocol: Any) -> SSL.Connection:
        """
        A connection from the fallback context, for a Twisted TLS protocol
        that does not say which name its client asked for (tlsreply's own
        paths choose by name, see L{contextForHandshake}).
        """
        return SSL.Connection(self.contextForHandshake(None), None)


def buildServerContexts(
    credentials: ServerCredentials | Iterable[ServerCredentials],
    policy: TLSPolicy | None = None,
) -> ServerContexts:
    """
    Build every context a tlsreply server needs, finished and ready.

    Certificates for the same names (an RSA and an ECDSA one, say) share a
    context, and each client gets the one it can use; certificates for
    other names are chosen by SNI. The first certificate also serves
    clients that send no name or an unknown one.

    @param credentials: one certificate, or several (the first is the
        fallback).
    @param policy: protocol choices; the seed's defaults when L{None}.
    @raise ConfigurationError: for a setting OpenSSL refuses (an unknown
        group, a cipher string that selects nothing, an unreadable client CA
        or key-log file).
    """
    if isinstance(credentials, ServerCredentials):
        credentials = [credentials]
    credentials = tuple(credentials)
    if not credentials:
        raise ConfigurationError("no certificate to serve")
    if policy is None:
        policy = TLSPolicy()
    _openssl.checkBinding()
    if policy.clientCAPath is not None:
        loadCertificates(policy.clientCAPath, "client CA")
    keyLog = _openKeyLog(policy.keyLogPath)
    namesToCredentials: dict[str, list[ServerCredentials]] = {}
    for each in credentials:
        for name in _names(each):
            namesToCredentials.setdefault(name, []).append(each)
    fallbackNames = set(_names(credentials[0]))
    fallbackGroup = [c for c in credentials if set(_names(c)) == fallbackNames]
    perName = len(namesToCredentials) <= MAXIMUM_NAME_CONTEXTS
    with _stagedChains(credentials) as chainFiles:
        contexts = ServerContexts(
            credentials,
            policy,
            fallback=_buildContext(fallbackGroup, policy, chainFiles, keyLog),
        )
        shared: dict[tuple[int, ...], SSL.Context] = {}
        for name, group in namesToCredentials.items():
            if perName:
                context = _buildContext(group, policy, chainFiles, keyLog)
                if not name.startswith("*."):
                    context.set_session_id(_sessionIDContext(name))
                    contexts.dedicated.add(id(context))
            else:
                key = tuple(id(c) for c in group)
                if key not in shared:
                    shared[key] = _buildContext(group, policy, chainFiles, keyLog)
                context = shared[key]
            contexts.byName[name] = context
    return contexts


def _openKeyLog(path: Path | None) -> IO[bytes] | None:
    """
    Open the key-log file for appending, readable by its owner only (also
    when it already existed with a wider mode: it holds session keys).
    """
    if path is None:
        return None
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        os.fchmod(descriptor, 0o600)
    except OSError as e:
        raise ConfigurationError(f"cannot open key-log file {path}: {e.strerror}") from None
    return os.fdopen(descriptor, "ab")
