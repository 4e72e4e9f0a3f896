# -*- test-case-name: tests.test_wire,tests.test_records -*-
"""
What a completed TLS handshake negotiated, read off the connection.
"""

from __future__ import annotations

from base64 import b64encode
from dataclasses import asdict, dataclass
from typing import Any, Final

from OpenSSL import SSL

from tlsreply import _openssl
from tlsreply.clienthello.offered import ClientHello, printableASCII
from tlsreply.connection.ending import EndingKind

#: How many bytes of what a client sends after the handshake a record
#: keeps (L{ConnectionRecord.received}).
RECEIVED_LIMIT: Final = 65536


@dataclass(frozen=True, slots=True)
class HandshakeInfo:
    """
    The facts of one completed handshake, as an operator or a test wants
    them.

    @ivar tlsVersion: e.g. C{"TLSv1.3"}.
    @ivar cipher: the OpenSSL name of the cipher suite.
    @ivar group: the key-exchange group (e.g. C{"x25519"}), or C{None} if
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
        not verify; C{None} without a client certificate.
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

    Negotiated fields are C{None} when the handshake failed.

    @ivar peer: the client's address, e.g. C{127.0.0.1:50123}.
    @ivar outcome: C{"replied"} or C{"handshake-failed"}.
    @ivar failureReason: why the handshake failed (OpenSSL's reason, a
        timeout, the client closing), or C{None}.
    @ivar closed: how the connection ended, as its log line says.
    @ivar requestedServerName: the SNI name in the ClientHello, if any.
    @ivar offeredALPN: the ALPN protocols the client offered.
    @ivar offeredVersions: the TLS versions the client offered.
    @ivar resumptionOffered: the client offered a session to resume (a
        TLS 1.3 pre-shared key, or a TLS 1.2 session ticket).
    @ivar offeredCipherSuites: the cipher suites offered, IANA's names in
        the client's order (L{tlsreply.clienthello.names}: C{GREASE (0x0a0a)} for a
        GREASE value, C{0xNNNN} for a code point with no name).
    @ivar offeredGroups: the supported_groups extension's groups, in order
        (C{X25519MLKEM768}, C{x25519}, ...).
    @ivar offeredSignatureAlgorithms: the signature_algorithms extension's
        schemes, in order.
    @ivar offeredExtensions: every extension sent, in order.
    @ivar offeredKeyShares: the group of each key share sent (TLS 1.3).
    @ivar offeredCompressionMethods: the compression methods (C{NULL}).
    @ivar ja4: the JA4 fingerprint (L{tlsreply.clienthello.fingerprint}), or C{None}
        without a ClientHello that parsed.
    @ivar ja3: the JA3 fingerprint, or C{None} likewise.
    @ivar received: the application data the client sent after the
        handshake, up to L{RECEIVED_LIMIT} bytes (an HTTP client's
        request); the reply never depends on it.
    @ivar receivedTruncated: the client sent more than L{RECEIVED_LIMIT}
        bytes; C{received} holds the first ones.
    @ivar ending: the kind of C{closed}, as the metrics count it
        (L{tlsreply.connection.ending.EndingKind}), or C{None} in a record
        made without one.
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
    offeredCipherSuites: tuple[str, ...] = ()
    offeredGroups: tuple[str, ...] = ()
    offeredSignatureAlgorithms: tuple[str, ...] = ()
    offeredExtensions: tuple[str, ...] = ()
    offeredKeyShares: tuple[str, ...] = ()
    offeredCompressionMethods: tuple[str, ...] = ()
    ja4: str | None = None
    ja3: str | None = None
    received: bytes = b""
    receivedTruncated: bool = False
    ending: EndingKind | None = None

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
        received: bytes | bytearray | None = None,
        ending: EndingKind | None = None,
    ) -> ConnectionRecord:
        """
        Put together what is known when a connection ends.

        The names of what the ClientHello offered and its fingerprints are
        worked out here, from its code points: only connections that are
        recorded pay for them.

        @param received: the application data received, as collected by
            L{ReplyProtocol.dataReceived}: up to one byte more than
            L{RECEIVED_LIMIT}, which marks it truncated.
        @param ending: the kind of how it ended (L{tlsreply.connection.ending.Ending.kind}).
        """
        offered: dict[str, Any] = {"ending": ending}
        if clientHello is not None:
            offered |= {
                "requestedServerName": clientHello.serverName,
                "offeredALPN": clientHello.alpnProtocols,
                "offeredVersions": clientHello.versions,
                "earlyDataOffered": clientHello.earlyDataOffered,
                "resumptionOffered": clientHello.resumptionOffered,
                "offeredCipherSuites": clientHello.offeredCipherSuites,
                "offeredGroups": clientHello.offeredGroups,
                "offeredSignatureAlgorithms": clientHello.offeredSignatureAlgorithms,
                "offeredExtensions": clientHello.offeredExtensions,
                "offeredKeyShares": clientHello.offeredKeyShares,
                "offeredCompressionMethods": clientHello.offeredCompressionMethods,
                "ja4": clientHello.ja4,
                "ja3": clientHello.ja3,
            }
        if received:
            offered["received"] = bytes(received[:RECEIVED_LIMIT])
            offered["receivedTruncated"] = len(received) > RECEIVED_LIMIT
        if handshake is None:
            return cls(peer, "handshake-failed", closed, failureReason=closed, **offered)
        negotiated = asdict(handshake)
        negotiated["handshakeDuration"] = negotiated.pop("duration")
        offered.pop("earlyDataOffered", None)
        return cls(peer, "replied", closed, **negotiated, **offered)

    def asDict(self) -> dict[str, Any]:
        """
        The record as JSON-friendly values: tuples as lists, and
        C{received} as C{{"text": ...}} when it is UTF-8, else
        C{{"base64": ...}}.
        """
        values = asdict(self)
        for key, value in values.items():
            if isinstance(value, tuple):
                values[key] = list(value)
        try:
            values["received"] = {"text": self.received.decode("utf-8")}
        except UnicodeDecodeError:
            values["received"] = {"base64": b64encode(self.received).decode("ascii")}
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
    (version, cipher, group, resumed, serverName, alpn, askedForCertificate) = (
        _openssl.negotiated(connection)
    )
    peerCertificate = (
        connection.get_peer_certificate(as_cryptography=True) if askedForCertificate else None
    )
    return HandshakeInfo(
        tlsVersion=version,
        cipher=cipher,
        group=group,
        resumed=resumed,
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
