# -*- test-case-name: tests.test_fingerprint -*-
"""
TLS client fingerprints of a ClientHello: FoxIO's JA4 and Salesforce's
JA3, computed from the values the client sent (as integers, in its order,
GREASE included: each method drops GREASE itself).

JA4 follows FoxIO's specification (C{technical_details/JA4.md} in
FoxIO-LLC/ja4, as revised in January 2026), for TLS over TCP (the C{t}
prefix). Where the specification is silent, this module decides:

  - a supported_versions extension that holds no value but GREASE (or
    none at all) gives the version C{00} (unknown), not the legacy
    version: the extension exists, so the specification reads the version
    from it;
  - GREASE is dropped from the signature algorithms too ("ignore GREASE
    values anywhere"); FoxIO's own tools, which read Wireshark's fields,
    do not, but no known client sends GREASE there;
  - only the signature_algorithms extension (13) counts, never
    signature_algorithms_cert (50), as FoxIO's tools do.

JA3 follows Salesforce's description and its Python implementation
(salesforce/ja3): C{SSLVersion,Ciphers,Extensions,EllipticCurves,
EllipticCurvePointFormats}, decimal values joined by C{-}, GREASE removed,
the version from the ClientHello's legacy version field (JA3 predates
supported_versions), and the MD5 of that text.
"""

from __future__ import annotations

from collections.abc import Sequence
from hashlib import md5, sha256
from typing import NamedTuple

from tlsreply.clienthello.names import GREASE_VALUES

_EXTENSION_SERVER_NAME = 0x0000
_EXTENSION_ALPN = 0x0010

#: JA4's two-character names for protocol versions; any other is C{00}.
_JA4_VERSIONS = {
    0x0304: "13",
    0x0303: "12",
    0x0302: "11",
    0x0301: "10",
    0x0300: "s3",
    0x0002: "s2",
    0xFEFF: "d1",
    0xFEFD: "d2",
    0xFEFC: "d3",
}

#: What JA4 writes for a list with no value, rather than a hash of nothing.
EMPTY_HASH = "000000000000"

#: The bytes JA4 takes as they are at either end of an ALPN value
#: (0-9, A-Z, a-z); any other byte there means the value is written in hex.
_ALPHANUMERIC = frozenset(b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")


class JA4(NamedTuple):
    """
    A JA4 fingerprint in its two forms.

    @ivar fingerprint: the fingerprint, e.g.
        C{t13d1516h2_8daaf6152771_e5627efa2ab1}.
    @ivar raw: the same before hashing (JA4_r): the sorted cipher list,
        then the sorted extension list and the signature algorithms, e.g.
        C{t13d1516h2_002f,0035,..._0005,000a,..._0403,0804,...}.
    """

    fingerprint: str
    raw: str


class JA3(NamedTuple):
    """
    A JA3 fingerprint.

    @ivar fingerprint: the MD5 of C{text}, 32 lower-case hex digits.
    @ivar text: e.g. C{771,4865-4866-4867,0-23-65281-10-11,29-23-24,0}.
    """

    fingerprint: str
    text: str


def _hash12(text: str) -> str:
    """
    JA4's truncated hash: the first 12 hex digits of the SHA-256 of
    C{text}, or L{EMPTY_HASH} for no text.
    """
    if not text:
        return EMPTY_HASH
    return sha256(text.encode("ascii")).hexdigest()[:12]


def alpnCharacters(protocol: bytes | None) -> str:
    """
    JA4's two characters for the first ALPN protocol offered: its first
    and last bytes when both are ASCII letters or digits (a one-byte value
    being both), otherwise the first and last digits of its hexadecimal
    form; C{00} for no ALPN extension, no protocol, or an empty one.
    """
    if not protocol:
        return "00"
    first, last = protocol[0], protocol[-1]
    if first in _ALPHANUMERIC and last in _ALPHANUMERIC:
        return chr(first) + chr(last)
    digits = protocol.hex()
    return digits[0] + digits[-1]


def ja4Version(supportedVersions: Sequence[int] | None, legacyVersion: int) -> str:
    """
    JA4's two characters for the protocol version: the highest value in
    supported_versions (C{None} when the client sent no such extension)
    other than GREASE, else the legacy version of the hello.
    """
    if supportedVersions is None:
        version = legacyVersion
    else:
        version = max((v for v in supportedVersions if v not in GREASE_VALUES), default=-1)
    return _JA4_VERSIONS.get(version, "00")


def computeJA4(
    *,
    legacyVersion: int,
    supportedVersions: Sequence[int] | None,
    cipherSuites: Sequence[int],
    extensions: Sequence[int],
    signatureAlgorithms: Sequence[int],
    alpn: bytes | None,
    originalOrder: bool = False,
) -> JA4:
    """
    The JA4 fingerprint (TLS over TCP) of a ClientHello.

    @param legacyVersion: the hello's legacy_version field.
    @param supportedVersions: the supported_versions extension's values,
        or C{None} if the client sent none.
    @param cipherSuites: the cipher suites, in the client's order.
    @param extensions: the extension types, in the client's order.
    @param signatureAlgorithms: the signature_algorithms extension's
        values, in the client's order.
    @param alpn: the first protocol of the ALPN extension, or C{None}.
    @param originalOrder: compute JA4_o instead (JA4_ro for C{raw}):
        ciphers and extensions in the client's order, server_name and ALPN
        kept in the extension list.
    """
    ciphers = [code for code in cipherSuites if code not in GREASE_VALUES]
    offered = [code for code in extensions if code not in GREASE_VALUES]
    signatures = ",".join(
        f"{code:04x}" for code in signatureAlgorithms if code not in GREASE_VALUES
    )
    prefix = (
        "t"
        + ja4Version(supportedVersions, legacyVersion)
        + ("d" if _EXTENSION_SERVER_NAME in offered else "i")
        + f"{min(len(ciphers), 99):02d}{min(len(offered), 99):02d}"
        + alpnCharacters(alpn)
    )
    if not originalOrder:
        ciphers.sort()
        offered = sorted(
            code for code in offered if code not in (_EXTENSION_SERVER_NAME, _EXTENSION_ALPN)
        )
    cipherList = ",".join([f"{code:04x}" for code in ciphers])
    extensionList = ",".join([f"{code:04x}" for code in offered])
    if signatures:
        extensionList += "_" + signatures
    return JA4(
        fingerprint=f"{prefix}_{_hash12(cipherList)}_{_hash12(extensionList)}",
        raw=f"{prefix}_{cipherList}_{extensionList}",
    )


def computeJA3(
    *,
    legacyVersion: int,
    cipherSuites: Sequence[int],
    extensions: Sequence[int],
    groups: Sequence[int],
    pointFormats: Sequence[int],
) -> JA3:
    """
    The JA3 fingerprint of a ClientHello.

    @param legacyVersion: the hello's legacy_version field.
    @param cipherSuites: the cipher suites, in the client's order.
    @param extensions: the extension types, in the client's order.
    @param groups: the supported_groups extension's values.
    @param pointFormats: the ec_point_formats extension's values.
    """
    text = ",".join(
        [
            str(legacyVersion),
            "-".join([str(code) for code in cipherSuites if code not in GREASE_VALUES]),
            "-".join([str(code) for code in extensions if code not in GREASE_VALUES]),
            "-".join([str(code) for code in groups if code not in GREASE_VALUES]),
            "-".join([str(code) for code in pointFormats]),
        ]
    )
    return JA3(fingerprint=md5(text.encode("ascii"), usedforsecurity=False).hexdigest(), text=text)


__all__ = [
    "EMPTY_HASH",
    "JA3",
    "JA4",
    "alpnCharacters",
    "computeJA3",
    "computeJA4",
    "ja4Version",
]
