"""
C{--max-connections} end to end: given on a real command line, it caps the
connections in progress (clients beyond it wait in the kernel's queue and
are served as soon as one ends), and with C{--workers} it caps each
worker.
"""

from __future__ import annotations

import re
import socket
import time

from twisted.trial.unittest import SynchronousTestCase

from tests.support import (
    LOOPBACK,
    acceptedByServer,
    clientContext,
    makeCertificates,
    temporaryDirectory,
    waitUntilAccepted,
)
from tests.test_plugin import SCRIPTS, Daemon

_PAUSED = r"(\d+) connections in progress \(--max-connections (\d+)\): not accepting until one ends"


def stayUnaccepted(clients: list[socket.socket], seconds: float = 1.0) -> list[socket.socket]:
    """
    Watch C{clients} for C{seconds}; return those the server accepted
    meanwhile (none, for a server at its cap).
    """
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        accepted = [c for c in clients if acceptedByServer(c)]
        if accepted:
            return accepted
        time.sleep(0.05)
    return []


class MaxConnectionsTests(SynchronousTestCase):
    """
    C{twistd -n tlsreply --max-connections N}, with idle clients (connected,
    silent) holding the slots.
    """

    def start(self, *arguments: str) -> tuple[Daemon, int, str]:
        directory = temporaryDirectory(self)
        certificates = makeCertificates(directory)
        daemon = Daemon(
            [str(SCRIPTS / "twistd"), "-n", "--pidfile=", "tlsreply",
             "--port", f"tcp:0:interface={LOOPBACK}",
             "--cert", str(certificates.certificatePath),
             "--key", str(certificates.keyPath),
             "--handshake-timeout", "60", "--access-log", "stdout", *arguments],
            directory,
        )
        self.addCleanup(lambda: daemon.process.poll() is None and daemon.stop())
        match = daemon.waitFor(r"listening on \['127\.0\.0\.1:(\d+)'\]")
        return daemon, int(match.group(1)), str(certificates.caPath)

    def idle(self, port: int) -> socket.socket:
        client = socket.create_connection((LOOPBACK, port))
        self.addCleanup(client.close)
        return client

    def test_capFromTheCommandLine(self) -> None:
        """
        With C{--max-connections 2}, two idle clients make tlsreply stop
        accepting, and it says so, naming the option's value; a third
        client waits, unaccepted, and is served once one of the two leaves.
        """
        daemon, port, caPath = self.start("--max-connections", "2")
        first, second = self.idle(port), self.idle(port)
        waitUntilAccepted(first)
        waitUntilAccepted(second)
        paused = daemon.waitFor(_PAUSED)
        self.assertEqual(paused.groups(), ("2", "2"))

        third = self.idle(port)
        self.assertEqual(stayUnaccepted([third]), [], "a third connection was accepted at the cap")
        first.close()
        third.settimeout(30)
        with clientContext(caPath).wrap_socket(third, server_hostname="localhost") as tls:
            self.assertEqual(tls.recv(100), b"test\n")
        daemon.waitFor("accepting again")
        self.assertEqual(daemon.stop(), 0)

    def test_capPerWorker(self) -> None:
        """
        With C{--workers 2 --max-connections 1}, each worker holds one idle
        client and stops accepting: two connections in progress in all,
        and both workers say they are at their cap of 1.
        """
        daemon, port, _ = self.start("--workers", "2", "--max-connections", "1")
        pattern = r"tlsreply worker \d listening on"
        while sum(bool(re.search(pattern, line)) for line in daemon.output) < 2:
            daemon.waitFor(pattern)
        # The kernel spreads connections over the two workers' sockets by
        # their addresses: with 16, both workers get one but for a chance
        # of 2 ** -15.
        clients = [self.idle(port) for _ in range(16)]
        for _ in range(2):
            self.assertEqual(daemon.waitFor(_PAUSED).groups(), ("1", "1"))
        deadline = time.monotonic() + 10
        while len([c for c in clients if acceptedByServer(c)]) < 2:
            self.assertLess(time.monotonic(), deadline, "two workers did not accept one each")
            time.sleep(0.05)
        waiting = [c for c in clients if not acceptedByServer(c)]
        self.assertEqual(len(waiting), 14)
        self.assertEqual(stayUnaccepted(waiting), [])
        self.assertEqual(daemon.stop(), 0)
