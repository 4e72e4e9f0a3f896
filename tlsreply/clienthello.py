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

import re
import struct
from dataclasses import dataclass

#: Enough for any real ClientHello (post-quantum key shares included),
#: small enough that a client cannot make tlsreply buffer much.
MAXIMUM_HELLO_SIZE = 65536

_HANDSHAKE_RECORD = 22
_CLIENT_HELLO = 1
_EXTENSION_SERVER_NAME = 0
_EXTENSION_ALPN = 16
_EXTENSION_SESSION_TICKET = 35
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
    @ivar resumptionOffered: a session was offered for resumption: a TLS 1.3
        pre-shared key, or a TLS 1.2 session ticket.
    @ivar earlyDataOffered: the client announced 0-RTT data.
    """

    serverName: str | None = None
    alpnProtocols: tuple[str, ...] = ()
    versions: tuple[str, ...] = ()
    resumptionOffered: bool = False
    earlyDataOffered: bool = False


#: Bytes a client may put in a name that L{printableASCII} escapes.
_UNSAFE_IN_NAME = re.compile(rb"[^\x21-\x5b\x5d-\x7e]")


def printableASCII(data: bytes) -> str:
    """
    Bytes a client chose (a server name, an ALPN protocol) as text safe for
    a log line and a lookup key: anything but printable ASCII, and the
    backslash, becomes a C{\\xHH} escape, so no client can forge log lines
    or send terminal escape sequences.
    """
    if _UNSAFE_IN_NAME.search(data) is None:
        return data.decode("ascii")
    return "".join(
        chr(b) if 0x20 < b < 0x7F and b != 0x5C else f"\\x{b:02x}" for b in data
    )


#: L{scanClientHello}: the bytes are not (the start of) a ClientHello.
NOT_A_HELLO = -1
#: L{scanClientHello}: the ClientHello spans several TLS records; only
#: L{ClientHelloParser} reassembles those.
SPANS_RECORDS = -2


def scanClientHello(data: bytes | bytearray, length: int) -> tuple[int, str | None, bool]:
    """
    The two facts the server needs before creating a TLS connection (the
    server name, to choose the context; the 0-RTT offer, for the log),
    read from the first C{length} bytes of C{data} without parsing the
    rest of the ClientHello.

    This runs for every connection, so it reads as little as it can: the
    common case, a ClientHello in one record, is one walk over the
    extension headers. L{ClientHelloParser} does the rest (hellos split
    across records, and every field), when something needs it.

    @return: C{(status, serverName, earlyDataOffered)}, where C{status} is
        C{0} when the whole hello was read (and the other two are its
        facts); a positive number of bytes the whole hello needs when it
        has not all arrived; L{NOT_A_HELLO}; or L{SPANS_RECORDS}.
    """
    # Refuse early what cannot be a hello (OpenSSL then answers it at once,
    # e.g. a record too long with record_overflow), rather than wait for
    # more bytes.
    if (length >= 1 and data[0] != _HANDSHAKE_RECORD) or (length >= 2 and data[1] != 3):
        return NOT_A_HELLO, None, False
    if length < 5:
        return 5, None, False
    recordLength = data[3] << 8 | data[4]
    if recordLength == 0 or recordLength > 16384 + 2048:
        return NOT_A_HELLO, None, False
    if length < 9:
        return 9, None, False
    if data[5] != _CLIENT_HELLO:
        return NOT_A_HELLO, None, False
    helloLength = data[6] << 16 | data[7] << 8 | data[8]
    if helloLength + 4 > recordLength:
        return SPANS_RECORDS, None, False
    end = 9 + helloLength
    if length < end:
        return end, None, False
    try:
        position = 9 + 34  # legacy version, random
        position += 1 + data[position]  # legacy session ID
        position += 2 + (data[position] << 8 | data[position + 1])  # cipher suites
        position += 1 + data[position]  # compression methods
        if position >= end:
            return 0, None, False
        extensionsEnd = position + 2 + (data[position] << 8 | data[position + 1])
        if extensionsEnd > end:
            return NOT_A_HELLO, None, False
        position += 2
        serverName: str | None = None
        earlyData = False
        while position + 4 <= extensionsEnd:
            kind = data[position] << 8 | data[position + 1]
            size = data[position + 2] << 8 | data[position + 3]
            position += 4
            if kind == _EXTENSION_SERVER_NAME:
                # server_name_list length (2), name type (1), name length (2)
                if size >= 5 and data[position + 2] == 0:
                    nameLength = data[position + 3] << 8 | data[position + 4]
                    name = bytes(data[position + 5 : min(position + 5 + nameLength, position + size)])
                    serverName = printableASCII(name).lower().rstrip(".") or None
            elif kind == _EXTENSION_EARLY_DATA:
                earlyData = True
            position += size
        if position != extensionsEnd:
            return NOT_A_HELLO, None, False
    except IndexError:
        return NOT_A_HELLO, None, False
    return 0, serverName, earlyData


class NotAClientHello(ValueError):
    """
    The bytes are not the start of a well-formed TLS ClientHello.
    """


class ClientHelloParser:
    """
    Accumulate a connection's first bytes until they hold a whole
    ClientHello.

    Parsing is incremental: each byte is looked at once, however the client
    splits its hello into records and TCP segments (a hello sent one byte
    per record and segment must not cost quadratic time).
    """

    def __init__(self) -> None:
        self._received = bytearray()
        self._recordsEnd = 0
        self._handshake = bytearray()

    @property
    def moreBytesNeeded(self) -> int:
        """
        A lower bound on the bytes still to come before the hello is whole
        (at least 1): a caller that waits for that many before feeding
        again needs few rounds even for a hello split into tiny records.
        """
        handshake = self._handshake
        if len(handshake) < 4:
            return 1
        missing = 4 + int.from_bytes(handshake[1:4], "big") - len(handshake)
        partial = len(self._received) - self._recordsEnd - 5
        return max(1, missing - max(0, partial))

    @property
    def received(self) -> bytes:
        """
        Every byte fed so far, to be handed on unchanged.
        """
        return bytes(self._received)

    def feed(self, data: bytes) -> ClientHello | None:
        """
        Add bytes.

        @return: the parsed hello once it is complete, or L{None} if more
            bytes are needed.
        @raise NotAClientHello: if the bytes cannot be the start of a
            ClientHello, or it would exceed L{MAXIMUM_HELLO_SIZE}.
        """
        self._received += data
        self._readRecords()
        handshake = self._handshake
        if len(handshake) >= 4:
            if handshake[0] != _CLIENT_HELLO:
                raise NotAClientHello("the first handshake message is not a ClientHello")
            length = int.from_bytes(handshake[1:4], "big")
            if length > MAXIMUM_HELLO_SIZE:
                raise NotAClientHello("ClientHello too large")
            if len(handshake) >= 4 + length:
                return _parseClientHello(bytes(handshake[4 : 4 + length]))
        if len(self._received) > MAXIMUM_HELLO_SIZE + 1024:
            raise NotAClientHello("ClientHello too large")
        return None

    def _wholeMessageIn(self) -> bool:
        """
        Whether the handshake buffer holds the whole first message.
        """
        handshake = self._handshake
        return len(handshake) >= 4 and len(handshake) >= 4 + int.from_bytes(
            handshake[1:4], "big"
        )

    def _readRecords(self) -> None:
        """
        Move the fragments of newly complete records to the handshake
        buffer.
        """
        data = self._received
        offset = self._recordsEnd
        while len(data) - offset >= 5 and not self._wholeMessageIn():
            if data[offset] != _HANDSHAKE_RECORD or data[offset + 1] != 3:
                raise NotAClientHello("not a TLS handshake record")
            length = int.from_bytes(data[offset + 3 : offset + 5], "big")
            if length == 0 or length > 16384 + 2048:
                raise NotAClientHello("bad record length")
            if len(data) - offset - 5 < length:
                break
            self._handshake += data[offset + 5 : offset + 5 + length]
            offset += 5 + length
        self._recordsEnd = offset
        if self._wholeMessageIn():
            # What a client sends after its ClientHello in the same flight
            # (a ChangeCipherSpec, then 0-RTT application data) is not for
            # this parser.
            return
        if len(data) > offset and data[offset] != _HANDSHAKE_RECORD:
            raise NotAClientHello("not a TLS handshake record")


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
        resumptionOffered=_EXTENSION_PRE_SHARED_KEY in extensions
        or bool(extensions.get(_EXTENSION_SESSION_TICKET)),
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
            return printableASCII(name).lower().rstrip(".")
    return None


def _alpn(data: bytes | None) -> tuple[str, ...]:
    if not data:
        return ()
    protocols = _Reader(_Reader(data).vector(2))
    offered = []
    while protocols.remaining:
        offered.append(printableASCII(protocols.vector(1)))
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
