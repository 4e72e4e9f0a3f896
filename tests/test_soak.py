"""
The soak script, in its CI-sized form, against a real C{twistd -n tlsreply}.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

from tests.support import runCommand

SOAK = Path(__file__).resolve().parent.parent / "scripts" / "soak.py"


class QuickSoakTests(SynchronousTestCase):
    """
    C{scripts/soak.py --quick} passes and reports its figures.
    """

    def test_quickSoakPasses(self) -> None:
        """
        A quick soak (about 1,700 good and bad connections, 200 idle ones,
        200 at once) exits 0, which means the server ended with as many
        descriptors as after warm-up, every good client got the reply and
        the server logged one line per connection and no error; and it
        prints the descriptor and memory figures.
        """
        if not os.path.isdir("/proc/self/fd"):
            self.skipTest("the soak script reads /proc")
        result = runCommand(
            [sys.executable, str(SOAK), "--quick", "--deadline", "45"], timeout=120
        )
        output = result.stdout.decode("utf-8", "replace")
        self.assertEqual(result.returncode, 0, output + result.stderr.decode())
        self.assertRegex(
            output, r"server descriptors: after warm-up (\d+), at the end \1: equal"
        )
        self.assertRegex(
            output,
            r"server memory \(VmRSS\): after warm-up [\d,]+ KiB, at the end "
            r"[\d,]+ KiB, moved [+-][\d,]+ KiB",
        )
        self.assertIn("result: PASS", output)
