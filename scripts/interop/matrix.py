# -*- test-case-name: tests.test_interop -*-
"""
The interop matrix's rows and how a row is judged.

A row is a server the project serves (every scenario of the catalogue,
then the default server, resumption over TLS 1.2 and 1.3, and the plain
reply of the default mode) and what each stack must do with it. The
scenario rows come from the catalogue itself, so a new scenario is a new
row with no change here; each cell is held to the outcome the scenario
states for the client's stack (L{Scenario.expectedOutcomeFor}).

The servers are the project's own fixtures' (L{startTLSReplyServer} on a
private reactor in a thread, as the pytest fixtures run it), all started
before the clients run, so that the clients that start slowly (Java) run
once for every row.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from scripts.interop.clients import CLIENT_TIMEOUT, Case, Client, Observed
from tlsreply.scenarios.outcomes import ACCEPT, ExpectedOutcome
from tlsreply.scenarios.pythonssl import PythonSSLFacts
from tlsreply.scenarios.servers import SCENARIOS, Scenario, unavailableReason
from tlsreply.testing.pytest_plugin import ReactorThread, ThreadedTestServer

#: What every client sends: an HTTP request, which curl needs and the
#: others send as a client author's code would.
REQUEST = "GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"

#: The timeout every client sets on a row whose server stalls (whose
#: correct outcome is the client's own timeout): short, to keep the
#: matrix fast. The server holds the stalled connection longer
#: (L{STALL_SETTINGS}), so that a client without a timeout of its own is
#: seen as one: stopped by the harness a little after this.
STALL_CLIENT_TIMEOUT = 2.0

#: The stalling servers' settings in the matrix: a stall limit well past
#: the harness's patience (which ends a client that has no timeout).
STALL_SETTINGS: dict[str, Any] = {"stallLimit": 12}

#: A reply that ends where the connection ends: an HTTP/1.0 response with
#: no length, as the plain reply row sends.
UNFRAMED_REPLY = b"HTTP/1.0 200 OK\r\n\r\ntest\n"

#: Rows whose server needs settings beyond the scenario's own: the slow
#: reply's bytes 10 ms apart (an HTTP response of about 130 bytes in 1.3 s,
#: against 26 s at the scenario's default 0.2 s); the truncated and reset
#: replies unframed, so that only TLS can tell a client whether it has the
#: whole reply (an HTTP client that has all Content-Length promised never
#: reads as far as the truncation).
ROW_SETTINGS: dict[str, dict[str, Any]] = {
    "slow-reply": {"byteDelay": 0.01},
    "truncated-reply": {"http": False, "reply": UNFRAMED_REPLY},
    "reset-after-reply": {"http": False, "reply": UNFRAMED_REPLY},
}


#: Where one client does not do what its stack does, by row and client:
#: curl takes a reply that ends without close_notify as complete (it sets
#: C{SSL_OP_IGNORE_UNEXPECTED_EOF} on OpenSSL 3), where OpenSSL reports the
#: truncation (as C{openssl s_client} shows). The scenario's description
#: says so too.
CLIENT_OUTCOMES: dict[tuple[str, str], ExpectedOutcome] = {
    ("truncated-reply", "curl"): ACCEPT,
}


@dataclass
class Row:
    """
    One server of the matrix.

    @ivar id: its name in the table (the scenario's name for a scenario).
    @ivar settings: for L{startTLSReplyServer}.
    @ivar scenario: the scenario whose per-stack outcomes it is held to;
        L{None} for rows every client must accept.
    @ivar twice: each client connects twice, offering its first session,
        and the server's record of the second says whether it resumed.
    @ivar maxVersion: the clients stop at this TLS version.
    @ivar note: what the row is, for the table.
    @ivar clientTimeout: the timeout the clients set on this row, where it
        is not their usual one (L{STALL_CLIENT_TIMEOUT}).
    """

    id: str
    settings: dict[str, Any]
    scenario: Scenario | None = None
    twice: bool = False
    maxVersion: str | None = None
    note: str = ""
    clientTimeout: float | None = None
    servers: dict[str, ThreadedTestServer] = field(default_factory=dict, repr=False)
    unavailable: str | None = None

    def expected(self, client: Client, pythonFacts: dict[str, PythonSSLFacts]) -> ExpectedOutcome:
        """
        The outcome this row promises the client's stack; for a Python,
        worked out for the Python that ran (L{Scenario.forPython}); for a
        client that differs from its stack here, its own
        (L{CLIENT_OUTCOMES}).
        """
        if self.scenario is None:
            return ACCEPT
        own = CLIENT_OUTCOMES.get((self.id, client.name))
        if own is not None:
            return own
        scenario = self.scenario
        if client.name in pythonFacts:
            scenario = scenario.forPython(pythonFacts[client.name])
        return scenario.expectedOutcomeFor(client.stack)

    def server(self, client: Client) -> ThreadedTestServer | None:
        """
        The server this client connects to: a resumption row's own for
        each client (its records then say whether that client resumed),
        the row's one for the others; L{None} where it is unavailable.
        """
        return self.servers.get(client.name if self.twice else "")

    def case(self, client: Client) -> Case | None:
        server = self.server(client)
        if server is None:
            return None
        return Case(self.id, server.host, server.port, server.serverName,
                    str(server.caCertificatePath), REQUEST, self.twice, self.maxVersion,
                    self.clientTimeout or CLIENT_TIMEOUT)


def rows(names: Sequence[str] | None = None) -> list[Row]:
    """
    The matrix's rows: every scenario (or those named), then the default
    server, resumption over TLS 1.3 and 1.2, and the default (non-HTTP)
    reply mode.
    """
    found = [
        _scenarioRow(name, scenario)
        for name, scenario in SCENARIOS.items()
        if names is None or name in names
    ]
    extra = [
        Row("default server", {"http": True}, note="the fixtures' default server, HTTP mode"),
        Row("resumption TLS 1.3", {"http": True}, twice=True,
            note="a second connection offers the first's session; the server resumes it"),
        Row("resumption TLS 1.2", {"http": True}, twice=True, maxVersion="1.2",
            note="as above, the client stopped at TLS 1.2"),
        Row("plain reply", {"reply": b"HTTP/1.0 200 OK\r\n\r\ntest\n"},
            note="the default reply mode: fixed bytes, whatever the client sent"),
    ]
    return found + [row for row in extra if names is None or row.id in names]


def _scenarioRow(name: str, scenario: Scenario) -> Row:
    """
    A scenario's row: served in HTTP mode; a stalling server (whose
    correct outcome is the client's timeout) with the short client timeout
    and a longer stall limit.
    """
    stalls = scenario.expectedOutcome.kind == "timeout"
    settings = {"scenario": name, "http": True, **ROW_SETTINGS.get(name, {}),
                **(STALL_SETTINGS if stalls else {})}
    return Row(name, settings, scenario, unavailable=unavailableReason(name),
               clientTimeout=STALL_CLIENT_TIMEOUT if stalls else None)


@dataclass
class Cell:
    """
    What one client did with one row, against what its stack promises.
    """

    expected: ExpectedOutcome
    observed: Observed
    mismatch: str | None

    @property
    def summary(self) -> str:
        if self.observed.accepted:
            return "accept"
        return self.observed.error or "refused"


def judge(row: Row, expected: ExpectedOutcome, observed: Observed, resumed: bool | None) -> str | None:
    """
    Why what the client did is not what its stack promises, or L{None}.

    A promised refusal must be a refusal; where the outcome states its
    message, the client's error contains it. A resumption row also needs
    the server to have resumed the client's second connection.
    """
    if observed.accepted != expected.accepted:
        return (f"expected {expected.summary!r}, "
                f"got {'accept' if observed.accepted else observed.error!r}")
    if not expected.accepted and expected.message is not None:
        if expected.message not in (observed.error or ""):
            return f"expected an error with {expected.message!r}, got {observed.error!r}"
    if row.twice and observed.accepted and not resumed:
        return "the server did not resume the second connection"
    return None


class Servers:
    """
    Every row's server, started on one reactor thread, stopped together.
    """

    def __init__(self, selected: Sequence[Row], clients: Sequence[Client]) -> None:
        from tlsreply.testing import startTLSReplyServer

        self.thread = ReactorThread()
        self.directory = Path(tempfile.mkdtemp(prefix="tlsreply-interop-"))
        self.rows = list(selected)
        count = 0
        for row in self.rows:
            if row.unavailable is not None:
                continue
            for key in [c.name for c in clients] if row.twice else [""]:
                count += 1
                directory = self.directory / f"server{count}"
                started = self.thread.call(
                    partial(startTLSReplyServer, reactor=self.thread.reactor,
                            directory=directory, **row.settings)
                )
                row.servers[key] = ThreadedTestServer(started, self.thread)

    def resumed(self, row: Row, client: Client) -> bool | None:
        """
        Whether the client's second connection to a resumption row's
        server resumed the first's session, by the server's record.
        """
        server = row.server(client)
        if server is None or not row.twice:
            return None
        try:
            records = server.waitForRecords(2, timeout=10)
        except TimeoutError:
            return False
        return bool(records[1].resumed)

    def stop(self) -> None:
        for row in self.rows:
            for server in row.servers.values():
                server.stop()
        self.thread.stop()
