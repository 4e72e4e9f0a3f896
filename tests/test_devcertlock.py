"""
The development certificate's lock across processes: several tlsreply
processes starting at once in the same folder, with no certificate yet,
make one certificate between them and pair it with its own key.
"""

from __future__ import annotations

import json
import subprocess
import sys

from twisted.trial.unittest import SynchronousTestCase

from tests.support import temporaryDirectory
from tlsreply import loadCredentials

PROCESSES = 6

#: One starting process: it loads everything first and says so, waits for
#: the word, then makes or reuses the certificate and reports which.
_STARTER = """
import json, sys
from pathlib import Path
from tlsreply.tls.devcert import ensureDevelopmentCertificate
print("ready", flush=True)
sys.stdin.readline()
result = ensureDevelopmentCertificate(Path(sys.argv[1]))
print(json.dumps({"fingerprint": result.credentials.fingerprint, "created": result.created}))
"""


class CrossProcessLockTests(SynchronousTestCase):
    """
    Real processes, released together, race for the first certificate.
    """

    def test_concurrentProcessesAgree(self) -> None:
        """
        Six processes released at the same moment: exactly one creates the
        certificate, every one gets that certificate, and the key on disk
        matches it. Repeated in fresh folders, so that a lock that does not
        hold between processes has many chances to show.
        """
        for _ in range(5):
            directory = temporaryDirectory(self) / "certs"
            starters = [
                subprocess.Popen(
                    [sys.executable, "-c", _STARTER, str(directory)],
                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                )
                for _ in range(PROCESSES)
            ]
            for starter in starters:
                self.addCleanup(starter.kill)
                assert starter.stdout is not None
                self.assertEqual(starter.stdout.readline(), "ready\n")
            for starter in starters:
                assert starter.stdin is not None
                starter.stdin.write("go\n")
                starter.stdin.flush()
            results = []
            for starter in starters:
                output, _ = starter.communicate(timeout=60)
                self.assertEqual(starter.returncode, 0)
                results.append(json.loads(output))
            self.assertEqual(len({r["fingerprint"] for r in results}), 1, results)
            self.assertEqual(sum(r["created"] for r in results), 1, results)
            onDisk = loadCredentials(directory / "dev-cert.pem", directory / "dev-key.pem")
            self.assertEqual(onDisk.fingerprint, results[0]["fingerprint"])
