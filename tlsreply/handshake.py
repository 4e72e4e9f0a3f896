# -*- test-case-name: tests.test_wire -*-
"""
What a completed TLS handshake negotiated, read off the connection.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from OpenSSL import SSL

from tlsreply import _openssl
from tlsreply.clienthello import ClientHello


@dataclass(frozen=True)
class HandshakeInfo:
    """
    The facts of one completed handshake, as an operator or a test wants
    them.

    @ivar tlsVersion: e.g. C{"TLSv1.3"}.
    @ivar cipher: the OpenSSL name of the cipher suite.
    @ivar group: the key-exchange group (e.g. C{"x25519"}), or L{None} if
        OpenSSL does not report one (a resumed TLS 1.2 session).
    @ivar resumed: whether an earlier session was resumed.
    @ivar serverName: the SNI name the client asked for, if any.
    @ivar alpnProtocol: the negotiated ALPN protocol, if any.
    @ivar duration: seconds from accepting the connection to the end of the
        handshake.
    @ivar earlyDataOffered: the client offered 0-RTT data (which tlsreply
        never accepts: it got a full handshake).
    @ivar clientCertificate: the subject of the client's certificate, if it
        sent one.
    @ivar clientVerification: C{"ok"}, or why the client's certificate did
        not verify; L{None} without a client certificate.
    """

    tlsVersion: str
    cipher: str | None
    group: str | None
    resumed: bool
    serverName: str | None
    alpnProtocol: str | None
    duration: float
    earlyDataOffered: bool = False
    clientCertificate: str | None = None
    clientVerification: str | None = None

    def asLogFields(self) -> dict[str, Any]:
        """
        The facts as keyword arguments for a structured log event.
        """
        return asdict(self)


def describeHandshake(
    connection: SSL.Connection,
    duration: float,
    clientHello: ClientHello | None = None,
) -> HandshakeInfo:
    """
    Read what a connection negotiated, right after its handshake completed.

    @param connection: a server connection whose handshake has completed.
    @param duration: seconds the handshake took, measured by the caller.
    @param clientHello: what the client offered, if known.
    """
    serverName = connection.get_servername()
    alpn = connection.get_alpn_proto_negotiated()
    peerCertificate = connection.get_peer_certificate(as_cryptography=True)
    return HandshakeInfo(
        tlsVersion=connection.get_protocol_version_name(),
        cipher=connection.get_cipher_name(),
        group=connection.get_group_name(),
        resumed=_openssl.sessionReused(connection),
        serverName=serverName.decode("ascii", "replace") if serverName else None,
        alpnProtocol=alpn.decode("ascii", "replace") if alpn else None,
        duration=duration,
        earlyDataOffered=clientHello.earlyDataOffered if clientHello else False,
        clientCertificate=(
            peerCertificate.subject.rfc4514_string() if peerCertificate else None
        ),
        clientVerification=(
            _openssl.verificationResult(connection) if peerCertificate else None
        ),
    )
