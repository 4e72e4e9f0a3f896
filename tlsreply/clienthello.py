# -*- test-case-name: tests.test_clienthello -*-
"""
Reading a client's first flight (its ClientHello) before OpenSSL does.

OpenSSL decides which session cache and ticket keys a connection uses when
the connection is created, before any byte has arrived; and it offers no
public way to ask whether a client offered 0-RTT data. tlsreply therefore
reads the ClientHello first: the server name picks the TLS context (and so
the session cache: sessions never cross between names), and the extensions
say what the client offered, for the connection log. The bytes are then
handed to OpenSSL unchanged; anything that is not a well-formed ClientHello
is handed over as it is, for OpenSSL to reject with its own reason.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

#: Enough for any real ClientHello (post-quantum key shares included),
#: small enough that a client cannot make tlsreply buffer much.
MAXIMUM_HELLO_SIZE = 65536

_HANDSHAKE_RECORD = 22
_CLIENT_HELLO = 1
_EXTENSION_SERVER_NAME = 0
_EXTENSION_ALPN = 16
_EXTENSION_PRE_SHARED_KEY = 41
_EXTENSION_EARLY_DATA = 42
_EXTENSION_SUPPORTED_VERSIONS = 43

_VERSION_NAMES = {
    0x0300: "SSLv3",
    0x0301: "TLSv1",
    0x0302: "TLSv1.1",
    0x0303: "TLSv1.2",
    0x0304: "TLSv1.3",
}


@dataclass(frozen=True)
class ClientHello:
    """
    What a client offered in its ClientHello.

    @ivar serverName: the SNI host name, if sent.
    @ivar alpnProtocols: the ALPN protocols offered, in the client's order.
    @ivar versions: the protocol versions offered (from supported_versions,
        or the legacy version field when that extension is absent).
    @ivar resumptionOffered: a TLS 1.3 pre-shared key (a ticket) was offered.
    @ivar earlyDataOffered: the client announced 0-RTT data.
    """

    serverName: str | None = None
    alpnProtocols: tuple[str, ...] = ()
    versions: tuple[str, ...] = ()
    resumptionOffered: bool = False
    earlyDataOffered: bool = False


class NotAClientHello(ValueError):
    """
    The bytes are not the start of a well-formed TLS ClientHello.
    """


class ClientHelloParser:
    """
    Accumulate a connection's first bytes until they hold a whole
    ClientHello.
    """

    def __init__(self) -> None:
        self._received = b""

    @property
    def received(self) -> bytes:
        """
        Every byte fed so far, to be handed on unchanged.
        """
        return self._received

    def feed(self, data: bytes) -> ClientHello | None:
        """
        Add bytes.

        @return: the parsed hello once it is complete, or L{None} if more
            bytes are needed.
        @raise NotAClientHello: if the bytes cannot be the start of a
            ClientHello, or it would exceed L{MAXIMUM_HELLO_SIZE}.
        """
        self._received += data
        handshake = self._handshakeBytes()
        if len(handshake) < 4:
            return None
        if handshake[0] != _CLIENT_HELLO:
            raise NotAClientHello("the first handshake message is not a ClientHello")
        length = int.from_bytes(handshake[1:4], "big")
        if length > MAXIMUM_HELLO_SIZE:
            raise NotAClientHello("ClientHello too large")
        if len(handshake) < 4 + length:
            return None
        return _parseClientHello(handshake[4 : 4 + length])

    def _handshakeBytes(self) -> bytes:
        """
        The handshake-layer bytes carried by the complete records so far.
        """
        out = b""
        offset = 0
        data = self._received
        if len(data) > MAXIMUM_HELLO_SIZE + 1024:
            raise NotAClientHello("ClientHello too large")
        while len(data) - offset >= 5:
            contentType, major, length = data[offset], data[offset + 1], int.from_bytes(
                data[offset + 3 : offset + 5], "big"
            )
            if contentType != _HANDSHAKE_RECORD or major != 3:
                raise NotAClientHello("not a TLS handshake record")
            if length == 0 or length > 16384 + 2048:
                raise NotAClientHello("bad record length")
            if len(data) - offset - 5 < length:
                break
            out += data[offset + 5 : offset + 5 + length]
            offset += 5 + length
        if len(data) - offset >= 1 and data[offset] != _HANDSHAKE_RECORD:
            raise NotAClientHello("not a TLS handshake record")
        return out


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.offset = 0

    def take(self, count: int) -> bytes:
        if self.offset + count > len(self.data):
            raise NotAClientHello("truncated ClientHello")
        chunk = self.data[self.offset : self.offset + count]
        self.offset += count
        return chunk

    def integer(self, size: int) -> int:
        return int.from_bytes(self.take(size), "big")

    def vector(self, lengthSize: int) -> bytes:
        return self.take(self.integer(lengthSize))

    @property
    def remaining(self) -> int:
        return len(self.data) - self.offset


def _parseClientHello(body: bytes) -> ClientHello:
    reader = _Reader(body)
    legacyVersion = reader.integer(2)
    reader.take(32)  # random
    reader.vector(1)  # legacy session id
    reader.vector(2)  # cipher suites
    reader.vector(1)  # compression methods
    extensions: dict[int, bytes] = {}
    if reader.remaining:
        block = _Reader(reader.vector(2))
        while block.remaining:
            kind = block.integer(2)
            extensions[kind] = block.vector(2)
    return ClientHello(
        serverName=_serverName(extensions.get(_EXTENSION_SERVER_NAME)),
        alpnProtocols=_alpn(extensions.get(_EXTENSION_ALPN)),
        versions=_versions(extensions.get(_EXTENSION_SUPPORTED_VERSIONS), legacyVersion),
        resumptionOffered=_EXTENSION_PRE_SHARED_KEY in extensions,
        earlyDataOffered=_EXTENSION_EARLY_DATA in extensions,
    )


def _serverName(data: bytes | None) -> str | None:
    if not data:
        return None
    names = _Reader(_Reader(data).vector(2))
    while names.remaining:
        kind = names.integer(1)
        name = names.vector(2)
        if kind == 0:
            return name.decode("ascii", "replace").lower().rstrip(".")
    return None


def _alpn(data: bytes | None) -> tuple[str, ...]:
    if not data:
        return ()
    protocols = _Reader(_Reader(data).vector(2))
    offered = []
    while protocols.remaining:
        offered.append(protocols.vector(1).decode("ascii", "replace"))
    return tuple(offered)


def _versions(data: bytes | None, legacyVersion: int) -> tuple[str, ...]:
    if data is None:
        return (_VERSION_NAMES.get(legacyVersion, hex(legacyVersion)),)
    raw = _Reader(data).vector(1)
    codes = struct.unpack(f">{len(raw) // 2}H", raw[: len(raw) // 2 * 2])
    # Skip GREASE values (0x?a?a), which only test the server's tolerance.
    return tuple(
        _VERSION_NAMES.get(code, hex(code)) for code in codes if code & 0x0F0F != 0x0A0A
    )
