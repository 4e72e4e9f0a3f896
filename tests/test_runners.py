"""
Both runners see the same suite.

C{make test} runs every test under trial, and under pytest only the tests
that need pytest (the fixtures) and a sample of every kind of trial test
(L{PYTEST_SAMPLE}): pytest runs a trial test by handing it to trial's own
C{TestCase.run}, so what pytest could get wrong is finding the tests and
hosting trial's reactor handling, not the tests' outcomes. This module
checks the first for the whole suite; the sample checks the second.
C{make test-all} runs the whole suite under both.
"""

from __future__ import annotations

import subprocess
import sys
import unittest
from collections.abc import Iterator
from pathlib import Path

from twisted.trial import runner
from twisted.trial.unittest import SynchronousTestCase

CHECKOUT = Path(__file__).resolve().parent.parent

# The files `make test` runs under pytest (the Makefile's PYTEST_SAMPLE
# must list the same): the tests only pytest runs; trial's TestCase with
# async tests on the real reactor, threads and the memory-BIO variants
# (test_wire); SynchronousTestCase on a fake clock (test_protocol); and this.
PYTEST_ONLY = ("tests/test_pytest_plugin.py",)
PYTEST_SAMPLE = (
    *PYTEST_ONLY,
    "tests/test_wire.py",
    "tests/test_protocol.py",
    "tests/test_runners.py",
)


def _flatten(suite: unittest.TestSuite | unittest.TestCase) -> Iterator[unittest.TestCase]:
    if isinstance(suite, unittest.TestSuite):
        for each in suite:
            yield from _flatten(each)
    else:
        yield suite


def trialTestIDs() -> set[str]:
    """
    Every test trial runs for C{trial tests}, as C{tests.module.Class.method}.
    """
    return {test.id() for test in _flatten(runner.TestLoader().loadByName("tests", recurse=True))}


def pytestTestIDs(*paths: str) -> set[str]:
    """
    Every test pytest collects (in a subprocess, from the checkout), in
    trial's spelling.
    """
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", *paths],
        cwd=CHECKOUT, capture_output=True, timeout=120,
    )
    output = result.stdout.decode()
    if result.returncode != 0:
        raise AssertionError(f"pytest --collect-only failed:\n{output}{result.stderr.decode()}")
    ids = set()
    for line in output.splitlines():
        if "::" in line:
            path, _, rest = line.partition("::")
            ids.add(path.removesuffix(".py").replace("/", ".") + "." + rest.replace("::", "."))
    return ids


class RunnerParityTests(SynchronousTestCase):
    """
    pytest collects every test trial runs, and runs only its own tests
    beyond them.
    """

    def test_pytestCollectsEveryTrialTest(self) -> None:
        trial = trialTestIDs()
        pytest = pytestTestIDs()
        self.assertGreater(len(trial), 100)
        self.assertEqual(sorted(trial - pytest), [])
        onlyPytest = {test.split(".")[1] for test in pytest - trial}
        expected = {Path(path).stem for path in PYTEST_ONLY}
        self.assertEqual(
            onlyPytest,
            expected,
            "pytest-only tests outside the files `make test` runs under pytest "
            "would run under neither runner there: move them, or add the file "
            "to PYTEST_ONLY here and to PYTEST_SAMPLE in the Makefile",
        )

    def test_makefileRunsTheSample(self) -> None:
        """
        The Makefile's pytest run is the sample this module describes.
        """
        makefile = (CHECKOUT / "Makefile").read_text()
        [line] = [x for x in makefile.splitlines() if x.startswith("PYTEST_SAMPLE")]
        self.assertEqual(tuple(line.split("=", 1)[1].split()), PYTEST_SAMPLE)
