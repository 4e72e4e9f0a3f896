"""
What a real client sends, seen from outside tlsreply: a TCP relay that
keeps a copy of each client's first bytes, and a small ClientHello reader
and JA3 of the tests' own, written from RFC 8446 and Salesforce's JA3
description without any of tlsreply's parser or name tables, so that the
tests can check tlsreply's records against them.

Not named C{test_*}, so neither trial nor pytest collects it.
"""

from __future__ import annotations

import hashlib
import select
import socket
import threading
from dataclasses import dataclass

from twisted.trial.unittest import SynchronousTestCase

from tests.support import LOOPBACK

#: The extension types read here (RFC 8446 section 4.2, RFC 8422).
SUPPORTED_GROUPS = 10
EC_POINT_FORMATS = 11


def isGrease(value: int) -> bool:
    """
    RFC 8701's GREASE values: 0x0a0a, 0x1a1a, ... 0xfafa.
    """
    return value & 0x0F0F == 0x0A0A and value >> 8 == value & 0xFF


@dataclass(frozen=True)
class Hello:
    """
    The parts of a ClientHello that fingerprints use, as numbers, in the
    client's order, GREASE included.
    """

    legacyVersion: int
    cipherSuites: tuple[int, ...]
    extensions: tuple[tuple[int, bytes], ...]

    def extension(self, kind: int) -> bytes | None:
        return next((data for code, data in self.extensions if code == kind), None)

    @property
    def groups(self) -> tuple[int, ...]:
        data = self.extension(SUPPORTED_GROUPS) or b"\x00\x00"
        return _uint16s(data[2:])

    @property
    def pointFormats(self) -> tuple[int, ...]:
        data = self.extension(EC_POINT_FORMATS)
        return tuple(data[1:]) if data else ()


def _uint16s(data: bytes) -> tuple[int, ...]:
    return tuple(int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data) - 1, 2))


def parseClientHello(flight: bytes) -> Hello:
    """
    Read the ClientHello at the start of what a client sent: the handshake
    records' payloads joined, the message's fields in order.
    """
    handshake = b""
    offset = 0
    while offset + 5 <= len(flight) and flight[offset] == 0x16:
        length = int.from_bytes(flight[offset + 3 : offset + 5], "big")
        handshake += flight[offset + 5 : offset + 5 + length]
        offset += 5 + length
    assert handshake[:1] == b"\x01", "not a ClientHello"
    body = handshake[4 : 4 + int.from_bytes(handshake[1:4], "big")]
    version = int.from_bytes(body[0:2], "big")
    at = 2 + 32
    at += 1 + body[at]  # legacy_session_id
    size = int.from_bytes(body[at : at + 2], "big")
    suites = _uint16s(body[at + 2 : at + 2 + size])
    at += 2 + size
    at += 1 + body[at]  # legacy_compression_methods
    end = at + 2 + int.from_bytes(body[at : at + 2], "big")
    at += 2
    extensions = []
    while at < end:
        kind = int.from_bytes(body[at : at + 2], "big")
        size = int.from_bytes(body[at + 2 : at + 4], "big")
        extensions.append((kind, body[at + 4 : at + 4 + size]))
        at += 4 + size
    return Hello(version, suites, tuple(extensions))


def ja3(hello: Hello) -> str:
    """
    Salesforce's JA3: the MD5 of the ClientHello's legacy version, cipher
    suites, extension types, groups and EC point formats, as decimal
    numbers (C{-} between them, C{,} between fields), GREASE left out.
    """

    def field(values: tuple[int, ...]) -> str:
        return "-".join(str(v) for v in values if not isGrease(v))

    text = ",".join([
        str(hello.legacyVersion),
        field(hello.cipherSuites),
        field(tuple(code for code, _ in hello.extensions)),
        field(hello.groups),
        field(hello.pointFormats),
    ])
    return hashlib.md5(text.encode()).hexdigest()


def ja4(flight: bytes) -> str | None:
    """
    FoxIO's JA4 of the ClientHello at the start of C{flight}, as FoxIO's
    own Python library (C{ja4plus}) computes it.
    """
    from ja4plus.fingerprinters.ja4 import generate_ja4
    from ja4plus.utils.tls_utils import parse_tls_handshake

    return generate_ja4(parse_tls_handshake(flight))


class CapturingRelay:
    """
    Forwards each TCP connection made to it to C{127.0.0.1:target}, both
    ways, and keeps a copy of what each client sent (the first 64 KiB).

    @ivar port: where clients connect.
    @ivar sent: per connection, in the order they were made, its client's
        bytes so far.
    """

    def __init__(self, testCase: SynchronousTestCase, target: int) -> None:
        self._target = target
        self._listener = socket.create_server((LOOPBACK, 0))
        self.port: int = self._listener.getsockname()[1]
        self.sent: list[bytearray] = []
        threading.Thread(target=self._accept, daemon=True).start()
        testCase.addCleanup(self._listener.close)

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            captured = bytearray()
            self.sent.append(captured)
            threading.Thread(target=self._relay, args=(client, captured), daemon=True).start()

    def _relay(self, client: socket.socket, captured: bytearray) -> None:
        try:
            with client, socket.create_connection((LOOPBACK, self._target)) as server:
                open_ = [client, server]
                while open_:
                    readable, _, _ = select.select(open_, [], [], 30)
                    if not readable:
                        return
                    for each in readable:
                        other = server if each is client else client
                        data = each.recv(65536)
                        if not data:
                            open_.remove(each)
                            other.shutdown(socket.SHUT_WR)
                            continue
                        if each is client and len(captured) < 65536:
                            captured += data
                        other.sendall(data)
        except OSError:
            return
