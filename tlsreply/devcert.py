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
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tlsreply.certificates import certificateBuilder, privateKeyPEM
from tlsreply.credentials import ServerCredentials, loadCredentials
from tlsreply.errors import ConfigurationError
from tlsreply.safefiles import (
    SECRET_MODE,
    describe,
    openToAppend,
    refuseSymbolicLink,
    restrictToOwner,
    writeFile,
)

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
        # Private, like the key: never through a link, never another's.
        lock = openToAppend(directory / LOCK_NAME, secret=True)
    except OSError as e:
        raise _cannotCreate(directory, e) from None
    with lock:
        # Two tlsreply processes starting at once must not pair one's key
        # with the other's certificate.
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        return _ensure(directory, now)


def _cannotCreate(directory: Path, error: OSError) -> ConfigurationError:
    return ConfigurationError(
        f"cannot create the development certificate in {directory}: {describe(error)}"
    )


def _ensure(directory: Path, now: datetime.datetime) -> DevelopmentCertificate:
    certificatePath = directory / CERTIFICATE_NAME
    keyPath = directory / PRIVATE_KEY_NAME
    try:
        # tlsreply makes and renews these files itself: it reads none
        # through a link either (see tlsreply.safefiles).
        refuseSymbolicLink(certificatePath)
        refuseSymbolicLink(keyPath)
        if certificatePath.exists() and keyPath.exists():
            try:
                credentials = loadCredentials(certificatePath, keyPath)
            except ConfigurationError:
                pass  # ours and unusable: make a new one below
            else:
                if credentials.certificate.not_valid_after_utc - now > RENEW_BEFORE:
                    restrictToOwner(keyPath)  # a private key is its owner's only
                    return DevelopmentCertificate(
                        certificatePath, keyPath, credentials, False
                    )
        key = ec.generate_private_key(ec.SECP256R1())
        certificate = _selfSigned(key, now)
        # The key first: a certificate without its key must never be left;
        # each replaced whole, so that a concurrent start never reads half
        # a key.
        writeFile(keyPath, privateKeyPEM(key), mode=SECRET_MODE)
        writeFile(
            certificatePath, certificate.public_bytes(serialization.Encoding.PEM), mode=0o644
        )
    except OSError as e:
        raise _cannotCreate(directory, e) from None
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
