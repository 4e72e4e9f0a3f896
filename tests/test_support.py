"""
The suite's own helpers where a mistake would hide tests: a tool that
C{.ci/run} installs never turns into a skip in CI.
"""

from __future__ import annotations

import os
import unittest

from twisted.trial.unittest import SynchronousTestCase

from tests.support import inCI, requireTool

MISSING = "tlsreply-no-such-tool"


class RequireToolTests(SynchronousTestCase):
    """
    L{requireTool} skips on a developer's machine and fails in CI.
    """

    def setCI(self, value: str | None) -> None:
        previous = os.environ.get("CI")

        def restore() -> None:
            if previous is None:
                os.environ.pop("CI", None)
            else:
                os.environ["CI"] = previous

        self.addCleanup(restore)
        if value is None:
            os.environ.pop("CI", None)
        else:
            os.environ["CI"] = value

    def test_presentToolIsFound(self) -> None:
        """
        A tool on the path is returned by its full path, in CI or not.
        """
        self.setCI("true")
        self.assertTrue(os.path.isabs(requireTool("sh")))

    def test_missingToolSkipsOutsideCI(self) -> None:
        """
        Without C{CI} (or with C{CI=false}), a missing tool skips the test,
        naming the package to install.
        """
        for value in (None, "", "false", "0"):
            self.setCI(value)
            self.assertFalse(inCI())
            with self.assertRaises(unittest.SkipTest) as raised:
                requireTool(MISSING, "some-package")
            self.assertIn("apt-get install some-package", str(raised.exception))

    def test_missingToolFailsInCI(self) -> None:
        """
        With C{CI=true} (or any other true value), a missing tool is a
        failure naming .ci/run.
        """
        for value in ("true", "1", "yes"):
            self.setCI(value)
            with self.assertRaises(AssertionError) as raised:
                requireTool(MISSING)
            self.assertIn(".ci/run must install it", str(raised.exception))
