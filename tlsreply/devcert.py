# -*- test-case-name: tests.test_devcert -*-
"""
A self-signed development certificate, so that C{twistd -n tlsreply} serves
TLS with no set-up at all.

It is made once in a folder (C{./certs/} of the working directory when run
from the command line) and reused on later runs until it nears expiry, so
that a client can pin or trust it (C{curl --cacert certs/dev-cert.pem}).
"""

from __future__ import annotations

import datetime
import fcntl
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tlsreply.certificates import certificateBuilder, privateKeyPEM
from tlsreply.credentials import ServerCredentials, loadCredentials
from tlsreply.errors import ConfigurationError

CERTIFICATE_NAME = "dev-cert.pem"
PRIVATE_KEY_NAME = "dev-key.pem"
LOCK_NAME = ".dev-cert.lock"
DNS_NAMES = ("localhost",)
IP_ADDRESSES = ("127.0.0.1", "::1")
LIFETIME = datetime.timedelta(days=365)
RENEW_BEFORE = datetime.timedelta(days=14)


@dataclass(frozen=True)
class DevelopmentCertificate:
    """
    Where the development certificate is and whether this run made it.
    """

    certificatePath: Path
    privateKeyPath: Path
    credentials: ServerCredentials
    created: bool


def ensureDevelopmentCertificate(
    directory: Path, now: datetime.datetime | None = None
) -> DevelopmentCertificate:
    """
    Reuse the development certificate in C{directory}, or make a new one if
    there is none, it cannot be loaded, or it expires within 14 days.

    @param directory: created if missing.
    @param now: the current time (UTC); for tests.
    @raise ConfigurationError: if the folder or files cannot be written.
    """
    if now is None:
        now = datetime.datetime.now(datetime.UTC)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        lock = os.open(directory / LOCK_NAME, os.O_WRONLY | os.O_CREAT, 0o600)
    except OSError as e:
        raise ConfigurationError(
            f"cannot create the development certificate in {directory}: "
            f"{e.strerror or e}"
        ) from None
    try:
        # Two tlsreply processes starting at once must not pair one's key
        # with the other's certificate.
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _ensure(directory, now)
    finally:
        os.close(lock)


def _ensure(directory: Path, now: datetime.datetime) -> DevelopmentCertificate:
    certificatePath = directory / CERTIFICATE_NAME
    keyPath = directory / PRIVATE_KEY_NAME
    if certificatePath.exists() and keyPath.exists():
        try:
            credentials = loadCredentials(certificatePath, keyPath)
        except ConfigurationError:
            pass  # ours and unusable: make a new one below
        else:
            if credentials.certificate.not_valid_after_utc - now > RENEW_BEFORE:
                if keyPath.stat().st_mode & 0o077:
                    keyPath.chmod(0o600)  # a private key is its owner's only
                return DevelopmentCertificate(certificatePath, keyPath, credentials, False)
    try:
        key = ec.generate_private_key(ec.SECP256R1())
        certificate = _selfSigned(key, now)
        # The key first: a certificate without its key must never be left.
        _writeAtomically(
            keyPath,
            privateKeyPEM(key),
            mode=0o600,
        )
        _writeAtomically(
            certificatePath,
            certificate.public_bytes(serialization.Encoding.PEM),
            mode=0o644,
        )
    except OSError as e:
        raise ConfigurationError(
            f"cannot create the development certificate in {directory}: "
            f"{e.strerror or e}"
        ) from None
    credentials = ServerCredentials(certificate, key, (), certificatePath)
    return DevelopmentCertificate(certificatePath, keyPath, credentials, True)


def _selfSigned(key: ec.EllipticCurvePrivateKey, now: datetime.datetime) -> x509.Certificate:
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "tlsreply"),
            x509.NameAttribute(NameOID.COMMON_NAME, "tlsreply development certificate"),
        ]
    )
    return certificateBuilder(
        role="server",
        subject=name,
        publicKey=key.public_key(),
        notBefore=now - datetime.timedelta(minutes=5),
        notAfter=now + LIFETIME,
        names=(*DNS_NAMES, *IP_ADDRESSES),
    ).sign(key, hashes.SHA256())


def _writeAtomically(path: Path, data: bytes, mode: int) -> None:
    """
    Write a file under a temporary name and rename it into place, so that a
    concurrent start never reads half a key.
    """
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise
