"""
Tests for L{tlsreply._openssl}, the only module that uses pyOpenSSL's
private binding.

If a pyOpenSSL release drops a symbol tlsreply needs, these tests fail:
they never skip, because a skipped test would let such a release through.
The handshakes run between two pyOpenSSL connections over memory BIOs,
with a certificate from a test CA.
"""

from __future__ import annotations

import trustme
from OpenSSL import SSL
from OpenSSL._util import lib
from twisted.trial.unittest import SynchronousTestCase

from tests.support import makeCertificates, temporaryDirectory
from tlsreply import _openssl, buildServerContexts, loadCredentials

# What tlsreply's own code calls; spelled out here, rather than read from
# REQUIRED_SYMBOLS, so that dropping one from that tuple is caught too.
USED_SYMBOLS = (
    "SSL_session_reused",
    "SSL_CTX_set_max_early_data",
    "SSL_CTX_set1_curves_list",
    "SSL_get_verify_result",
    "X509_verify_cert_error_string",
    "SSL_CTX_set_verify",
    "SSL_CTX_set_session_id_context",
)
MISSING_SYMBOL = "SSL_tlsreply_test_no_such_symbol"


def pump(client: SSL.Connection, server: SSL.Connection) -> bool:
    """
    Move every pending byte between two memory-BIO connections.

    @return: whether anything moved.
    """
    moved = False
    for source, destination in ((client, server), (server, client)):
        while True:
            try:
                data = source.bio_read(65536)
            except SSL.WantReadError:
                break
            if not data:
                break
            destination.bio_write(data)
            moved = True
    return moved


class InMemoryTLS:
    """
    A test CA, a server certificate it issued, and handshakes between
    pyOpenSSL connections that use them.
    """

    def __init__(self) -> None:
        self.ca = trustme.CA()
        self.leaf = self.ca.issue_cert("localhost")

    def serverContext(self) -> SSL.Context:
        """
        A server context that serves the test certificate.
        """
        context = SSL.Context(SSL.TLS_METHOD)
        self.leaf.configure_cert(context)
        return context

    def clientContext(self) -> SSL.Context:
        """
        A client context that verifies the server against the test CA.
        """
        context = SSL.Context(SSL.TLS_METHOD)
        self.ca.configure_trust(context)
        context.set_verify(SSL.VERIFY_PEER)
        return context

    def handshake(
        self,
        serverContext: SSL.Context,
        clientContext: SSL.Context,
        session: SSL.Session | None = None,
    ) -> tuple[SSL.Connection, SSL.Connection]:
        """
        Complete a handshake, then let the client read what the server sent
        after it (TLS 1.3 session tickets).

        @param session: for the client to resume.
        @return: the server and client connections.
        """
        server = SSL.Connection(serverContext, None)
        server.set_accept_state()
        client = SSL.Connection(clientContext, None)
        client.set_connect_state()
        client.set_tlsext_host_name(b"localhost")
        if session is not None:
            client.set_session(session)
        done = {"client": False, "server": False}
        for _ in range(20):
            for name, connection in (("client", client), ("server", server)):
                if not done[name]:
                    try:
                        connection.do_handshake()
                        done[name] = True
                    except SSL.WantReadError:
                        pass
            moved = pump(client, server)
            if all(done.values()) and not moved:
                break
        else:
            raise AssertionError(f"the in-memory handshake did not finish: {done}")
        try:
            client.recv(1)
        except SSL.WantReadError:
            pass
        return server, client


class BindingTests(SynchronousTestCase):
    """
    The private symbols tlsreply uses are present, and L{checkBinding} says
    so, or names the ones that are not.
    """

    def test_requiredSymbolsExist(self) -> None:
        """
        The installed pyOpenSSL binding has every symbol tlsreply calls and
        every symbol L{checkBinding} checks. This test fails, it does not
        skip, when one is missing.
        """
        for name in USED_SYMBOLS:
            self.assertIn(name, _openssl.REQUIRED_SYMBOLS)
        for name in set(USED_SYMBOLS) | set(_openssl.REQUIRED_SYMBOLS):
            self.assertTrue(
                hasattr(lib, name),
                f"pyOpenSSL's private binding (OpenSSL._util.lib) lacks {name}, "
                "which tlsreply needs",
            )

    def test_checkBindingPasses(self) -> None:
        """
        L{checkBinding} accepts the installed pyOpenSSL: it raises no
        L{MissingBindingError}.
        """
        try:
            _openssl.checkBinding()
        except _openssl.MissingBindingError as error:
            self.fail(f"the installed pyOpenSSL was refused: {error}")

    def test_checkBindingNamesMissingSymbol(self) -> None:
        """
        When a required symbol is missing, L{checkBinding} raises
        L{MissingBindingError} naming it, and only it.
        """
        self.patch(
            _openssl, "REQUIRED_SYMBOLS", _openssl.REQUIRED_SYMBOLS + (MISSING_SYMBOL,)
        )
        error = self.assertRaises(_openssl.MissingBindingError, _openssl.checkBinding)
        message = str(error)
        self.assertIn(MISSING_SYMBOL, message)
        for name in USED_SYMBOLS:
            self.assertNotIn(name, message)
        self.assertNotIn("\n", message)

    def test_checkBindingNamesEveryMissingSymbol(self) -> None:
        """
        Every missing symbol is named, not just the first.
        """
        other = MISSING_SYMBOL + "_too"
        self.patch(_openssl, "REQUIRED_SYMBOLS", (MISSING_SYMBOL, other))
        error = self.assertRaises(_openssl.MissingBindingError, _openssl.checkBinding)
        self.assertIn(MISSING_SYMBOL, str(error))
        self.assertIn(other, str(error))


class EarlyDataTests(SynchronousTestCase):
    """
    L{refuseEarlyData} pins a context's TLS 1.3 early-data limit to zero.
    """

    def test_freshContext(self) -> None:
        """
        It works on a context just made, before any certificate is loaded,
        as tlsreply calls it: a context that had allowed early data, once
        refused and then given its certificate, issues tickets that allow
        none.
        """
        if not hasattr(lib, "SSL_SESSION_get_max_early_data"):
            self.skipTest(
                "pyOpenSSL's binding lacks SSL_SESSION_get_max_early_data, "
                "which only this test uses to read a ticket"
            )
        tls = InMemoryTLS()
        context = SSL.Context(SSL.TLS_METHOD)
        lib.SSL_CTX_set_max_early_data(context._context, 16384)
        _openssl.refuseEarlyData(context)
        tls.leaf.configure_cert(context)
        _, client = tls.handshake(context, tls.clientContext())
        session = client.get_session()
        assert session is not None
        self.assertEqual(lib.SSL_SESSION_get_max_early_data(session._session), 0)

    def test_contextStillServes(self) -> None:
        """
        A server context with early data refused still completes ordinary
        TLS 1.3 handshakes.
        """
        tls = InMemoryTLS()
        serverContext = tls.serverContext()
        _openssl.refuseEarlyData(serverContext)
        server, _ = tls.handshake(serverContext, tls.clientContext())
        self.assertEqual(server.get_protocol_version_name(), "TLSv1.3")

    def test_ticketsOfferNoEarlyData(self) -> None:
        """
        A server context that had allowed early data, once refused, issues
        session tickets that allow none; without the call the same set-up
        issues tickets that allow it (so the check is not vacuous).
        """
        if not hasattr(lib, "SSL_SESSION_get_max_early_data"):
            self.skipTest(
                "pyOpenSSL's binding lacks SSL_SESSION_get_max_early_data, "
                "which only this test uses to read a ticket"
            )
        tls = InMemoryTLS()

        def ticketLimit(refuse: bool) -> int:
            serverContext = tls.serverContext()
            lib.SSL_CTX_set_max_early_data(serverContext._context, 16384)
            if refuse:
                _openssl.refuseEarlyData(serverContext)
            server, client = tls.handshake(serverContext, tls.clientContext())
            self.assertEqual(client.get_protocol_version_name(), "TLSv1.3")
            session = client.get_session()
            assert session is not None
            return int(lib.SSL_SESSION_get_max_early_data(session._session))

        self.assertEqual(ticketLimit(refuse=False), 16384)
        self.assertEqual(ticketLimit(refuse=True), 0)


class SessionReusedTests(SynchronousTestCase):
    """
    L{sessionReused} tells a full handshake from a resumed one.
    """

    def test_freshConnection(self) -> None:
        """
        After a full handshake neither side has reused a session.
        """
        tls = InMemoryTLS()
        server, client = tls.handshake(tls.serverContext(), tls.clientContext())
        self.assertEqual(server.get_protocol_version_name(), "TLSv1.3")
        self.assertIs(_openssl.sessionReused(server), False)
        self.assertIs(_openssl.sessionReused(client), False)

    def test_resumedConnection(self) -> None:
        """
        A client that offers the ticket from an earlier handshake resumes,
        and both sides report it.
        """
        tls = InMemoryTLS()
        serverContext = tls.serverContext()
        clientContext = tls.clientContext()
        _, firstClient = tls.handshake(serverContext, clientContext)
        session = firstClient.get_session()
        assert session is not None
        server, client = tls.handshake(serverContext, clientContext, session)
        self.assertIs(_openssl.sessionReused(server), True)
        self.assertIs(_openssl.sessionReused(client), True)


class ServedCertificateTests(SynchronousTestCase):
    """
    L{_openssl.servedCertificateKey}: one identity per served certificate.
    """

    def test_sameCertificateSameKey(self) -> None:
        """
        The key is the context's certificate object: the same for every
        connection made from that context.
        """
        certificates = makeCertificates(temporaryDirectory(self))
        contexts = buildServerContexts(
            loadCredentials(certificates.certificatePath, certificates.keyPath)
        )
        first = SSL.Connection(contexts.fallback, None)
        second = SSL.Connection(contexts.fallback, None)
        first.set_accept_state()
        key = _openssl.servedCertificateKey(first)
        self.assertNotEqual(key, 0)
        self.assertEqual(key, _openssl.servedCertificateKey(second))
        self.assertEqual(contexts.servedCertificate(first), "ECDSA-P-256")
