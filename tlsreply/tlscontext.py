# -*- test-case-name: tests.test_wire -*-
"""
The server's TLS context: Twisted's L{CertificateOptions}, finished with the
seed's defaults where they differ from Twisted's.

The context is built once, completely, before the first connection:
pyOpenSSL refuses to change a context once a connection has been made from
it, and every connection must see the same policy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from OpenSSL import SSL
from twisted.internet.ssl import (
    AcceptableCiphers,
    CertificateOptions,
    TLSVersion,
)

from tlsreply import _openssl
from tlsreply.credentials import ServerCredentials

#: The TLS 1.2 cipher suites offered by default, in the server's order of
#: preference: forward-secret ECDHE key exchange with AEAD ciphers only
#: (Mozilla's "intermediate" profile without its finite-field DHE suites).
#: Twisted's default list still admits static-RSA key exchange and CBC.
#: TLS 1.3 suites are OpenSSL's defaults, all of which are AEAD.
DEFAULT_TLS12_CIPHERS: Final = ":".join(
    [
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        "ECDHE-RSA-AES128-GCM-SHA256",
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        "ECDHE-RSA-AES256-GCM-SHA384",
        "ECDHE-ECDSA-CHACHA20-POLY1305",
        "ECDHE-RSA-CHACHA20-POLY1305",
    ]
)

#: The session ID context: a session is only resumed by a context with the
#: same value. Twisted picks a random one for every context; a fixed one says
#: plainly what may resume what.
SESSION_ID_CONTEXT: Final = b"tlsreply"


_VERSION_NAMES: Final = {
    TLSVersion.TLSv1_2: "TLSv1.2",
    TLSVersion.TLSv1_3: "TLSv1.3",
}


@dataclass(frozen=True)
class TLSPolicy:
    """
    The protocol-level choices tlsreply makes, independent of certificates.

    The defaults are the seed's: the highest version the client offers from
    TLS 1.2 to 1.3, OpenSSL's automatic ECDHE group choice, a server-side
    session cache and session tickets so that clients can resume, no early
    data, no compression, no renegotiation.

    @ivar sessionCache: keep a server-side session cache (resumption by
        session ID in TLS 1.2; Twisted's default is off).
    @ivar sessionTickets: issue session tickets (stateless resumption; off
        by default in Twisted).
    @ivar tls12Ciphers: OpenSSL cipher string for TLS 1.2, in preference
        order.
    """

    sessionCache: bool = True
    sessionTickets: bool = True
    tls12Ciphers: str = DEFAULT_TLS12_CIPHERS
    minimumVersion: TLSVersion = TLSVersion.TLSv1_2
    maximumVersion: TLSVersion = TLSVersion.TLSv1_3

    def describe(self) -> dict[str, Any]:
        """
        The effective settings as plain values, for the start-up log.
        """
        return {
            "versions": f"{_VERSION_NAMES[self.minimumVersion]}"
            f"-{_VERSION_NAMES[self.maximumVersion]}",
            "groups": "OpenSSL automatic",
            "sessionCache": self.sessionCache,
            "sessionTickets": self.sessionTickets,
            "tls12Ciphers": self.tls12Ciphers,
            "earlyData": "refused",
            "compression": "off",
            "renegotiation": "off",
        }


def _selectNoProtocol(connection: SSL.Connection, offered: list[bytes]) -> Any:
    """
    ALPN selection for a server that speaks no application protocol.

    Twisted's own callback answers a client that offers ALPN (curl, browsers,
    every HTTP library) with an empty protocol name when nothing overlaps,
    and OpenSSL then aborts the handshake with C{internal_error}. Declining
    to acknowledge ALPN is what RFC 7301 allows and what OpenSSL does with no
    callback at all: the handshake goes on with no protocol negotiated.
    """
    return SSL.NO_OVERLAPPING_PROTOCOLS


def buildCertificateOptions(
    credentials: ServerCredentials, policy: TLSPolicy | None = None
) -> CertificateOptions:
    """
    Build the L{CertificateOptions} for a tlsreply server, with its context
    already made and finished.

    Twisted's C{CertificateOptions} has no argument for several of the
    settings (early data, renegotiation, ALPN without protocols, the session
    ID context), so they are applied to its context right after it is made
    and before any connection uses it; C{getContext()} then keeps returning
    that same finished context.

    @param credentials: the certificate, key and chain to serve.
    @param policy: protocol choices; the seed's defaults when L{None}.
    @return: options ready to hand to L{TLSMemoryBIOFactory}.
    """
    if policy is None:
        policy = TLSPolicy()
    _openssl.checkBinding()
    options = CertificateOptions(
        # pyOpenSSL accepts cryptography's key and certificate objects;
        # Twisted's annotations still name pyOpenSSL's deprecated wrappers.
        privateKey=credentials.privateKey,  # type: ignore[arg-type]
        certificate=credentials.certificate,  # type: ignore[arg-type]
        extraCertChain=list(credentials.chain),  # type: ignore[arg-type]
        raiseMinimumTo=policy.minimumVersion,
        lowerMaximumSecurityTo=policy.maximumVersion,
        enableSessions=policy.sessionCache,
        enableSessionTickets=policy.sessionTickets,
        acceptableCiphers=AcceptableCiphers.fromOpenSSLCipherString(
            policy.tls12Ciphers
        ),
    )
    context = options.getContext()
    context.set_options(SSL.OP_NO_RENEGOTIATION)
    context.set_session_id(SESSION_ID_CONTEXT)
    _openssl.refuseEarlyData(context)
    context.set_alpn_select_callback(_selectNoProtocol)
    return options
