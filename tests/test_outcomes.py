"""
Outcomes per client stack (L{tlsreply.scenarios.outcomes}) and Python's
outcomes worked out for the Python that runs (L{tlsreply.scenarios.pythonssl}),
down to the README's outcome example passing on Debian's own
C{/usr/bin/python3}, whose C{ssl} offers TLS 1.0.

That each stack does what its outcomes say is proved by C{make interop}
against the real stacks (C{scripts/interop}, C{tests/test_interop.py}).
"""

from __future__ import annotations

import io
import json
import os
import ssl
import subprocess
import sys
import sysconfig
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

from tests.support import readmeExample, temporaryDirectory
from tlsreply.command.cli import main
from tlsreply.scenarios.outcomes import (
    ACCEPT,
    CORRECT,
    OUTCOME_KINDS,
    STACK_MESSAGES,
    STACKS,
    ExpectedOutcome,
    refused,
    stackOutcomes,
)
from tlsreply.scenarios.pythonssl import (
    HANDSHAKE_FAILURE_ALERT,
    LEGACY_SIGALG,
    PROTOCOL_VERSION_ALERT,
    RUNNING,
    PythonSSLFacts,
)
from tlsreply.scenarios.servers import SCENARIOS

ROOT = Path(__file__).parent.parent

#: Debian's Python with its system OpenSSL 3.0, as it reports itself.
DEBIAN = PythonSSLFacts("OpenSSL 3.0.19 27 Jan 2026", (3, 0, 19), -2, 2)

#: CPython built on the same OpenSSL: its default minimum is TLS 1.2.
CPYTHON = PythonSSLFacts("OpenSSL 3.0.19 27 Jan 2026", (3, 0, 19), 771, 2)


class StackOutcomeTests(SynchronousTestCase):
    """
    Every scenario states an outcome for every stack, derived from its
    correct outcome except where it says otherwise.
    """

    def test_everyScenarioHasEveryStack(self) -> None:
        """
        Each scenario has an outcome for each of the six stacks, each of a
        known kind, accepted exactly when its kind is C{accept}.
        """
        self.assertEqual(STACKS, ("openssl", "python-ssl", "node", "java", "gnutls", "boringssl"))
        for name, scenario in SCENARIOS.items():
            self.assertEqual(list(scenario.outcomes), list(STACKS), name)
            for stack, outcome in scenario.outcomes.items():
                self.assertIn(outcome.kind, OUTCOME_KINDS, (name, stack))
                self.assertEqual(outcome.accepted, outcome.kind == "accept", (name, stack))
                self.assertIs(scenario.expectedOutcomeFor(stack), outcome)
            self.assertIs(scenario.expectedOutcomeFor(CORRECT), scenario.expectedOutcome)

    def test_unknownStack(self) -> None:
        """
        Asking for an unknown stack names the known ones.
        """
        with self.assertRaises(KeyError) as caught:
            SCENARIOS["valid"].expectedOutcomeFor("rustls")
        self.assertIn(
            "unknown client stack 'rustls': known are openssl, python-ssl, node, java, "
            "gnutls, boringssl, correct",
            str(caught.exception),
        )
        with self.assertRaises(ValueError):
            stackOutcomes(ACCEPT, {"rustls": ACCEPT})  # type: ignore[dict-item]

    def test_derivation(self) -> None:
        """
        A refusal keeps its kind on every stack, in each stack's words;
        Python's C{ssl} keeps the correct outcome's words; a stated
        difference wins; an outcome that C{requires} more than a default
        client is accepted by every default client.
        """
        correct = refused("certificate-expired", "certificate has expired")
        outcomes = stackOutcomes(correct, {"java": ACCEPT})
        self.assertEqual(outcomes["java"], ACCEPT)
        self.assertEqual(outcomes["python-ssl"], correct)
        self.assertEqual(
            outcomes["gnutls"],
            refused("certificate-expired", "The certificate chain uses expired certificate."),
        )
        needs = refused("hostname-mismatch", "x", requires="no common-name fallback")
        self.assertEqual(set(stackOutcomes(needs).values()), {ACCEPT})
        unworded = stackOutcomes(refused("weak-key", "EE certificate key too weak"))
        self.assertNotIn("weak-key", STACK_MESSAGES["gnutls"])
        self.assertEqual(unworded["gnutls"], refused("weak-key", None))

    def test_whatTheStacksDo(self) -> None:
        """
        What was found of the stacks: every stack falls back to the common
        name; Java and BoringSSL accept a SHA-1 signature; Node, Java,
        GnuTLS and BoringSSL an RSA 1024-bit key; GnuTLS speaks TLS 1.0
        and 1.1, and refuses a must-staple certificate without a staple,
        as RFC 7633 asks (which is also the correct outcome now); the
        OpenSSL command-line clients refuse TLS 1.0 for its SHA-1
        signature.
        """

        def accepting(name: str) -> set[str]:
            return {s for s, o in SCENARIOS[name].outcomes.items() if o.accepted}

        self.assertEqual(accepting("cn-only"), set(STACKS))
        self.assertEqual(accepting("sha1-signature"), {"java", "boringssl"})
        self.assertEqual(accepting("rsa1024"), {"node", "java", "gnutls", "boringssl"})
        for name in ("tls1.0-only", "tls1.1-only"):
            self.assertEqual(accepting(name) - {"python-ssl"}, {"gnutls"})
            self.assertEqual(SCENARIOS[name].outcomes["openssl"].message, LEGACY_SIGALG)
        staple = SCENARIOS["must-staple-no-staple"]
        self.assertEqual(accepting("must-staple-no-staple"), set(STACKS) - {"gnutls"})
        self.assertEqual(
            (staple.expectedOutcome.accepted, staple.expectedOutcome.kind),
            (False, "staple-missing"),
        )
        self.assertIsNotNone(staple.expectedOutcome.requires)

    def test_json(self) -> None:
        """
        C{tlsreply scenarios --json} gives each scenario its C{outcomes},
        every stack's and the correct client's.
        """
        out = io.StringIO()
        self.assertEqual(main(["scenarios", "--json"], out), 0)
        listing = json.loads(out.getvalue())
        for each in listing:
            scenario = SCENARIOS[each["name"]]
            self.assertEqual(list(each["outcomes"]), [*STACKS, CORRECT])
            for stack in (*STACKS, CORRECT):
                self.assertEqual(
                    each["outcomes"][stack], scenario.expectedOutcomeFor(stack).describe()
                )


class PythonOutcomeTests(SynchronousTestCase):
    """
    Python's outcomes are worked out for the Python and OpenSSL running,
    from facts it reports about itself.
    """

    def test_runningFacts(self) -> None:
        """
        The running Python's facts are its C{ssl} module's, and survive
        being passed as plain values.
        """
        context = ssl.create_default_context()
        self.assertEqual(RUNNING.opensslVersion, ssl.OPENSSL_VERSION)
        self.assertEqual(RUNNING.minimumVersion, int(context.minimum_version))
        self.assertEqual(RUNNING.securityLevel, context.security_level)
        self.assertEqual(
            PythonSSLFacts.fromValues(json.loads(json.dumps(RUNNING.values()))), RUNNING
        )

    def test_legacyVersions(self) -> None:
        """
        C{tls1.0-only}: CPython's default context (TLS 1.2 at least) gets
        the server's protocol_version alert; Debian's, which offers TLS 1.0,
        refuses the server's SHA-1 signature; at security level 0 it is
        served. The running Python's outcome is the one for its facts.
        """
        for name in ("tls1.0-only", "tls1.1-only"):
            scenario = SCENARIOS[name]
            for facts, expected in [
                (CPYTHON, refused("protocol-version", PROTOCOL_VERSION_ALERT)),
                (DEBIAN, refused("protocol-version", LEGACY_SIGALG)),
                (PythonSSLFacts(DEBIAN.opensslVersion, (3, 0, 19), -2, 0), ACCEPT),
            ]:
                forPython = scenario.forPython(facts)
                self.assertEqual(forPython.expectedOutcome, expected, (name, facts))
                self.assertEqual(forPython.expectedOutcomeFor("python-ssl"), expected)
                self.assertEqual(forPython.outcomes["gnutls"], scenario.outcomes["gnutls"])
            self.assertEqual(scenario, scenario.forPython(RUNNING))

    def test_hybrid(self) -> None:
        """
        C{pq-hybrid-only} is served to a Python on OpenSSL 3.5 or later,
        refused before.
        """
        scenario = SCENARIOS["pq-hybrid-only"]
        self.assertEqual(
            scenario.forPython(DEBIAN).expectedOutcome,
            refused("handshake-failure", HANDSHAKE_FAILURE_ALERT),
        )
        newer = PythonSSLFacts("OpenSSL 3.5.1 1 Jul 2025", (3, 5, 1), 771, 2)
        self.assertEqual(scenario.forPython(newer).expectedOutcome, ACCEPT)
        self.assertIs(SCENARIOS["valid"].forPython(DEBIAN), SCENARIOS["valid"])

    def test_expectedOutcomeIsAnOutcome(self) -> None:
        """
        A stated outcome is a frozen value.
        """
        with self.assertRaises(AttributeError):
            ExpectedOutcome(True, "accept").accepted = False  # type: ignore[misc]


#: Runs pytest under another Python 3.11 with this project's packages (the
#: running environment's site-packages, .pth files included) and this
#: checkout first, without that Python's own site-packages (-S): its ssl
#: and OpenSSL are its own. Reports its ssl facts first, on stderr.
BOOTSTRAP = """
import site, ssl, sys
site.addsitedir({sitePackages!r})
sys.path.insert(0, {root!r})
context = ssl.create_default_context()
sys.stderr.write("FACTS %s %s %d\\n" % (sys.executable, ssl.OPENSSL_VERSION,
                                        int(context.minimum_version)))
import pytest
sys.exit(pytest.main([{test!r}, "-q", "-W", "error", "-p", "no:cacheprovider"]))
"""

SYSTEM_PYTHON = Path("/usr/bin/python3")


class SystemPythonTests(SynchronousTestCase):
    """
    The README's outcome example, run by Debian's own Python.
    """

    def test_readmeOutcomesExampleOnSystemPython(self) -> None:
        """
        The README's example of expected outcomes passes on Debian's
        C{/usr/bin/python3} (3.11, system OpenSSL 3.0), whose default
        context offers TLS 1.0 and so sees C{tls1.0-only} refused for the
        server's SHA-1 signature rather than with the protocol_version
        alert: the fixtures' C{expectedOutcome} says so there.
        """
        if not SYSTEM_PYTHON.exists():
            raise self.skipTest("no /usr/bin/python3")
        if SYSTEM_PYTHON.resolve() == Path(sys.executable).resolve():
            raise self.skipTest("the tests run on /usr/bin/python3 already")
        version = subprocess.run(
            [str(SYSTEM_PYTHON), "-S", "-c", "import sys; print(sys.version_info[:2])"],
            capture_output=True, text=True, check=True,
        ).stdout.strip()
        if version != str(sys.version_info[:2]):
            raise self.skipTest(f"/usr/bin/python3 is {version}, not this environment's")
        directory = temporaryDirectory(self)
        test = directory / "test_my_client_outcomes.py"
        test.write_text(readmeExample("# test_my_client_outcomes.py"))
        code = BOOTSTRAP.format(
            sitePackages=sysconfig.get_paths()["purelib"], root=str(ROOT), test=str(test)
        )
        result = subprocess.run(
            [str(SYSTEM_PYTHON), "-S", "-s", "-c", code],
            capture_output=True, text=True, cwd=directory, timeout=300,
            # Not this Python's search path (trial -j gives its workers one).
            env={k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")},
        )
        facts = next(line for line in result.stderr.splitlines() if line.startswith("FACTS "))
        self.assertTrue(facts.startswith(f"FACTS {SYSTEM_PYTHON} OpenSSL "), facts)
        self.assertIn("9 passed", result.stdout, result.stdout + result.stderr)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
