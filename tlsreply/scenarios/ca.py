# -*- test-case-name: tests.test_scenarios,tests.test_ocsp_stacks -*-
"""
A small certificate authority for testing TLS clients, built on
C{cryptography} alone.

It lives in the library, not in the test suite, because the people it is
for are testing their own clients against tlsreply: they need a root to
trust, intermediates, server certificates with a chosen key, lifetime and
signature hash, client certificates, and OCSP responses to staple, all made
in memory in milliseconds, with nothing left on disk unless they ask. It
does not use trustme, which is a test-only dependency and cannot make an
expired certificate, a SHA-1 signature or an OCSP response.

Every L{TestCA} makes its own keys; nothing is cached or shared between
instances, so one test's CA is never trusted by another's client.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from pathlib import Path
from typing import Final, Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp
from cryptography.x509.oid import NameOID

from tlsreply.errors import ConfigurationError
from tlsreply.scenarios._sha1 import signWithSHA1
from tlsreply.tls.certificates import (
    KeyType,
    PrivateKey,
    PublicKey,
    certificateBuilder,
    certificatesPEM,
    generatePrivateKey,
    privateKeyPEM,
)
from tlsreply.tls.credentials import ServerCredentials
from tlsreply.tls.safefiles import SECRET_MODE, writeFile

#: The private keys a L{TestCA} makes.
TestPrivateKey = PrivateKey

OCSPStatus = Literal["good", "revoked"]

#: The hashes a L{TestCA} signs certificates with. SHA-1 is here on purpose:
#: clients must be tested against it.
SignatureHash = hashes.SHA1 | hashes.SHA256 | hashes.SHA384 | hashes.SHA512

#: A server certificate's default lifetime: valid from an hour ago (so that
#: a client whose clock is a little behind still accepts it) for 30 days.
LEAF_BACKDATE: Final = datetime.timedelta(hours=1)
LEAF_LIFETIME: Final = datetime.timedelta(days=30)

#: A CA outlives every certificate it issues with the default lifetime.
CA_LIFETIME: Final = datetime.timedelta(days=365)

#: How long an OCSP response says it is fresh.
OCSP_LIFETIME: Final = datetime.timedelta(days=1)

#: How long a CRL says it is fresh (its nextUpdate).
CRL_LIFETIME: Final = datetime.timedelta(days=1)


def _nameList(names: Sequence[str]) -> list[str]:
    """
    Server names as a list; a single string is one name, not a sequence of
    one-letter names.

    @raise ConfigurationError: for no names.
    """
    found = [names] if isinstance(names, str) else list(names)
    if not found:
        raise ConfigurationError("a server certificate needs at least one name")
    return found


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _name(commonName: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "tlsreply test"),
            x509.NameAttribute(NameOID.COMMON_NAME, commonName[:64]),
        ]
    )


def _caBuilder(
    subject: x509.Name,
    publicKey: PublicKey,
    issuer: x509.Certificate | None,
    issuerKey: TestPrivateKey,
    notBefore: datetime.datetime | None = None,
    notAfter: datetime.datetime | None = None,
) -> x509.CertificateBuilder:
    now = _now()
    return certificateBuilder(
        role="ca",
        subject=subject,
        publicKey=publicKey,
        notBefore=notBefore if notBefore is not None else now - LEAF_BACKDATE,
        notAfter=notAfter if notAfter is not None else now + CA_LIFETIME,
        issuer=issuer.subject if issuer is not None else None,
        issuerPublicKey=issuerKey.public_key(),
    )


class TestCA:
    """
    A certificate authority: a root, or an intermediate made by
    L{createIntermediate} that knows the chain up to its root.

    Clients trust the root (L{root}, written by L{writeCertificate} on the
    root); servers send L{chain} after each leaf this CA issues.

    @ivar name: the CA's common name.
    @ivar certificate: this CA's own certificate.
    @ivar privateKey: the key it signs with.
    @ivar root: the self-signed root at the top of the chain (this CA's own
        certificate, for a root).
    @ivar chain: what a server sends after a leaf issued by this CA: this
        CA's certificate and the intermediates above it, issuer first, up to
        but excluding the root. Empty for a root.
    """

    # Not a test: keep pytest from trying to collect it from test modules.
    __test__ = False

    name: str
    certificate: x509.Certificate
    privateKey: TestPrivateKey
    root: x509.Certificate
    chain: tuple[x509.Certificate, ...]

    def __init__(
        self, name: str = "tlsreply test CA", keyType: KeyType = "ecdsa-p256"
    ) -> None:
        """
        Make a new self-signed root with a fresh key.

        @param name: its common name (what clients show for it).
        @param keyType: one of L{KEY_TYPES}.
        """
        key = generatePrivateKey(keyType)
        subject = _name(name)
        certificate = _caBuilder(subject, key.public_key(), None, key).sign(
            key, hashes.SHA256()
        )
        self._setUp(name, certificate, key, certificate, ())

    def _setUp(
        self,
        name: str,
        certificate: x509.Certificate,
        privateKey: TestPrivateKey,
        root: x509.Certificate,
        chain: tuple[x509.Certificate, ...],
    ) -> None:
        self.name = name
        self.certificate = certificate
        self.privateKey = privateKey
        self.root = root
        self.chain = chain

    def __repr__(self) -> str:
        return f"<TestCA {self.name!r} chain={len(self.chain)}>"

    @property
    def certificatePEM(self) -> bytes:
        """
        This CA's certificate as PEM: for a root, what a client trusts.
        """
        return certificatesPEM(self.certificate)

    def writeCertificate(self, path: Path | str) -> Path:
        """
        Write this CA's certificate as PEM (for C{curl --cacert},
        C{openssl s_client -CAfile}, C{ssl.create_default_context(cafile=)}),
        replacing the file whole and never through a symbolic link
        (L{tlsreply.tls.safefiles.writeFile}).

        @return: the path written.
        @raise OSError: if it cannot be written;
            L{tlsreply.tls.safefiles.UnsafeFileError} for a symbolic link.
        """
        path = Path(path)
        writeFile(path, self.certificatePEM)
        return path

    def createIntermediate(
        self,
        name: str,
        keyType: KeyType = "ecdsa-p256",
        *,
        notBefore: datetime.datetime | None = None,
        notAfter: datetime.datetime | None = None,
    ) -> TestCA:
        """
        Make an intermediate CA signed by this one, with a fresh key.

        @param name: its common name.
        @param keyType: one of L{KEY_TYPES}.
        @param notBefore: start of its validity (timezone-aware); default
            an hour ago.
        @param notAfter: end of its validity; default a year from now. A
            date in the past makes an expired intermediate, which still
            issues certificates (C{expired-intermediate}).
        @return: the intermediate, whose L{chain} is its own certificate
            followed by this CA's chain.
        """
        key = generatePrivateKey(keyType)
        certificate = _caBuilder(
            _name(name), key.public_key(), self.certificate, self.privateKey,
            notBefore, notAfter,
        ).sign(self.privateKey, hashes.SHA256())
        intermediate = TestCA.__new__(TestCA)
        intermediate._setUp(name, certificate, key, self.root, (certificate, *self.chain))
        return intermediate

    def issueServerCertificate(
        self,
        names: Sequence[str],
        *,
        keyType: KeyType = "ecdsa-p256",
        notBefore: datetime.datetime | None = None,
        notAfter: datetime.datetime | None = None,
        signatureHash: SignatureHash | None = None,
        sendChain: bool = True,
        privateKey: TestPrivateKey | None = None,
        subjectAltName: bool = True,
        extensions: Sequence[x509.ExtensionType] = (),
    ) -> ServerCredentials:
        """
        Issue a TLS server certificate, with a fresh key, ready to serve.

        @param names: DNS names and IP addresses it is valid for; the first
            is also its common name.
        @param keyType: one of L{KEY_TYPES}.
        @param privateKey: the key to certify instead of a fresh one of
            C{keyType} (for a key no L{KEY_TYPES} makes, like RSA-1024).
        @param notBefore: start of validity (timezone-aware); default an
            hour ago.
        @param notAfter: end of validity; default 30 days from now. Dates in
            the past or future make expired and not-yet-valid certificates.
        @param signatureHash: the hash this CA signs with; SHA-256 by
            default. C{hashes.SHA1()} makes a SHA-1 signature, which clients
            are expected to refuse.
        @param sendChain: whether the credentials carry L{chain}; without
            it, a leaf from an intermediate is served without the
            intermediate (an incomplete chain).
        @param subjectAltName: with C{False}, the names are left out of a
            subjectAltName extension, and only the first, as the common
            name, says what the certificate is for.
        @param extensions: more (non-critical) extensions, such as a CRL
            distribution point or the TLS Feature extension.
        @raise ConfigurationError: for no names or an unknown key type.
        """
        names = _nameList(names)
        key = privateKey if privateKey is not None else generatePrivateKey(keyType)
        now = _now()
        builder = certificateBuilder(
            role="server",
            subject=_name(names[0]),
            publicKey=key.public_key(),
            notBefore=notBefore if notBefore is not None else now - LEAF_BACKDATE,
            notAfter=notAfter if notAfter is not None else now + LEAF_LIFETIME,
            names=names if subjectAltName else (),
            issuer=self.certificate.subject,
            issuerPublicKey=self.privateKey.public_key(),
        )
        for extension in extensions:
            builder = builder.add_extension(extension, critical=False)
        if isinstance(signatureHash, hashes.SHA1):
            certificate = signWithSHA1(builder, self.privateKey)
        else:
            certificate = builder.sign(self.privateKey, signatureHash or hashes.SHA256())
        return ServerCredentials(certificate, key, self.chain if sendChain else ())

    def issueClientCertificate(
        self, commonName: str, *, keyType: KeyType = "ecdsa-p256"
    ) -> tuple[x509.Certificate, TestPrivateKey]:
        """
        Issue a TLS client certificate (extended key usage clientAuth) for
        a server that verifies clients against this CA.

        @return: the certificate and its fresh private key.
        """
        key = generatePrivateKey(keyType)
        now = _now()
        builder = certificateBuilder(
            role="client",
            subject=_name(commonName),
            publicKey=key.public_key(),
            notBefore=now - LEAF_BACKDATE,
            notAfter=now + LEAF_LIFETIME,
            issuer=self.certificate.subject,
            issuerPublicKey=self.privateKey.public_key(),
        )
        return builder.sign(self.privateKey, hashes.SHA256()), key

    def ocspResponse(self, credentials: ServerCredentials, status: OCSPStatus) -> bytes:
        """
        A DER OCSP response about a certificate this CA issued, signed by
        this CA, fresh from now for a day: what a server staples
        (L{ServerCredentials.ocspResponse}) so that a client that asks
        (C{openssl s_client -status}) learns the certificate's status
        without asking a responder.

        The responder is given by name, and this CA's certificate travels
        in the response, because clients look for the signer differently:
        GnuTLS by the responder's name in its trust list (a responder by
        key hash is "not found" unless its certificate is in the response
        or the chain served), OpenSSL among the certificates in the
        response and those the server sent. curl (on OpenSSL) also needs
        the certificate's issuer among those the server sent, to compute
        the certificate's ID: serve the issuer with the leaf (the
        C{revoked} scenario serves its root) for curl to check the staple.

        @param status: C{"good"} or C{"revoked"} (revoked as of now, with
            no reason given).
        @raise ConfigurationError: if this CA did not issue the certificate
            (a response from anyone else is not one clients accept), or for
            another status.
        """
        certificate = credentials.certificate
        if certificate.issuer != self.certificate.subject:
            raise ConfigurationError(
                f"{self.name!r} did not issue the certificate for "
                f"{certificate.subject.rfc4514_string()}"
            )
        statuses = {"good": ocsp.OCSPCertStatus.GOOD, "revoked": ocsp.OCSPCertStatus.REVOKED}
        if status not in statuses:
            raise ConfigurationError(
                f"unknown OCSP status {status!r} (known: {', '.join(statuses)})"
            )
        now = _now()
        response = (
            ocsp.OCSPResponseBuilder()
            .add_response(
                cert=certificate,
                issuer=self.certificate,
                algorithm=hashes.SHA1(),
                cert_status=statuses[status],
                this_update=now,
                next_update=now + OCSP_LIFETIME,
                revocation_time=now if status == "revoked" else None,
                revocation_reason=None,
            )
            .responder_id(ocsp.OCSPResponderEncoding.NAME, self.certificate)
            .certificates([self.certificate])
            .sign(self.privateKey, hashes.SHA256())
        )
        return response.public_bytes(serialization.Encoding.DER)

    def certificateRevocationList(
        self, revoked: Sequence[x509.Certificate] = (), *, number: int = 1
    ) -> x509.CertificateRevocationList:
        """
        A CRL signed by this CA, fresh from now for a day, listing these
        certificates (which this CA issued) as revoked as of now: what a
        CRL distribution point serves (DER, C{crl.public_bytes(Encoding.DER)};
        C{openssl verify -crl_download} fetches that), or what a client
        loads next to its trusted roots (PEM, for Python's
        C{load_verify_locations} with C{VERIFY_CRL_CHECK_LEAF}).

        @param number: its CRL number.
        @raise ConfigurationError: for a certificate this CA did not issue.
        """
        now = _now()
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(self.certificate.subject)
            .last_update(now - datetime.timedelta(minutes=1))
            .next_update(now + CRL_LIFETIME)
            .add_extension(x509.CRLNumber(number), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.privateKey.public_key()),
                critical=False,
            )
        )
        for certificate in revoked:
            if certificate.issuer != self.certificate.subject:
                raise ConfigurationError(
                    f"{self.name!r} did not issue the certificate for "
                    f"{certificate.subject.rfc4514_string()}"
                )
            builder = builder.add_revoked_certificate(
                x509.RevokedCertificateBuilder()
                .serial_number(certificate.serial_number)
                .revocation_date(now - datetime.timedelta(minutes=1))
                .build()
            )
        return builder.sign(self.privateKey, hashes.SHA256())


def selfSignedCertificate(
    names: Sequence[str], *, keyType: KeyType = "ecdsa-p256"
) -> ServerCredentials:
    """
    A server certificate that signs itself, valid for the usual short
    lifetime: what a client must refuse unless it trusts that very
    certificate.

    @raise ConfigurationError: for no names or an unknown key type.
    """
    names = _nameList(names)
    key = generatePrivateKey(keyType)
    now = _now()
    certificate = certificateBuilder(
        role="server",
        subject=_name(names[0]),
        publicKey=key.public_key(),
        notBefore=now - LEAF_BACKDATE,
        notAfter=now + LEAF_LIFETIME,
        names=names,
    ).sign(key, hashes.SHA256())
    return ServerCredentials(certificate, key)


def writePrivateKey(
    path: Path | str,
    key: TestPrivateKey,
    *,
    certificates: Sequence[x509.Certificate] = (),
) -> Path:
    """
    Write a private key as unencrypted PEM, readable by its owner only;
    after the certificates given, if any, which makes the one combined
    file that C{curl --cert}, Python's C{load_cert_chain(path)} and
    Twisted's C{PrivateCertificate.loadPEM} read. A file that was there is
    replaced whole (its mode too), and never written through a symbolic
    link (L{tlsreply.tls.safefiles.writeFile}).

    @return: the path written.
    @raise OSError: if it cannot be written;
        L{tlsreply.tls.safefiles.UnsafeFileError} for a symbolic link.
    """
    path = Path(path)
    writeFile(path, certificatesPEM(*certificates) + privateKeyPEM(key), mode=SECRET_MODE)
    return path
