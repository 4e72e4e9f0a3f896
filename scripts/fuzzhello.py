"""
A long random campaign against tlsreply's ClientHello readers: the
properties of C{tests/test_clienthelloproperties.py} (no bytes make a
reader raise; a hello reads the same however it is cut; where OpenSSL
accepts a hello, every reader reads its server name; no reader waits for
bytes OpenSSL would already answer), each run on many random examples
instead of the suite's 200 fixed ones.

It prints each property's result and how many cases it ran, and exits
non-zero if any property failed (hypothesis prints the smallest example it
found).

Usage: C{.venv/bin/python scripts/fuzzhello.py [--examples N]} (C{make
fuzz}, with C{FUZZ_EXAMPLES=N}).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Fuzz tlsreply's ClientHello readers with hypothesis."
    )
    parser.add_argument(
        "--examples",
        type=int,
        default=10000,
        metavar="N",
        help="examples per property (default 10000)",
    )
    arguments = parser.parse_args(argv)
    if arguments.examples < 1:
        parser.error("--examples must be at least 1")
    # Read when the test module is imported: its settings profile.
    os.environ["TLSREPLY_HYPOTHESIS_PROFILE"] = "fuzz"
    os.environ["TLSREPLY_FUZZ_EXAMPLES"] = str(arguments.examples)
    sys.path.insert(0, str(CHECKOUT))

    from twisted.trial import reporter, runner

    import tests.test_clienthelloproperties as properties

    suite = runner.TestLoader().loadModule(properties)
    result = reporter.TreeReporter(sys.stdout)
    started = time.monotonic()
    suite.run(result)
    result.done()
    elapsed = time.monotonic() - started
    for name, count in sorted(properties.EXAMPLES.items()):
        sys.stdout.write(f"  {name}: {count}\n")
    total = sum(count for name, count in properties.EXAMPLES.items() if "(" not in name)
    verdict = "no property failed" if result.wasSuccessful() else "a property FAILED"
    sys.stdout.write(f"fuzz: {total} cases in {elapsed:.0f} s, {verdict}\n")
    return 0 if result.wasSuccessful() else 1


if __name__ == "__main__":
    sys.exit(main())
