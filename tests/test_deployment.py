"""
The deployment guide (C{docs/deployment.md}) says what runs: its command
lines and Kubernetes arguments are ones tlsreply accepts, its timings fit
its options, and its alerts name metrics that a scrape has. (Its HAProxy
configuration is run by L{tests.test_haproxy}, its systemd units are
checked by L{tests.test_systemd}.)
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess

from twisted.internet import reactor
from twisted.internet.task import deferLater
from twisted.trial.unittest import SynchronousTestCase, TestCase

from tests.haproxy import GUIDE
from tests.support import (
    LOOPBACK,
    README,
    clientContext,
    fetchWithSSL,
    inThread,
    makeCertificates,
    temporaryDirectory,
)
from tests.test_metrics import scrape
from tests.test_plugin import SCRIPTS
from tlsreply import (
    ReloadableContexts,
    ReplyFactory,
    TLSReplyService,
    buildServerContexts,
    loadCredentials,
)
from tlsreply.instrumentation import singleProcessMetrics


def guideCommands() -> list[list[str]]:
    """
    Every C{tlsreply serve} command line in the guide, as arguments after
    C{serve} (continued lines joined).
    """
    text = GUIDE.read_text().replace("\\\n", " ")
    return [
        shlex.split(line.split("tlsreply serve", 1)[1])
        for line in text.splitlines()
        if line.startswith("$ tlsreply serve ")
    ]


def kubernetesArguments() -> list[str]:
    """
    The container's C{args} in the guide's Deployment (a YAML flow list,
    which is also JSON).
    """
    [line] = re.findall(r"^\s*args: (\[.*\])$", GUIDE.read_text(), re.MULTILINE)
    arguments: list[str] = json.loads(line)
    return arguments


def showConfig(testCase: SynchronousTestCase, arguments: list[str]) -> dict[str, object]:
    """
    What C{tlsreply show-config} makes of C{arguments}, with the guide's
    certificate folder replaced by a test one; fails with its message if
    tlsreply refuses them.
    """
    workdir = temporaryDirectory(testCase)
    certificates = makeCertificates(workdir / "certs")
    folder = workdir / "certs" / "server"
    folder.mkdir()
    (folder / "tlsreply.pem").write_bytes(certificates.certificatePath.read_bytes())
    (folder / "tlsreply.key").write_bytes(certificates.keyPath.read_bytes())
    arguments = [str(folder) if a == "/etc/tlsreply" else a for a in arguments]
    result = subprocess.run(
        [str(SCRIPTS / "tlsreply"), "show-config", *arguments],
        cwd=workdir, capture_output=True, timeout=60,
    )
    testCase.assertEqual(result.returncode, 0, result.stderr.decode())
    settings: dict[str, object] = json.loads(result.stdout)
    return settings


class CommandLineTests(SynchronousTestCase):
    """
    The guide's command lines are ones tlsreply accepts.
    """

    def test_serveCommands(self) -> None:
        commands = guideCommands()
        self.assertGreaterEqual(len(commands), 2)
        for arguments in commands:
            settings = showConfig(self, arguments)
            self.assertTrue(settings["certificates"], arguments)

    def test_behindHAProxy(self) -> None:
        """
        The instance behind HAProxy takes the PROXY header, serves its
        health check on the port HAProxy checks, and drains for longer than
        HAProxy's checks take to notice (C{inter} times C{fall}).
        """
        [arguments] = [a for a in guideCommands() if "haproxy:tcp:4433" in a]
        settings = showConfig(self, arguments)
        self.assertEqual(settings["listen"], ["haproxy:tcp:4433"])
        self.assertEqual(settings["metrics"], "tcp:9102")
        text = GUIDE.read_text()
        self.assertRegex(text, r"server \w+ [\d.]+:4433 port 9102")
        inter, fall = re.search(r"check inter (\d+)s fall (\d+)", text).groups()  # type: ignore[union-attr]
        drainDelay = settings["drainDelay"]
        assert isinstance(drainDelay, float)
        self.assertGreater(drainDelay, int(inter) * int(fall))

    def test_kubernetes(self) -> None:
        """
        The Deployment's arguments are accepted, its probes use the
        metrics port the arguments open, and its grace period covers the
        drain delay and the shutdown grace.
        """
        arguments = kubernetesArguments()
        self.assertEqual(arguments[0], "serve")
        settings = showConfig(self, arguments[1:])
        self.assertEqual(settings["metrics"], "tcp:9102")
        self.assertEqual(settings["logFormat"], "json")
        text = GUIDE.read_text()
        self.assertIn("containerPort: 9102", text)
        self.assertIn("httpGet: {path: /ready, port: metrics}", text)
        grace = int(re.search(r"terminationGracePeriodSeconds: (\d+)", text).group(1))  # type: ignore[union-attr]
        drainDelay, shutdownGrace = settings["drainDelay"], settings["shutdownGrace"]
        assert isinstance(drainDelay, float) and isinstance(shutdownGrace, float)
        self.assertGreater(grace, drainDelay + shutdownGrace)


    def test_kubernetesMetricsPortOnlyForPrometheus(self) -> None:
        """
        The metrics port listens on the pod's IP (the kubelet's probes and
        Prometheus connect there), so the guide's NetworkPolicy selects the
        Deployment's pods and opens port 9102 only to the pods it names,
        while the TLS port stays open to all.
        """
        text = GUIDE.read_text()
        section = text[text.index("## Kubernetes"):]
        self.assertIn("kind: NetworkPolicy", section)
        policy = section[section.index("kind: NetworkPolicy"):]
        policy = policy[: policy.index("```")]
        self.assertIn("matchLabels: {app: tlsreply}", policy)
        self.assertIn("policyTypes: [Ingress]", policy)
        rules = re.split(r"\n    - ", policy.split("  ingress:\n", 1)[1])
        metrics = [rule for rule in rules if "{port: 9102}" in rule]
        self.assertEqual(len(metrics), 1, rules)
        self.assertRegex(metrics[0], r"from:\n\s+- namespaceSelector:")
        self.assertRegex(metrics[0], r"podSelector:\n\s+matchLabels: \{[^}]*prometheus")
        self.assertTrue(any("{port: 4433}" in rule and "from:" not in rule for rule in rules))


class AlertTests(TestCase):
    """
    The metrics the guide's alerts use are ones a scrape has, and the
    README's alerts are the guide's.
    """

    def test_readmeAlertsAreTheGuides(self) -> None:
        """
        Every alert expression the README suggests is, character for
        character, one in the guide's table: the two once gave the failed
        reload alert different windows.
        """
        readme = README.read_text().split("Alerts worth having", 1)[1].split("\n\n", 1)[0]
        expressions = re.findall(r"`([^`]*tlsreply_[^`]*)`", readme)
        self.assertGreaterEqual(len(expressions), 3)
        section = GUIDE.read_text().split("## Metrics to alert on", 1)[1]
        guide = re.findall(r"`([^`]*)`", section.replace("\\|", "|"))
        for expression in expressions:
            self.assertIn(expression, guide)

    async def test_alertsNameRealMetrics(self) -> None:
        certificates = makeCertificates(temporaryDirectory(self))
        contexts = buildServerContexts(
            loadCredentials(str(certificates.certificatePath), str(certificates.keyPath))
        )
        service = TLSReplyService.fromDescriptions(
            reactor, [f"tcp:0:interface={LOOPBACK}"], contexts,
            ReplyFactory(b"test\n", clock=reactor),
        )
        metrics = singleProcessMetrics(
            reactor, f"tcp:0:interface={LOOPBACK}", service,
            ReloadableContexts(contexts, lambda: contexts),
        )
        for each in (service, metrics):
            each.startService()
            self.addCleanup(each.stopService)
        # One handshake, so that the labelled counters have a sample.
        port = service.listeningPorts[0].getHost().port  # type: ignore[attr-defined]
        await inThread(fetchWithSSL, port, clientContext(str(certificates.caPath)))
        assert metrics.port is not None
        metricsPort = metrics.port.getHost().port  # type: ignore[attr-defined]
        scraped: set[str] = set()
        for _ in range(100):  # the connection is counted as it ends
            scraped = {name for name, _ in await inThread(scrape, metricsPort)}
            if "tlsreply_handshakes_total" in scraped:
                break
            await deferLater(reactor, 0.05, lambda: None)
        section = GUIDE.read_text().split("## Metrics to alert on", 1)[1]
        named = set(re.findall(r"\b((?:tlsreply|process)_[a-z_]+)", section))
        self.assertGreater(len(named), 5)
        # A worker's process metrics, served by the parent of --workers,
        # are this process's own under the tlsreply_worker_ namespace.
        named = {name.removeprefix("tlsreply_worker_") for name in named}
        self.assertEqual(named - scraped, set())
