# -*- test-case-name: tests.test_clienthello -*-
"""
What a client offered in its ClientHello: L{ClientHello}, for the
connection log and records, and the code points it is made from
(L{OfferedCodes}); and L{printableASCII}, which makes the bytes a client
chose safe to log.

The bytes are read by L{tlsreply.clienthello.parser}, before OpenSSL sees
them; what they mean is kept here, apart from the wire format, for the
modules that only report it (L{tlsreply.connection.records}, L{tlsreply.protocol}).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property

from tlsreply.clienthello.fingerprint import JA3, JA4, computeJA3, computeJA4
from tlsreply.clienthello.names import (
    cipherSuiteNames,
    compressionMethodNames,
    extensionNames,
    groupNames,
    signatureSchemeNames,
)


@dataclass(frozen=True)
class OfferedCodes:
    """
    The code points a ClientHello carried, as integers, in the client's
    order, GREASE values included: what L{ClientHello}'s names and
    fingerprints are made from.

    An extension whose body does not parse gives nothing for the field it
    carries (see L{tlsreply.clienthello.parser.ClientHelloParser}); it is
    still listed in C{extensions}.

    @ivar legacyVersion: the legacy_version field (0x0303 for TLS 1.2 and
        1.3 clients).
    @ivar cipherSuites: the cipher suites.
    @ivar compressionMethods: the compression methods (one byte each).
    @ivar extensions: the extension types, every one sent, in order.
    @ivar supportedVersions: the supported_versions extension's values, or
        C{None} if the client sent no such extension.
    @ivar supportedGroups: the supported_groups extension's values.
    @ivar signatureAlgorithms: the signature_algorithms extension's values.
    @ivar keyShareGroups: the group of each key_share entry.
    @ivar ecPointFormats: the ec_point_formats extension's values.
    @ivar alpnProtocols: the ALPN protocols, as sent (bytes).
    """

    legacyVersion: int = 0x0303
    cipherSuites: tuple[int, ...] = ()
    compressionMethods: tuple[int, ...] = ()
    extensions: tuple[int, ...] = ()
    supportedVersions: tuple[int, ...] | None = None
    supportedGroups: tuple[int, ...] = ()
    signatureAlgorithms: tuple[int, ...] = ()
    keyShareGroups: tuple[int, ...] = ()
    ecPointFormats: tuple[int, ...] = ()
    alpnProtocols: tuple[bytes, ...] = ()


@dataclass(frozen=True)
class ClientHello:
    """
    What a client offered in its ClientHello.

    The fields are read as the hello is parsed. The names of everything
    offered and the fingerprints are worked out from C{codes} the first
    time they are asked for, and kept: a server that parses every hello
    for its server name pays nothing for them, and a client cannot make it
    spend more than a moment on a hello of
    L{tlsreply.clienthello.parser.MAXIMUM_HELLO_SIZE} bytes of lists.

    Names are IANA's (L{tlsreply.clienthello.names}): a GREASE value (RFC 8701)
    reads C{GREASE (0x0a0a)}, a code point with no name C{0xNNNN}.

    @ivar serverName: the SNI host name, if sent.
    @ivar alpnProtocols: the ALPN protocols offered, in the client's order.
    @ivar versions: the protocol versions offered (from supported_versions,
        or the legacy version field when that extension is absent).
    @ivar resumptionOffered: a session was offered for resumption: a TLS 1.3
        pre-shared key, or a TLS 1.2 session ticket.
    @ivar earlyDataOffered: the client announced 0-RTT data.
    @ivar codes: the code points offered, as sent.
    """

    serverName: str | None = None
    alpnProtocols: tuple[str, ...] = ()
    versions: tuple[str, ...] = ()
    resumptionOffered: bool = False
    earlyDataOffered: bool = False
    codes: OfferedCodes = OfferedCodes()

    @cached_property
    def offeredCipherSuites(self) -> tuple[str, ...]:
        """
        The cipher suites offered, in the client's order, e.g.
        C{("GREASE (0x8a8a)", "TLS_AES_128_GCM_SHA256", ...)}.
        """
        return cipherSuiteNames(self.codes.cipherSuites)

    @cached_property
    def offeredCompressionMethods(self) -> tuple[str, ...]:
        """
        The compression methods offered, e.g. C{("NULL",)}.
        """
        return compressionMethodNames(self.codes.compressionMethods)

    @cached_property
    def offeredExtensions(self) -> tuple[str, ...]:
        """
        The extensions sent, in the client's order, e.g.
        C{("server_name", "ec_point_formats", ...)}.
        """
        return extensionNames(self.codes.extensions)

    @cached_property
    def offeredGroups(self) -> tuple[str, ...]:
        """
        The key exchange groups of the supported_groups extension, in the
        client's order, e.g. C{("X25519MLKEM768", "x25519", "secp256r1")}.
        """
        return groupNames(self.codes.supportedGroups)

    @cached_property
    def offeredSignatureAlgorithms(self) -> tuple[str, ...]:
        """
        The signature schemes of the signature_algorithms extension, in
        the client's order, e.g. C{("ecdsa_secp256r1_sha256",
        "rsa_pss_rsae_sha256", ...)}.
        """
        return signatureSchemeNames(self.codes.signatureAlgorithms)

    @cached_property
    def offeredKeyShares(self) -> tuple[str, ...]:
        """
        The group of each key share sent (TLS 1.3), in the client's order,
        e.g. C{("X25519MLKEM768", "x25519")}.
        """
        return groupNames(self.codes.keyShareGroups)

    @cached_property
    def _ja4(self) -> JA4:
        codes = self.codes
        return computeJA4(
            legacyVersion=codes.legacyVersion,
            supportedVersions=codes.supportedVersions,
            cipherSuites=codes.cipherSuites,
            extensions=codes.extensions,
            signatureAlgorithms=codes.signatureAlgorithms,
            alpn=codes.alpnProtocols[0] if codes.alpnProtocols else None,
        )

    @property
    def ja4(self) -> str:
        """
        The JA4 fingerprint (FoxIO), e.g.
        C{t13d1516h2_8daaf6152771_e5627efa2ab1}; see
        L{tlsreply.clienthello.fingerprint}.
        """
        return self._ja4.fingerprint

    @property
    def ja4Raw(self) -> str:
        """
        The JA4 fingerprint before hashing (JA4_r): the sorted hex lists of
        cipher suites and of extensions (without server_name and ALPN),
        then the signature algorithms in the client's order.
        """
        return self._ja4.raw

    @cached_property
    def _ja3(self) -> JA3:
        codes = self.codes
        return computeJA3(
            legacyVersion=codes.legacyVersion,
            cipherSuites=codes.cipherSuites,
            extensions=codes.extensions,
            groups=codes.supportedGroups,
            pointFormats=codes.ecPointFormats,
        )

    @property
    def ja3(self) -> str:
        """
        The JA3 fingerprint (Salesforce): the MD5 of L{ja3Text}, 32 hex
        digits.
        """
        return self._ja3.fingerprint

    @property
    def ja3Text(self) -> str:
        """
        The text JA3 hashes: C{SSLVersion,Ciphers,Extensions,
        EllipticCurves,EllipticCurvePointFormats}, decimal, GREASE removed,
        e.g. C{771,4865-4866-4867,0-23-65281-10-11,29-23-24,0}.
        """
        return self._ja3.text


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
