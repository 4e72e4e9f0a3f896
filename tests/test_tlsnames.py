"""
Tests for L{tlsreply.clienthello.names}: IANA's names for the code points of a
ClientHello.
"""

from __future__ import annotations

import shutil
import subprocess

from twisted.trial.unittest import SynchronousTestCase

from tests.support import requireTool
from tlsreply.clienthello._ciphersuitenames import CIPHER_SUITES
from tlsreply.clienthello.names import (
    COMPRESSION_METHODS,
    EXTENSION_TYPES,
    GREASE_VALUES,
    SIGNATURE_SCHEMES,
    SUPPORTED_GROUPS,
    cipherSuiteNames,
    compressionMethodNames,
    extensionNames,
    groupNames,
    isGrease,
    signatureSchemeNames,
)


def opensslStandardNames() -> dict[int, str]:
    """
    The IANA name OpenSSL's command line gives each cipher suite it knows
    (C{openssl ciphers -V -stdname}), or nothing where there is no
    C{openssl}.
    """
    openssl = shutil.which("openssl")
    if openssl is None:
        return {}
    listing = subprocess.run(
        [openssl, "ciphers", "-V", "-stdname", "ALL:COMPLEMENTOFALL:@SECLEVEL=0"],
        capture_output=True, text=True, check=True,
    ).stdout
    names = {}
    for line in listing.splitlines():
        code, _, standardName = line.split()[:3]
        high, low = code.split(",")
        names[int(high, 16) << 8 | int(low, 16)] = standardName
    return names


class GreaseTests(SynchronousTestCase):
    """
    RFC 8701's GREASE values.
    """

    def test_theSixteenValues(self) -> None:
        """
        GREASE values are the sixteen 0x?a?a values with both bytes equal,
        and no others.
        """
        self.assertEqual(
            sorted(GREASE_VALUES),
            [0x0A0A, 0x1A1A, 0x2A2A, 0x3A3A, 0x4A4A, 0x5A5A, 0x6A6A, 0x7A7A,
             0x8A8A, 0x9A9A, 0xAAAA, 0xBABA, 0xCACA, 0xDADA, 0xEAEA, 0xFAFA],
        )
        self.assertTrue(isGrease(0xDADA))
        for notGrease in (0x0A1A, 0x1A0A, 0x0A0B, 0x0000, 0xFFFF):
            self.assertFalse(isGrease(notGrease), hex(notGrease))

    def test_noTableNamesGrease(self) -> None:
        """
        IANA lists GREASE values as "Reserved": no table gives them a name,
        so they are always reported as GREASE.
        """
        for table in (CIPHER_SUITES, SUPPORTED_GROUPS, SIGNATURE_SCHEMES, EXTENSION_TYPES):
            self.assertEqual(set(table) & GREASE_VALUES, set())


class NamesTests(SynchronousTestCase):
    """
    Code points become IANA names, GREASE is marked, unknown values are
    shown in hexadecimal, and the client's order is kept.
    """

    def test_cipherSuites(self) -> None:
        """
        TLS 1.3 and TLS 1.2 suites and the signalling values have their
        IANA names.
        """
        self.assertEqual(
            cipherSuiteNames([0x1301, 0xC02B, 0xCCA9, 0x00FF, 0x5600, 0x1306]),
            (
                "TLS_AES_128_GCM_SHA256",
                "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
                "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
                "TLS_EMPTY_RENEGOTIATION_INFO_SCSV",
                "TLS_FALLBACK_SCSV",
                "TLS_AEGIS_256_SHA512",
            ),
        )

    def test_greaseAndUnknown(self) -> None:
        """
        A GREASE value reads C{GREASE (0x....)}; a value IANA has not
        assigned reads as its four hex digits, lower case; neither moves.
        """
        self.assertEqual(
            cipherSuiteNames([0x0A0A, 0x1301, 0xFE00, 0x00C8]),
            ("GREASE (0x0a0a)", "TLS_AES_128_GCM_SHA256", "0xfe00", "0x00c8"),
        )
        self.assertEqual(extensionNames([0xFAFA, 0x44CD]), ("GREASE (0xfafa)", "0x44cd"))
        self.assertEqual(groupNames([0x2A2A, 0x1234]), ("GREASE (0x2a2a)", "0x1234"))
        self.assertEqual(signatureSchemeNames([0x0A0A, 0x0F0F]), ("GREASE (0x0a0a)", "0x0f0f"))

    def test_groups(self) -> None:
        """
        Elliptic curves and finite-field groups have IANA's names, as IANA
        spells them (lower-case x25519), and so do the post-quantum hybrids.
        """
        self.assertEqual(
            groupNames([0x11EC, 0x001D, 0x0017, 0x0018, 0x001E, 0x0100, 0x11EB, 0x11ED,
                        0x0201, 0x6399]),
            ("X25519MLKEM768", "x25519", "secp256r1", "secp384r1", "x448", "ffdhe2048",
             "SecP256r1MLKEM768", "SecP384r1MLKEM1024", "MLKEM768", "X25519Kyber768Draft00"),
        )

    def test_signatureSchemes(self) -> None:
        """
        TLS 1.3 signature schemes have their IANA names; the TLS 1.2 pairs
        IANA reserves without a name (OpenSSL offers some) are named from
        the hash and signature registries.
        """
        self.assertEqual(
            signatureSchemeNames([0x0403, 0x0804, 0x0807, 0x0201, 0x0203, 0x0905]),
            ("ecdsa_secp256r1_sha256", "rsa_pss_rsae_sha256", "ed25519",
             "rsa_pkcs1_sha1", "ecdsa_sha1", "mldsa65"),
        )
        self.assertEqual(
            signatureSchemeNames([0x0303, 0x0301, 0x0302, 0x0402, 0x0502, 0x0602]),
            ("ecdsa_sha224", "rsa_pkcs1_sha224", "dsa_sha224", "dsa_sha256",
             "dsa_sha384", "dsa_sha512"),
        )

    def test_extensions(self) -> None:
        """
        Extension types have IANA's names, without the "renamed from"
        notes, and the ECH and renegotiation extensions are known.
        """
        self.assertEqual(
            extensionNames([0, 10, 16, 35, 43, 51, 53, 65037, 65281]),
            ("server_name", "supported_groups", "application_layer_protocol_negotiation",
             "session_ticket", "supported_versions", "key_share",
             "connection_id (deprecated)", "encrypted_client_hello", "renegotiation_info"),
        )

    def test_compressionMethods(self) -> None:
        """
        Compression methods are one byte: unknown ones show two hex digits.
        """
        self.assertEqual(compressionMethodNames([1, 0, 64, 0xAB]),
                         ("DEFLATE", "NULL", "LZS", "0xab"))
        self.assertEqual(COMPRESSION_METHODS[0], "NULL")

    def test_namesAreDistinct(self) -> None:
        """
        No two code points of a table share a name, so a name always says
        which value was sent.
        """
        for table in (CIPHER_SUITES, SUPPORTED_GROUPS, SIGNATURE_SCHEMES, EXTENSION_TYPES):
            self.assertEqual(len(set(table.values())), len(table))

    def test_agreesWithOpenSSL(self) -> None:
        """
        Every cipher suite OpenSSL knows has the IANA name OpenSSL itself
        gives it.
        """
        requireTool("openssl")
        standardNames = opensslStandardNames()
        self.assertEqual(
            {code: CIPHER_SUITES.get(code) for code in standardNames}, standardNames
        )
