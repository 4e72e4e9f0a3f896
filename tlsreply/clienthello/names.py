# -*- test-case-name: tests.test_tlsnames -*-
"""
The names IANA gives the code points a ClientHello carries.

Taken from IANA's registries "Transport Layer Security (TLS) Parameters"
(TLS Cipher Suites, TLS Supported Groups, TLS SignatureScheme, TLS
Compression Method Identifiers, TLS HashAlgorithm, TLS SignatureAlgorithm)
and "TLS ExtensionType Values", as published in 2025 (the Supported Groups
registry with the ECDHE-MLKEM hybrids at 4587-4589 and ML-KEM at 512-514);
compiled 2026-11-30. Each name is IANA's, with these exceptions:

  - annotations IANA adds in parentheses are dropped (C{supported_groups},
    not C{supported_groups (renamed from "elliptic_curves")};
    C{X25519Kyber768Draft00}, not C{... (OBSOLETE)}), except where they
    tell two code points apart (C{connection_id (deprecated)}, 53);
  - the TLS 1.2 signature and hash pairs that the SignatureScheme registry
    keeps only as "Reserved for backward compatibility" (OpenSSL still
    offers several, e.g. 0x0303) are named from the HashAlgorithm and
    SignatureAlgorithm registries, in the style IANA used for the two it
    did name (C{rsa_pkcs1_sha1}, C{ecdsa_sha1}): C{ecdsa_sha224},
    C{rsa_pkcs1_sha224}, C{dsa_sha256}, ...

GREASE values (RFC 8701) are reported as C{GREASE (0x0a0a)}; a code point
with no name as C{0xNNNN} (C{0xNN} for compression methods).

The cipher suite table, the largest, is in L{tlsreply.clienthello._ciphersuitenames}.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Final

from tlsreply.clienthello._ciphersuitenames import CIPHER_SUITES

#: The sixteen GREASE values of RFC 8701, which clients send in cipher
#: suites, extensions, groups, key shares, signature algorithms and
#: versions to keep servers tolerant of values they do not know.
GREASE_VALUES: Final[frozenset[int]] = frozenset(0x0A0A + 0x1010 * i for i in range(16))


def isGrease(code: int) -> bool:
    """
    Whether C{code} is one of RFC 8701's GREASE values (0x0a0a, 0x1a1a,
    ..., 0xfafa).
    """
    return code in GREASE_VALUES


#: TLS Supported Groups (IANA): elliptic curves, finite-field groups, and
#: the post-quantum and hybrid post-quantum key agreements.
SUPPORTED_GROUPS: Final[Mapping[int, str]] = {
    1: "sect163k1",
    2: "sect163r1",
    3: "sect163r2",
    4: "sect193r1",
    5: "sect193r2",
    6: "sect233k1",
    7: "sect233r1",
    8: "sect239k1",
    9: "sect283k1",
    10: "sect283r1",
    11: "sect409k1",
    12: "sect409r1",
    13: "sect571k1",
    14: "sect571r1",
    15: "secp160k1",
    16: "secp160r1",
    17: "secp160r2",
    18: "secp192k1",
    19: "secp192r1",
    20: "secp224k1",
    21: "secp224r1",
    22: "secp256k1",
    23: "secp256r1",
    24: "secp384r1",
    25: "secp521r1",
    26: "brainpoolP256r1",
    27: "brainpoolP384r1",
    28: "brainpoolP512r1",
    29: "x25519",
    30: "x448",
    31: "brainpoolP256r1tls13",
    32: "brainpoolP384r1tls13",
    33: "brainpoolP512r1tls13",
    34: "GC256A",
    35: "GC256B",
    36: "GC256C",
    37: "GC256D",
    38: "GC512A",
    39: "GC512B",
    40: "GC512C",
    41: "curveSM2",
    256: "ffdhe2048",
    257: "ffdhe3072",
    258: "ffdhe4096",
    259: "ffdhe6144",
    260: "ffdhe8192",
    512: "MLKEM512",
    513: "MLKEM768",
    514: "MLKEM1024",
    4587: "SecP256r1MLKEM768",
    4588: "X25519MLKEM768",
    4589: "SecP384r1MLKEM1024",
    25497: "X25519Kyber768Draft00",
    25498: "SecP256r1Kyber768Draft00",
    65281: "arbitrary_explicit_prime_curves",
    65282: "arbitrary_explicit_char2_curves",
}

_NAMED_SIGNATURE_SCHEMES = {
    0x0201: "rsa_pkcs1_sha1",
    0x0203: "ecdsa_sha1",
    0x0401: "rsa_pkcs1_sha256",
    0x0403: "ecdsa_secp256r1_sha256",
    0x0420: "rsa_pkcs1_sha256_legacy",
    0x0501: "rsa_pkcs1_sha384",
    0x0503: "ecdsa_secp384r1_sha384",
    0x0520: "rsa_pkcs1_sha384_legacy",
    0x0601: "rsa_pkcs1_sha512",
    0x0603: "ecdsa_secp521r1_sha512",
    0x0620: "rsa_pkcs1_sha512_legacy",
    0x0704: "eccsi_sha256",
    0x0705: "iso_ibs1",
    0x0706: "iso_ibs2",
    0x0707: "iso_chinese_ibs",
    0x0708: "sm2sig_sm3",
    0x0709: "gostr34102012_256a",
    0x070A: "gostr34102012_256b",
    0x070B: "gostr34102012_256c",
    0x070C: "gostr34102012_256d",
    0x070D: "gostr34102012_512a",
    0x070E: "gostr34102012_512b",
    0x070F: "gostr34102012_512c",
    0x0804: "rsa_pss_rsae_sha256",
    0x0805: "rsa_pss_rsae_sha384",
    0x0806: "rsa_pss_rsae_sha512",
    0x0807: "ed25519",
    0x0808: "ed448",
    0x0809: "rsa_pss_pss_sha256",
    0x080A: "rsa_pss_pss_sha384",
    0x080B: "rsa_pss_pss_sha512",
    0x081A: "ecdsa_brainpoolP256r1tls13_sha256",
    0x081B: "ecdsa_brainpoolP384r1tls13_sha384",
    0x081C: "ecdsa_brainpoolP512r1tls13_sha512",
    0x0904: "mldsa44",
    0x0905: "mldsa65",
    0x0906: "mldsa87",
}

# TLS 1.2 SignatureAndHashAlgorithm pairs ({hash, signature}, RFC 5246)
# that the SignatureScheme registry reserves without a name, named from
# the TLS HashAlgorithm (md5 .. sha512) and TLS SignatureAlgorithm (rsa,
# dsa, ecdsa) registries.
_HASH_ALGORITHMS = {1: "md5", 2: "sha1", 3: "sha224", 4: "sha256", 5: "sha384", 6: "sha512"}
_SIGNATURE_ALGORITHMS = {1: "rsa_pkcs1", 2: "dsa", 3: "ecdsa"}

#: TLS SignatureScheme (IANA), with the unnamed TLS 1.2 pairs added (see
#: the module docstring).
SIGNATURE_SCHEMES: Final[Mapping[int, str]] = {
    **{
        hashCode << 8 | signatureCode: f"{signature}_{hashName}"
        for hashCode, hashName in _HASH_ALGORITHMS.items()
        for signatureCode, signature in _SIGNATURE_ALGORITHMS.items()
    },
    **_NAMED_SIGNATURE_SCHEMES,
}

#: TLS ExtensionType Values (IANA).
EXTENSION_TYPES: Final[Mapping[int, str]] = {
    0: "server_name",
    1: "max_fragment_length",
    2: "client_certificate_url",
    3: "trusted_ca_keys",
    4: "truncated_hmac",
    5: "status_request",
    6: "user_mapping",
    7: "client_authz",
    8: "server_authz",
    9: "cert_type",
    10: "supported_groups",
    11: "ec_point_formats",
    12: "srp",
    13: "signature_algorithms",
    14: "use_srtp",
    15: "heartbeat",
    16: "application_layer_protocol_negotiation",
    17: "status_request_v2",
    18: "signed_certificate_timestamp",
    19: "client_certificate_type",
    20: "server_certificate_type",
    21: "padding",
    22: "encrypt_then_mac",
    23: "extended_master_secret",
    24: "token_binding",
    25: "cached_info",
    26: "tls_lts",
    27: "compress_certificate",
    28: "record_size_limit",
    29: "pwd_protect",
    30: "pwd_clear",
    31: "password_salt",
    32: "ticket_pinning",
    33: "tls_cert_with_extern_psk",
    34: "delegated_credential",
    35: "session_ticket",
    36: "TLMSP",
    37: "TLMSP_proxying",
    38: "TLMSP_delegate",
    39: "supported_ekt_ciphers",
    41: "pre_shared_key",
    42: "early_data",
    43: "supported_versions",
    44: "cookie",
    45: "psk_key_exchange_modes",
    47: "certificate_authorities",
    48: "oid_filters",
    49: "post_handshake_auth",
    50: "signature_algorithms_cert",
    51: "key_share",
    52: "transparency_info",
    53: "connection_id (deprecated)",
    54: "connection_id",
    55: "external_id_hash",
    56: "external_session_id",
    57: "quic_transport_parameters",
    58: "ticket_request",
    59: "dnssec_chain",
    60: "sequence_number_encryption_algorithms",
    61: "rrc",
    64768: "ech_outer_extensions",
    65037: "encrypted_client_hello",
    65281: "renegotiation_info",
}

#: TLS Compression Method Identifiers (IANA).
COMPRESSION_METHODS: Final[Mapping[int, str]] = {
    0: "NULL",
    1: "DEFLATE",
    64: "LZS",
}


def _named(table: Mapping[int, str], codes: Iterable[int]) -> tuple[str, ...]:
    """
    The names of two-byte C{codes} in C{table}, GREASE and unknown values
    spelled as the module docstring says.
    """
    get = table.get
    return tuple(
        get(code)
        or (f"GREASE (0x{code:04x})" if code in GREASE_VALUES else f"0x{code:04x}")
        for code in codes
    )


def cipherSuiteNames(codes: Iterable[int]) -> tuple[str, ...]:
    """
    IANA names of cipher suites, in the order given.
    """
    return _named(CIPHER_SUITES, codes)


def groupNames(codes: Iterable[int]) -> tuple[str, ...]:
    """
    IANA names of supported groups (or of key share groups), in the order
    given.
    """
    return _named(SUPPORTED_GROUPS, codes)


def signatureSchemeNames(codes: Iterable[int]) -> tuple[str, ...]:
    """
    IANA names of signature schemes, in the order given.
    """
    return _named(SIGNATURE_SCHEMES, codes)


def extensionNames(codes: Iterable[int]) -> tuple[str, ...]:
    """
    IANA names of extension types, in the order given.
    """
    return _named(EXTENSION_TYPES, codes)


def compressionMethodNames(codes: Iterable[int]) -> tuple[str, ...]:
    """
    IANA names of (one-byte) compression methods, in the order given.
    """
    get = COMPRESSION_METHODS.get
    return tuple(get(code) or f"0x{code:02x}" for code in codes)


__all__ = [
    "COMPRESSION_METHODS",
    "EXTENSION_TYPES",
    "GREASE_VALUES",
    "SIGNATURE_SCHEMES",
    "SUPPORTED_GROUPS",
    "cipherSuiteNames",
    "compressionMethodNames",
    "extensionNames",
    "groupNames",
    "isGrease",
    "signatureSchemeNames",
]
