# -*- test-case-name: tests.test_clienthello,tests.test_clienthelloproperties -*-
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

This module holds only the reading of bytes (L{scanClientHello}, the quick
look every connection takes, and L{ClientHelloParser}, the whole parse);
what they produce, L{tlsreply.clienthello.offered.ClientHello}, lives apart so that
the records and the log can use it without the wire format.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import TypeVar

from tlsreply.clienthello.names import GREASE_VALUES
from tlsreply.clienthello.offered import ClientHello, OfferedCodes, printableASCII

#: Enough for any real ClientHello (post-quantum key shares included),
#: small enough that a client cannot make tlsreply buffer much.
MAXIMUM_HELLO_SIZE = 65536

#: The longest record a client may send before encryption starts (2^14
#: bytes: RFC 8446, section 5.1; RFC 5246, section 6.2.1). OpenSSL answers
#: a longer one with record_overflow (4.0 as soon as its header is in), so
#: the readers below hand it over at its header rather than wait for its
#: bytes.
MAXIMUM_RECORD_SIZE = 16384

_HANDSHAKE_RECORD = 22
_CLIENT_HELLO = 1
_EXTENSION_SERVER_NAME = 0
_EXTENSION_SUPPORTED_GROUPS = 10
_EXTENSION_EC_POINT_FORMATS = 11
_EXTENSION_SIGNATURE_ALGORITHMS = 13
_EXTENSION_ALPN = 16
_EXTENSION_SESSION_TICKET = 35
_EXTENSION_PRE_SHARED_KEY = 41
_EXTENSION_EARLY_DATA = 42
_EXTENSION_SUPPORTED_VERSIONS = 43
_EXTENSION_KEY_SHARE = 51

_VERSION_NAMES = {
    0x0300: "SSLv3",
    0x0301: "TLSv1",
    0x0302: "TLSv1.1",
    0x0303: "TLSv1.2",
    0x0304: "TLSv1.3",
}

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
    if recordLength == 0 or recordLength > MAXIMUM_RECORD_SIZE:
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
    # Every field is read within the hello (never past C{end}, which is
    # within C{length}), and refused where the full parser refuses it: for
    # a hello in one record the two agree, so both connection paths choose
    # the same context for the same bytes.
    position = 9 + 34  # legacy version, random
    if position >= end:
        return NOT_A_HELLO, None, False
    position += 1 + data[position]  # legacy session ID
    if position + 2 > end:
        return NOT_A_HELLO, None, False
    position += 2 + (data[position] << 8 | data[position + 1])  # cipher suites
    if position >= end:
        return NOT_A_HELLO, None, False
    position += 1 + data[position]  # compression methods
    if position >= end:
        return (0, None, False) if position == end else (NOT_A_HELLO, None, False)
    if position + 2 > end:
        return NOT_A_HELLO, None, False
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
            # The last one counts, read as the full parser reads it.
            serverName = _lenient(_serverName, bytes(data[position : position + size]), None)
        elif kind == _EXTENSION_EARLY_DATA:
            earlyData = True
        position += size
    if position != extensionsEnd:
        return NOT_A_HELLO, None, False
    return 0, serverName, earlyData


def parseScannedClientHello(data: bytes | bytearray, length: int) -> ClientHello | None:
    """
    Every field of the ClientHello that L{scanClientHello} found whole in
    the first C{length} bytes of C{data}, for a caller that wants more than
    the two facts it reads; C{None} if they do not parse after all.
    """
    try:
        return ClientHelloParser().feed(bytes(data[:length]))
    except NotAClientHello:
        return None


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

    The hello's framing must be well-formed (its fields, the extensions
    block and each extension's type and length), or it is not a hello. The
    body of each extension is read on its own, leniently: a body that does
    not parse (a length that runs past its end) gives nothing for what it
    carries (no server name, no ALPN protocols, no groups, ...), and the
    other extensions are read as usual, so that a malformed extension
    loses nothing else the client offered. Bytes after a body's list, and
    an odd byte at the end of a list of two-byte values, are ignored.
    OpenSSL, which gets the bytes next, rejects such a hello with its own
    alert.
    """

    def __init__(self) -> None:
        self._received = bytearray()
        self._recordsEnd = 0
        self._handshake = bytearray()

    @property
    def moreBytesNeeded(self) -> int:
        """
        How many more bytes to wait for before feeding again (at least 1):
        no fewer than could change what L{feed} says, no more than the
        bytes up to the next point where it could.

        L{feed} can tell something new only when a record header is whole
        (another content type, or a length no record may have, is refused
        at once, as OpenSSL refuses it) or when a record is (its bytes join
        the hello). So this is the bytes up to the end of the next record
        header; or, that header being in, to the end of its record; and,
        when that record cannot complete the hello, to the end of the
        header after it. A reader that waits for this many (the socket
        path sets the socket's low-water mark to it) sees every record as
        soon as it can matter, and wakes about once per record.
        """
        received = self._received
        start = self._recordsEnd
        if len(received) - start < 5:
            return start + 5 - len(received)
        fragment = received[start + 3] << 8 | received[start + 4]
        end = start + 5 + fragment
        handshake = self._handshake
        if len(handshake) >= 4:
            missing = 4 + int.from_bytes(handshake[1:4], "big") - len(handshake)
            if fragment < missing:
                end += 5
        return max(1, end - len(received))

    @property
    def received(self) -> bytes:
        """
        Every byte fed so far, to be handed on unchanged.
        """
        return bytes(self._received)

    def feed(self, data: bytes) -> ClientHello | None:
        """
        Add bytes.

        @return: the parsed hello once it is complete, or C{None} if more
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
            if length == 0 or length > MAXIMUM_RECORD_SIZE:
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


_EXTENSION_HEADER = struct.Struct(">HH")


class _Malformed(ValueError):
    """
    An extension body that does not parse.
    """


def _parseClientHello(body: bytes) -> ClientHello:
    """
    Read a whole ClientHello message body (after its handshake header).

    @raise NotAClientHello: if its framing runs past its end.
    """
    size = len(body)
    try:
        legacyVersion = body[0] << 8 | body[1]
        position = 35 + body[34]  # legacy version, random, legacy session ID
        ciphersEnd = position + 2 + (body[position] << 8 | body[position + 1])
        compressionEnd = ciphersEnd + 1 + body[ciphersEnd]
        if compressionEnd > size:
            raise IndexError(compressionEnd)
        cipherSuites = _codes(body[position + 2 : ciphersEnd])
        compressionMethods = tuple(body[ciphersEnd + 1 : compressionEnd])
        kinds: list[int] = []
        extensions: dict[int, bytes] = {}
        if compressionEnd < size:
            position = compressionEnd + 2
            extensionsEnd = position + (body[compressionEnd] << 8 | body[compressionEnd + 1])
            if extensionsEnd > size:
                raise IndexError(extensionsEnd)
            header = _EXTENSION_HEADER.unpack_from
            while position < extensionsEnd:
                if position + 4 > extensionsEnd:
                    raise IndexError(position)
                kind, length = header(body, position)
                position += 4 + length
                if position > extensionsEnd:
                    raise IndexError(position)
                kinds.append(kind)
                extensions[kind] = body[position - length : position]
    except IndexError:
        raise NotAClientHello("truncated ClientHello") from None
    get = extensions.get
    alpn = _lenient(_alpn, get(_EXTENSION_ALPN), ())
    supportedVersions = (
        _lenient(_codeList1, get(_EXTENSION_SUPPORTED_VERSIONS), ())
        if _EXTENSION_SUPPORTED_VERSIONS in extensions
        else None
    )
    return ClientHello(
        serverName=_lenient(_serverName, get(_EXTENSION_SERVER_NAME), None),
        alpnProtocols=tuple(printableASCII(protocol) for protocol in alpn),
        versions=_versions(supportedVersions, legacyVersion),
        resumptionOffered=_EXTENSION_PRE_SHARED_KEY in extensions
        or bool(get(_EXTENSION_SESSION_TICKET)),
        earlyDataOffered=_EXTENSION_EARLY_DATA in extensions,
        codes=OfferedCodes(
            legacyVersion=legacyVersion,
            cipherSuites=cipherSuites,
            compressionMethods=compressionMethods,
            extensions=tuple(kinds),
            supportedVersions=supportedVersions,
            supportedGroups=_lenient(_codeList2, get(_EXTENSION_SUPPORTED_GROUPS), ()),
            signatureAlgorithms=_lenient(
                _codeList2, get(_EXTENSION_SIGNATURE_ALGORITHMS), ()
            ),
            keyShareGroups=_lenient(_keyShareGroups, get(_EXTENSION_KEY_SHARE), ()),
            ecPointFormats=_lenient(_byteList, get(_EXTENSION_EC_POINT_FORMATS), ()),
            alpnProtocols=alpn,
        ),
    )


_T = TypeVar("_T")
_D = TypeVar("_D")


def _lenient(read: Callable[[bytes], _T], data: bytes | None, default: _D) -> _T | _D:
    """
    C{read(data)}, or C{default} when the extension is absent or its body
    does not parse.
    """
    if data is None:
        return default
    try:
        return read(data)
    except (_Malformed, IndexError):
        return default


def _vector(data: bytes, offset: int, lengthSize: int) -> tuple[bytes, int]:
    """
    The vector at C{offset} of C{data} (its length in C{lengthSize} bytes,
    then its bytes), and the offset after it.

    @raise _Malformed: if it runs past the end of C{data}.
    """
    start = offset + lengthSize
    if lengthSize == 1:
        end = start + data[offset]
    else:
        end = start + (data[offset] << 8 | data[offset + 1])
    if end > len(data):
        raise _Malformed(end)
    return data[start:end], end


def _codes(data: bytes) -> tuple[int, ...]:
    """
    Two-byte values, as many as C{data} holds whole.
    """
    count = len(data) // 2
    return struct.unpack(f">{count}H", data[: count * 2])


def _codeList1(data: bytes) -> tuple[int, ...]:
    """
    A list of two-byte values with a one-byte length (supported_versions).
    """
    return _codes(_vector(data, 0, 1)[0])


def _codeList2(data: bytes) -> tuple[int, ...]:
    """
    A list of two-byte values with a two-byte length (supported_groups,
    signature_algorithms).
    """
    return _codes(_vector(data, 0, 2)[0])


def _byteList(data: bytes) -> tuple[int, ...]:
    """
    A list of one-byte values with a one-byte length (ec_point_formats).
    """
    return tuple(_vector(data, 0, 1)[0])


def _keyShareGroups(data: bytes) -> tuple[int, ...]:
    """
    The group of each entry of a client's key_share extension.
    """
    entries, _ = _vector(data, 0, 2)
    groups = []
    offset = 0
    while offset < len(entries):
        groups.append(entries[offset] << 8 | entries[offset + 1])
        _, offset = _vector(entries, offset + 2, 2)  # key_exchange
    return tuple(groups)


def _serverName(data: bytes) -> str | None:
    """
    The first host_name of a server_name extension, lower-cased, without
    trailing dots.
    """
    if not data:
        return None
    names, _ = _vector(data, 0, 2)
    offset = 0
    while offset < len(names):
        kind = names[offset]
        name, offset = _vector(names, offset + 1, 2)
        if kind == 0:
            # An empty name (or only dots) asks for none, as no SNI does.
            return printableASCII(name).lower().rstrip(".") or None
    return None


def _alpn(data: bytes) -> tuple[bytes, ...]:
    """
    The protocols of an application_layer_protocol_negotiation extension.
    """
    protocols, _ = _vector(data, 0, 2)
    offered = []
    offset = 0
    while offset < len(protocols):
        protocol, offset = _vector(protocols, offset, 1)
        offered.append(protocol)
    return tuple(offered)


def _versions(supportedVersions: tuple[int, ...] | None, legacyVersion: int) -> tuple[str, ...]:
    """
    The names of the versions offered: those of supported_versions (less
    GREASE) when the client sent it, else the legacy version.
    """
    if supportedVersions is None:
        return (_VERSION_NAMES.get(legacyVersion, hex(legacyVersion)),)
    return tuple(
        _VERSION_NAMES.get(code, hex(code))
        for code in supportedVersions
        if code not in GREASE_VALUES
    )
