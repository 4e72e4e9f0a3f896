# -*- test-case-name: tests.test_endings, tests.test_metrics -*-
"""
How a connection ended, as a value: a kind from a closed set, for what
counts connections (the metrics), and a text, for people (the log line).

An L{Ending} is made where the cause is known: the registry's deadlines
make a timeout's, the PROXY header parser a refused header's, the shutdown
an abort's, and L{tlsreply.protocol.endingFromFailure} the one of a
connection that Twisted or OpenSSL ended. Rewording a text then moves no
metric's label. OpenSSL's own reason strings (C{"no shared cipher"},
C{"tlsv1 alert unknown ca"}) are the only text still classified, here, by
L{openSSLKind}: OpenSSL names its failures only in words.
"""

from __future__ import annotations

from typing import Final, Literal, NamedTuple

#: Every kind of ending, and so every value of
#: C{tlsreply_handshake_failures_total}'s C{reason} label: the label's
#: cardinality is fixed whatever clients send.
EndingKind = Literal[
    "timeout",
    "client_closed",
    "no_shared_cipher",
    "unsupported_version",
    "not_tls",
    "alert",
    "client_certificate",
    "aborted",
    "proxy_header",
    "other",
]

#: A timeout expired: the handshake's (L{tlsreply.connection.registry}),
#: or after the handshake, the close's.
TIMEOUT: Final = "timeout"
#: The client closed or reset the connection (before the handshake ended,
#: a TCP health check that connects and closes; after it, the end of a
#: connection that was replied to).
CLIENT_CLOSED: Final = "client_closed"
#: Nothing in common: cipher suites, signature algorithms or groups.
NO_SHARED_CIPHER: Final = "no_shared_cipher"
#: The client offered no TLS version the server allows.
UNSUPPORTED_VERSION: Final = "unsupported_version"
#: The bytes were not TLS (plain HTTP, an SSLv2 hello, noise).
NOT_TLS: Final = "not_tls"
#: The client refused the server with an alert (most often: it does not
#: trust the certificate).
ALERT: Final = "alert"
#: The client sent no client certificate, or one that does not verify
#: (C{--verify-client require}).
CLIENT_CERTIFICATE: Final = "client_certificate"
#: tlsreply aborted the connection: the shutdown's grace expired, a second
#: stop signal, an internal error.
ABORTED: Final = "aborted"
#: A C{haproxy:} port refused the connection's PROXY header (or it had
#: none): L{tlsreply.transport.proxyheader}.
PROXY_HEADER: Final = "proxy_header"
#: Anything else (a malformed or unexpected message, ...).
OTHER: Final = "other"

#: Every L{EndingKind}, in the order the metrics export them.
ENDING_KINDS: Final[tuple[EndingKind, ...]] = (
    TIMEOUT,
    CLIENT_CLOSED,
    NO_SHARED_CIPHER,
    UNSUPPORTED_VERSION,
    NOT_TLS,
    ALERT,
    CLIENT_CERTIFICATE,
    ABORTED,
    PROXY_HEADER,
    OTHER,
)


class Ending(NamedTuple):
    """
    How one connection ended.

    A tuple, for its cost: one is made per connection that does not end in
    one of the shared endings below (L{PEER_CLOSED}, ...).

    @ivar kind: what the metrics count.
    @ivar text: what the log line says, unescaped (the report escapes it).
    """

    kind: EndingKind
    text: str

    def after(self, did: str) -> Ending:
        """
        The same ending, its text after what led to it (a test scenario's
        misbehaviour: C{"stalled: ...; peer closed the connection"}).
        """
        return Ending(self.kind, f"{did}; {self.text}")


#: The client closed cleanly (Twisted's C{ConnectionDone}).
PEER_CLOSED: Final = Ending(CLIENT_CLOSED, "peer closed the connection")
#: A TCP connection ended without close_notify, at its end or by a reset.
PEER_LOST_TCP: Final = Ending(CLIENT_CLOSED, "peer closed TCP without close_notify, or reset it")
#: A Unix socket connection ended without close_notify.
PEER_LOST_UNIX: Final = Ending(CLIENT_CLOSED, "peer closed the connection without close_notify")
#: Twisted aborted the connection (C{ConnectionAborted}).
CONNECTION_ABORTED: Final = Ending(ABORTED, "connection aborted")
#: Something asked the transport to abort (its C{abortConnection}).
ABORT_REQUESTED: Final = Ending(ABORTED, "aborted")
#: A fault in tlsreply while starting the connection.
INTERNAL_ERROR: Final = Ending(ABORTED, "internal error")

#: (substring, kind) for OpenSSL's reason strings (C{ssl/ssl_err.c}),
#: lower case; the first match wins.
_OPENSSL_RULES: Final[tuple[tuple[str, EndingKind], ...]] = (
    ("unexpected eof", CLIENT_CLOSED),
    ("internal error", ABORTED),
    ("no shared cipher", NO_SHARED_CIPHER),
    ("no shared signature", NO_SHARED_CIPHER),
    ("no suitable signature", NO_SHARED_CIPHER),
    ("no suitable key share", NO_SHARED_CIPHER),
    ("no shared group", NO_SHARED_CIPHER),
    ("unsupported protocol", UNSUPPORTED_VERSION),
    ("version too low", UNSUPPORTED_VERSION),
    ("version too high", UNSUPPORTED_VERSION),
    ("alert protocol version", UNSUPPORTED_VERSION),
    ("inappropriate fallback", UNSUPPORTED_VERSION),
    ("http request", NOT_TLS),
    ("http proxy request", NOT_TLS),
    ("wrong version number", NOT_TLS),
    ("unknown protocol", NOT_TLS),
    ("length too long", NOT_TLS),
    ("record layer failure", NOT_TLS),
    ("peer did not return a certificate", CLIENT_CERTIFICATE),
    ("certificate verify failed", CLIENT_CERTIFICATE),
    ("alert", ALERT),
)


def openSSLKind(reasons: str) -> EndingKind:
    """
    The kind of a failure OpenSSL reported, from its reason strings
    (L{tlsreply.errors.openSSLReasons}): the one place text is classified.
    """
    text = reasons.lower()
    for substring, kind in _OPENSSL_RULES:
        if substring in text:
            return kind
    return OTHER


#: OpenSSL's reason strings seen, and their endings: made and classified
#: once each. They come from OpenSSL's tables (an alert's description, not
#: the peer's words), so there are few; the bound is for safety.
_openSSLEndings: dict[str, Ending] = {}
_OPENSSL_ENDINGS_LIMIT: Final = 256


def openSSLEnding(reasons: str) -> Ending:
    """
    The ending of a connection OpenSSL failed, worded in its own reason
    strings.
    """
    ending = _openSSLEndings.get(reasons)
    if ending is None:
        ending = Ending(openSSLKind(reasons), reasons)
        if len(_openSSLEndings) < _OPENSSL_ENDINGS_LIMIT:
            _openSSLEndings[reasons] = ending
    return ending


__all__ = [
    "ABORTED",
    "ABORT_REQUESTED",
    "ALERT",
    "CLIENT_CERTIFICATE",
    "CLIENT_CLOSED",
    "CONNECTION_ABORTED",
    "ENDING_KINDS",
    "INTERNAL_ERROR",
    "NOT_TLS",
    "NO_SHARED_CIPHER",
    "OTHER",
    "PEER_CLOSED",
    "PEER_LOST_TCP",
    "PEER_LOST_UNIX",
    "PROXY_HEADER",
    "TIMEOUT",
    "UNSUPPORTED_VERSION",
    "Ending",
    "EndingKind",
    "openSSLEnding",
    "openSSLKind",
]
