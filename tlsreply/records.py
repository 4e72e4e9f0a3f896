# -*- test-case-name: tests.test_wire -*-
"""
What a completed TLS handshake negotiated, read off the connection.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from OpenSSL import SSL

from tlsreply import _openssl
from tlsreply.clienthello import ClientHello, printableASCII


@dataclass(frozen=True, slots=True)
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
    @ivar certificate: which certificate was served: its key type
        (C{"ECDSA-P-256"}), after its first name when the server has
        several (C{"a.test/RSA-2048"}).
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
    certificate: str | None = None

    def asLogFields(self) -> dict[str, Any]:
        """
        The facts as keyword arguments for a structured log event.
        """
        return asdict(self)


@dataclass(frozen=True)
class ConnectionRecord:
    """
    One connection as a test (or a metrics exporter) wants it: what the
    client offered, what was negotiated, or why the handshake failed.

    Negotiated fields are L{None} when the handshake failed.

    @ivar peer: the client's address, e.g. C{127.0.0.1:50123}.
    @ivar outcome: C{"replied"} or C{"handshake-failed"}.
    @ivar failureReason: why the handshake failed (OpenSSL's reason, a
        timeout, the client closing), or L{None}.
    @ivar closed: how the connection ended.
    @ivar requestedServerName: the SNI name in the ClientHello, if any.
    @ivar offeredALPN: the ALPN protocols the client offered.
    @ivar offeredVersions: the TLS versions the client offered.
    @ivar resumptionOffered: the client offered a session to resume (a
        TLS 1.3 pre-shared key, or a TLS 1.2 session ticket).
    """

    peer: str
    outcome: str
    closed: str
    failureReason: str | None = None
    tlsVersion: str | None = None
    cipher: str | None = None
    group: str | None = None
    resumed: bool | None = None
    serverName: str | None = None
    alpnProtocol: str | None = None
    earlyDataOffered: bool = False
    clientCertificate: str | None = None
    clientVerification: str | None = None
    certificate: str | None = None
    handshakeDuration: float | None = None
    requestedServerName: str | None = None
    offeredALPN: tuple[str, ...] = ()
    offeredVersions: tuple[str, ...] = ()
    resumptionOffered: bool = False

    @property
    def handshakeFailed(self) -> bool:
        return self.outcome != "replied"

    @classmethod
    def build(
        cls,
        peer: str,
        closed: str,
        handshake: HandshakeInfo | None,
        clientHello: ClientHello | None,
    ) -> ConnectionRecord:
        """
        Put together what is known when a connection ends.
        """
        offered: dict[str, Any] = {}
        if clientHello is not None:
            offered = {
                "requestedServerName": clientHello.serverName,
                "offeredALPN": clientHello.alpnProtocols,
                "offeredVersions": clientHello.versions,
                "earlyDataOffered": clientHello.earlyDataOffered,
                "resumptionOffered": clientHello.resumptionOffered,
            }
        if handshake is None:
            return cls(peer, "handshake-failed", closed, failureReason=closed, **offered)
        negotiated = asdict(handshake)
        negotiated["handshakeDuration"] = negotiated.pop("duration")
        offered.pop("earlyDataOffered", None)
        return cls(peer, "replied", closed, **negotiated, **offered)

    def asDict(self) -> dict[str, Any]:
        """
        The record as JSON-friendly values.
        """
        values = asdict(self)
        for key in ("offeredALPN", "offeredVersions"):
            values[key] = list(values[key])
        return values


def describeHandshake(
    connection: SSL.Connection,
    duration: float,
    earlyDataOffered: bool = False,
    certificate: str | None = None,
) -> HandshakeInfo:
    """
    Read what a connection negotiated, right after its handshake completed.

    @param connection: a server connection whose handshake has completed.
    @param duration: seconds the handshake took, measured by the caller.
    @param earlyDataOffered: whether the ClientHello offered 0-RTT data.
    @param certificate: which certificate was served, as the contexts
        describe it (L{ServerContexts.servedCertificate}).
    """
    serverName = connection.get_servername()
    alpn = connection.get_alpn_proto_negotiated()
    peerCertificate = connection.get_peer_certificate(as_cryptography=True)
    return HandshakeInfo(
        tlsVersion=connection.get_protocol_version_name(),
        cipher=connection.get_cipher_name(),
        group=connection.get_group_name(),
        resumed=_openssl.sessionReused(connection),
        serverName=printableASCII(serverName) if serverName else None,
        alpnProtocol=printableASCII(alpn) if alpn else None,
        duration=duration,
        earlyDataOffered=earlyDataOffered,
        clientCertificate=(
            peerCertificate.subject.rfc4514_string() if peerCertificate else None
        ),
        clientVerification=(
            _openssl.verificationResult(connection) if peerCertificate else None
        ),
        certificate=certificate,
    )
