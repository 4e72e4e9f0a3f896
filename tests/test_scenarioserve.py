"""
The scenarios that need more than certificates and a policy, served by the
command line (C{tlsreply serve --scenario NAME}): a correct client sees
what C{tlsreply scenarios --json} promises.
"""

from __future__ import annotations

import json
import ssl
import warnings
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from twisted.trial.unittest import SynchronousTestCase

from tests.support import (
    clientContext,
    fetchWithSSL,
    requireCommand,
    runCommand,
    temporaryDirectory,
)
from tests.test_plugin import SCRIPTS, Daemon, runToExit
from tests.test_revocation import httpGet
from tests.test_scenarios import errorText, withoutProxies


def promised(name: str) -> dict[str, object]:
    """
    The expected outcome C{tlsreply scenarios --json} lists for a scenario.
    """
    result = runCommand([str(SCRIPTS / "tlsreply"), "scenarios", "--json"], timeout=60)
    listed = {s["name"]: s for s in json.loads(result.stdout)}
    outcome: dict[str, object] = listed[name]["expectedOutcome"]
    return outcome


class ServedScenarioTests(SynchronousTestCase):
    """
    C{tlsreply serve --scenario} for the scenarios with more to them.
    """

    def serve(self, *arguments: str) -> tuple[Path, int]:
        """
        Run C{tlsreply serve} with these arguments on an ephemeral
        127.0.0.1 port, in a new folder; return the folder and the port.
        """
        workdir = temporaryDirectory(self)
        daemon = Daemon(
            [str(SCRIPTS / "tlsreply"), "serve", "--port", "tcp:0:interface=127.0.0.1",
             *arguments],
            workdir,
        )
        self.addCleanup(lambda: daemon.process.poll() is None and daemon.stop())
        port = int(daemon.waitFor(r"listening on \['127\.0\.0\.1:(\d+)'\]").group(1))
        return workdir, port

    def test_crlRevoked(self) -> None:
        """
        The server serves the CRL its certificate points to: Python's
        default client accepts, one that checks the CRL is refused with the
        promised message, and so is C{openssl verify -crl_download}.
        """
        expected = promised("crl-revoked")
        workdir, port = self.serve("--scenario", "crl-revoked")
        caPath = workdir / "certs" / "scenario" / "ca.pem"
        result = fetchWithSSL(port, clientContext(str(caPath)))
        self.assertEqual(result.data, b"test\n")
        leaf = x509.load_der_x509_certificate(result.peerCertificate or b"")
        [point] = leaf.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
        assert point.full_name is not None
        body, _ = httpGet(str(point.full_name[0].value))
        crlPath = workdir / "crl.pem"
        crlPath.write_bytes(x509.load_der_x509_crl(body).public_bytes(serialization.Encoding.PEM))
        context = clientContext(str(caPath))
        context.load_verify_locations(crlPath)
        context.verify_flags |= ssl.VERIFY_CRL_CHECK_LEAF
        with self.assertRaises(ssl.SSLCertVerificationError) as caught:
            fetchWithSSL(port, context)
        self.assertEqual(caught.exception.verify_message, expected["message"])
        openssl = requireCommand(self, "openssl")
        leafPath = workdir / "leaf.pem"
        leafPath.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
        verified = runCommand(
            [openssl, "verify", "-CAfile", str(caPath), "-crl_check", "-crl_download",
             str(leafPath)],
            env=withoutProxies(),
        )
        self.assertNotEqual(verified.returncode, 0)
        self.assertIn(b"certificate revoked", verified.stdout + verified.stderr)

    def test_tls10Only(self) -> None:
        """
        Python's default client is refused with the promised alert; one
        that allows TLS 1.0 is served with TLS 1.0, the server's only
        version.
        """
        expected = promised("tls1.0-only")
        workdir, port = self.serve("--scenario", "tls1.0-only")
        caPath = str(workdir / "certs" / "scenario" / "ca.pem")
        with self.assertRaises(ssl.SSLError) as caught:
            fetchWithSSL(port, clientContext(caPath))
        self.assertEqual(errorText(caught.exception), expected["message"])

        def allowOld(context: ssl.SSLContext) -> None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                context.minimum_version = ssl.TLSVersion.TLSv1
            context.set_ciphers("DEFAULT:@SECLEVEL=0")

        result = fetchWithSSL(port, clientContext(caPath, allowOld))
        self.assertEqual((result.data, result.version), (b"test\n", "TLSv1"))

    def test_scenarioGroupsAreItsOwn(self) -> None:
        """
        C{--groups} with a scenario that is about its groups is one line
        naming the conflict; with the same groups it is served.
        """
        status, lines = runToExit(
            [str(SCRIPTS / "tlsreply"), "serve", "--port", "tcp:0:interface=127.0.0.1",
             "--scenario", "pq-hybrid-only", "--groups", "x25519"],
            temporaryDirectory(self),
        )
        self.assertNotEqual(status, 0)
        self.assertIn(
            "--scenario decides the key-exchange groups (X25519MLKEM768) itself: drop --groups",
            "\n".join(lines),
        )
        _, port = self.serve("--scenario", "pq-hybrid-only", "--groups", "X25519MLKEM768")
        self.assertGreater(port, 0)
