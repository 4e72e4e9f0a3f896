# -*- test-case-name: tests.test_credentials -*-
"""
Loading a server's certificate, private key and chain from PEM files.

Every way a file can be wrong becomes a L{ConfigurationError} whose one-line
message names the file and the problem, because these files are the first
thing an operator gets wrong and a traceback from deep inside a parser does
not tell them which file to fix.
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
from cryptography.x509 import ocsp

from tlsreply.errors import ConfigurationError
from tlsreply.tls.certificates import sha256Fingerprint
from tlsreply.tls.inputfiles import readNamedFile

ServerPrivateKey = (
    rsa.RSAPrivateKey
    | ec.EllipticCurvePrivateKey
    | ed25519.Ed25519PrivateKey
    | ed448.Ed448PrivateKey
    | dsa.DSAPrivateKey
)


@dataclass(frozen=True)
class ServerCredentials:
    """
    A certificate, the private key that matches it, and the intermediate
    certificates a client needs to build a path to its trust anchor.

    @ivar certificate: the leaf certificate that is served.
    @ivar privateKey: its private key.
    @ivar chain: intermediates, leaf's issuer first.
    @ivar certificatePath: where the certificate was read from, for messages.
    """

    certificate: x509.Certificate
    privateKey: ServerPrivateKey
    chain: tuple[x509.Certificate, ...] = ()
    certificatePath: Path | None = None
    ocspResponse: bytes | None = None

    @property
    def keyDescription(self) -> str:
        """
        The key's type and size, e.g. C{"RSA-2048"} or C{"ECDSA-P-256"}.
        """
        key = self.privateKey
        if isinstance(key, rsa.RSAPrivateKey):
            return f"RSA-{key.key_size}"
        if isinstance(key, ec.EllipticCurvePrivateKey):
            return {"secp256r1": "ECDSA-P-256", "secp384r1": "ECDSA-P-384",
                    "secp521r1": "ECDSA-P-521"}.get(key.curve.name, f"ECDSA-{key.curve.name}")
        return type(key).__name__.replace("PrivateKey", "")

    def describe(self) -> dict[str, object]:
        """
        The certificate's facts as plain values, for C{--show-config}.
        """
        return {
            "path": str(self.certificatePath) if self.certificatePath else None,
            "names": list(self.subjectNames),
            "key": self.keyDescription,
            "sha256": self.fingerprint,
            "notAfter": self.certificate.not_valid_after_utc.isoformat(),
            "chainLength": len(self.chain),
            "ocspStapling": self.ocspResponse is not None,
        }

    @property
    def fingerprint(self) -> str:
        """
        The certificate's SHA-256 fingerprint as colon-separated hex, the
        form C{openssl x509 -fingerprint -sha256} prints.
        """
        return sha256Fingerprint(self.certificate)

    @property
    def subjectNames(self) -> tuple[str, ...]:
        """
        The DNS names and IP addresses the certificate is valid for.
        """
        try:
            san = self.certificate.extensions.get_extension_for_class(
                x509.SubjectAlternativeName
            ).value
        except x509.ExtensionNotFound:
            return ()
        names: list[str] = list(san.get_values_for_type(x509.DNSName))
        names += [str(ip) for ip in san.get_values_for_type(x509.IPAddress)]
        return tuple(names)


_PRIVATE_KEY_PEM = re.compile(
    rb"-----BEGIN ((?:[A-Z]+ )?PRIVATE KEY)-----.*?-----END \1-----", re.DOTALL
)
_PRIVATE_KEY_BEGIN = re.compile(rb"-----BEGIN (?:[A-Z]+ )?PRIVATE KEY-----")


def loadCertificates(path: Path, what: str = "certificate") -> list[x509.Certificate]:
    """
    Read every PEM certificate in a file, in file order.

    @raise ConfigurationError: if the file cannot be read or holds no PEM
        certificate.
    """
    return parseCertificates(readNamedFile(path, what), path, what)


def parseCertificates(
    data: bytes, path: Path, what: str = "certificate"
) -> list[x509.Certificate]:
    """
    Every PEM certificate in C{data}, read from C{path}, in file order.

    @param what: what the file is, for messages (C{"chain"}).
    @raise ConfigurationError: if C{data} holds no PEM certificate, or a
        malformed one.
    """
    if b"-----BEGIN CERTIFICATE-----" not in data:
        hint = ""
        try:
            x509.load_der_x509_certificate(data)
        except ValueError:
            pass
        else:
            hint = (
                " (it holds a DER certificate; convert it with: "
                f"openssl x509 -inform der -in {path} -out CERTIFICATE.pem)"
            )
        raise ConfigurationError(f"{what} file {path} holds no PEM certificate{hint}")
    try:
        return x509.load_pem_x509_certificates(data)
    except ValueError as e:
        raise ConfigurationError(
            f"{what} file {path} holds a malformed PEM certificate: {e}"
        ) from None


def loadPrivateKey(path: Path) -> ServerPrivateKey:
    """
    Read the first PEM private key in a file (which may also hold
    certificates, as a combined C{server.pem} does).

    @raise ConfigurationError: if the file cannot be read, holds no PEM
        private key, or holds an encrypted one.
    """
    return parsePrivateKey(readNamedFile(path, "private key"), path)


def holdsPrivateKey(data: bytes) -> bool:
    """
    Whether C{data} has the first line of a PEM private key, whole or not:
    a file cut off inside its key still holds one, a malformed one.
    """
    return _PRIVATE_KEY_BEGIN.search(data) is not None


def parsePrivateKey(data: bytes, path: Path, what: str = "private key") -> ServerPrivateKey:
    """
    The first PEM private key in C{data}, read from C{path}.

    @param what: what the file is, for messages (C{"certificate"} for a
        certificate file that carries its key).
    @raise ConfigurationError: if C{data} holds no PEM private key, a
        malformed or encrypted one, or one that cannot sign.
    """
    match = _PRIVATE_KEY_PEM.search(data)
    if match is None:
        if holdsPrivateKey(data):
            raise ConfigurationError(
                f"{what} file {path} holds a malformed PEM private key (it has no END line)"
            )
        raise ConfigurationError(f"{what} file {path} holds no PEM private key")
    block = match.group(0)
    if match.group(1) == b"ENCRYPTED PRIVATE KEY" or b"Proc-Type: 4,ENCRYPTED" in block:
        raise ConfigurationError(
            f"{what} file {path} is encrypted; tlsreply needs an unencrypted "
            f"key (decrypt it with: openssl pkey -in {path} -out KEY.pem)"
        )
    try:
        key = serialization.load_pem_private_key(block, password=None)
    except TypeError:
        raise ConfigurationError(
            f"{what} file {path} is encrypted; tlsreply needs an unencrypted key"
        ) from None
    except (ValueError, UnsupportedAlgorithm) as e:
        raise ConfigurationError(
            f"{what} file {path} holds a malformed or unsupported key: {e}"
        ) from None
    if not isinstance(key, ServerPrivateKey):
        raise ConfigurationError(
            f"{what} file {path} holds a {type(key).__name__}, "
            "which cannot sign TLS handshakes"
        )
    return key


def parseOCSPResponse(data: bytes, path: Path) -> bytes:
    """
    Check that C{data}, read from C{path}, is a DER OCSP response.

    @return: C{data}, to staple as it is.
    @raise ConfigurationError: if it is not one.
    """
    try:
        ocsp.load_der_ocsp_response(data)
    except ValueError:
        raise ConfigurationError(
            f"OCSP response file {path} is not a DER OCSP response"
        ) from None
    return data


def _publicBytes(key: PublicKeyTypes) -> bytes:
    return key.public_bytes(
        serialization.Encoding.DER,
        serialization.PublicFormat.SubjectPublicKeyInfo,
    )


def pairCredentials(
    certificates: list[x509.Certificate],
    certificatePath: Path,
    key: ServerPrivateKey,
    keyPath: Path,
    ocspResponse: bytes | None = None,
) -> ServerCredentials:
    """
    The credentials of a leaf (the first of C{certificates}, the rest its
    chain) and its key, read from the paths given for messages.

    @raise ConfigurationError: if the key does not match the certificate.
    """
    leaf, chain = certificates[0], certificates[1:]
    if _publicBytes(key.public_key()) != _publicBytes(leaf.public_key()):
        raise ConfigurationError(
            f"private key {keyPath} does not match certificate {certificatePath}"
        )
    return ServerCredentials(leaf, key, tuple(chain), certificatePath, ocspResponse)


def loadCredentials(
    certificatePath: Path | str,
    privateKeyPath: Path | str | None = None,
    chainPath: Path | str | None = None,
    ocspResponsePath: Path | str | None = None,
) -> ServerCredentials:
    """
    Load a certificate, its private key and an optional chain.

    Like nginx's C{ssl_certificate}, the certificate file may carry the
    intermediates after the leaf; a separate chain file is appended after
    those. With no key path the key is read from the certificate file. An
    OCSP response file (DER, as C{openssl ocsp -respout} writes it) is
    stapled to handshakes whose client asks for it.

    @raise ConfigurationError: for a missing, unreadable or malformed file,
        or a key that does not match the certificate.
    """
    certificatePath = Path(certificatePath)
    keyPath = Path(privateKeyPath) if privateKeyPath is not None else certificatePath
    certificates = loadCertificates(certificatePath)
    if chainPath is not None:
        certificates += loadCertificates(Path(chainPath), "chain")
    key = loadPrivateKey(keyPath)
    ocspResponse = None
    if ocspResponsePath is not None:
        ocspResponsePath = Path(ocspResponsePath)
        ocspResponse = parseOCSPResponse(
            readNamedFile(ocspResponsePath, "OCSP response"), ocspResponsePath
        )
    return pairCredentials(certificates, certificatePath, key, keyPath, ocspResponse)


@dataclass(frozen=True)
class ValidityProblem:
    """
    Something an operator must hear about a certificate's validity dates,
    but that does not stop tlsreply from serving it.

    @ivar severity: C{"error"} (expired), C{"warn"} (not yet valid, or
        expiring within the warning window).
    @ivar message: one line that says what and when.
    """

    severity: str
    message: str


EXPIRY_WARNING_WINDOW = datetime.timedelta(days=14)


def validityProblem(
    credentials: ServerCredentials, now: datetime.datetime
) -> ValidityProblem | None:
    """
    Judge a certificate's dates at C{now} (timezone-aware, UTC).

    An expired or not-yet-valid certificate is served anyway (it is what the
    operator configured, and test setups serve such certificates on
    purpose) but must be impossible to miss in the log.
    """
    cert = credentials.certificate
    where = credentials.certificatePath or "certificate"
    notBefore, notAfter = cert.not_valid_before_utc, cert.not_valid_after_utc
    if now > notAfter:
        return ValidityProblem(
            "error", f"certificate {where} EXPIRED on {notAfter:%Y-%m-%d %H:%M:%S} UTC"
        )
    if now < notBefore:
        return ValidityProblem(
            "warn",
            f"certificate {where} is NOT YET VALID: valid from "
            f"{notBefore:%Y-%m-%d %H:%M:%S} UTC",
        )
    if notAfter - now < EXPIRY_WARNING_WINDOW:
        return ValidityProblem(
            "warn",
            f"certificate {where} expires soon, on {notAfter:%Y-%m-%d %H:%M:%S} UTC",
        )
    return None
