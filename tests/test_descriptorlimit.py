"""
tlsreply raises its descriptor limit to fit C{--max-connections}, or warns
when the hard limit does not allow it: proven on real processes started
with a low C{RLIMIT_NOFILE}, as a container or a service manager may start
them.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

from tests.support import (
    LOOPBACK,
    clientContext,
    fetchWithSSL,
    makeCertificates,
    temporaryDirectory,
)
from tests.test_plugin import SCRIPTS, Daemon

#: Sets the soft and hard C{RLIMIT_NOFILE} given as the first two arguments,
#: then becomes the command that follows.
_LAUNCHER = (
    "import os, resource, sys\n"
    "resource.setrlimit(resource.RLIMIT_NOFILE, (int(sys.argv[1]), int(sys.argv[2])))\n"
    "os.execv(sys.argv[3], sys.argv[3:])\n"
)

_LISTENING = r"listening on \['127\.0\.0\.1:(\d+)'\]"

_WARNING = (
    r"the descriptor limit \((\d+)\) is below --max-connections (\d+) plus 64; "
    r"accepting will fail before the cap"
)


def openFilesLimit(pid: int) -> tuple[int, int]:
    """
    Process C{pid}'s soft and hard descriptor limits, as the kernel has
    them.
    """
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            soft, hard = line.split()[3:5]
            return int(soft), int(hard)
    raise AssertionError(f"no descriptor limit for {pid}")


class DescriptorLimitTests(SynchronousTestCase):
    """
    C{twistd -n tlsreply --max-connections N} started with a descriptor
    limit below N.
    """

    def start(self, soft: int, hard: int, *arguments: str) -> Daemon:
        directory = temporaryDirectory(self)
        certificates = makeCertificates(directory)
        daemon = Daemon(
            [sys.executable, "-c", _LAUNCHER, str(soft), str(hard),
             str(SCRIPTS / "twistd"), "-n", "--pidfile=", "tlsreply",
             "--port", f"tcp:0:interface={LOOPBACK}",
             "--cert", str(certificates.certificatePath),
             "--key", str(certificates.keyPath), *arguments],
            directory,
        )
        self.addCleanup(lambda: daemon.process.poll() is None and daemon.stop())
        self.caPath = str(certificates.caPath)
        return daemon

    def serveAndStop(self, daemon: Daemon, port: int) -> None:
        """
        Serve one client (the reactor runs, with tlsreply's signal handlers
        in place), then stop with SIGTERM: exit status 0.
        """
        self.assertEqual(fetchWithSSL(port, clientContext(self.caPath)).data, b"test\n")
        self.assertEqual(daemon.stop(), 0)

    def test_raisedToFitTheCap(self) -> None:
        """
        With a soft limit of 256 under a hard one of 4096, C{--max-connections
        1000} raises the soft limit to 1064 (the cap and 64 for listeners
        and logs), and nothing is said about it.
        """
        daemon = self.start(256, 4096, "--max-connections", "1000")
        port = int(daemon.waitFor(_LISTENING).group(1))
        self.assertEqual(openFilesLimit(daemon.process.pid), (1064, 4096))
        self.serveAndStop(daemon, port)
        self.assertNotRegex("".join(daemon.output), "descriptor limit")

    def test_eachWorkerFitsItsCap(self) -> None:
        """
        With C{--workers}, the cap is each worker's: every worker may open
        as many descriptors as its own cap needs.
        """
        daemon = self.start(256, 4096, "--max-connections", "1000", "--workers", "2")
        port = int(daemon.waitFor(_LISTENING).group(1))
        pids = [int(daemon.waitFor(r"started worker \d \(pid (\d+)\)").group(1)) for _ in range(2)]
        for pid in pids:
            self.assertEqual(openFilesLimit(pid), (1064, 4096))
        self.serveAndStop(daemon, port)

    def test_warnsWhenTheHardLimitIsTooLow(self) -> None:
        """
        When the hard limit (512) is below what C{--max-connections 1000}
        needs, the soft limit is raised as far as it goes, and a warning
        says that accepting will fail before the cap, with both numbers.
        """
        daemon = self.start(256, 512, "--max-connections", "1000")
        warning = daemon.waitFor(_WARNING)
        self.assertEqual(warning.groups(), ("512", "1000"))
        self.assertRegex(warning.string, r"\[tlsreply#warn\]")
        port = int(daemon.waitFor(_LISTENING).group(1))
        self.assertEqual(openFilesLimit(daemon.process.pid), (512, 512))
        self.serveAndStop(daemon, port)

    def test_enoughAlready(self) -> None:
        """
        A soft limit that already fits the cap is left as it is (not
        lowered to fit it exactly), without a warning.
        """
        daemon = self.start(2048, 4096, "--max-connections", "100")
        port = int(daemon.waitFor(_LISTENING).group(1))
        self.assertEqual(openFilesLimit(daemon.process.pid), (2048, 4096))
        self.serveAndStop(daemon, port)
        self.assertIsNone(re.search("descriptor limit", "".join(daemon.output)))
