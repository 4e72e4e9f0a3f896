# -*- test-case-name: tests.test_hostile,tests.test_soak -*-
"""
Clients that misbehave, for testing a TLS server: the one catalogue that
tlsreply's hostile-client tests and its soak script draw from.

Each is a small blocking function on a connected socket; what the server
must do about it (refuse it with an alert, cut it at a timeout, log it) is
for the caller to check.
"""

from __future__ import annotations

import random
import socket
import struct

from tlsreply.testing.inmemory import clientHello

#: An HTTP request, sent where a ClientHello belongs.
PLAIN_HTTP = b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"

#: A TLS record header that announces 0xFFFF bytes, more than any record
#: may hold.
OVERSIZED_RECORD_HEADER = b"\x16\x03\x01\xff\xff"

__all__ = [
    "OVERSIZED_RECORD_HEADER",
    "PLAIN_HTTP",
    "clientHello",
    "randomBytes",
    "readUntilClosed",
    "resetClose",
    "sslv2ClientHello",
    "truncatedClientHello",
]


def randomBytes(seed: int, size: int = 2048) -> bytes:
    """
    Bytes that are no protocol at all, the same for the same seed.
    """
    return random.Random(seed).randbytes(size)


def truncatedClientHello(serverName: str = "localhost") -> bytes:
    """
    The first half of a real ClientHello (a client that stalls mid-hello).
    """
    hello = clientHello(serverName)
    return hello[: len(hello) // 2]


def sslv2ClientHello(version: bytes = b"\x00\x02") -> bytes:
    """
    An SSLv2-format ClientHello: a 2-byte record header with the high bit
    set, then message type 1, the version, and 3-byte SSLv2 cipher specs.
    """
    cipherSpecs = bytes.fromhex(
        "010080" "020080" "030080" "040080" "050080" "060040" "0700c0"
    )
    challenge = bytes(range(16))
    message = (
        b"\x01"
        + version
        + struct.pack("!HHH", len(cipherSpecs), 0, len(challenge))
        + cipherSpecs
        + challenge
    )
    return struct.pack("!H", 0x8000 | len(message)) + message


def resetClose(sock: socket.socket) -> None:
    """
    Close with a TCP reset instead of a FIN (C{SO_LINGER} 0).
    """
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    finally:
        sock.close()


def readUntilClosed(sock: socket.socket, timeout: float) -> bytes:
    """
    Read until the server closes (EOF or reset).

    @raise TimeoutError: if it does not within C{timeout} seconds of a read.
    """
    sock.settimeout(timeout)
    received = b""
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except ConnectionResetError:
        pass
    return received
