# -*- test-case-name: tests.test_openssl_binding,tests.test_servername_ack -*-
"""
The one place where tlsreply uses pyOpenSSL's private binding.

pyOpenSSL has no public API for these things tlsreply needs:

  - whether a connection resumed a session (C{SSL_session_reused}), which
    the connection log reports;
  - a context's early-data limit (C{SSL_CTX_set_max_early_data}), which
    tlsreply pins to zero so that 0-RTT is never accepted, whatever a
    future OpenSSL default might be;
  - the key-exchange groups (C{SSL_CTX_set1_curves_list}, which OpenSSL
    1.1.1 and later also call C{SSL_CTX_set1_groups_list});
  - the result of verifying a client certificate (C{SSL_get_verify_result}
    and C{X509_verify_cert_error_string}), and a verify callback that
    accepts every certificate without erasing that result (pyOpenSSL's own
    callback wrapper resets it to "ok" whenever the callback accepts);
  - a session ID context per connection, set on the context just before
    the connection is made from it (C{SSL_CTX_set_session_id_context}):
    pyOpenSSL can set it only once per context, and has no per-connection
    call.
  - a servername callback that costs no more than OpenSSL's call into
    Python (C{SSL_CTX_set_tlsext_servername_callback}): pyOpenSSL's own
    wrapper also finds the connection's Python object on every handshake.

Everything that touches C{OpenSSL._util.lib} lives here, so that a pyOpenSSL
release that drops one of these symbols fails loudly at start-up (through
L{checkBinding}) and in this module's test, not quietly at the first
connection.
"""

from typing import Final

from OpenSSL import SSL
from OpenSSL._util import ffi as _ffi
from OpenSSL._util import lib as _lib

from tlsreply.errors import ConfigurationError

REQUIRED_SYMBOLS: Final = (
    "SSL_session_reused",
    "SSL_CTX_set_max_early_data",
    "SSL_CTX_set1_curves_list",
    "SSL_get_verify_result",
    "X509_verify_cert_error_string",
    "SSL_CTX_set_verify",
    "SSL_CTX_set_session_id_context",
    "SSL_get_certificate",
    "SSL_get_version",
    "SSL_get_current_cipher",
    "SSL_CIPHER_get_name",
    "SSL_get_session",
    "SSL_get0_group_name",
    "SSL_get_servername",
    "SSL_get0_alpn_selected",
    "SSL_get_verify_mode",
    "SSL_CTX_set_tlsext_servername_callback",
)


class MissingBindingError(RuntimeError):
    """
    The installed pyOpenSSL lacks a private binding that tlsreply needs.
    """


def checkBinding() -> None:
    """
    Fail at start-up, not at the first connection, if pyOpenSSL's private
    binding lost a symbol tlsreply depends on.

    @raise MissingBindingError: naming the missing symbols.
    """
    missing = [name for name in REQUIRED_SYMBOLS if not hasattr(_lib, name)]
    missing += [
        f"SSL.{cls.__name__}.{method}"
        for cls, method in ((SSL.Connection, "get_group_name"),
                            (SSL.Context, "set_tls13_ciphersuites"))
        if not hasattr(cls, method)
    ]
    if missing:
        raise MissingBindingError(
            "pyOpenSSL's private binding lacks " + ", ".join(missing)
            + "; install a pyOpenSSL release that has them"
        )


def sessionReused(connection: SSL.Connection) -> bool:
    """
    Did this connection resume an earlier session (by ticket or session ID)?
    """
    return bool(_lib.SSL_session_reused(connection._ssl))


#: The names of protocol versions and ciphers, by the address of OpenSSL's
#: own string: both point into OpenSSL's static tables, so each is decoded
#: once. (Group names are not cached: a context owns its copy of them.)
_staticNames: dict[object, str] = {}

_NULL = _ffi.NULL
_HOST_NAME = _lib.TLSEXT_NAMETYPE_host_name


def _staticName(pointer: object) -> str | None:
    if pointer == _NULL:
        return None
    name = _staticNames.get(pointer)
    if name is None:
        name = _staticNames[pointer] = _ffi.string(pointer).decode("ascii", "replace")
    return name


def negotiated(
    connection: SSL.Connection,
) -> tuple[str, str | None, str | None, bool, bytes | None, bytes | None, bool]:
    """
    What a connection negotiated, read straight from OpenSSL right after
    its handshake, for its log line: protocol version, cipher, key-exchange
    group, whether it resumed a session, the server name asked for, the
    ALPN protocol chosen, and whether the peer may have sent a certificate
    (whether the connection asked for one).

    The same as pyOpenSSL's C{get_protocol_version_name}, C{get_cipher_name},
    C{get_group_name}, C{get_servername} and C{get_alpn_proto_negotiated},
    in one call: those cost 10 to 11 microseconds a connection together,
    this about 5 (C{bench/connectioncalls.py}), on every connection's path.
    """
    ssl = connection._ssl
    version = _staticName(_lib.SSL_get_version(ssl)) or "unknown"
    cipher = _lib.SSL_get_current_cipher(ssl)
    cipherName = _staticName(_lib.SSL_CIPHER_get_name(cipher)) if cipher != _NULL else None
    group = None
    # As pyOpenSSL does: SSL_get0_group_name needs an established session.
    if _lib.SSL_get_session(ssl) != _NULL:
        groupName = _lib.SSL_get0_group_name(ssl)
        if groupName != _NULL:
            group = _ffi.string(groupName).decode("ascii", "replace")
    serverName = _lib.SSL_get_servername(ssl, _HOST_NAME)
    data = _ffi.new("unsigned char **")
    length = _ffi.new("unsigned int *")
    _lib.SSL_get0_alpn_selected(ssl, data, length)
    return (
        version,
        cipherName,
        group,
        bool(_lib.SSL_session_reused(ssl)),
        _ffi.string(serverName) if serverName != _NULL else None,
        _ffi.buffer(data[0], length[0])[:] if length[0] else None,
        _lib.SSL_get_verify_mode(ssl) != 0,
    )


def refuseEarlyData(context: SSL.Context) -> None:
    """
    Make the context advertise, and accept, no TLS 1.3 early data at all.

    OpenSSL's server default is already zero; setting it explicitly keeps the
    guarantee independent of that default. A client that offers 0-RTT then
    gets an ordinary 1-RTT handshake.
    """
    if _lib.SSL_CTX_set_max_early_data(context._context, 0) != 1:
        raise MissingBindingError("SSL_CTX_set_max_early_data(ctx, 0) failed")


def checkGroups(groups: str, probe: SSL.Context | None = None) -> list[str]:
    """
    Ask OpenSSL about each key-exchange group of a list (C{"X25519:P-256"}),
    on C{probe} or a context made for the purpose, so that an unknown one
    is named (OpenSSL's own refusal of the list names none).

    @return: the group names, in order.
    @raise ConfigurationError: for an empty list, or naming the first group
        OpenSSL does not know.
    """
    names = [g for g in groups.split(":") if g]
    if not names:
        raise ConfigurationError("needs at least one group")
    if probe is None:
        probe = SSL.Context(SSL.TLS_METHOD)
    for name in names:
        if _lib.SSL_CTX_set1_curves_list(probe._context, name.encode()) != 1:
            raise ConfigurationError(f"unknown key-exchange group {name!r}")
    return names


def setGroups(context: SSL.Context, groups: str) -> None:
    """
    Set the key-exchange groups, in preference order (C{"X25519:P-256"}).

    @raise ConfigurationError: naming the first group OpenSSL does not know.
    """
    names = checkGroups(groups)
    if _lib.SSL_CTX_set1_curves_list(context._context, ":".join(names).encode()) != 1:
        raise ConfigurationError(f"OpenSSL refused the groups {groups!r}")


def verificationResult(connection: SSL.Connection) -> str:
    """
    How the peer's certificate verified: C{"ok"} or OpenSSL's reason.
    """
    code = _lib.SSL_get_verify_result(connection._ssl)
    if code == 0:
        return "ok"
    return _ffi.string(_lib.X509_verify_cert_error_string(code)).decode(
        "ascii", "replace"
    )


@_ffi.callback("int (*)(int, X509_STORE_CTX *)")
def _acceptAnyCertificate(ok: int, storeContext: object) -> int:
    return 1


def verifyPeerKeepingResult(context: SSL.Context) -> None:
    """
    Verify the peer's certificate, but let the handshake complete whatever
    the result, leaving OpenSSL's verification result in place for
    L{verificationResult} (and in the session, for resumed connections).

    On a server context this is C{--verify-client optional}: ask for a
    client certificate, accept any (or none), log the result. On a client
    context (C{tlsreply check}) it reports every fact of a handshake with an
    untrusted server along with OpenSSL's reason for distrusting it.

    pyOpenSSL's C{set_verify} cannot do this: when its callback accepts a
    certificate that failed verification, it resets the result to "ok".
    """
    _lib.SSL_CTX_set_verify(context._context, SSL.VERIFY_PEER, _acceptAnyCertificate)


def servedCertificateKey(connection: SSL.Connection) -> int:
    """
    An identity for the certificate this server connection serves: the
    address of OpenSSL's certificate object, which its context owns (so it
    is the same for every connection served that certificate, for as long
    as the context lives), or 0 before one is chosen.

    pyOpenSSL's C{get_certificate} makes a new wrapper object (and a
    cryptography certificate) on every call; this costs a pointer read.
    """
    return int(_ffi.cast("uintptr_t", _lib.SSL_get_certificate(connection._ssl)))


def setSessionIDContext(context: SSL.Context, sessionIDContext: bytes) -> None:
    """
    Set the session ID context that connections made from C{context} from
    now on get (each connection keeps a copy; sessions carry it, and
    OpenSSL resumes a session only on a connection with the same one).

    Unlike pyOpenSSL's C{set_session_id}, this works on a context that
    connections have already been made from.
    """
    if not 0 < len(sessionIDContext) <= 32:
        raise ValueError("a session ID context is 1 to 32 bytes")
    if (
        _lib.SSL_CTX_set_session_id_context(
            context._context, sessionIDContext, len(sessionIDContext)
        )
        != 1
    ):
        raise MissingBindingError("SSL_CTX_set_session_id_context failed")


@_ffi.callback("int (*)(SSL *, int *, void *)")
def _acceptServerName(connection: object, alert: object, argument: object) -> int:
    return 0  # SSL_TLSEXT_ERR_OK


def acknowledgeServerName(context: SSL.Context) -> None:
    """
    Accept whatever server name a client asks for, so that OpenSSL
    acknowledges it (an empty C{server_name} extension in the ServerHello
    or, in TLS 1.3, the EncryptedExtensions, as RFC 6066 asks of a server
    that used the name) and keeps it in the session: without a callback
    that accepts it, OpenSSL does neither, and a resumed TLS 1.2
    connection has no name.

    The callback chooses nothing: tlsreply chose the context by the name
    before the connection was made. It costs one call from OpenSSL into
    Python per handshake (C{bench/servername_callback.py}).
    """
    _lib.SSL_CTX_set_tlsext_servername_callback(context._context, _acceptServerName)
