# -*- test-case-name: tests.test_check -*-
"""
C{tlsreply check HOST:PORT}: a TLS client that reports what a server's
handshake negotiated, and checks what tlsreply promises its users.

It connects once and prints the facts of the handshake (version, cipher,
key-exchange group, ALPN, the server's certificate and whether it verified,
the reply, how the server closed, how long the handshake took), then
connects again offering the session from the first connection and reports
whether the server resumed it. The exit status is 0 only when the
certificate verified, a non-empty reply arrived and the session was
resumed: the three things a health check, a certificate deployment or a
load-balancer change must not break.

It works against any TLS server, not only tlsreply: it sends nothing after
the handshake, reads whatever the server sends until the server closes (or
the timeout), and reports a server that never closes as such.

The client is pyOpenSSL over memory BIOs, driven by a plain blocking socket
with a timeout for every step: this is a command-line tool that makes two
connections, so a reactor would add nothing, and memory BIOs let it tell a
close_notify from a bare TCP close and keep the session resumable whatever
the server does at the end.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal, NoReturn, TextIO

import idna
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from OpenSSL import SSL
from service_identity import CertificateError, VerificationError
from service_identity.pyopenssl import verify_hostname, verify_ip_address

from tlsreply import _openssl
from tlsreply.errors import openSSLReasons

#: Seconds allowed, by default, for each step of a connection: the TCP
#: connect, the TLS handshake, and the wait for the reply and the close.
DEFAULT_TIMEOUT: Final = 10.0

#: How much of the reply is shown (as a Python bytes literal); the byte
#: count is always the whole reply's.
REPLY_PREVIEW: Final = 100

#: How much of the reply is kept in memory; the rest is only counted, so a
#: server that streams without end costs nothing but the timeout.
REPLY_KEPT: Final = 64 * 1024

#: Exit statuses.
EXIT_OK: Final = 0
EXIT_FAILED: Final = 1
EXIT_USAGE: Final = 2

#: The synopsis at the top of C{--help}.
USAGE: Final = (
    "tlsreply check HOST:PORT [--ca FILE] [--servername NAME] [--alpn LIST]\n"
    "                      [--json] [--timeout SECONDS]"
)

#: How a server ended the first connection.
Closing = Literal["close_notify", "tcp-close", "reset", "timeout", "tls-error"]

_RESUMPTION_MISSING: Final = (
    "no session resumption: the second connection did a full handshake"
)


class CheckUsageError(Exception):
    """
    The command line cannot be used: a bad argument, or a C{--ca} file that
    cannot be read. The message is one line, for the person who typed it.
    """


class CheckConnectionError(Exception):
    """
    A connection could not be made or its handshake did not complete:
    unknown host, refused, unreachable, timed out, TLS alert. The message
    is one line that names the target and what went wrong.
    """


@dataclass(frozen=True)
class Target:
    """
    Where to connect, as the user wrote it.

    @ivar host: a host name, or an IP address without brackets.
    @ivar port: the TCP port.
    @ivar address: the parsed IP address if C{host} is one, else L{None};
        an address gets no SNI by default (RFC 6066 allows only names
        there) and is checked against the certificate's IP addresses.
    """

    host: str
    port: int
    address: ipaddress.IPv4Address | ipaddress.IPv6Address | None

    def __str__(self) -> str:
        if isinstance(self.address, ipaddress.IPv6Address):
            return f"[{self.host}]:{self.port}"
        return f"{self.host}:{self.port}"


def parseTarget(text: str) -> Target:
    """
    Parse C{HOST:PORT}, where HOST is a name, an IPv4 address, or an IPv6
    address in brackets (C{[::1]:443}); the brackets are what keeps the
    port apart from an IPv6 address's own colons.

    @raise CheckUsageError: naming what is wrong with C{text}.
    """
    if text.startswith("["):
        close = text.find("]")
        if close == -1 or text[close + 1 : close + 2] != ":":
            raise CheckUsageError(
                f"expected [IPv6]:PORT, got {text!r} (e.g. [::1]:443)"
            )
        host, portText = text[1:close], text[close + 2 :]
        try:
            address: ipaddress.IPv4Address | ipaddress.IPv6Address | None = (
                ipaddress.IPv6Address(host)
            )
        except ValueError:
            raise CheckUsageError(
                f"not an IPv6 address in brackets: {host!r}"
            ) from None
    else:
        host, colon, portText = text.rpartition(":")
        if not colon:
            raise CheckUsageError(f"expected HOST:PORT, got {text!r}")
        if ":" in host:
            raise CheckUsageError(
                f"put an IPv6 address in brackets: [{host}]:{portText}"
            )
        if not host:
            raise CheckUsageError(f"no host in {text!r}")
        try:
            address = ipaddress.IPv4Address(host)
        except ValueError:
            address = None
            _encodeHostName(host)
    if not (portText.isascii() and portText.isdigit()) or not 0 < int(portText) < 65536:
        raise CheckUsageError(f"bad port {portText!r}: expected 1 to 65535")
    return Target(host, int(portText), address)


def _encodeHostName(name: str) -> bytes:
    """
    The host name as it goes into SNI: ASCII, internationalized names in
    their IDNA (punycode) form.

    @raise CheckUsageError: if C{name} is not a host name.
    """
    try:
        if name.isascii():
            encoded = name.encode("ascii")
            labels = encoded.rstrip(b".").split(b".")
            if not all(
                label and all(c in _NAME_CHARACTERS for c in label)
                for label in labels
            ):
                raise ValueError(name)
            return encoded
        return idna.encode(name, uts46=True)
    except (ValueError, idna.IDNAError):
        raise CheckUsageError(f"not a host name: {name!r}") from None


_NAME_CHARACTERS: Final = frozenset(
    b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_"
)


@dataclass(frozen=True)
class CheckOptions:
    """
    What the command line asked for.

    @ivar target: where to connect.
    @ivar caPath: trust only these PEM CAs; L{None} for the system store.
    @ivar serverName: the name sent as SNI and checked against the
        certificate; L{None} for none (the target is an IP address).
    @ivar alpnProtocols: ALPN protocols to offer, none by default (offering
        protocols a server does not speak can make it refuse the handshake).
    @ivar json: print the facts as one JSON object.
    @ivar timeout: seconds for each step of a connection.
    """

    target: Target
    caPath: Path | None = None
    serverName: str | None = None
    alpnProtocols: tuple[str, ...] = ()
    json: bool = False
    timeout: float = DEFAULT_TIMEOUT


class _ArgumentParser(argparse.ArgumentParser):
    """
    An argument parser that raises instead of printing and exiting, so that
    L{runCheck} writes every error as one line to its own output.
    """

    def error(self, message: str) -> NoReturn:
        raise CheckUsageError(message)


def _positiveSeconds(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        seconds = float("nan")
    if not 0 < seconds < float("inf"):
        raise argparse.ArgumentTypeError(
            f"expected a positive number of seconds, got {text!r}"
        )
    return seconds


def buildArgumentParser() -> argparse.ArgumentParser:
    """
    The C{tlsreply check} command line (its C{--help} is the usage text).
    """
    parser = _ArgumentParser(
        prog="tlsreply check",
        usage=USAGE,
        add_help=False,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=(
            "Connect to a TLS server, print what the handshake negotiated,\n"
            "then connect again offering the first connection's session and\n"
            "report whether the server resumed it."
        ),
        epilog=(
            "HOST is a name, an IPv4 address or an [IPv6] address in brackets.\n"
            "Exit status: 0 when the certificate verified, a non-empty reply\n"
            "arrived and the second connection resumed the session; 1 when\n"
            "any of those is missing (one line per problem) or the server\n"
            "cannot be reached; 2 for bad arguments."
        ),
    )
    parser.add_argument("target", metavar="HOST:PORT", help="the server to check")
    parser.add_argument(
        "--ca",
        metavar="FILE",
        help="trust only the CA certificates in this PEM file "
        "(default: the system's trust store)",
    )
    parser.add_argument(
        "--servername",
        metavar="NAME",
        help="send this name as SNI and check the certificate against it "
        "(default: HOST when it is a name; an IP address is checked as one "
        "and sends no SNI)",
    )
    parser.add_argument(
        "--alpn",
        metavar="LIST",
        help="offer these ALPN protocols, comma-separated, e.g. h2,http/1.1 "
        "(default: none)",
    )
    parser.add_argument(
        "--json", action="store_true", help="print the facts as one JSON object"
    )
    parser.add_argument(
        "--timeout",
        metavar="SECONDS",
        type=_positiveSeconds,
        default=DEFAULT_TIMEOUT,
        help="seconds allowed for each step: TCP connect, TLS handshake, "
        "waiting for the reply and the close (default: %(default)g)",
    )
    parser.add_argument("-h", "--help", action="store_true", help="show this help")
    return parser


def parseArguments(argv: Sequence[str]) -> CheckOptions | None:
    """
    Parse the command line.

    @return: the options, or L{None} if C{--help} was asked for.
    @raise CheckUsageError: for any bad argument.
    """
    parser = buildArgumentParser()
    if "-h" in argv or "--help" in argv:
        return None
    namespace = parser.parse_args(list(argv))
    target = parseTarget(namespace.target)
    serverName: str | None = namespace.servername
    if serverName is not None:
        if _isAddress(serverName):
            raise CheckUsageError(
                f"--servername must be a host name, not the address {serverName!r} "
                "(an address target is checked as an address)"
            )
        try:
            _encodeHostName(serverName)
        except CheckUsageError as e:
            raise CheckUsageError(f"--servername: {e}") from None
    elif target.address is None:
        serverName = target.host
    if serverName is not None:
        # SNI carries no trailing dot (RFC 6066), and certificates name
        # hosts without one.
        serverName = serverName.rstrip(".") or serverName
    alpn: tuple[str, ...] = ()
    if namespace.alpn is not None:
        alpn = tuple(p.strip() for p in namespace.alpn.split(","))
        if not all(0 < len(p.encode()) < 256 for p in alpn):
            raise CheckUsageError(
                f"--alpn: expected comma-separated protocol names, got {namespace.alpn!r}"
            )
    caPath = None if namespace.ca is None else Path(namespace.ca)
    return CheckOptions(
        target=target,
        caPath=caPath,
        serverName=serverName,
        alpnProtocols=alpn,
        json=namespace.json,
        timeout=namespace.timeout,
    )


def _isAddress(text: str) -> bool:
    try:
        ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return False
    return True


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
            sha256=certificate.fingerprint(hashes.SHA256()).hex(":").upper(),
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
    @ivar group: the key-exchange group, or L{None} where OpenSSL reports
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

        @return: L{False} when the server has closed TCP.
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
) -> ConnectionFacts:
    """
    Connect, complete the handshake, read until the server closes, and say
    what happened.

    The session is taken only after the read: TLS 1.3 tickets arrive after
    the handshake, and a server's close (clean or not) is never passed to
    OpenSSL as an error, which would make the session unresumable.

    @param session: a session from an earlier connection to offer.
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
            connection.set_tlsext_host_name(_encodeHostName(options.serverName))
        if session is not None:
            connection.set_session(session)
        channel = _Channel(sock, connection)
        handshakeSeconds = _handshake(channel, target, timeout)
        facts = _describe(connection, options, address, handshakeSeconds)
        _readUntilClose(channel, facts, time.monotonic() + timeout)
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


@dataclass
class CheckResult:
    """
    Both connections, and what is missing.

    @ivar options: what was checked, and how.
    @ivar first: the first connection.
    @ivar second: the connection that offered the first one's session, or
        L{None} if it failed.
    @ivar secondError: why it failed.
    """

    options: CheckOptions
    first: ConnectionFacts
    second: ConnectionFacts | None
    secondError: str | None = None

    @property
    def verified(self) -> bool:
        """
        Is the certificate trusted, and is it the server's?
        """
        return self.first.chainVerification == self.first.nameVerification == "ok"

    def problems(self) -> list[str]:
        """
        One line for each thing the exit status requires that is missing.
        """
        problems = []
        first = self.first
        if first.certificate is None:
            problems.append("certificate verification failed: the server sent no certificate")
        else:
            if first.chainVerification != "ok":
                problems.append(
                    f"certificate verification failed: {first.chainVerification}"
                    f" (trusting {self._trust()})"
                )
            if first.nameVerification != "ok":
                problems.append(
                    f"certificate verification failed: {first.nameVerification}"
                )
        if not first.replyLength:
            problems.append(_describeNoReply(first, self.options.timeout))
        if self.second is None:
            problems.append(
                f"no session resumption: the second connection failed: {self.secondError}"
            )
        elif not self.second.resumed:
            problems.append(_RESUMPTION_MISSING)
        return problems

    def _trust(self) -> str:
        caPath = self.options.caPath
        return str(caPath) if caPath is not None else "the system store"

    def asDict(self) -> dict[str, Any]:
        """
        The facts as JSON values.
        """
        first = self.first
        certificate = first.certificate
        second = self.second
        return {
            "ok": not self.problems(),
            "target": str(self.options.target),
            "address": first.address,
            "serverName": self.options.serverName,
            "tlsVersion": first.tlsVersion,
            "cipher": first.cipher,
            "group": first.group,
            "alpnProtocol": first.alpnProtocol,
            "certificate": None
            if certificate is None
            else {
                "subject": certificate.subject,
                "subjectAltNames": list(certificate.subjectAltNames),
                "issuer": certificate.issuer,
                "sha256": certificate.sha256,
                "notAfter": certificate.notAfter,
            },
            "verification": {
                "ok": self.verified,
                "trust": self._trust(),
                "chain": first.chainVerification,
                "name": first.nameVerification,
            },
            "reply": {
                "length": first.replyLength,
                "preview": _previewReply(first),
            },
            "closing": first.closing,
            "closingDetail": first.closingDetail,
            "handshakeSeconds": round(first.handshakeSeconds, 6),
            "resumption": {
                "resumed": bool(second and second.resumed),
                "tlsVersion": second.tlsVersion if second else None,
                "handshakeSeconds": round(second.handshakeSeconds, 6)
                if second
                else None,
                "error": self.secondError,
            },
            "problems": self.problems(),
        }

    def asText(self) -> str:
        """
        The facts for a person, one per line, then one line per problem.
        """
        first = self.first
        options = self.options
        lines = [
            ("target", f"{options.target} ({first.address}), "
             + (f"SNI {options.serverName}" if options.serverName else "no SNI")),
            ("TLS version", first.tlsVersion),
            ("cipher", first.cipher or "none"),
            ("group", first.group or "none reported"),
            ("ALPN", first.alpnProtocol or "none"),
        ]
        certificate = first.certificate
        if certificate is None:
            lines.append(("certificate", "none"))
        else:
            lines += [
                ("subject", certificate.subject or "(empty)"),
                ("SANs", ", ".join(certificate.subjectAltNames) or "none"),
                ("issuer", certificate.issuer),
                ("SHA-256", certificate.sha256),
                ("notAfter", certificate.notAfter),
            ]
        if self.verified:
            verification = f"ok (trusting {self._trust()}; " + (
                f"name {options.serverName})" if options.serverName
                else f"IP address {options.target.address})"
            )
        else:
            verification = "FAILED: " + "; ".join(
                reason for reason in (first.chainVerification, first.nameVerification)
                if reason != "ok"
            )
        lines += [
            ("verification", verification),
            ("reply", f"{_previewReply(first)} ({first.replyLength} bytes)"),
            ("closed with", _describeClosing(first, options.timeout)),
            ("handshake time", _milliseconds(first.handshakeSeconds)),
        ]
        second = self.second
        if second is None:
            resumption = f"FAILED: second connection: {self.secondError}"
        elif second.resumed:
            resumption = (
                f"resumed ({second.tlsVersion}, "
                f"handshake {_milliseconds(second.handshakeSeconds)})"
            )
        else:
            resumption = (
                f"NOT resumed ({second.tlsVersion}, full handshake "
                f"{_milliseconds(second.handshakeSeconds)})"
            )
        lines.append(("resumption", resumption))
        width = max(len(label) for label, _ in lines) + 2
        text = [f"{label + ':':<{width}}{value}" for label, value in lines]
        problems = self.problems()
        text += [f"problem: {problem}" for problem in problems]
        if not problems:
            text.append("OK: certificate verified, reply received, session resumed")
        return "\n".join(text) + "\n"


def _previewReply(facts: ConnectionFacts) -> str:
    preview = repr(facts.reply[:REPLY_PREVIEW])
    if facts.replyLength > REPLY_PREVIEW:
        preview += "..."
    return preview


def _describeClosing(facts: ConnectionFacts, timeout: float) -> str:
    return {
        "close_notify": "close_notify",
        "tcp-close": "a TCP close without close_notify",
        "reset": "a TCP reset, without close_notify",
        "timeout": f"neither close_notify nor a TCP close within {timeout:g}s",
        "tls-error": f"a TLS error: {facts.closingDetail}",
    }[facts.closing]


def _describeNoReply(facts: ConnectionFacts, timeout: float) -> str:
    if facts.closing == "timeout":
        return f"no reply: the server sent no data within {timeout:g}s"
    ending = {
        "close_notify": "sent close_notify",
        "tcp-close": "closed TCP",
        "reset": "reset the connection",
        "tls-error": f"failed with a TLS error ({facts.closingDetail})",
    }[facts.closing]
    return f"no reply: the server sent no data before it {ending}"


def _milliseconds(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def check(options: CheckOptions) -> CheckResult:
    """
    Make both connections.

    @raise CheckUsageError: if the C{--ca} file cannot be used.
    @raise CheckConnectionError: if the first connection fails; a failing
        second connection is a problem in the result instead, because the
        first one's facts are still worth reporting.
    """
    context = buildClientContext(options)
    first = connectOnce(options, context)
    try:
        second: ConnectionFacts | None = connectOnce(options, context, first.session)
        secondError = None
    except CheckConnectionError as e:
        second, secondError = None, str(e)
    return CheckResult(options, first, second, secondError)


def runCheck(argv: list[str], out: TextIO) -> int:
    """
    Run C{tlsreply check} with the arguments after C{check}, writing
    everything (facts, problems, errors, C{--help}) to C{out}.

    @return: the exit status: L{EXIT_OK}, L{EXIT_FAILED} (a problem, or the
        server could not be reached) or L{EXIT_USAGE} (bad arguments).
    """
    try:
        options = parseArguments(argv)
    except CheckUsageError as e:
        out.write(f"tlsreply check: {e} (see --help)\n")
        return EXIT_USAGE
    if options is None:
        out.write(buildArgumentParser().format_help())
        return EXIT_OK
    try:
        result = check(options)
    except CheckUsageError as e:
        out.write(f"tlsreply check: {e}\n")
        return EXIT_USAGE
    except CheckConnectionError as e:
        if options.json:
            out.write(json.dumps({"ok": False, "target": str(options.target),
                                  "error": str(e)}) + "\n")
        else:
            out.write(f"tlsreply check: {e}\n")
        return EXIT_FAILED
    if options.json:
        out.write(json.dumps(result.asDict(), indent=2) + "\n")
    else:
        out.write(result.asText())
    return EXIT_OK if not result.problems() else EXIT_FAILED
