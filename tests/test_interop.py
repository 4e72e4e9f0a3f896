"""
The interop matrix's harness (C{scripts/interop}, C{make interop}): its
rows follow the catalogue, a cell is judged against its stack's outcome,
and a run against the clients installed here writes the table and the
JSON and passes. The whole matrix runs in CI as C{make interop-ci}.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

from scripts.interop.clients import CLIENT_TIMEOUT, Case, Client, Observed
from scripts.interop.matrix import (
    ROW_SETTINGS,
    STALL_CLIENT_TIMEOUT,
    STALL_SETTINGS,
    UNFRAMED_REPLY,
    Row,
    judge,
    rows,
)
from tests.support import temporaryDirectory
from tests.test_outcomes import DEBIAN
from tlsreply.scenarios.base import OUTCOME_KINDS
from tlsreply.scenarios.outcomes import ACCEPT, refused
from tlsreply.scenarios.servers import SCENARIOS

ROOT = Path(__file__).parent.parent


def client(name: str, stack: str) -> Client:
    return Client(name, stack, "1.0", lambda cases: {})


class RowTests(SynchronousTestCase):
    """
    The rows are the catalogue's scenarios, in its order, then the rows
    beyond them; each holds a client to its stack's outcome.
    """

    def test_everyScenarioIsARow(self) -> None:
        """
        Every scenario is a row (a new one needs no change to the
        harness), served in HTTP mode, followed by the default server,
        resumption over TLS 1.3 and 1.2, and the plain reply.
        """
        found = rows()
        self.assertEqual(
            [row.id for row in found],
            [*SCENARIOS, "default server", "resumption TLS 1.3", "resumption TLS 1.2",
             "plain reply"],
        )
        for row in found[: len(SCENARIOS)]:
            stalls = row.id in ("stall-handshake", "stall-after-handshake")
            self.assertEqual(
                row.settings,
                {"scenario": row.id, "http": True, **ROW_SETTINGS.get(row.id, {}),
                 **(STALL_SETTINGS if stalls else {})},
            )
            self.assertEqual(row.clientTimeout, STALL_CLIENT_TIMEOUT if stalls else None)
            self.assertIs(row.scenario, SCENARIOS[row.id])
        self.assertEqual([row.id for row in rows(["expired", "plain reply"])],
                         ["expired", "plain reply"])

    def test_expected(self) -> None:
        """
        A scenario row expects its stack's outcome; a Python client's is
        worked out for the Python that ran; the other rows expect every
        client to accept.
        """
        [tls10, default] = rows(["tls1.0-only", "default server"])
        gnutls = client("gnutls-cli", "gnutls")
        debian = client("python-ssl (Debian)", "python-ssl")
        self.assertEqual(tls10.expected(gnutls, {}), ACCEPT)
        self.assertEqual(
            tls10.expected(debian, {debian.name: DEBIAN}).message,
            "legacy sigalg disallowed or unsupported",
        )
        self.assertEqual(default.expected(gnutls, {}), ACCEPT)


    def test_hostileRows(self) -> None:
        """
        A stalling server's row gives its clients a short timeout, and the
        server a stall limit past the harness's patience (which ends a
        client without a timeout of its own, and says so); the truncated
        and reset replies are unframed; curl is held to its own outcome
        where it differs from OpenSSL's.
        """
        [valid, truncated, stall] = rows(["truncated-reply", "stall-handshake", "valid"])
        self.assertEqual(truncated.settings["reply"], UNFRAMED_REPLY)
        self.assertFalse(truncated.settings["http"])
        self.assertGreater(STALL_SETTINGS["stallLimit"], 2 * STALL_CLIENT_TIMEOUT)
        case = Case("stall-handshake", "127.0.0.1", 1, "localhost", "ca.pem", "",
                    timeout=STALL_CLIENT_TIMEOUT)
        self.assertEqual(case.patience, 2 * STALL_CLIENT_TIMEOUT)
        self.assertEqual(case.stopped(),
                         Observed(False, "no timeout of its own: stopped by the harness after 4s"))
        self.assertEqual(Case("valid", "127.0.0.1", 1, "localhost", "ca.pem", "").timeout,
                         CLIENT_TIMEOUT)
        curl, sClient = client("curl", "openssl"), client("openssl s_client", "openssl")
        self.assertEqual(truncated.expected(curl, {}), ACCEPT)
        self.assertEqual(truncated.expected(sClient, {}).message, "unexpected eof while reading")
        self.assertEqual(stall.expected(curl, {}).kind, "timeout")
        self.assertEqual(valid.expected(curl, {}), ACCEPT)


class JudgeTests(SynchronousTestCase):
    """
    L{judge} says why a cell is not its stack's outcome, or nothing.
    """

    def test_judge(self) -> None:
        row = Row("expired", {})
        expired = refused("certificate-expired", "certificate has expired")
        self.assertIsNone(judge(row, ACCEPT, Observed(True), None))
        self.assertIsNone(judge(row, expired, Observed(False, "x: certificate has expired"), None))
        self.assertEqual(
            judge(row, expired, Observed(True), None), "expected 'certificate has expired', got 'accept'"
        )
        self.assertEqual(
            judge(row, ACCEPT, Observed(False, "boom"), None), "expected 'accept', got 'boom'"
        )
        self.assertIn("expected an error with", judge(row, expired, Observed(False, "other"), None) or "")
        self.assertIsNone(judge(row, refused("weak-key", None), Observed(False, "anything"), None))
        twice = Row("resumption TLS 1.3", {}, twice=True)
        self.assertIsNone(judge(twice, ACCEPT, Observed(True), True))
        self.assertEqual(
            judge(twice, ACCEPT, Observed(True), False),
            "the server did not resume the second connection",
        )
        self.assertIn("accept", OUTCOME_KINDS)


class RunTests(SynchronousTestCase):
    """
    A run of a few rows against every client installed here.
    """

    def test_hostileRowsLogNoError(self) -> None:
        """
        Serving the renegotiation request to every client (some refuse it
        with close_notify, some with an alert, some renegotiate) logs no
        unhandled error: the hostile server misbehaves only as described.
        """
        done = subprocess.run(
            [sys.executable, "-m", "scripts.interop", "--allow-missing", "--rows",
             "renegotiation-request"],
            capture_output=True, text=True, cwd=ROOT, timeout=300,
        )
        output = done.stdout + done.stderr
        self.assertEqual(done.returncode, 0, output)
        self.assertNotIn("Unhandled Error", output)
        self.assertNotIn("Traceback", output)

    def test_run(self) -> None:
        """
        The harness serves the rows, runs the clients, finds every cell as
        its stack promises (exit status 0), and writes a Markdown table
        with every row and client (and the versions that ran) and the JSON
        of every cell.
        """
        directory = temporaryDirectory(self)
        markdown, results = directory / "interop.md", directory / "interop.json"
        done = subprocess.run(
            [sys.executable, "-m", "scripts.interop", "--allow-missing", "--rows",
             "valid,expired,tls1.0-only,resumption TLS 1.3", "--markdown", str(markdown),
             "--json", str(results)],
            capture_output=True, text=True, cwd=ROOT, timeout=300,
        )
        self.assertEqual(done.returncode, 0, done.stdout + done.stderr)
        self.assertIn(" 0 mismatches", done.stdout)
        found = json.loads(results.read_text())
        names = [c["name"] for c in found["clients"]]
        self.assertIn("python-ssl", names)
        self.assertEqual([r["row"] for r in found["rows"]],
                         ["valid", "expired", "tls1.0-only", "resumption TLS 1.3"])
        for row in found["rows"]:
            self.assertEqual(list(row["cells"]), names)
            for cell in row["cells"].values():
                self.assertIsNone(cell["mismatch"])
                self.assertEqual(cell["accepted"], row["row"] != "expired" and (
                    row["row"] != "tls1.0-only" or cell["expected"]["accepted"]))
        text = markdown.read_text()
        for name in names:
            self.assertIn(f"**{name}**", text)
        self.assertIn("| `expired` |", text)
        self.assertIn("certificate has expired", text)
