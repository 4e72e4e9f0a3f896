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

from tlsreply.errors import ConfigurationError
from tlsreply.tls.certificates import certificateBuilder, privateKeyPEM
from tlsreply.tls.credentials import ServerCredentials, loadCredentials
from tlsreply.tls.safefiles import (
    SECRET_MODE,
    UnsafeFileError,
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

    @ivar created: this run made it; from L{prepareDevelopmentCertificate},
        it is then only in memory until L{saveDevelopmentCertificate}.
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
    return saveDevelopmentCertificate(prepareDevelopmentCertificate(directory, now), now)


def prepareDevelopmentCertificate(
    directory: Path, now: datetime.datetime | None = None
) -> DevelopmentCertificate:
    """
    The development certificate in C{directory} if it can be reused (see
    L{ensureDevelopmentCertificate}), or else a new one made in memory
    (C{created}), without writing anything: the command line saves it with
    L{saveDevelopmentCertificate} once the server listens, so that a server
    that fails to start leaves C{./certs/} as it was.

    @param now: the current time (UTC); for tests.
    """
    if now is None:
        now = datetime.datetime.now(datetime.UTC)
    try:
        existing = _reusable(directory, now)
    except OSError as e:
        raise _cannotCreate(directory, e) from None
    if existing is not None:
        return existing
    key = ec.generate_private_key(ec.SECP256R1())
    certificate = _selfSigned(key, now)
    credentials = ServerCredentials(certificate, key, (), directory / CERTIFICATE_NAME)
    return DevelopmentCertificate(
        directory / CERTIFICATE_NAME, directory / PRIVATE_KEY_NAME, credentials, True
    )


def saveDevelopmentCertificate(
    prepared: DevelopmentCertificate, now: datetime.datetime | None = None
) -> DevelopmentCertificate:
    """
    Write a certificate that L{prepareDevelopmentCertificate} made into
    place, creating its folder; a reused one only gets its key's mode
    tightened to 0600.

    If another process saved a usable one meanwhile (two first starts at
    once), that one is kept and returned instead (not C{created}): every
    process must serve the certificate that clients find on disk.

    @raise ConfigurationError: if the folder or files cannot be written.
    """
    if not prepared.created:
        try:
            # A private key is its owner's only (on the open file, never
            # through a link).
            restrictToOwner(prepared.privateKeyPath)
        except OSError as e:
            raise _cannotCreate(prepared.certificatePath.parent, e) from None
        return prepared
    if now is None:
        now = datetime.datetime.now(datetime.UTC)
    directory = prepared.certificatePath.parent
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
        existing = _reusable(directory, now)
        if existing is not None:
            return existing
        key = prepared.credentials.privateKey
        assert isinstance(key, ec.EllipticCurvePrivateKey)  # made by prepare
        try:
            # The key first: a certificate without its key must never be
            # left; each replaced whole (never through a link), so that a
            # concurrent start never reads half a key.
            writeFile(prepared.privateKeyPath, privateKeyPEM(key), mode=SECRET_MODE)
            writeFile(
                prepared.certificatePath,
                prepared.credentials.certificate.public_bytes(serialization.Encoding.PEM),
                mode=0o644,
            )
        except OSError as e:
            raise _cannotCreate(directory, e) from None
        return prepared


def _cannotCreate(directory: Path, error: OSError) -> ConfigurationError:
    return ConfigurationError(
        f"cannot create the development certificate in {directory}: {describe(error)}"
    )


def _reusable(directory: Path, now: datetime.datetime) -> DevelopmentCertificate | None:
    """
    The certificate and key in C{directory}, if they load, match and stay
    valid for more than 14 days; else C{None} (ours and unusable: a new one
    replaces them).
    """
    certificatePath = directory / CERTIFICATE_NAME
    keyPath = directory / PRIVATE_KEY_NAME
    # tlsreply makes and renews these files itself: it reads none through a
    # link either (see tlsreply.tls.safefiles).
    try:
        refuseSymbolicLink(certificatePath)
        refuseSymbolicLink(keyPath)
    except UnsafeFileError:
        raise
    except OSError:
        return None  # no folder to read (saving will say why)
    if not (certificatePath.exists() and keyPath.exists()):
        return None
    try:
        credentials = loadCredentials(certificatePath, keyPath)
    except ConfigurationError:
        return None
    if credentials.certificate.not_valid_after_utc - now <= RENEW_BEFORE:
        return None
    return DevelopmentCertificate(certificatePath, keyPath, credentials, False)


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
