"""
The scenarios that need more than certificates and a policy, served by the
command line (C{tlsreply serve --scenario NAME}): a correct client sees
what C{tlsreply scenarios --json} promises.
"""

from __future__ import annotations

import gc
import json
import os
import ssl
import time
import urllib.error
import warnings
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from twisted.internet import reactor
from twisted.trial.unittest import SynchronousTestCase, TestCase

from tests.support import (
    clientContext,
    fetchWithSSL,
    inThread,
    requireCommand,
    runCommand,
    temporaryDirectory,
)
from tests.test_plugin import SCRIPTS, Daemon, runToExit, startDaemon
from tests.test_revocation import httpGet
from tests.test_scenarios import errorText, withoutProxies
from tlsreply.config import ServerConfig
from tlsreply.daemon import buildDaemon
from tlsreply.errors import ConfigurationError
from tlsreply.scenarios.ca import TestCA
from tlsreply.scenarios.revocation import CRL_NAME
from tlsreply.scenarios.servers import buildScenario, withCommandPolicy
from tlsreply.tls.policy import TLSPolicy


def openDescriptors() -> set[str]:
    """
    This process's open file descriptors.
    """
    return set(os.listdir("/proc/self/fd"))


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
        self.daemon = daemon
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

    def test_hostileScenario(self) -> None:
        """
        A hostile scenario from the command line: the correct client gets
        the promised error after the whole reply (the server closed TCP
        without close_notify), and the connection's log line says that the
        server truncated the reply.
        """
        expected = promised("truncated-reply")
        workdir, port = self.serve("--scenario", "truncated-reply")
        caPath = workdir / "certs" / "scenario" / "ca.pem"
        with self.assertRaises(ssl.SSLEOFError) as caught:
            fetchWithSSL(port, clientContext(str(caPath)))
        self.assertIn(str(expected["message"]), str(caught.exception))
        self.assertTrue(self.daemon.waitFor(
            r"replied to 127\.0\.0\.1:\d+: .*; truncated: the reply, then TCP FIN without "
            r"close_notify; "
        ))

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

    def test_scenarioCiphersAreItsOwn(self) -> None:
        """
        C{--ciphers} with a scenario whose ciphers carry the security level
        it needs is one line naming the conflict, not a server that is
        silently something else.
        """
        status, lines = runToExit(
            [str(SCRIPTS / "tlsreply"), "serve", "--port", "tcp:0:interface=127.0.0.1",
             "--scenario", "tls1.0-only", "--ciphers", "ECDHE-ECDSA-AES128-SHA"],
            temporaryDirectory(self),
        )
        self.assertNotEqual(status, 0)
        self.assertIn(
            "--scenario decides the TLS 1.2 ciphers (and OpenSSL's security level) "
            "itself: drop --ciphers",
            "\n".join(lines),
        )


class ScenarioTimingTests(SynchronousTestCase):
    """
    The hostile scenarios' timings from the command line
    (C{--scenario-byte-delay}, C{--scenario-stall-limit}), on the wire.
    """

    def twistd(self, *arguments: str) -> tuple[Daemon, int, ssl.SSLContext]:
        """
        Run C{twistd -n tlsreply} with these arguments in a new folder;
        return it with its port and a client context trusting its test CA.
        """
        workdir = temporaryDirectory(self)
        daemon, port = startDaemon(
            self, [str(SCRIPTS / "twistd"), "-n", "--pidfile=", "tlsreply", *arguments], workdir
        )
        return daemon, port, clientContext(str(workdir / "certs" / "scenario" / "ca.pem"))

    def test_byteDelay(self) -> None:
        """
        C{slow-reply} spaces the reply's bytes by C{--scenario-byte-delay}:
        at 0.5 s the five bytes of C{test\\n} take at least 2 s (1.5 s is
        asserted, loosely); at 0.01 s they come at once (within 3 s, loosely).
        """
        daemon, port, context = self.twistd(
            "--scenario", "slow-reply", "--scenario-byte-delay", "0.5"
        )
        started = time.monotonic()
        self.assertEqual(fetchWithSSL(port, context).data, b"test\n")
        self.assertGreaterEqual(time.monotonic() - started, 1.5)
        daemon.waitFor(r"replied to 127\.0\.0\.1:\d+: .*slow: the reply one byte a record, 0\.5s apart")
        self.assertEqual(daemon.stop(), 0)
        daemon, port, context = self.twistd(
            "--scenario", "slow-reply", "--scenario-byte-delay", "0.01"
        )
        started = time.monotonic()
        self.assertEqual(fetchWithSSL(port, context).data, b"test\n")
        self.assertLess(time.monotonic() - started, 3)
        daemon.waitFor(r"slow: the reply one byte a record, 0\.01s apart")
        self.assertEqual(daemon.stop(), 0)

    def test_stallLimit(self) -> None:
        """
        C{stall-handshake} with C{--scenario-stall-limit 1}: the server
        closes the stalled handshake after about a second (not the default
        60 s), well before the client's own 10 s timeout.
        """
        daemon, port, context = self.twistd(
            "--scenario", "stall-handshake", "--scenario-stall-limit", "1"
        )
        started = time.monotonic()
        with self.assertRaises(ssl.SSLError):
            fetchWithSSL(port, context, timeout=10)
        elapsed = time.monotonic() - started
        self.assertGreaterEqual(elapsed, 0.5)
        self.assertLess(elapsed, 9)
        daemon.waitFor(r"closed by the server at the 1s stall limit")
        self.assertEqual(daemon.stop(), 0)

    def test_timingWithoutItsScenario(self) -> None:
        """
        A timing the scenario does not use ends the real command at once
        with one line naming it, exit status 1, no traceback.
        """
        for command in (
            [str(SCRIPTS / "twistd"), "-n", "--pidfile=", "tlsreply"],
            [str(SCRIPTS / "tlsreply"), "serve"],
        ):
            status, lines = runToExit(
                [*command, "--scenario", "expired", "--scenario-byte-delay", "1"],
                temporaryDirectory(self),
            )
            self.assertEqual(
                (status, lines),
                (1, ["tlsreply: --scenario-byte-delay does nothing for --scenario expired "
                     "(it is for slow-reply): drop it (see --help)"]),
            )


class CommandPolicyTests(SynchronousTestCase):
    """
    What a command line's policy may change of a scenario's
    (L{withCommandPolicy}).
    """

    CIPHERS = TLSPolicy(tls12Ciphers="ECDHE-ECDSA-AES128-SHA")

    def test_ciphersOfAScenarioThatDecidesThem(self) -> None:
        """
        Other ciphers for a scenario whose ciphers carry its security
        level (a weak key, TLS 1.0 or 1.1) are refused; its own are not.
        """
        for name in ("rsa1024", "tls1.0-only", "tls1.1-only"):
            policy = buildScenario(name, TestCA(), temporaryDirectory(self)).policy
            with self.assertRaises(ConfigurationError, msg=name) as caught:
                withCommandPolicy(policy, self.CIPHERS)
            self.assertIn("drop --ciphers", str(caught.exception))
            own = TLSPolicy(tls12Ciphers=policy.effectiveTLS12Ciphers)
            self.assertEqual(
                withCommandPolicy(policy, own).effectiveTLS12Ciphers,
                policy.effectiveTLS12Ciphers,
            )

    def test_ciphersOfOtherScenarios(self) -> None:
        """
        Any other scenario takes the command line's ciphers.
        """
        policy = buildScenario("expired", TestCA(), temporaryDirectory(self)).policy
        self.assertEqual(
            withCommandPolicy(policy, self.CIPHERS).tls12Ciphers, "ECDHE-ECDSA-AES128-SHA"
        )


class ScenarioHelpersTests(TestCase):
    """
    What a scenario serves besides TLS lives in the server's service tree.
    """

    def setUp(self) -> None:
        # The daemon writes a scenario's files to ./certs/scenario.
        workdir = temporaryDirectory(self)
        self.addCleanup(os.chdir, os.getcwd())
        os.chdir(workdir)

    async def test_crlServedWhileTheServiceRuns(self) -> None:
        """
        C{helpersService} serves C{crl-revoked}'s CRL from its start until
        its stop, then the port is closed.
        """
        setup = buildScenario("crl-revoked", TestCA(), Path("scenario"))
        assert setup.httpFiles is not None
        url = setup.httpFiles.url(CRL_NAME)
        service = setup.helpersService(reactor)
        service.startService()
        body, contentType = await inThread(httpGet, url)
        self.assertEqual(contentType, "application/pkix-crl")
        self.assertEqual(len(list(x509.load_der_x509_crl(body))), 1)
        await service.stopService()
        with self.assertRaises(urllib.error.URLError):
            await inThread(httpGet, url)

    def test_daemonOwnsTheHelpers(self) -> None:
        """
        The daemon for C{crl-revoked} has the helpers under its lifecycle
        (so they start and stop with the server), and holds no descriptor
        once they are stopped.
        """
        before = openDescriptors()
        config = ServerConfig(listen=("tcp:0:interface=127.0.0.1",), scenario="crl-revoked")
        lifecycle = buildDaemon(config, reactor)
        helpers = lifecycle.getServiceNamed("scenario-helpers")
        self.assertTrue(openDescriptors() - before, "the CRL's socket, bound at build")
        helpers.stopService()
        self.assertEqual(openDescriptors(), before)

    def test_noDescriptorLeftWhenBuildingFails(self) -> None:
        """
        A daemon that cannot be built (here, an access log it cannot open)
        closes the scenario's socket itself: nothing is left open, and
        nothing is left for the garbage collector to close (which
        CPython would do, with a C{ResourceWarning}).
        """
        gc.collect()  # earlier tests' garbage, and its warnings, first
        before = openDescriptors()
        config = ServerConfig(
            listen=("tcp:0:interface=127.0.0.1",),
            scenario="crl-revoked",
            accessLog=str(Path("no such folder") / "access.log"),
        )
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ResourceWarning)
            with self.assertRaises(ConfigurationError):
                buildDaemon(config, reactor)
            gc.collect()
        unclosed = [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]
        self.assertEqual(unclosed, [])
        self.assertEqual(openDescriptors(), before)
