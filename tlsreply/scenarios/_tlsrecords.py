# -*- test-case-name: tests.test_hostilescenarios -*-
"""
TLS records as the misbehaving test servers (L{tlsreply.scenarios.misbehaving})
see and make them on the wire, below OpenSSL.

  - L{RecordReader}: splits a byte stream into records, whatever the
    reads' boundaries, to count the ClientHellos a client sends (a second
    one is its answer to a HelloRetryRequest) and the records a server has
    sent under its application keys;
  - L{ClientHellos}: counts the ClientHello messages in what a client sends
    before its traffic is encrypted;
  - L{encryptedAlert}: a TLS 1.3 alert record encrypted under the server's
    application traffic secret, for the C{alert-instead-of-reply} scenario:
    OpenSSL has no call that sends an alert of the application's choosing,
    so the server makes the record itself from the secret OpenSSL logs
    (C{SERVER_TRAFFIC_SECRET_0}, RFC 8446 section 7.3).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand

HANDSHAKE: Final = 22
APPLICATION_DATA: Final = 23
ALERT: Final = 21
CLIENT_HELLO: Final = 1

#: RFC 8446 section 6: an alert's level and the internal_error description.
FATAL: Final = 2
INTERNAL_ERROR: Final = 80


@dataclass(frozen=True)
class Record:
    """
    One TLS record: its content type and payload.
    """

    type: int
    payload: bytes


class RecordReader:
    """
    Turns the bytes of one direction of a connection, fed as they come,
    into whole records.
    """

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[Record]:
        """
        Add C{data}; return the records it completed, in order.
        """
        buffer = self._buffer
        buffer += data
        records = []
        while len(buffer) >= 5:
            length = int.from_bytes(buffer[3:5], "big")
            if len(buffer) < 5 + length:
                break
            records.append(Record(buffer[0], bytes(buffer[5 : 5 + length])))
            del buffer[: 5 + length]
        return records


class ClientHellos:
    """
    Counts the ClientHello messages a client sends in plaintext handshake
    records, until its first encrypted record (its Finished, in TLS 1.3):
    two of them mean the server answered the first with a
    HelloRetryRequest (RFC 8446 section 4.1.4).
    """

    def __init__(self) -> None:
        self.count = 0
        self._records: RecordReader | None = RecordReader()
        self._messages = bytearray()

    def feed(self, data: bytes) -> None:
        if self._records is None:
            return
        for record in self._records.feed(data):
            if record.type == APPLICATION_DATA:
                self._records = None
                self._messages.clear()
                return
            if record.type == HANDSHAKE:
                self._messages += record.payload
                self._countMessages()

    def _countMessages(self) -> None:
        messages = self._messages
        while len(messages) >= 4:
            length = int.from_bytes(messages[1:4], "big")
            if len(messages) < 4 + length:
                return
            if messages[0] == CLIENT_HELLO:
                self.count += 1
            del messages[: 4 + length]


#: The TLS 1.3 cipher suites, as OpenSSL names them: their AEAD, key
#: length and hash (RFC 8446 appendix B.4; the CCM suites are not offered
#: by default and not handled).
_SUITES: Final[dict[str, tuple[type[AESGCM] | type[ChaCha20Poly1305], int, hashes.HashAlgorithm]]] = {
    "TLS_AES_128_GCM_SHA256": (AESGCM, 16, hashes.SHA256()),
    "TLS_AES_256_GCM_SHA384": (AESGCM, 32, hashes.SHA384()),
    "TLS_CHACHA20_POLY1305_SHA256": (ChaCha20Poly1305, 32, hashes.SHA256()),
}


def expandLabel(secret: bytes, label: bytes, length: int, hash: hashes.HashAlgorithm) -> bytes:
    """
    HKDF-Expand-Label with an empty context (RFC 8446 section 7.1).
    """
    full = b"tls13 " + label
    info = length.to_bytes(2, "big") + bytes([len(full)]) + full + b"\x00"
    return HKDFExpand(hash, length, info).derive(secret)


def encryptedAlert(
    cipherSuite: str, trafficSecret: bytes, sequence: int, description: int = INTERNAL_ERROR
) -> bytes:
    """
    A fatal TLS 1.3 alert record, protected as the server's next record
    under C{trafficSecret} (RFC 8446 section 5.2).

    @param cipherSuite: the connection's suite, as OpenSSL names it.
    @param sequence: how many records the server has already sent under
        this secret (its NewSessionTickets).
    @raise KeyError: for a suite this module does not handle.
    """
    aead, keyLength, hash = _SUITES[cipherSuite]
    key = expandLabel(trafficSecret, b"key", keyLength, hash)
    iv = expandLabel(trafficSecret, b"iv", 12, hash)
    nonce = bytes(a ^ b for a, b in zip(iv, sequence.to_bytes(12, "big"), strict=True))
    inner = bytes([FATAL, description, ALERT])
    header = bytes([APPLICATION_DATA, 3, 3]) + (len(inner) + 16).to_bytes(2, "big")
    return header + aead(key).encrypt(nonce, inner, header)


def decryptRecord(cipherSuite: str, trafficSecret: bytes, sequence: int, record: bytes) -> bytes:
    """
    The inner plaintext of a protected TLS 1.3 record (content and type):
    the inverse of L{encryptedAlert}, for tests.
    """
    aead, keyLength, hash = _SUITES[cipherSuite]
    key = expandLabel(trafficSecret, b"key", keyLength, hash)
    iv = expandLabel(trafficSecret, b"iv", 12, hash)
    nonce = bytes(a ^ b for a, b in zip(iv, sequence.to_bytes(12, "big"), strict=True))
    return aead(key).decrypt(nonce, record[5:], record[:5])
