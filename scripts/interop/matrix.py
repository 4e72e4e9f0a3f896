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

from scripts.interop.clients import Case, Client, Observed
from tlsreply.testing.outcomes import ACCEPT, ExpectedOutcome
from tlsreply.testing.pytest_plugin import ReactorThread, ThreadedTestServer
from tlsreply.testing.pythonssl import PythonSSLFacts
from tlsreply.testing.scenarios import SCENARIOS, Scenario, unavailableReason

#: What every client sends: an HTTP request, which curl needs and the
#: others send as a client author's code would.
REQUEST = "GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"


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
    """

    id: str
    settings: dict[str, Any]
    scenario: Scenario | None = None
    twice: bool = False
    maxVersion: str | None = None
    note: str = ""
    servers: dict[str, ThreadedTestServer] = field(default_factory=dict, repr=False)
    unavailable: str | None = None

    def expected(self, client: Client, pythonFacts: dict[str, PythonSSLFacts]) -> ExpectedOutcome:
        """
        The outcome this row promises the client's stack; for a Python,
        worked out for the Python that ran (L{Scenario.forPython}).
        """
        if self.scenario is None:
            return ACCEPT
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
                    str(server.caCertificatePath), REQUEST, self.twice, self.maxVersion)


def rows(names: Sequence[str] | None = None) -> list[Row]:
    """
    The matrix's rows: every scenario (or those named), then the default
    server, resumption over TLS 1.3 and 1.2, and the default (non-HTTP)
    reply mode.
    """
    found = [
        Row(name, {"scenario": name, "http": True}, scenario, unavailable=unavailableReason(name))
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
