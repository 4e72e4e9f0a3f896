# -*- test-case-name: tests.test_issuing -*-
"""
Certificates on demand from a test server's CA, as files ready for
C{load_cert_chain}: C{server.ca} of the fixtures and of
L{startTLSReplyServer <tlsreply.testing.server.startTLSReplyServer>}.

A test that needs a client certificate (or three, or a server certificate
for a server of its own) asks the CA its client already trusts::

    alice = server.ca.issueClientCertificate("alice")
    context = ssl.create_default_context(cafile=server.caCertificatePath)
    context.load_cert_chain(alice.certificatePath, alice.privateKeyPath)

A server that verifies clients (C{client-cert-required}) trusts every
client certificate its CA issues, whenever it was issued.
"""

from __future__ import annotations

import itertools
import re
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509

from tlsreply.errors import ConfigurationError
from tlsreply.scenarios.ca import KeyType, TestCA, TestPrivateKey, writePrivateKey
from tlsreply.tls.certificates import certificatesPEM, generatePrivateKey, privateKeyPEM
from tlsreply.tls.credentials import ServerCredentials
from tlsreply.tls.safefiles import writeFile

#: The folder, inside a test server's folder, that issued certificates are
#: written to.
ISSUED_DIRECTORY = "issued"


@dataclass(frozen=True)
class IssuedCertificate:
    """
    A certificate from the test CA and its private key, in memory and as
    files.

    @ivar certificate: the certificate.
    @ivar privateKey: its private key.
    @ivar chain: the intermediates between it and the root a client
        trusts, issuer first (none when the test CA is a root).
    @ivar certificatePath: the certificate followed by its chain, as PEM:
        what a client or server sends, and what C{load_cert_chain},
        C{curl --cert} and C{openssl s_client -cert} read.
    @ivar privateKeyPath: the private key alone, as unencrypted PKCS#8 PEM,
        readable by its owner only.
    """

    # Not a test: keep pytest from trying to collect it from test modules.
    __test__ = False

    certificate: x509.Certificate
    privateKey: TestPrivateKey
    chain: tuple[x509.Certificate, ...]
    certificatePath: Path
    privateKeyPath: Path

    @property
    def certificatePEM(self) -> bytes:
        """
        The certificate followed by its chain, as PEM (what
        L{certificatePath} holds).
        """
        return certificatesPEM(self.certificate, *self.chain)

    @property
    def privateKeyPEM(self) -> bytes:
        """
        The private key as unencrypted PKCS#8 PEM (what L{privateKeyPath}
        holds).
        """
        return privateKeyPEM(self.privateKey)

    def configure(self, context: ssl.SSLContext) -> None:
        """
        Make a Python C{ssl} context present this certificate:
        C{context.load_cert_chain(certificatePath, privateKeyPath)}.
        """
        context.load_cert_chain(self.certificatePath, self.privateKeyPath)

    @property
    def credentials(self) -> ServerCredentials:
        """
        The certificate, key and chain as a tlsreply server takes them
        (L{tlsreply.buildServerContexts}).
        """
        return ServerCredentials(self.certificate, self.privateKey, self.chain, self.certificatePath)


class IssuingCA:
    """
    A test server's CA, issuing certificates as files: the server's
    C{ca}.

    @ivar testCA: the CA itself (L{TestCA}), which signs; a client trusts
        its root.
    @ivar directory: where issued certificates are written, beside the
        server's other files (the fixtures' are in pytest's temporary
        folder; those of L{startTLSReplyServer
        <tlsreply.testing.server.startTLSReplyServer>} are removed at the
        test's end).
    """

    def __init__(self, testCA: TestCA, directory: Path) -> None:
        self.testCA = testCA
        self.directory = directory
        self._serial = itertools.count(1)

    def __repr__(self) -> str:
        return f"<IssuingCA {self.testCA.name!r} in {self.directory}>"

    @property
    def certificatePEM(self) -> bytes:
        """
        The root certificate, as PEM: what a client trusts (the server's
        C{caCertificatePEM}).
        """
        return certificatesPEM(self.testCA.root)

    def issueClientCertificate(
        self, name: str, *, keyType: KeyType = "ecdsa-p256"
    ) -> IssuedCertificate:
        """
        Issue a TLS client certificate (extended key usage clientAuth) for
        C{name}, with a fresh key, and write it to files (never through a
        symbolic link: L{tlsreply.tls.safefiles}).

        @param name: its common name, which the server's records show
            (C{ConnectionRecord.clientCertificate}).
        @param keyType: one of C{ecdsa-p256}, C{ecdsa-p384}, C{rsa2048},
            C{rsa4096}.
        @raise ConfigurationError: for an empty name or an unknown key
            type.
        """
        if not isinstance(name, str) or not name:
            raise ConfigurationError(
                f"issueClientCertificate: the name must be a non-empty string, not {name!r}"
            )
        certificate, key = self.testCA.issueClientCertificate(name, keyType=keyType)
        return self._write(name, certificate, key)

    def issueServerCertificate(
        self, names: Sequence[str], *, keyType: KeyType = "ecdsa-p256"
    ) -> IssuedCertificate:
        """
        Issue a TLS server certificate for C{names} (DNS names and IP
        addresses; the first is also its common name), valid from an hour
        ago for 30 days, with a fresh key, and write it to files: for a
        server of the test's own that the server's clients will trust.

        @raise ConfigurationError: for no names or an unknown key type.
        """
        key = generatePrivateKey(keyType)
        credentials = self.testCA.issueServerCertificate(names, privateKey=key)
        return self._write(credentials.subjectNames[0], credentials.certificate, key)

    def _write(
        self, name: str, certificate: x509.Certificate, key: TestPrivateKey
    ) -> IssuedCertificate:
        self.directory.mkdir(parents=True, exist_ok=True)
        stem = f"{next(self._serial):03d}-{re.sub(r'[^A-Za-z0-9.-]+', '_', name)[:40]}"
        chain = self.testCA.chain
        certificatePath = self.directory / f"{stem}.pem"
        writeFile(certificatePath, certificatesPEM(certificate, *chain))
        keyPath = writePrivateKey(self.directory / f"{stem}.key", key)
        return IssuedCertificate(certificate, key, chain, certificatePath, keyPath)
