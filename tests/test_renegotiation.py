"""
Renegotiation is off (C{renegotiation=off} in the start-up line): a TLS 1.2
client that asks to renegotiate on a connection made from tlsreply's own
contexts is refused, also where the OpenSSL configuration allows client
renegotiation.

Both connection paths make their connections from the same contexts
(L{tlsreply.tls.contexts.ServerContexts}), so the contexts are tested here,
over an in-memory pump, with a control. On the wire the attempt reaches
OpenSSL's renegotiation code only while a large reply is still being
written (OpenSSL discards every handshake record that arrives after its
close_notify): L{tests.test_renegotiationwire}.
"""

from __future__ import annotations

import os
import sys

from OpenSSL import SSL
from twisted.trial.unittest import SynchronousTestCase

from tests.support import makeCertificates, runCommand, temporaryDirectory
from tests.test_openssl_binding import pump
from tlsreply import buildServerContexts, loadCredentials

#: C{SSL_OP_ALLOW_CLIENT_RENEGOTIATION} (OpenSSL 3.0 and later), what
#: C{Options = ClientRenegotiation} in an C{openssl.cnf}'s system default
#: section sets on every context; pyOpenSSL does not name it.
ALLOW_CLIENT_RENEGOTIATION = 1 << 8


class RenegotiationTests(SynchronousTestCase):
    """
    A client's renegotiation attempt against tlsreply's contexts.
    """

    def setUp(self) -> None:
        self.certificates = makeCertificates(temporaryDirectory(self))

    def tlsreplyContext(self) -> SSL.Context:
        """
        The context tlsreply makes its connections from, for a client that
        asks for C{localhost}.
        """
        credentials = loadCredentials(
            self.certificates.certificatePath, self.certificates.keyPath
        )
        return buildServerContexts(credentials).contextForHandshake("localhost")

    def plainContext(self) -> SSL.Context:
        """
        A server context as pyOpenSSL makes it, with the same certificate:
        the control.
        """
        context = SSL.Context(SSL.TLS_METHOD)
        context.use_certificate_chain_file(str(self.certificates.certificatePath))
        context.use_privatekey_file(str(self.certificates.keyPath))
        return context

    def renegotiate(self, serverContext: SSL.Context) -> SSL.Error | None:
        """
        Complete a TLS 1.2 handshake with a verifying client, then have the
        client renegotiate while the server reads.

        @return: the client's error if the renegotiation failed, else
            L{None} (it completed).
        """
        clientContext = SSL.Context(SSL.TLS_METHOD)
        clientContext.set_max_proto_version(SSL.TLS1_2_VERSION)
        clientContext.load_verify_locations(str(self.certificates.caPath))
        clientContext.set_verify(SSL.VERIFY_PEER)
        server = SSL.Connection(serverContext, None)
        server.set_accept_state()
        client = SSL.Connection(clientContext, None)
        client.set_connect_state()
        client.set_tlsext_host_name(b"localhost")
        self.drive(client, server, lambda: client.do_handshake())
        self.assertEqual(client.get_protocol_version_name(), "TLSv1.2")

        self.assertTrue(client.renegotiate())
        try:
            self.drive(client, server, lambda: client.do_handshake())
        except SSL.Error as e:
            return e
        self.assertEqual(client.total_renegotiations(), 1)
        self.assertFalse(client.renegotiate_pending())
        return None

    def drive(self, client: SSL.Connection, server: SSL.Connection, step: object) -> None:
        """
        Run the client's C{step} until it completes, the server reading
        (which is where it handles a handshake, as tlsreply's servers do)
        and the bytes pumped between them.
        """
        assert callable(step)
        for _ in range(20):
            try:
                # A read runs the first handshake too.
                server.recv(1)
            except SSL.WantReadError:
                pass
            try:
                step()
            except SSL.WantReadError:
                pass
            else:
                if not pump(client, server):
                    return
            pump(client, server)
        raise AssertionError("the in-memory exchange did not finish")

    def test_refused(self) -> None:
        """
        The client's renegotiation fails with OpenSSL's "no renegotiation":
        the server answered its ClientHello with the no_renegotiation
        alert.
        """
        error = self.renegotiate(self.tlsreplyContext())
        self.assertIsNotNone(error)
        self.assertIn("no renegotiation", str(error))

    def test_refusedWhereOpenSSLAllowsIt(self) -> None:
        """
        An OpenSSL configuration that allows client renegotiation (a
        system C{openssl.cnf} with C{Options = ClientRenegotiation}, an
        OpenSSL before 3.0) does not turn it on: tlsreply sets
        C{SSL_OP_NO_RENEGOTIATION} itself. The control: a context without
        it, allowed the same way, renegotiates with the same client.
        """
        allowed = self.plainContext()
        allowed.set_options(ALLOW_CLIENT_RENEGOTIATION)
        self.assertIsNone(self.renegotiate(allowed))

        context = self.tlsreplyContext()
        context.set_options(ALLOW_CLIENT_RENEGOTIATION)
        error = self.renegotiate(context)
        self.assertIsNotNone(error)
        self.assertIn("no renegotiation", str(error))

    def test_configurationSetsTheOption(self) -> None:
        """
        L{ALLOW_CLIENT_RENEGOTIATION} is what an C{openssl.cnf} with
        C{Options = ClientRenegotiation} sets on every new context, in the
        OpenSSL that pyOpenSSL uses (read from C{OPENSSL_CONF} when it
        starts, so in a fresh interpreter).
        """
        configuration = temporaryDirectory(self) / "openssl.cnf"
        configuration.write_text(
            "openssl_conf = openssl_init\n"
            "[openssl_init]\nssl_conf = ssl_section\n"
            "[ssl_section]\nsystem_default = system_default_section\n"
            "[system_default_section]\nOptions = ClientRenegotiation\n"
        )
        program = (
            "from OpenSSL import SSL\n"
            "print(SSL.Context(SSL.TLS_METHOD).set_options(0))\n"
        )
        options = {}
        for name, value in (("default", ""), ("allowing", str(configuration))):
            result = runCommand(
                [sys.executable, "-c", program], env={**os.environ, "OPENSSL_CONF": value}
            )
            self.assertEqual(result.returncode, 0, result.stderr)
            options[name] = int(result.stdout)
        self.assertEqual(options["default"] & ALLOW_CLIENT_RENEGOTIATION, 0)
        self.assertEqual(
            options["allowing"], options["default"] | ALLOW_CLIENT_RENEGOTIATION
        )
