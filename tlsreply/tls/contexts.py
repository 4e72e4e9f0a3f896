# -*- test-case-name: tests.test_wire,tests.test_negotiation,tests.test_certificate_selection,tests.test_sessions,tests.test_servername_ack -*-
"""
The server's TLS contexts: Twisted's C{CertificateOptions}, finished with
the seed's defaults where they differ from Twisted's and with a
L{tlsreply.tls.policy.TLSPolicy}, one per server name.

Every context is built once, completely, before the first connection:
pyOpenSSL refuses to change a context once a connection has been made from
it, and every connection must see the same policy.

Each configured server name gets a context of its own, and so a session
cache and session-ticket keys of its own: a session made under one name can
only ever be resumed under that name. The context is chosen from the server
name in the client's ClientHello (read by L{tlsreply.transport.tlssocket} or
L{tlsreply.transport.tlsmemory}) when the connection is created; a missing or unknown
name gets the fallback context, which serves the first certificate.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Final

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from OpenSSL import SSL
from twisted.internet.interfaces import IOpenSSLServerConnectionCreator
from twisted.internet.ssl import CertificateOptions
from zope.interface import implementer

from tlsreply import _openssl
from tlsreply.errors import ConfigurationError, openSSLReasons
from tlsreply.tls.credentials import ServerCredentials, loadCertificates
from tlsreply.tls.policy import LEGACY_VERSIONS, TLSPolicy
from tlsreply.tls.safefiles import openToAppend, writeFile

#: Up to this many configured names, each gets a context (and session
#: cache) of its own; beyond it (a certificate with 1,000 names), names on
#: the same certificates share one, to bound start-up time and memory.
MAXIMUM_NAME_CONTEXTS: Final = 64


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
                writeFile(
                    path,
                    b"".join(
                        c.public_bytes(serialization.Encoding.PEM)
                        for c in (each.certificate, *each.chain)
                    ),
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
    if minimum in LEGACY_VERSIONS:
        versionArguments["insecurelyLowerMinimumTo"] = minimum
    else:
        versionArguments["raiseMinimumTo"] = minimum
    options = CertificateOptions(
        enableSessions=policy.sessionCache,
        enableSessionTickets=policy.sessionTickets,
        **versionArguments,
    )
    context = options.getContext()
    if not policy.insecureServerRenegotiation:
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
    _openssl.acknowledgeServerName(context)
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


def checkPolicy(policy: TLSPolicy) -> None:
    """
    Refuse now what OpenSSL would refuse of C{policy} when the server's
    contexts are built (a cipher string that selects nothing, an unknown
    group, an unreadable client CA), without a certificate and without
    writing anything (the key log is not opened): for C{--show-config},
    which describes a server without starting it.

    @raise ConfigurationError: as L{buildServerContexts} would.
    """
    _openssl.checkBinding()
    if policy.clientCAPath is not None:
        loadCertificates(policy.clientCAPath, "client CA")
    _buildContext((), policy, {}, None)


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
    @param policy: protocol choices; the seed's defaults when C{None}.
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
    when it already existed with a wider mode: it holds session keys), and
    never through a symbolic link or into a file with another hard link
    (L{tlsreply.tls.safefiles.openToAppend}).
    """
    if path is None:
        return None
    try:
        return openToAppend(path, secret=True)
    except OSError as e:
        raise ConfigurationError(
            f"cannot open key-log file {path}: {e.strerror or e}"
        ) from None
