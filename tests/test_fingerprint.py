"""
Tests for L{tlsreply.clienthello.fingerprint}: JA4 against the examples of FoxIO's
specification (FoxIO-LLC/ja4, C{technical_details/JA4.md}), JA3 against
Salesforce's (salesforce/ja3, C{README.md}).

The end-to-end checks, from ClientHello bytes to fingerprints, are in
C{tests.test_clienthello}.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from tlsreply.clienthello.fingerprint import (
    EMPTY_HASH,
    JA3,
    JA4,
    alpnCharacters,
    computeJA3,
    computeJA4,
    ja4Version,
)


def hexCodes(text: str) -> list[int]:
    """
    C{"1301,1302"} as C{[0x1301, 0x1302]}, as the specification writes lists.
    """
    return [int(code, 16) for code in text.split(",")]


# The example of the JA4 specification ("Example" and "Raw Output").
SPEC_CIPHERS = hexCodes("1301,1302,1303,c02b,c02f,c02c,c030,cca9,cca8,c013,c014,009c,009d,002f,0035")
SPEC_EXTENSIONS = hexCodes(
    "001b,0000,0033,0010,4469,0017,002d,000d,0005,0023,0012,002b,ff01,000b,000a,0015"
)
SPEC_SIGNATURES = hexCodes("0403,0804,0401,0503,0805,0501,0806,0601")
SPEC_JA4 = "t13d1516h2_8daaf6152771_e5627efa2ab1"
SPEC_JA4_R = (
    "t13d1516h2_002f,0035,009c,009d,1301,1302,1303,c013,c014,c02b,c02c,c02f,c030,cca8,cca9"
    "_0005,000a,000b,000d,0012,0015,0017,001b,0023,002b,002d,0033,4469,ff01"
    "_0403,0804,0401,0503,0805,0501,0806,0601"
)
SPEC_JA4_O = "t13d1516h2_acb858a92679_18f69afefd3d"
SPEC_JA4_RO = (
    "t13d1516h2_1301,1302,1303,c02b,c02f,c02c,c030,cca9,cca8,c013,c014,009c,009d,002f,0035"
    "_001b,0000,0033,0010,4469,0017,002d,000d,0005,0023,0012,002b,ff01,000b,000a,0015"
    "_0403,0804,0401,0503,0805,0501,0806,0601"
)


def specJA4(**changes: object) -> JA4:
    """
    JA4 of the specification's example, with C{changes} to its inputs.
    """
    inputs: dict[str, object] = {
        "legacyVersion": 0x0303,
        "supportedVersions": [0x0304, 0x0303],
        "cipherSuites": SPEC_CIPHERS,
        "extensions": SPEC_EXTENSIONS,
        "signatureAlgorithms": SPEC_SIGNATURES,
        "alpn": b"h2",
    }
    inputs.update(changes)
    return computeJA4(**inputs)  # type: ignore[arg-type]


class JA4SpecificationExampleTests(SynchronousTestCase):
    """
    The specification's worked example, in all four of its forms.
    """

    def test_fingerprint(self) -> None:
        """
        JA4 and JA4_r are the specification's.
        """
        self.assertEqual(specJA4(), JA4(SPEC_JA4, SPEC_JA4_R))

    def test_originalOrder(self) -> None:
        """
        JA4_o and JA4_ro (the client's order, server_name and ALPN kept in
        the extension list) are the specification's.
        """
        self.assertEqual(specJA4(originalOrder=True), JA4(SPEC_JA4_O, SPEC_JA4_RO))

    def test_greaseIgnored(self) -> None:
        """
        GREASE values anywhere (cipher suites, extensions, versions,
        signature algorithms) change nothing: they are not counted, listed
        or hashed.
        """
        self.assertEqual(
            specJA4(
                supportedVersions=[0x5A5A, 0x0304, 0x0303],
                cipherSuites=[0x0A0A, *SPEC_CIPHERS],
                extensions=[0x2A2A, *SPEC_EXTENSIONS, 0xFAFA],
                signatureAlgorithms=[0x1A1A, *SPEC_SIGNATURES],
            ),
            JA4(SPEC_JA4, SPEC_JA4_R),
        )

    def test_withoutSignatureAlgorithms(self) -> None:
        """
        Without signature algorithms the extension list is hashed with no
        underscore after it: the specification's hash C{6d807ffa2a79}.
        """
        result = specJA4(signatureAlgorithms=[])
        self.assertEqual(result.fingerprint, "t13d1516h2_8daaf6152771_6d807ffa2a79")
        self.assertEqual(result.raw.count("_"), 2)
        self.assertTrue(result.raw.endswith(",002d,0033,4469,ff01"))


class JA4RulesTests(SynchronousTestCase):
    """
    Each rule of the specification's "Details" section.
    """

    def test_alpnExamples(self) -> None:
        """
        The specification's ALPN examples: first and last character when
        both are ASCII letters or digits, otherwise the first and last
        digits of the value in hex; a single character is both.
        """
        examples = {
            b"h2": "h2",
            b"http/1.1": "h1",
            b"\xab": "ab",
            b"\x20": "20",
            b"\xab\xcd": "ad",
            b"\x20\x61": "21",
            b"\x30\xab": "3b",
            b"\x61\x20": "60",
            b"\x30\x31\xab\xcd": "3d",
            b"\x30\xab\xcd\x31": "01",
            b"a": "aa",
        }
        self.assertEqual({value: alpnCharacters(value) for value in examples}, examples)

    def test_noALPN(self) -> None:
        """
        No ALPN extension, or an empty first value, gives C{00}.
        """
        self.assertEqual((alpnCharacters(None), alpnCharacters(b"")), ("00", "00"))
        self.assertEqual(specJA4(alpn=None).fingerprint[8:10], "00")

    def test_versionFromSupportedVersions(self) -> None:
        """
        The version is the highest in supported_versions, whatever the
        order, less GREASE; the legacy version only when that extension is
        absent.
        """
        self.assertEqual(ja4Version([0x0303, 0x0304], 0x0303), "13")
        self.assertEqual(ja4Version([0x7A7A, 0x0303], 0x0301), "12")
        self.assertEqual(ja4Version(None, 0x0303), "12")
        self.assertEqual(ja4Version(None, 0x0301), "10")
        self.assertEqual(ja4Version(None, 0x0300), "s3")
        self.assertEqual(ja4Version(None, 0x0002), "s2")
        self.assertEqual(ja4Version([0xFEFC, 0xFEFD], 0xFEFD), "d2")

    def test_unknownVersion(self) -> None:
        """
        A version the specification has no name for is C{00}, and so is a
        supported_versions extension with nothing but GREASE in it.
        """
        self.assertEqual(ja4Version([0x7F1C], 0x0303), "00")
        self.assertEqual(ja4Version([0x0A0A], 0x0303), "00")
        self.assertEqual(ja4Version([], 0x0303), "00")

    def test_serverNameMakesItADomain(self) -> None:
        """
        With a server_name extension the destination is a domain (C{d});
        without, an IP address (C{i}), and the count drops by one.
        """
        withoutName = [code for code in SPEC_EXTENSIONS if code != 0x0000]
        self.assertEqual(specJA4(extensions=withoutName).fingerprint[:10], "t13i1515h2")

    def test_countsStopAt99(self) -> None:
        """
        More than 99 cipher suites or extensions count as 99, but all of
        them are hashed.
        """
        ciphers = list(range(0x0100, 0x0100 + 150))
        extensions = list(range(0x0100, 0x0100 + 120))
        result = specJA4(cipherSuites=ciphers, extensions=extensions)
        self.assertEqual(result.fingerprint[:10], "t13i9999h2")
        self.assertEqual(result.raw.split("_")[1].count(",") + 1, 150)
        self.assertNotEqual(
            result, specJA4(cipherSuites=ciphers[:99], extensions=extensions)
        )

    def test_signallingValuesCount(self) -> None:
        """
        Signalling values (SCSVs) and reserved values are cipher suites for
        JA4: counted and hashed.
        """
        result = specJA4(cipherSuites=[*SPEC_CIPHERS, 0x00FF, 0x5600, 0xFE00])
        self.assertEqual(result.fingerprint[:10], "t13d1816h2")
        self.assertIn(",00ff,", result.raw)
        self.assertIn(",5600,", result.raw)

    def test_emptyLists(self) -> None:
        """
        No cipher suites, or no extensions once server_name and ALPN are
        left out, hash to C{000000000000} rather than to a hash of nothing.
        """
        result = computeJA4(
            legacyVersion=0x0303, supportedVersions=None, cipherSuites=[],
            extensions=[0x0000, 0x0010], signatureAlgorithms=[], alpn=b"h2",
        )
        self.assertEqual(result, JA4(f"t12d0002h2_{EMPTY_HASH}_{EMPTY_HASH}", "t12d0002h2__"))

    def test_sortedAsHex(self) -> None:
        """
        Cipher suites and extensions are sorted by value and written as
        four lower-case hex digits; signature algorithms keep their order.
        """
        result = computeJA4(
            legacyVersion=0x0303, supportedVersions=None,
            cipherSuites=[0xC02B, 0x000A, 0x1301],
            extensions=[0xFF01, 0x0000, 0x000D, 0x0010, 0x000A],
            signatureAlgorithms=[0x0804, 0x0403], alpn=None,
        )
        self.assertEqual(result.raw, "t12d030500_000a,1301,c02b_000a,000d,ff01_0804,0403")


class JA3Tests(SynchronousTestCase):
    """
    JA3 as Salesforce describes it.
    """

    def test_salesforceExample(self) -> None:
        """
        Salesforce's example: TLS 1.0, twelve cipher suites, three
        extensions, three curves and one point format.
        """
        self.assertEqual(
            computeJA3(
                legacyVersion=769,
                cipherSuites=[47, 53, 5, 10, 49161, 49162, 49171, 49172, 50, 56, 19, 4],
                extensions=[0, 10, 11], groups=[23, 24, 25], pointFormats=[0],
            ),
            JA3("ada70206e40642a3e4461f35503241d5",
                "769,47-53-5-10-49161-49162-49171-49172-50-56-19-4,0-10-11,23-24-25,0"),
        )

    def test_salesforceExampleWithoutExtensions(self) -> None:
        """
        Salesforce's example of a hello without extensions: the last three
        fields are empty.
        """
        self.assertEqual(
            computeJA3(
                legacyVersion=769, cipherSuites=[4, 5, 10, 9, 100, 98, 3, 6, 19, 18, 99],
                extensions=[], groups=[], pointFormats=[],
            ),
            JA3("de350869b8c85de67a350c8d186f11e6", "769,4-5-10-9-100-98-3-6-19-18-99,,,"),
        )

    def test_greaseRemoved(self) -> None:
        """
        GREASE values are left out of the cipher suites, extensions and
        groups, and nothing else is reordered or dropped.
        """
        self.assertEqual(
            computeJA3(
                legacyVersion=771, cipherSuites=[0x0A0A, 4865, 4866],
                extensions=[0x1A1A, 0, 10, 0xFAFA, 11], groups=[0x2A2A, 4588, 29],
                pointFormats=[0],
            ).text,
            "771,4865-4866,0-10-11,4588-29,0",
        )
