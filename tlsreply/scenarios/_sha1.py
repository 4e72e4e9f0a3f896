# -*- test-case-name: tests.test_scenarios -*-
"""
Certificates signed with SHA-1, for the C{sha1-signature} scenario.

cryptography refuses to sign a certificate with SHA-1 (since 43), though
its primitives still sign SHA-1 digests and OpenSSL still serves and parses
such certificates. So a SHA-1 certificate is made as a SHA-256 one, then
its to-be-signed part is re-encoded with the SHA-1 algorithm identifier and
signed again. The few DER helpers here do only that.
"""

from __future__ import annotations

from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from tlsreply.tls.certificates import PrivateKey

#: AlgorithmIdentifier DER for ecdsa-with-SHA1 (no parameters) and
#: sha1WithRSAEncryption (NULL parameters).
_ECDSA_WITH_SHA1: Final = bytes.fromhex("300906072a8648ce3d0401")
_RSA_WITH_SHA1: Final = bytes.fromhex("300d06092a864886f70d0101050500")


def _derElement(data: bytes, offset: int) -> tuple[int, int]:
    """
    The start of the contents and the end of the DER element at C{offset}.
    """
    length = data[offset + 1]
    start = offset + 2
    if length & 0x80:
        count = length & 0x7F
        length = int.from_bytes(data[start : start + count], "big")
        start += count
    return start, start + length


def _derChildren(data: bytes) -> list[bytes]:
    """
    The encoded elements of a constructed element's contents, in order.
    """
    children = []
    offset = 0
    while offset < len(data):
        _, end = _derElement(data, offset)
        children.append(data[offset:end])
        offset = end
    return children


def _derEncode(tag: int, contents: bytes) -> bytes:
    size = len(contents)
    if size < 0x80:
        return bytes([tag, size]) + contents
    length = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(length)]) + length + contents


def _resignWithSHA1(
    certificate: x509.Certificate, key: PrivateKey
) -> x509.Certificate:
    """
    The same certificate, signed by C{key} with SHA-1.
    """
    if isinstance(key, rsa.RSAPrivateKey):
        algorithm = _RSA_WITH_SHA1
    else:
        algorithm = _ECDSA_WITH_SHA1
    der = certificate.public_bytes(serialization.Encoding.DER)
    start, end = _derElement(der, 0)
    tbs = _derChildren(der[start:end])[0]
    tbsStart, tbsEnd = _derElement(tbs, 0)
    # TBSCertificate: [0] version, serialNumber, signature, issuer, ...
    fields = _derChildren(tbs[tbsStart:tbsEnd])
    fields[2] = algorithm
    tbs = _derEncode(0x30, b"".join(fields))
    if isinstance(key, rsa.RSAPrivateKey):
        signature = key.sign(tbs, padding.PKCS1v15(), hashes.SHA1())
    else:
        signature = key.sign(tbs, ec.ECDSA(hashes.SHA1()))
    return x509.load_der_x509_certificate(
        _derEncode(0x30, tbs + algorithm + _derEncode(0x03, b"\x00" + signature))
    )


def signWithSHA1(builder: x509.CertificateBuilder, key: PrivateKey) -> x509.Certificate:
    """
    Sign a certificate with C{key} and SHA-1.
    """
    return _resignWithSHA1(builder.sign(key, hashes.SHA256()), key)
