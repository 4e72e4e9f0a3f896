# -*- test-case-name: tests.test_devcert,tests.test_scenarios -*-
"""
Making keys and certificates: the one builder behind the development
certificate (L{tlsreply.tls.devcert}) and the test CA (L{tlsreply.scenarios.ca}).

Each certificate is made for a role: a CA, a TLS server or a TLS client.
The role decides the extensions a modern client expects of it (basic
constraints, key usage, extended key usage, key identifiers), so that the
only differences between certificates are the ones a caller asks for:
names, dates, keys, issuer.
"""

from __future__ import annotations

import datetime
import ipaddress
from collections.abc import Sequence
from typing import Final, Literal, get_args

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID

from tlsreply.errors import ConfigurationError

#: The key types tlsreply makes.
KeyType = Literal["ecdsa-p256", "ecdsa-p384", "rsa2048", "rsa4096"]
KEY_TYPES: Final[tuple[str, ...]] = get_args(KeyType)

#: The private keys tlsreply makes.
PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
PublicKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey

#: What a certificate is for.
Role = Literal["ca", "server", "client"]

_EXTENDED_USAGE: Final = {
    "server": ExtendedKeyUsageOID.SERVER_AUTH,
    "client": ExtendedKeyUsageOID.CLIENT_AUTH,
}


def generatePrivateKey(keyType: str) -> PrivateKey:
    """
    Make a new private key of one of L{KEY_TYPES}.

    ECDSA keys take a millisecond; RSA-4096 can take seconds, which is why
    nothing makes an RSA key unless asked.

    @raise ConfigurationError: for a key type that is not one of
        L{KEY_TYPES}.
    """
    if keyType == "ecdsa-p256":
        return ec.generate_private_key(ec.SECP256R1())
    if keyType == "ecdsa-p384":
        return ec.generate_private_key(ec.SECP384R1())
    if keyType == "rsa2048":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if keyType == "rsa4096":
        return rsa.generate_private_key(public_exponent=65537, key_size=4096)
    raise ConfigurationError(f"unknown key type {keyType!r} (known: {', '.join(KEY_TYPES)})")


def privateKeyPEM(key: PrivateKey) -> bytes:
    """
    A private key as unencrypted PKCS#8 PEM, the form
    L{loadCredentials <tlsreply.tls.credentials.loadCredentials>}, OpenSSL and
    Python's C{ssl} all read.
    """
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def certificatesPEM(*certificates: x509.Certificate) -> bytes:
    """
    Certificates as concatenated PEM, in the order given.
    """
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certificates)


def sha256Fingerprint(certificate: x509.Certificate) -> str:
    """
    A certificate's SHA-256 fingerprint as people compare them:
    colon-separated upper-case hex (C{04:99:F7:...}), as
    C{openssl x509 -fingerprint -sha256} prints it.
    """
    return certificate.fingerprint(hashes.SHA256()).hex(":").upper()


def subjectAlternativeNames(names: Sequence[str]) -> list[x509.GeneralName]:
    """
    The subjectAltName entries for server names: an IP address (v4 or v6,
    as C{ipaddress} reads it) becomes an iPAddress entry, since clients
    match IP addresses only against those; anything else a dNSName.
    """
    entries: list[x509.GeneralName] = []
    for name in names:
        try:
            entries.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            entries.append(x509.DNSName(name))
    return entries


def certificateBuilder(
    *,
    role: Role,
    subject: x509.Name,
    publicKey: PublicKey,
    notBefore: datetime.datetime,
    notAfter: datetime.datetime,
    names: Sequence[str] = (),
    issuer: x509.Name | None = None,
    issuerPublicKey: PublicKey | None = None,
) -> x509.CertificateBuilder:
    """
    A certificate for C{role}, ready to be signed by its issuer (with
    C{builder.sign(issuerKey, hashes.SHA256())}).

      - a CA: C{cA} true, may sign certificates and CRLs;
      - a server or a client: not a CA, signs handshakes (and, with an RSA
        key, may encipher keys), for TLS server or client authentication.

    @param names: the subjectAltName entries (DNS names, IP addresses);
        none means no subjectAltName extension.
    @param issuer: the issuer's name; C{None} for a self-signed certificate.
    @param issuerPublicKey: for the authority key identifier; C{None} for
        none on a self-signed server certificate (a self-signed CA names its
        own key).
    """
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer if issuer is not None else subject)
        .public_key(publicKey)
        .serial_number(x509.random_serial_number())
        .not_valid_before(notBefore)
        .not_valid_after(notAfter)
    )
    isCA = role == "ca"
    if names:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(subjectAlternativeNames(names)), critical=False
        )
    builder = builder.add_extension(
        x509.BasicConstraints(ca=isCA, path_length=None), critical=True
    ).add_extension(
        x509.KeyUsage(
            digital_signature=True,
            content_commitment=False,
            key_encipherment=not isCA and isinstance(publicKey, rsa.RSAPublicKey),
            data_encipherment=False,
            key_agreement=False,
            key_cert_sign=isCA,
            crl_sign=isCA,
            encipher_only=False,
            decipher_only=False,
        ),
        critical=True,
    )
    if not isCA:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([_EXTENDED_USAGE[role]]), critical=False
        )
    builder = builder.add_extension(
        x509.SubjectKeyIdentifier.from_public_key(publicKey), critical=False
    )
    authority = issuerPublicKey if issuerPublicKey is not None else (publicKey if isCA else None)
    if authority is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(authority), critical=False
        )
    return builder
