# -*- test-case-name: tests.test_scenarios -*-
"""
Whether this OpenSSL can serve a SHA-1-signed certificate, and under which
policy, for the C{sha1-signature} scenario.

OpenSSL 3 refuses SHA-1 signatures at its default security level, and some
builds refuse them at every level; which one is in use can only be found
by trying. The answer is found once, by a handshake in memory, and kept:
it cannot change while the process runs. (Making such a certificate is
L{tlsreply.scenarios._sha1}'s job; this module needs the test CA, which that
one may not import.)
"""

from __future__ import annotations

import functools
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from OpenSSL import SSL

from tlsreply.errors import ConfigurationError
from tlsreply.scenarios.ca import TestCA
from tlsreply.tls.contexts import buildServerContexts
from tlsreply.tls.policy import DEFAULT_TLS12_CIPHERS, TLSPolicy

#: Appended to the TLS 1.2 cipher string when the default security level
#: refuses to serve a SHA-1 certificate.
SECURITY_LEVEL_0: Final = ":@SECLEVEL=0"

#: The name the probe's certificate is for, and its client asks for.
_PROBE_NAME: Final = "localhost"


@functools.cache
def sha1Support() -> tuple[TLSPolicy | None, str | None]:
    """
    The policy under which this OpenSSL serves a SHA-1-signed certificate
    (the default one if it can, else security level 0), or the reason it
    cannot; found once, by a handshake in memory.
    """
    version = SSL.OpenSSL_version(SSL.OPENSSL_VERSION).decode("ascii", "replace")
    try:
        credentials = TestCA("tlsreply SHA-1 probe CA").issueServerCertificate(
            [_PROBE_NAME], signatureHash=hashes.SHA1()
        )
    except Exception as e:
        return None, f"cannot sign a certificate with SHA-1 here ({version}): {e}"
    problems = []
    for policy in (TLSPolicy(), TLSPolicy(tls12Ciphers=DEFAULT_TLS12_CIPHERS + SECURITY_LEVEL_0)):
        try:
            served = _servedCertificate(buildServerContexts(credentials, policy).fallback)
        except (SSL.Error, ConfigurationError) as e:
            problems.append(str(e) or type(e).__name__)
            continue
        if served == credentials.certificate:
            return policy, None
        problems.append("the client did not receive the certificate")
    return None, (
        f"{version} does not serve a SHA-1-signed certificate, even at security "
        f"level 0: {'; '.join(problems)}"
    )


def _servedCertificate(context: SSL.Context) -> x509.Certificate | None:
    """
    Hand-shake in memory with a server made from C{context}, as a client
    that verifies nothing, and return the certificate it received.
    """
    clientContext = SSL.Context(SSL.TLS_CLIENT_METHOD)
    clientContext.set_cipher_list(b"DEFAULT" + SECURITY_LEVEL_0.encode())
    client = SSL.Connection(clientContext, None)
    client.set_connect_state()
    client.set_tlsext_host_name(_PROBE_NAME.encode())
    server = SSL.Connection(context, None)
    server.set_accept_state()
    done = {client: False, server: False}
    for _ in range(20):
        for this, other in ((client, server), (server, client)):
            if not done[this]:
                try:
                    this.do_handshake()
                    done[this] = True
                except SSL.WantReadError:
                    pass
            while True:
                try:
                    data = this.bio_read(65536)
                except SSL.WantReadError:
                    break
                other.bio_write(data)
        if all(done.values()):
            return client.get_peer_certificate(as_cryptography=True)
    raise SSL.Error("the in-memory handshake did not finish")
