# -*- test-case-name: tests.test_hostilescenarios,tests.test_scenarios -*-
"""
The catalogue's hostile scenarios: a valid certificate, and a server that
misbehaves at the protocol level on purpose (L{tlsreply.scenarios.misbehaving}),
where clients' real bugs are: truncation attacks, hangs without timeouts,
replies in pieces, alerts and resets where a reply belongs.

Each names the standard that says what a correct client does; each stack's
outcome is what C{make interop} saw it do (C{docs/interop.md}), its
clients configured as a client author's code would be: reading the reply
to the end of the connection, with a timeout.
"""

from __future__ import annotations

from pathlib import Path

from twisted.internet.ssl import TLSVersion

from tlsreply.scenarios.base import (
    ACCEPT,
    NAMES,
    BuiltScenario,
    CatalogueEntry,
    refused,
    registrar,
)
from tlsreply.scenarios.ca import TestCA
from tlsreply.scenarios.misbehaving import SERVER_SECRETS
from tlsreply.tls.policy import TLSPolicy

ENTRIES: list[CatalogueEntry] = []
_scenario = registrar(ENTRIES)

#: What a client needs to see a stall as the failure it is.
TIMEOUT_REQUIRED = (
    "its own timeout (Python: a socket timeout); without one it waits until "
    "the server's stall limit (60 s by default) closes the connection"
)


def _valid(ca: TestCA, directory: Path) -> BuiltScenario:
    return BuiltScenario([ca.issueServerCertificate(NAMES)])


#: What a Python client needs to see a connection that ends without
#: close_notify as an error.
RAGGED_EOF_REQUIRED = (
    "an error for a connection that ends without close_notify (Python: "
    "wrap_socket(..., suppress_ragged_eofs=False))"
)

_scenario(
    "truncated-reply",
    refused("truncated", "EOF occurred in violation of protocol", requires=RAGGED_EOF_REQUIRED),
    """The reply, then TCP FIN without close_notify. RFC 8446 section 6.1
    (RFC 5246 section 7.2.1 for TLS 1.2) has every party send close_notify
    before it closes: without it a client cannot tell the end of the reply
    from an attacker cutting the connection, and one that takes the data
    as complete is open to truncation attacks wherever its protocol has
    no length of its own (an HTTP/1.0 response, as make interop serves
    here). OpenSSL (s_client), GnuTLS and BoringSSL report the error;
    Python's ssl hides it unless suppress_ragged_eofs=False, and Node.js,
    Java and curl (which sets SSL_OP_IGNORE_UNEXPECTED_EOF on OpenSSL 3)
    take the truncated reply as complete.""",
    misbehaviour="truncated-reply",
    outcomes={
        "openssl": refused("truncated", "unexpected eof while reading"),
        "gnutls": refused("truncated", "The TLS connection was non-properly terminated."),
        "boringssl": refused("truncated", "Connection closed abruptly"),
    },
)(_valid)

_scenario(
    "reset-after-reply",
    refused(
        "connection-reset", "EOF occurred in violation of protocol", requires=RAGGED_EOF_REQUIRED
    ),
    """The reply, then a TCP reset (SO_LINGER 0 and close) once the client
    has acknowledged it, with no close_notify. A reset aborts the
    connection (RFC 9293 section 3.10.7.4): a client reading to the end
    gets an error, not a clean end, and must not take the reply as
    complete (RFC 8446 section 6.1). Every stack tried reports the reset,
    but Python's ssl, which reads it as a ragged EOF: hidden by default,
    and worded as one with suppress_ragged_eofs=False (Python 3.11).""",
    misbehaviour="reset-after-reply",
    outcomes={
        # s_client says "read:errno=104", curl "Connection reset by peer".
        "openssl": refused("connection-reset", None),
        "node": refused("connection-reset", "ECONNRESET"),
        "java": refused("connection-reset", "Connection reset"),
        "gnutls": refused("connection-reset", "Error in the pull function."),
        "boringssl": refused("connection-reset", "Connection reset by peer"),
    },
)(_valid)

_scenario(
    "stall-handshake",
    refused("timeout", "The handshake operation timed out", requires=TIMEOUT_REQUIRED),
    """The server reads the ClientHello and never answers it. Nothing in
    TLS bounds the wait (RFC 8446 leaves timeouts to the application): a
    correct client gives up at its own handshake timeout. The server holds
    the connection until the client goes away, or closes it at its stall
    limit (60 s by default; stallLimit=, --scenario-stall-limit). make
    interop gives every client a 2 s timeout; openssl s_client and
    gnutls-cli have none, and wait until they are stopped.""",
    misbehaviour="stall-handshake",
    outcomes={
        # curl: "Connection timed out"; s_client: stopped by the harness.
        "openssl": refused("timeout", None),
        "python-ssl": refused("timeout", "The handshake operation timed out"),
        "node": refused("timeout", "timed out"),
        "java": refused("timeout", "Read timed out"),
        "gnutls": refused("timeout", None),
        "boringssl": refused("timeout", "Connection timed out"),
    },
)(_valid)

_scenario(
    "stall-after-handshake",
    refused("timeout", "The read operation timed out", requires=TIMEOUT_REQUIRED),
    """The handshake completes, then the server sends nothing: no reply,
    no close_notify. A correct client gives up at its own read timeout
    (RFC 8446 bounds no wait).
    The server holds the connection until the client goes away, or closes
    it (TCP, without close_notify) at its stall limit (60 s by default;
    stallLimit=, --scenario-stall-limit). As for stall-handshake, openssl
    s_client and gnutls-cli wait until they are stopped.""",
    misbehaviour="stall-after-handshake",
    outcomes={
        "openssl": refused("timeout", None),
        "python-ssl": refused("timeout", "The read operation timed out"),
        "node": refused("timeout", "timed out"),
        "java": refused("timeout", "Read timed out"),
        "gnutls": refused("timeout", None),
        "boringssl": refused("timeout", "Operation timed out"),
    },
)(_valid)

_scenario(
    "slow-reply",
    ACCEPT,
    """The reply one byte at a time, each in a TLS record of its own, 0.2 s
    apart (byteDelay=, --scenario-byte-delay), then close_notify: a
    correct client keeps reading
    until close_notify (RFC 8446 section 6.1), its timeout (if it has one
    for each read) never reached between two bytes.""",
    misbehaviour="slow-reply",
)(_valid)

_scenario(
    "one-byte-records",
    ACCEPT,
    """The reply in TLS records of one byte each, at once, then
    close_notify: record boundaries carry no meaning (RFC 8446 section
    5.1), and a correct client reassembles the whole reply.""",
    misbehaviour="one-byte-records",
)(_valid)


@_scenario(
    "hello-retry-request",
    ACCEPT,
    """TLS 1.3 with one key-exchange group, P-384: every client tried
    supports it, none sends a key share for it in its first ClientHello,
    so the server answers with a HelloRetryRequest and the client sends a
    second ClientHello with a P-384 key share (RFC 8446 section 4.1.4). A
    correct client completes the handshake. The connection's record says
    how many ClientHellos it took.""",
    misbehaviour="hello-retry-request",
)
def _helloRetryRequest(ca: TestCA, directory: Path) -> BuiltScenario:
    return BuiltScenario(
        [ca.issueServerCertificate(NAMES)],
        TLSPolicy(minimumVersion=TLSVersion.TLSv1_3, groups="P-384"),
    )


@_scenario(
    "renegotiation-request",
    ACCEPT,
    """TLS 1.2, and after the handshake the server asks to renegotiate (a
    HelloRequest), then sends the reply; it closes once the client has
    renegotiated, or at its stall limit (60 s by default; stallLimit=,
    --scenario-stall-limit). A client may renegotiate (securely,
    RFC 5746) or refuse with a no_renegotiation alert (RFC 5246 section
    7.4.1.1), which OpenSSL's server answers with a fatal handshake_failure;
    it must not hang. This scenario lowers the server's security on
    purpose: tlsreply otherwise never renegotiates (its policy's
    insecureServerRenegotiation, logged as a warning). OpenSSL, Python,
    Node.js and Java renegotiate. gnutls-cli starts to, and fails on the
    reply's record that arrives meanwhile (GnuTLS hands it to the
    application as GNUTLS_E_GOT_APPLICATION_DATA, which gnutls-cli treats
    as fatal); BoringSSL, which never renegotiates by default, fails on
    the HelloRequest.""",
    misbehaviour="renegotiation-request",
    outcomes={
        "gnutls": refused(
            "renegotiation", "TLS Application data were received, while expecting handshake data."
        ),
        "boringssl": refused("renegotiation", "UNEXPECTED_RECORD"),
    },
)
def _renegotiationRequest(ca: TestCA, directory: Path) -> BuiltScenario:
    return BuiltScenario(
        [ca.issueServerCertificate(NAMES)],
        TLSPolicy(maximumVersion=TLSVersion.TLSv1_2, insecureServerRenegotiation=True),
    )


@_scenario(
    "alert-instead-of-reply",
    refused("alert", "tlsv1 alert internal error"),
    """TLS 1.3; the handshake completes, then the server sends a fatal
    internal_error alert instead of the reply, and closes. A correct client
    reports the alert as an error (RFC 8446 section 6.2), not an empty
    reply. The alert is encrypted under the server's application traffic
    keys, as any record after the handshake (the server makes it itself:
    OpenSSL sends no alert on request).""",
    misbehaviour="alert-instead-of-reply",
    outcomes={
        "openssl": refused("alert", "tlsv1 alert internal error"),
        "node": refused("alert", "tlsv1 alert internal error"),
        "java": refused("alert", "Received fatal alert: internal_error"),
        "gnutls": refused("alert", "Received alert [80]: Internal error"),
        "boringssl": refused("alert", "TLSV1_ALERT_INTERNAL_ERROR"),
    },
)
def _alertInsteadOfReply(ca: TestCA, directory: Path) -> BuiltScenario:
    return BuiltScenario(
        [ca.issueServerCertificate(NAMES)],
        TLSPolicy(minimumVersion=TLSVersion.TLSv1_3),
        finishContext=SERVER_SECRETS.install,
    )


_scenario(
    "close-during-handshake",
    refused("connection-closed", "EOF occurred in violation of protocol"),
    """The server reads the ClientHello and closes TCP (a FIN) without a
    word: no ServerHello, no alert. A correct client reports the handshake
    as failed, promptly (RFC 8446 section 6.1: a closure without
    close_notify is an error). Every stack does, each in its own words
    (Debian's python3 3.11.2: "TLS/SSL connection has been closed
    (EOF)").""",
    misbehaviour="close-during-handshake",
    outcomes={
        # s_client: "unexpected eof while reading"; curl: "SSL_ERROR_SYSCALL".
        "openssl": refused("connection-closed", None),
        "python-ssl": refused("connection-closed", None),
        "node": refused(
            "connection-closed",
            "Client network socket disconnected before secure TLS connection was established",
        ),
        "java": refused("connection-closed", "Remote host terminated the handshake"),
        "gnutls": refused("connection-closed", "The TLS connection was non-properly terminated."),
        "boringssl": refused("connection-closed", "Connection closed abruptly"),
    },
)(_valid)
