# -*- test-case-name: tests.test_check -*-
"""
The client of C{tlsreply check}: one connection to a server, and the facts
of its handshake, its certificate, its reply and how it closed.

The client is pyOpenSSL over memory BIOs, driven by a plain blocking socket
with a timeout for every step: this is a command-line tool that makes two
connections, so a reactor would add nothing, and memory BIOs let it tell a
close_notify from a bare TCP close and keep the session resumable whatever
the server does at the end.
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass, field
from typing import Final, Literal

from cryptography import x509
from OpenSSL import SSL
from service_identity import CertificateError, VerificationError
from service_identity.pyopenssl import verify_hostname, verify_ip_address

from tlsreply import _openssl
from tlsreply.check.options import CheckOptions, CheckUsageError, Target, encodeHostName
from tlsreply.errors import openSSLReasons
from tlsreply.tls.certificates import sha256Fingerprint

#: How much of the reply is kept in memory; the rest is only counted, so a
#: server that streams without end costs nothing but the timeout.
REPLY_KEPT: Final = 64 * 1024

#: How a server ended the first connection (C{"not-read"}: the client
#: closed it after the handshake, see L{connectOnce}).
Closing = Literal["close_notify", "tcp-close", "reset", "timeout", "tls-error", "not-read"]

class CheckConnectionError(Exception):
    """
    A connection could not be made or its handshake did not complete:
    unknown host, refused, unreachable, timed out, TLS alert. The message
    is one line that names the target and what went wrong.
    """


def buildClientContext(options: CheckOptions) -> SSL.Context:
    """
    The client context both connections are made from (a session can only
    be offered on a connection from the context that made it).

    Verification never aborts the handshake: the checker reports the facts
    of a handshake with an untrusted server too, and OpenSSL's reason.

    @raise CheckUsageError: if the C{--ca} file cannot be used.
    """
    context = SSL.Context(SSL.TLS_CLIENT_METHOD)
    if options.caPath is not None:
        path = options.caPath
        if not path.is_file():
            raise CheckUsageError(f"--ca: no such file: {path}")
        try:
            path.read_bytes()
            context.load_verify_locations(str(path))
        except OSError as e:
            raise CheckUsageError(f"--ca: cannot read {path}: {e.strerror}") from None
        except SSL.Error:
            raise CheckUsageError(f"--ca: no PEM certificate in {path}") from None
    else:
        context.set_default_verify_paths()
    _openssl.verifyPeerKeepingResult(context)
    if options.alpnProtocols:
        context.set_alpn_protos([p.encode() for p in options.alpnProtocols])
    return context


@dataclass(frozen=True)
class CertificateFacts:
    """
    The server's certificate, as an operator checks a deployment.

    @ivar subject: RFC 4514 string.
    @ivar subjectAltNames: C{"DNS:name"} and C{"IP:address"} entries.
    @ivar issuer: RFC 4514 string.
    @ivar sha256: the fingerprint, colon-separated hex, as C{openssl x509
        -fingerprint -sha256} prints it.
    @ivar notAfter: expiry, ISO 8601 UTC.
    """

    subject: str
    subjectAltNames: tuple[str, ...]
    issuer: str
    sha256: str
    notAfter: str

    @classmethod
    def fromCertificate(cls, certificate: x509.Certificate) -> CertificateFacts:
        """
        Read the facts off a certificate.
        """
        try:
            extension = certificate.extensions.get_extension_for_class(
                x509.SubjectAlternativeName
            )
            names: tuple[str, ...] = tuple(
                _describeGeneralName(n) for n in extension.value
            )
        except x509.ExtensionNotFound:
            names = ()
        return cls(
            subject=certificate.subject.rfc4514_string(),
            subjectAltNames=names,
            issuer=certificate.issuer.rfc4514_string(),
            sha256=sha256Fingerprint(certificate),
            notAfter=certificate.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ"),
        )


def _describeGeneralName(name: x509.GeneralName) -> str:
    if isinstance(name, x509.DNSName):
        return f"DNS:{name.value}"
    if isinstance(name, x509.IPAddress):
        return f"IP:{name.value}"
    if isinstance(name, x509.UniformResourceIdentifier):
        return f"URI:{name.value}"
    if isinstance(name, x509.RFC822Name):
        return f"email:{name.value}"
    return type(name).__name__


@dataclass
class ConnectionFacts:
    """
    What one connection saw.

    @ivar address: the IP address connected to.
    @ivar tlsVersion: e.g. C{"TLSv1.3"}.
    @ivar cipher: OpenSSL's name of the cipher suite.
    @ivar group: the key-exchange group, or C{None} where OpenSSL reports
        none (a resumed TLS 1.2 session).
    @ivar alpnProtocol: the negotiated ALPN protocol, if any.
    @ivar resumed: whether the server resumed the session offered.
    @ivar handshakeSeconds: from the first handshake byte sent to the
        handshake's completion, including the network round trips.
    @ivar certificate: the server's certificate, if it sent one (a resumed
        session's is the original one).
    @ivar chainVerification: C{"ok"} or OpenSSL's reason.
    @ivar nameVerification: C{"ok"}, or why the certificate does not match
        the server name or IP address.
    @ivar reply: the first L{REPLY_KEPT} bytes of what the server sent.
    @ivar replyLength: how many bytes the server sent in all.
    @ivar closing: how the server ended the connection.
    @ivar closingDetail: the TLS error, for C{closing == "tls-error"}.
    @ivar session: the session to offer on the next connection.
    """

    address: str
    tlsVersion: str
    cipher: str | None
    group: str | None
    alpnProtocol: str | None
    resumed: bool
    handshakeSeconds: float
    certificate: CertificateFacts | None
    chainVerification: str
    nameVerification: str
    reply: bytes = b""
    replyLength: int = 0
    closing: Closing = "timeout"
    closingDetail: str | None = None
    session: SSL.Session | None = field(default=None, repr=False)


def _describeTLSError(error: SSL.Error) -> str:
    """
    OpenSSL's reasons in an error, e.g. C{"tlsv1 alert unknown ca"}.
    """
    reasons = openSSLReasons(error)
    if reasons:
        return reasons
    if isinstance(error, SSL.SysCallError) and len(error.args) == 2:
        return str(error.args[1])
    return str(error) or type(error).__name__


class _Channel:
    """
    A pyOpenSSL client connection over memory BIOs, and the socket its
    bytes travel on, with a deadline for each step.
    """

    def __init__(self, sock: socket.socket, connection: SSL.Connection) -> None:
        self.sock = sock
        self.connection = connection

    def flush(self) -> None:
        """
        Send whatever OpenSSL has written.
        """
        while True:
            try:
                data = self.connection.bio_read(65536)
            except SSL.WantReadError:
                return
            if not data:
                return
            self.sock.sendall(data)

    def fill(self, deadline: float) -> bool:
        """
        Hand OpenSSL the next bytes from the socket.

        @return: C{False} when the server has closed TCP.
        @raise TimeoutError: when the deadline passes first.
        """
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError()
        self.sock.settimeout(remaining)
        data = self.sock.recv(65536)
        if not data:
            return False
        self.connection.bio_write(data)
        return True


def connectOnce(
    options: CheckOptions,
    context: SSL.Context,
    session: SSL.Session | None = None,
    readReply: bool = True,
) -> ConnectionFacts:
    """
    Connect, complete the handshake, read until the server closes, and say
    what happened.

    The session is taken only after the read: TLS 1.3 tickets arrive after
    the handshake, and a server's close (clean or not) is never passed to
    OpenSSL as an error, which would make the session unresumable.

    @param session: a session from an earlier connection to offer.
    @param readReply: C{False} to close right after the handshake (and
        C{--send}), reading nothing (closing C{"not-read"}).
    @raise CheckConnectionError: if no handshake completed.
    """
    target = options.target
    timeout = options.timeout
    try:
        sock = socket.create_connection((target.host, target.port), timeout=timeout)
    except socket.gaierror as e:
        raise CheckConnectionError(f"cannot resolve {target.host!r}: {e.strerror}") from None
    except ConnectionRefusedError:
        raise CheckConnectionError(f"connection refused by {target}") from None
    except TimeoutError:
        raise CheckConnectionError(
            f"timed out after {timeout:g}s connecting to {target}"
        ) from None
    except OSError as e:
        raise CheckConnectionError(
            f"cannot connect to {target}: {e.strerror or e}"
        ) from None
    with sock:
        address = str(sock.getpeername()[0])
        connection = SSL.Connection(context, None)
        connection.set_connect_state()
        if options.serverName is not None:
            connection.set_tlsext_host_name(encodeHostName(options.serverName))
        if session is not None:
            connection.set_session(session)
        channel = _Channel(sock, connection)
        handshakeSeconds = _handshake(channel, target, timeout)
        facts = _describe(connection, options, address, handshakeSeconds)
        if options.send:
            _send(channel, options.send)
        if readReply:
            _readUntilClose(channel, facts, time.monotonic() + timeout)
        else:
            facts.closing = "not-read"
        facts.session = connection.get_session()
        _closePolitely(channel)
    return facts


def _handshake(channel: _Channel, target: Target, timeout: float) -> float:
    """
    Drive the client handshake to completion.

    @return: seconds it took.
    @raise CheckConnectionError: on a TLS error, a close or a timeout.
    """
    started = time.monotonic()
    deadline = started + timeout
    connection = channel.connection
    try:
        while True:
            try:
                connection.do_handshake()
            except SSL.WantReadError:
                channel.flush()
                if not channel.fill(deadline):
                    raise CheckConnectionError(
                        f"{target} closed the connection during the TLS handshake"
                    ) from None
            else:
                channel.flush()
                return time.monotonic() - started
    except SSL.Error as e:
        try:
            channel.flush()  # the alert that says why, if OpenSSL wrote one
        except OSError:
            pass
        raise CheckConnectionError(
            f"TLS handshake with {target} failed: {_describeTLSError(e)}"
        ) from None
    except TimeoutError:
        raise CheckConnectionError(
            f"timed out after {timeout:g}s waiting for the TLS handshake with {target}"
        ) from None
    except ConnectionResetError:
        raise CheckConnectionError(
            f"{target} reset the connection during the TLS handshake"
        ) from None
    except OSError as e:
        raise CheckConnectionError(
            f"connection to {target} failed during the TLS handshake: {e.strerror or e}"
        ) from None


def _describe(
    connection: SSL.Connection,
    options: CheckOptions,
    address: str,
    handshakeSeconds: float,
) -> ConnectionFacts:
    """
    The facts of a completed handshake, and whether the certificate is
    trusted and names the server.
    """
    certificate = connection.get_peer_certificate(as_cryptography=True)
    alpn = connection.get_alpn_proto_negotiated()
    if certificate is None:
        chain = "the server sent no certificate"
        name = chain
    else:
        chain = _openssl.verificationResult(connection)
        name = _checkName(connection, options)
    return ConnectionFacts(
        address=address,
        tlsVersion=connection.get_protocol_version_name(),
        cipher=connection.get_cipher_name(),
        group=connection.get_group_name(),
        alpnProtocol=alpn.decode("ascii", "replace") if alpn else None,
        resumed=_openssl.sessionReused(connection),
        handshakeSeconds=handshakeSeconds,
        certificate=(
            CertificateFacts.fromCertificate(certificate) if certificate else None
        ),
        chainVerification=chain,
        nameVerification=name,
    )


def _checkName(connection: SSL.Connection, options: CheckOptions) -> str:
    """
    Check the certificate against the server name, or against the target's
    IP address when there is no name (RFC 6125; C{service_identity}).

    @return: C{"ok"} or why not.
    """
    address = options.target.address
    try:
        if options.serverName is not None:
            what = f"the name {options.serverName!r}"
            verify_hostname(connection, options.serverName)
        elif address is not None:
            unscoped = str(address).partition("%")[0]
            what = f"the IP address {unscoped}"
            verify_ip_address(connection, unscoped)
        else:  # pragma: no cover - parseArguments always sets one of them
            return "nothing to check the certificate against"
    except VerificationError:
        return f"the certificate is not valid for {what}"
    except CertificateError as e:
        return f"the certificate cannot be checked against {what}: {e}"
    return "ok"


def _send(channel: _Channel, data: bytes) -> None:
    """
    Send C{data} (a request), for a server that waits for one before it
    answers. A server that closes meanwhile is found by the read that
    follows.
    """
    connection = channel.connection
    view = memoryview(data)
    try:
        while view:
            view = view[connection.send(view) :]
        channel.flush()
    except (SSL.Error, OSError):
        pass


def _readUntilClose(channel: _Channel, facts: ConnectionFacts, deadline: float) -> None:
    """
    Read the reply until the server closes, recording how it closed.

    A TCP close is recorded and not handed to OpenSSL: an "unexpected EOF"
    error would mark the session unresumable, and whether a server without
    close_notify lets clients resume is a separate fact.
    """
    connection = channel.connection
    chunks: list[bytes] = []
    kept = 0
    while True:
        try:
            chunk = connection.recv(65536)
        except SSL.WantReadError:
            try:
                channel.flush()  # e.g. an answer to a key update
                if not channel.fill(deadline):
                    facts.closing = "tcp-close"
                    break
            except TimeoutError:
                facts.closing = "timeout"
                break
            except OSError:
                facts.closing = "reset"
                break
        except SSL.ZeroReturnError:
            facts.closing = "close_notify"
            break
        except SSL.Error as e:
            facts.closing = "tls-error"
            facts.closingDetail = _describeTLSError(e)
            break
        else:
            facts.replyLength += len(chunk)
            if kept < REPLY_KEPT:
                chunks.append(chunk[: REPLY_KEPT - kept])
                kept += len(chunks[-1])
    facts.reply = b"".join(chunks)


def _closePolitely(channel: _Channel) -> None:
    """
    Send our close_notify, if the server still listens.

    This also marks the connection as properly shut down, so that freeing
    it does not make its session unresumable.
    """
    try:
        channel.connection.shutdown()
        channel.sock.settimeout(1.0)
        channel.flush()
    except (SSL.Error, OSError):
        pass
