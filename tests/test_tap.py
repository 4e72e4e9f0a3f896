"""
The command line (L{tlsreply.command.tap}): parsing, wiring onto a reactor, and one
readable line for every bad setting.
"""

from __future__ import annotations

import datetime
import os
import socket
import time
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from twisted.application.service import IService, IServiceCollection
from twisted.internet import reactor
from twisted.internet.testing import MemoryReactor
from twisted.logger import LogLevel
from twisted.protocols.haproxy._wrapper import HAProxyWrappingFactory
from twisted.protocols.tls import TLSMemoryBIOFactory
from twisted.trial.unittest import SynchronousTestCase

from tests.support import captureLogEvents, makeCertificates, temporaryDirectory
from tests.test_certificatedirectory import UnblockFIFO
from tlsreply.command.tap import Options, makeService
from tlsreply.config import CertificateFiles, ServerConfig
from tlsreply.daemon import DevelopmentCertificateSaver, replyFactory
from tlsreply.errors import ConfigurationError
from tlsreply.metrics.web import MetricsService
from tlsreply.protocol import ReplyFactory
from tlsreply.service import TLSReplyService
from tlsreply.tls.policy import TLSPolicy
from tlsreply.transport.tlsmemory import TLSReplyServerFactory


def replyFactoryOf(factory: object) -> ReplyFactory:
    """
    The L{ReplyFactory} under the layers tlsreply listens with: the
    ClientHello reader, then TLS.
    """
    assert isinstance(factory, TLSReplyServerFactory)
    tls = factory.wrappedFactory
    assert isinstance(tls, TLSMemoryBIOFactory)
    assert tls.wrappedFactory is factory.replyFactory
    return factory.replyFactory


def parse(*arguments: str) -> Options:
    """
    Parse a command line the way twistd does.
    """
    options = Options()
    options.parseOptions(list(arguments))
    return options


class OptionsTests(SynchronousTestCase):
    """
    What the options parse to.
    """

    def test_defaults(self) -> None:
        """
        With no options tlsreply listens on tcp:4433 with the development
        certificate and replies C{test\\n}, with the documented timeouts and
        the seed's TLS policy.
        """
        self.assertEqual(parse().config, ServerConfig())
        self.assertEqual(
            ServerConfig().describe(),
            {
                "listen": ["tcp:4433"],
                "certificates": [],
                "certificateDirectory": None,
                "scenario": None,
                "tls": TLSPolicy().describe(),
                "reply": "test\n",
                "http": False,
                "httpStatus": 200,
                "httpHeaders": [],
                "handshakeTimeout": 10.0,
                "closeTimeout": 3.0,
                "shutdownGrace": 5.0,
                "maxConnections": 4096,
                "workers": 1,
                "accessLog": "auto",
                "logFormat": "text",
                "metrics": None,
                "drainDelay": 0.0,
                "scenarioStallLimit": None,
                "scenarioByteDelay": None,
            },
        )

    def test_portAndRepeatedListen(self) -> None:
        """
        C{--port} and every C{--listen} each add a listening address, in
        order.
        """
        options = parse("--port", "4433", "--listen", "tcp:8443:interface=::1",
                        "--listen", "unix:/tmp/t.sock")
        self.assertEqual(
            options.config.listen, ("4433", "tcp:8443:interface=::1", "unix:/tmp/t.sock")
        )

    def test_replyEscapesAreDecoded(self) -> None:
        """
        C{--reply} decodes backslash escapes into the exact bytes sent.
        """
        self.assertEqual(parse("--reply", "OK\\r\\n\\x00").config.replyBody, b"OK\r\n\x00")

    def test_timeouts(self) -> None:
        """
        The timeouts parse as seconds.
        """
        options = parse("--handshake-timeout", "2.5", "--close-timeout", "0",
                        "--shutdown-grace", "30")
        config = options.config
        self.assertEqual(
            (config.handshakeTimeout, config.closeTimeout, config.shutdownGrace),
            (2.5, 0.0, 30.0),
        )

    def assertUsageError(self, message: str, *arguments: str) -> None:
        """
        Parsing C{arguments} exits with one line that contains C{message}.
        """
        with self.assertRaises(SystemExit) as caught:
            parse(*arguments)
        text = str(caught.exception.code)
        self.assertIn(message, text)
        self.assertNotIn("\n", text)
        self.assertTrue(text.startswith("tlsreply: "), text)

    def test_badEscape(self) -> None:
        """
        An unknown escape names itself and its position.
        """
        self.assertUsageError("bad escape \\q at position 2", "--reply", "ab\\q")

    def test_emptyReply(self) -> None:
        """
        An empty reply is refused.
        """
        self.assertUsageError("the reply is empty", "--reply", "")

    def test_replyAndReplyFile(self) -> None:
        """
        C{--reply} and C{--reply-file} exclude each other.
        """
        self.assertUsageError("not both", "--reply", "x", "--reply-file", "/etc/hosts")

    def test_keyWithoutCertificate(self) -> None:
        """
        C{--key}, C{--chain} and C{--ocsp-response} belong to the C{--cert}
        before them; without one, or twice for one, they are an error.
        """
        for option in ("--key", "--chain", "--ocsp-response"):
            self.assertUsageError(f"{option} must follow the --cert", option, "x.pem")
        self.assertUsageError("--key given twice for --cert c.pem",
                              "--cert", "c.pem", "--key", "a", "--key", "b")

    def test_badTimeout(self) -> None:
        """
        A timeout must be a non-negative number.
        """
        self.assertUsageError("expected seconds", "--handshake-timeout", "soon")
        self.assertUsageError("expected seconds", "--close-timeout", "-1")

    def test_drainDelayAndLogFormat(self) -> None:
        """
        C{--drain-delay} is seconds (0 by default: stop at once);
        C{--log-format} is text or json; each error names its option.
        """
        config = parse("--drain-delay", "5", "--log-format", "json").config
        self.assertEqual((config.drainDelay, config.logFormat), (5.0, "json"))
        config = parse().config
        self.assertEqual((config.drainDelay, config.logFormat), (0.0, "text"))
        self.assertUsageError("--drain-delay: expected seconds", "--drain-delay", "-1")
        self.assertUsageError(
            "--log-format: expected text or json, got 'yaml'", "--log-format", "yaml"
        )

    def test_scenarioTimings(self) -> None:
        """
        C{--scenario-stall-limit} and C{--scenario-byte-delay} are seconds
        for the hostile scenarios that use them; unset (the scenario's
        defaults) without them.
        """
        config = parse().config
        self.assertEqual((config.scenarioStallLimit, config.scenarioByteDelay), (None, None))
        config = parse("--scenario", "slow-reply", "--scenario-byte-delay", "0.5").config
        self.assertEqual((config.scenarioStallLimit, config.scenarioByteDelay), (None, 0.5))
        self.assertEqual(
            parse("--scenario", "slow-reply", "--scenario-byte-delay", "0").config.scenarioByteDelay,
            0.0,
        )
        for scenario in ("stall-handshake", "stall-after-handshake", "renegotiation-request"):
            config = parse("--scenario", scenario, "--scenario-stall-limit", "1.5").config
            self.assertEqual(config.scenarioStallLimit, 1.5)

    def test_badScenarioTimings(self) -> None:
        """
        A timing that is not seconds, a stall limit of 0, and a timing
        given without a scenario that uses it are one line naming the
        option, not a silently ignored setting.
        """
        self.assertUsageError(
            "--scenario-byte-delay: expected seconds (a number >= 0), got '-1'",
            "--scenario", "slow-reply", "--scenario-byte-delay", "-1",
        )
        self.assertUsageError(
            "--scenario-byte-delay: expected seconds (a number >= 0), got 'slow'",
            "--scenario", "slow-reply", "--scenario-byte-delay", "slow",
        )
        for bad in ("0", "-2", "nan", "inf", "soon"):
            self.assertUsageError(
                f"--scenario-stall-limit: expected a positive number of seconds, got '{bad}'",
                "--scenario", "stall-handshake", "--scenario-stall-limit", bad,
            )
        self.assertUsageError(
            "--scenario-byte-delay needs --scenario slow-reply",
            "--scenario-byte-delay", "0.5",
        )
        self.assertUsageError(
            "--scenario-stall-limit needs --scenario stall-handshake, stall-after-handshake "
            "or renegotiation-request",
            "--scenario-stall-limit", "1",
        )
        self.assertUsageError(
            "--scenario-byte-delay does nothing for --scenario expired "
            "(it is for slow-reply): drop it",
            "--scenario", "expired", "--scenario-byte-delay", "0.5",
        )
        self.assertUsageError(
            "--scenario-stall-limit does nothing for --scenario slow-reply (it is for "
            "stall-handshake, stall-after-handshake and renegotiation-request): drop it",
            "--scenario", "slow-reply", "--scenario-byte-delay", "0.5",
            "--scenario-stall-limit", "1",
        )

    def test_unknownOption(self) -> None:
        """
        An unknown option is one line too, not the whole help text.
        """
        self.assertUsageError("--bogus", "--bogus")

    def test_metrics(self) -> None:
        """
        C{--metrics} takes an endpoint description, or a port number for
        C{tcp:N}; none by default.
        """
        self.assertIsNone(parse().config.metrics)
        for given in ("tcp:9102:interface=127.0.0.1", "9102", "unix:/run/m.sock",
                      "tcp6:9102:interface=::1", "tcp6:9102:interface=\\:\\:1"):
            self.assertEqual(parse("--metrics", given).config.metrics, given)

    def test_badMetrics(self) -> None:
        """
        A C{--metrics} Twisted cannot parse is one line naming the option,
        while parsing.
        """
        self.assertUsageError(
            "--metrics: 'tcp:notaport': the port must be a number from 0 to 65535, "
            "not 'notaport'",
            "--metrics", "tcp:notaport",
        )
        self.assertUsageError("--metrics: 'tcp:port=x': the port", "--metrics", "tcp:port=x")
        self.assertUsageError("--metrics: '99999': the port", "--metrics", "99999")
        self.assertUsageError("--metrics: bad endpoint description 'bogus:1'", "--metrics", "bogus:1")


class ServerConfigTests(SynchronousTestCase):
    """
    A L{ServerConfig} an application makes is checked as the command
    line's is: a mistake is one L{ConfigurationError} naming the field.
    """

    def assertRefused(self, message: str, **fields: Any) -> None:
        with self.assertRaises(ConfigurationError) as caught:
            ServerConfig(**fields)
        self.assertIn(message, str(caught.exception))

    def test_badFields(self) -> None:
        """
        Each field refuses a value of the wrong kind, naming itself.
        """
        self.assertRefused("ServerConfig.listen: expected a tuple", listen="tcp:4433")
        self.assertRefused("ServerConfig.listen: expected a tuple", listen=("",))
        self.assertRefused("ServerConfig.listen: no listening address", listen=())
        self.assertRefused(
            "ServerConfig.certificates: expected CertificateFiles", certificates=("a.pem",)
        )
        for name in ("handshakeTimeout", "closeTimeout", "shutdownGrace", "drainDelay"):
            for value in (-1, float("inf"), True, "3"):
                self.assertRefused(f"ServerConfig.{name}: expected seconds", **{name: value})
        for name in ("maxConnections", "workers"):
            self.assertRefused(f"ServerConfig.{name}: expected a whole number", **{name: 0})
        self.assertRefused("ServerConfig.logFormat: expected 'text' or 'json'", logFormat="xml")
        self.assertRefused("ServerConfig.accessLog: expected auto", accessLog="")
        self.assertRefused(
            "ServerConfig.scenarioStallLimit: expected a positive number of seconds, got 0",
            scenario="stall-handshake", scenarioStallLimit=0,
        )
        for value in (-1, float("nan"), True, "0.5"):
            self.assertRefused(
                "ServerConfig.scenarioByteDelay: expected seconds",
                scenario="slow-reply", scenarioByteDelay=value,
            )
        self.assertRefused(
            "ServerConfig.scenarioByteDelay: only slow-reply uses it, and no scenario is set",
            scenarioByteDelay=0.5,
        )
        self.assertRefused(
            "ServerConfig.scenarioStallLimit: only stall-handshake, stall-after-handshake "
            "and renegotiation-request use it, not scenario 'expired'",
            scenario="expired", scenarioStallLimit=1,
        )

    def test_goodFields(self) -> None:
        """
        What the command line would give is accepted.
        """
        config = ServerConfig(
            listen=("tcp:0", "unix:/tmp/x.sock"),
            certificates=(CertificateFiles(Path("cert.pem")),),
            drainDelay=2,
            logFormat="json",
            accessLog="/var/log/tlsreply.log",
        )
        self.assertEqual(config.drainDelay, 2)
        timed = ServerConfig(scenario="stall-after-handshake", scenarioStallLimit=1)
        self.assertEqual(timed.describe()["scenarioStallLimit"], 1)

    def test_scenarioTimingsReachTheServer(self) -> None:
        """
        The scenario's timings are its hostile server's settings; the one
        not given keeps its default.
        """
        from tlsreply.scenarios.misbehaving import HostileReplyFactory, HostileSettings

        for config, expected in (
            (ServerConfig(scenario="slow-reply", scenarioByteDelay=0.5), HostileSettings(60, 0.5)),
            (ServerConfig(scenario="stall-handshake", scenarioStallLimit=2), HostileSettings(2, 0.2)),
            (ServerConfig(scenario="stall-handshake"), HostileSettings()),
        ):
            factory = replyFactory(config, MemoryReactor(), None)
            assert isinstance(factory, HostileReplyFactory)
            self.assertEqual(factory.settings, expected)


class MakeServiceTests(SynchronousTestCase):
    """
    L{makeService} wires the parsed options onto a reactor.
    """

    def setUp(self) -> None:
        self.directory = temporaryDirectory(self)
        self.certificates = makeCertificates(self.directory)
        self.events = captureLogEvents(self)

    def serve(self, *arguments: str, reactor: Any = None) -> IService:
        """
        Build and start the service for a command line that uses the test
        certificate.
        """
        options = parse(
            "--cert", str(self.certificates.certificatePath),
            "--key", str(self.certificates.keyPath),
            *arguments,
        )
        service = makeService(options, reactor=reactor or MemoryReactor())
        service.privilegedStartService()
        service.startService()
        self.addCleanup(service.stopService)
        return service

    def assertExits(self, message: str, *arguments: str, withCertificate: bool = True) -> None:
        """
        Making the service for this command line exits with one line that
        contains C{message}.
        """
        if withCertificate:
            arguments = ("--cert", str(self.certificates.certificatePath),
                         "--key", str(self.certificates.keyPath)) + arguments
        with self.assertRaises(SystemExit) as caught:
            service = makeService(parse(*arguments), reactor=MemoryReactor())
            service.privilegedStartService()
        text = str(caught.exception.code)
        self.assertIn(message, text)
        self.assertNotIn("\n", text)
        self.assertTrue(text.startswith("tlsreply: "), text)

    def test_listensWhereAsked(self) -> None:
        """
        A port number listens with TCP on every interface, with TLS wrapped
        around the reply factory.
        """
        memory = MemoryReactor()
        self.serve("--port", "4433", "--reply", "hi\\n", reactor=memory)
        [(port, factory, backlog, interface)] = memory.tcpServers
        self.assertEqual((port, interface, backlog), (4433, "", 511))
        replyFactory = replyFactoryOf(factory)
        self.assertEqual(replyFactory.reply, b"hi\n")
        self.assertEqual(replyFactory.handshakeTimeout, 10.0)
        self.assertEqual(replyFactory.closeTimeout, 3.0)

    def test_metricsEndpoint(self) -> None:
        """
        C{--metrics} adds a service named C{metrics} that listens where
        asked, and makes the reply factory count connections.
        """
        memory = MemoryReactor()
        service = self.serve("--port", "4433", "--metrics", "tcp:9102:interface=127.0.0.1",
                             reactor=memory)
        metrics = IServiceCollection(service).getServiceNamed("metrics")
        assert isinstance(metrics, MetricsService)
        [(_, tls, _, _), (port, site, _, interface)] = memory.tcpServers
        self.assertEqual((port, interface), (9102, "127.0.0.1"))
        self.assertIs(site, metrics.site)
        self.assertIsNotNone(replyFactoryOf(tls).metrics)
        self.assertFalse(metrics.draining)

    def test_noMetricsNoCounting(self) -> None:
        """
        Without C{--metrics}, nothing counts connections for it.
        """
        memory = MemoryReactor()
        self.serve("--port", "4433", reactor=memory)
        [(_, tls, _, _)] = memory.tcpServers
        self.assertIsNone(replyFactoryOf(tls).metrics)

    def test_workersMetricsFolder(self) -> None:
        """
        With C{--workers}, the parent serves the metrics from a private
        folder, which goes when the server stops.
        """
        memory = MemoryReactor()
        service = self.serve("--port", "tcp:0:interface=127.0.0.1", "--workers", "2",
                             "--metrics", "tcp:9102", reactor=memory)
        [event] = [e for e in self.events if "path" in e and "metrics" in e["log_format"]]
        folder = Path(event["path"])
        self.assertEqual(folder.stat().st_mode & 0o777, 0o700)
        self.assertEqual([p for p, _, _, _ in memory.tcpServers], [9102])
        service.stopService()
        self.assertFalse(folder.exists())

    def test_everyEndpointKindCarriesTLS(self) -> None:
        """
        tcp (with an interface), unix and haproxy descriptions all listen,
        each with TLS around the reply factory.
        """
        memory = MemoryReactor()
        socketPath = str(self.directory / "t.sock")
        self.serve("--port", "tcp:8443:interface=::1", "--listen", f"unix:{socketPath}",
                   "--listen", "haproxy:tcp:9443", "--listen", r"tcp:443:interface=\:\:",
                   "--listen", "tcp:444:interface=::ffff:127.0.0.1:backlog=7",
                   reactor=memory)
        (p1, f1, _, i1), (p2, f2, _, i2), (p3, _, _, i3), (p4, _, b4, i4) = (
            memory.tcpServers
        )
        self.assertEqual(
            [(p1, i1), (p2, i2), (p3, i3), (p4, i4, b4)],
            [(8443, "::1"), (9443, ""), (443, "::"), (444, "::ffff:127.0.0.1", 7)],
        )
        replyFactoryOf(f1)
        assert isinstance(f2, HAProxyWrappingFactory)
        replyFactoryOf(f2.wrappedFactory)
        [(path, f3, _, _, _)] = memory.unixServers
        self.assertEqual(path, socketPath)
        replyFactoryOf(f3)

    def test_startupEventNamesPolicyAndAddresses(self) -> None:
        """
        Start-up logs one event with every listening address and the
        effective TLS policy.
        """
        service = self.serve("--port", "tcp:0:interface=127.0.0.1", reactor=reactor)
        [event] = [e for e in self.events if "policy" in e]
        [inner] = list(service)  # type: ignore[call-overload]
        assert isinstance(inner, TLSReplyService)
        self.assertEqual(event["addresses"], inner.addresses)
        self.assertTrue(event["addresses"][0].startswith("127.0.0.1:"))
        self.assertEqual(event["policy"]["versions"], "TLSv1.2-TLSv1.3")
        self.assertEqual(event["policy"]["earlyData"], "refused")
        self.assertTrue(event["policy"]["sessionCache"])
        self.assertTrue(event["policy"]["sessionTickets"])

    def test_developmentCertificate(self) -> None:
        """
        Without C{--cert}, a development certificate is made under
        C{./certs/} of the working directory once the server listens,
        reused on the next start, and its path and SHA-256 fingerprint are
        logged.
        """
        workdir = temporaryDirectory(self)
        self.addCleanup(os.chdir, os.getcwd())
        os.chdir(workdir)
        for _ in range(2):
            service = makeService(parse(), reactor=MemoryReactor())
            self.assertTrue(IService.providedBy(service))
            service.privilegedStartService()
            service.startService()
            service.stopService()
        certificate = x509.load_pem_x509_certificate(
            (workdir / "certs" / "dev-cert.pem").read_bytes()
        )
        fingerprint = certificate.fingerprint(hashes.SHA256()).hex(":").upper()
        messages = [e for e in self.events if "fingerprint" in e]
        self.assertEqual([e["action"] for e in messages], ["created", "using"])
        for event in messages:
            self.assertEqual(event["fingerprint"], fingerprint)
            self.assertEqual(event["path"], str(workdir / "certs" / "dev-cert.pem"))
        self.assertEqual(os.stat(workdir / "certs" / "dev-key.pem").st_mode & 0o777, 0o600)

    def test_developmentCertificateSavedOnlyOnceListening(self) -> None:
        """
        The development certificate is made in memory while the server is
        built and written to C{./certs/} only once every port is bound: a
        server that cannot listen leaves no C{./certs/} behind.
        """
        workdir = temporaryDirectory(self)
        self.addCleanup(os.chdir, os.getcwd())
        os.chdir(workdir)
        taken = socket.socket()
        self.addCleanup(taken.close)
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        service = makeService(parse("--port", f"tcp:{port}:interface=127.0.0.1"),
                              reactor=reactor)
        self.assertFalse((workdir / "certs").exists())
        self.assertRaises(SystemExit, service.privilegedStartService)
        self.assertFalse((workdir / "certs").exists())
        self.assertEqual([e for e in self.events if "fingerprint" in e], [])

    def test_developmentCertificateSavedMeanwhile(self) -> None:
        """
        Two servers built at once with no development certificate yet each
        make one; the second to start finds the first one's on disk and
        serves that one, the one clients are pointed at.
        """
        workdir = temporaryDirectory(self)
        self.addCleanup(os.chdir, os.getcwd())
        os.chdir(workdir)
        services = [makeService(parse(), reactor=MemoryReactor()) for _ in range(2)]
        savers = [
            saver for service in services for saver in service  # type: ignore[attr-defined]
            if isinstance(saver, DevelopmentCertificateSaver)
        ]
        self.assertEqual(len(savers), 2)
        for service in services:
            service.privilegedStartService()
            service.startService()
            self.addCleanup(service.stopService)
        onDisk = x509.load_pem_x509_certificate((workdir / "certs" / "dev-cert.pem").read_bytes())
        fingerprint = onDisk.fingerprint(hashes.SHA256()).hex(":").upper()
        self.assertEqual(
            [saver.contexts.current.credentials[0].fingerprint for saver in savers],
            [fingerprint, fingerprint],
        )
        messages = [e for e in self.events if "fingerprint" in e]
        self.assertEqual([e["action"] for e in messages], ["created", "using"])

    def test_missingCertificateIsNeverGenerated(self) -> None:
        """
        An explicit C{--cert} that does not exist is an error; no
        development certificate is made in its place.
        """
        workdir = temporaryDirectory(self)
        self.addCleanup(os.chdir, os.getcwd())
        os.chdir(workdir)
        self.assertExits(
            f"certificate file not found: {workdir}/nope.pem",
            "--cert", str(workdir / "nope.pem"), withCertificate=False,
        )
        self.assertFalse((workdir / "certs").exists())

    def test_badFiles(self) -> None:
        """
        Files that are not what they should be each give one line naming
        the file.
        """
        notPEM = self.directory / "not.pem"
        notPEM.write_bytes(b"hello\n")
        otherKey = self.directory / "other.key"
        otherKey.write_bytes(
            ec.generate_private_key(ec.SECP256R1()).private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.BestAvailableEncryption(b"secret"),
            )
        )
        cert = str(self.certificates.certificatePath)
        self.assertExits(f"certificate file {notPEM} holds no PEM certificate",
                         "--cert", str(notPEM), withCertificate=False)
        self.assertExits(f"private key file {otherKey} is encrypted",
                         "--cert", cert, "--key", str(otherKey), withCertificate=False)
        unencrypted = self.directory / "plain.key"
        unencrypted.write_bytes(
            ec.generate_private_key(ec.SECP256R1()).private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        self.assertExits(f"private key {unencrypted} does not match certificate {cert}",
                         "--cert", cert, "--key", str(unencrypted), withCertificate=False)
        self.assertExits(f"chain file {notPEM} holds no PEM certificate",
                         "--chain", str(notPEM))

    def test_badReplyFile(self) -> None:
        """
        A missing or empty reply file is an error.
        """
        empty = self.directory / "empty"
        empty.write_bytes(b"")
        self.assertExits(f"--reply-file: reply file not found: {self.directory}/missing",
                         "--reply-file", str(self.directory / "missing"))
        self.assertExits(f"--reply-file: {empty} is empty", "--reply-file", str(empty))
        self.assertExits(f"--reply-file: reply path is a directory: {self.directory}",
                         "--reply-file", str(self.directory))

    def test_fifoNamedAsAnInputFile(self) -> None:
        """
        A FIFO given as any file tlsreply reads (a certificate, a key, a
        chain, an OCSP response, a client CA, a reply) is refused at once
        with one line naming it, never opened: opening it would block the
        start until a writer came. (L{UnblockFIFO} ends a blocked open after
        5 s, so that the test fails rather than hangs.)
        """
        for option in ("--cert", "--key", "--chain", "--ocsp-response", "--client-ca",
                       "--reply-file"):
            fifo = self.directory / f"fifo{option}"
            os.mkfifo(fifo)
            UnblockFIFO(self, fifo)
            arguments = [option, str(fifo)]
            if option == "--client-ca":
                arguments += ["--verify-client", "optional"]
            if option == "--cert":
                arguments += ["--key", str(self.certificates.keyPath)]
            if option == "--key":
                arguments = ["--cert", str(self.certificates.certificatePath), *arguments]
            started = time.monotonic()
            self.assertExits(f"{fifo} is a FIFO, not a regular file", *arguments,
                             withCertificate=option not in ("--cert", "--key"))
            self.assertLess(time.monotonic() - started, 4, option)

    def test_replyFile(self) -> None:
        """
        C{--reply-file} sends the file's bytes exactly.
        """
        path = self.directory / "reply.bin"
        path.write_bytes(b"\x00binary\r\n\xff")
        memory = MemoryReactor()
        self.serve("--reply-file", str(path), reactor=memory)
        factory = replyFactoryOf(memory.tcpServers[0][1])
        self.assertEqual(factory.reply, b"\x00binary\r\n\xff")

    def test_httpReply(self) -> None:
        """
        C{--http} wraps the reply in a complete HTTP/1.1 response.
        """
        memory = MemoryReactor()
        self.serve("--http", "--reply", "ok\\n", reactor=memory)
        factory = replyFactoryOf(memory.tcpServers[0][1])
        self.assertEqual(
            factory.reply,
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\n"
            b"Content-Length: 3\r\nCache-Control: no-store\r\n"
            b"Connection: close\r\n\r\nok\n",
        )

    def test_scenarioExcludesCertificates(self) -> None:
        """
        A scenario brings its own certificates; with C{--cert} or
        C{--cert-dir} too it is an error naming the option, and an unknown
        scenario is one line naming the known ones.
        """
        self.assertExits("--scenario brings its own certificates: drop --cert",
                         "--scenario", "valid")
        self.assertExits("--scenario brings its own certificates: drop --cert-dir",
                         "--scenario", "valid", "--cert-dir", str(self.directory),
                         withCertificate=False)
        self.assertExits("unknown scenario 'nope'", "--scenario", "nope",
                         withCertificate=False)

    def test_certificateOpenSSLRefuses(self) -> None:
        """
        A certificate that parses but that OpenSSL refuses to serve (an
        RSA-1024 key, below its security level) is one line with OpenSSL's
        reason, not a traceback.
        """
        key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
        now = datetime.datetime.now(datetime.UTC)
        name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "localhost")])
        certificate = (
            x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
            .sign(key, hashes.SHA256())
        )
        path = self.directory / "weak.pem"
        path.write_bytes(
            certificate.public_bytes(serialization.Encoding.PEM)
            + key.private_bytes(serialization.Encoding.PEM,
                                serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
        )
        self.assertExits(f"OpenSSL refuses certificate {path}: ee key too small",
                         "--cert", str(path), withCertificate=False)

    def test_scenarioDecidesItsOwnPolicy(self) -> None:
        """
        Options a scenario decides (versions, sessions, client verification)
        are refused with it instead of being silently ignored.
        """
        self.assertExits("--scenario decides --max-tls and --session-tickets itself: drop them",
                         "--scenario", "valid", "--max-tls", "1.2",
                         "--session-tickets", "off", withCertificate=False)
        self.assertExits("--scenario decides --min-tls itself: drop it",
                         "--scenario", "expired", "--min-tls", "1.3", withCertificate=False)

    def test_systemdWithoutSocket(self) -> None:
        """
        A systemd listener outside socket activation says what is missing.
        """
        self.assertExits("systemd passed no such socket (LISTEN_FDS is not set",
                         "--port", "systemd:domain=INET:index=0")

    def test_badEndpoints(self) -> None:
        """
        A description Twisted cannot parse, or one that would add a second
        TLS layer, is one line naming it.
        """
        self.assertExits("bad listen address 'bogus:1'", "--port", "bogus:1")
        self.assertExits(
            "listen address 'tcp:port=x': the port must be a number from 0 to 65535, not 'x'",
            "--port", "tcp:port=x",
        )
        self.assertExits(
            "listen address 'tcp:notaport': the port must be a number from 0 to 65535",
            "--port", "tcp:notaport",
        )
        self.assertExits("listen address '99999': the port must be a number", "--port", "99999")
        self.assertExits("tlsreply adds TLS itself", "--port", "ssl:443")

    def test_portInUse(self) -> None:
        """
        A port that is already taken is one line at start-up, and nothing
        stays bound.
        """
        taken = socket.socket()
        self.addCleanup(taken.close)
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        description = f"tcp:{port}:interface=127.0.0.1"
        options = parse("--cert", str(self.certificates.certificatePath),
                        "--key", str(self.certificates.keyPath),
                        "--port", "tcp:0:interface=127.0.0.1",
                        "--listen", description)
        service = makeService(options, reactor=reactor)
        with self.assertRaises(SystemExit) as caught:
            service.privilegedStartService()
        self.assertEqual(caught.exception.code, 1)
        [event] = [e for e in self.events if e["log_level"] == LogLevel.critical]
        self.assertEqual(
            event["error"], f"cannot listen on {description}: Address already in use"
        )
        # The first listener was closed again: trial would call the reactor
        # dirty otherwise.

    def test_expiredCertificateIsALoudWarning(self) -> None:
        """
        An expired certificate is served, with an error-level event saying
        it expired; a not-yet-valid one gets a warning.
        """
        now = datetime.datetime.now(datetime.UTC)
        for name, notBefore, notAfter, level, words in [
            ("expired", now - datetime.timedelta(days=10), now - datetime.timedelta(days=1),
             LogLevel.error, "EXPIRED"),
            ("future", now + datetime.timedelta(days=1), now + datetime.timedelta(days=10),
             LogLevel.warn, "NOT YET VALID"),
        ]:
            path = _selfSigned(self.directory / f"{name}.pem", notBefore, notAfter)
            del self.events[:]
            makeService(parse("--cert", str(path)), reactor=MemoryReactor())
            [event] = [e for e in self.events if "problem" in e]
            self.assertEqual(event["log_level"], level)
            self.assertIn(words, event["problem"])


def _selfSigned(path: Path, notBefore: datetime.datetime, notAfter: datetime.datetime) -> Path:
    """
    Write a combined certificate-and-key file with the given validity.
    """
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "localhost")])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(notBefore)
        .not_valid_after(notAfter)
        .sign(key, hashes.SHA256())
    )
    path.write_bytes(
        certificate.public_bytes(serialization.Encoding.PEM)
        + key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return path
