# -*- test-case-name: tests.test_scenarios -*-
"""
What a scenario is made of: its expected outcome, its description, the
builder that makes its certificates and policy, and what that builder
returns. The scenarios themselves are in the catalogue's theme modules
(L{tlsreply.scenarios.certificate},
L{tlsreply.scenarios.protocol},
L{tlsreply.scenarios.revocation}), which
L{tlsreply.scenarios.catalogue} puts in order.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Final

from OpenSSL import SSL

from tlsreply.scenarios._httpfiles import HTTPFiles
from tlsreply.scenarios.ca import TestCA
from tlsreply.scenarios.outcomes import (
    ACCEPT,
    CORRECT,
    OUTCOME_KINDS,
    STACKS,
    ClientStack,
    ExpectedOutcome,
    OutcomeDescription,
    OutcomeKind,
    refused,
    stackOutcomes,
)
from tlsreply.scenarios.pythonssl import RUNNING, PythonSSLFacts
from tlsreply.tls.credentials import ServerCredentials
from tlsreply.tls.policy import TLSPolicy

__all__ = [
    "ACCEPT",
    "CORRECT",
    "OUTCOME_KINDS",
    "STACKS",
    "ClientStack",
    "ExpectedOutcome",
    "OutcomeDescription",
    "OutcomeKind",
    "refused",
]

#: The names every scenario's certificate is for, unless it says otherwise.
NAMES: Final = ("localhost", "127.0.0.1", "::1")

#: The server name a correct client connects with.
SERVER_NAME: Final = "localhost"

#: The files in a scenario's directory: the test CA's root, which
#: L{tlsreply.scenarios.servers.buildScenario} writes for every scenario,
#: and the client certificate and key that C{client-cert-required} writes.
CA_FILE: Final = "ca.pem"
CLIENT_CERTIFICATE_FILE: Final = "client.pem"
CLIENT_KEY_FILE: Final = "client.key"

#: A scenario's correct outcome as Python's C{ssl} words it, worked out for
#: a Python (L{tlsreply.scenarios.pythonssl}), or the same for every Python.
OutcomeForPython = Callable[[PythonSSLFacts], ExpectedOutcome]


@dataclass(frozen=True)
class Scenario:
    """
    A kind of server a TLS client should be tested against.

    @ivar name: what it is called (C{"expired"}), as on badssl.com where
        there is an equivalent.
    @ivar description: what is unusual or broken about it, and why a
        client should care.
    @ivar expectedOutcome: what a strictly correct client sees, in the
        words of the running Python's C{ssl} (L{ExpectedOutcome}).
    @ivar outcomes: what each client stack (L{STACKS}) does by default,
        C{"python-ssl"} as the running Python's does.
    @ivar differences: where the stacks' outcomes differ from what
        L{stackOutcomes} derives from the correct outcome.
    @ivar forPythonOutcome: the correct outcome worked out for another
        Python, where it depends on the Python (L{forPython}).
    """

    name: str
    description: str
    expectedOutcome: ExpectedOutcome
    outcomes: Mapping[ClientStack, ExpectedOutcome] = field(
        default_factory=lambda: MappingProxyType({})
    )
    differences: Mapping[ClientStack, ExpectedOutcome] = field(
        default_factory=lambda: MappingProxyType({}), repr=False
    )
    forPythonOutcome: OutcomeForPython | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.outcomes:
            outcomes = stackOutcomes(self.expectedOutcome, self.differences)
            object.__setattr__(self, "outcomes", outcomes)

    def expectedOutcomeFor(self, stack: ClientStack | str) -> ExpectedOutcome:
        """
        What a client on C{stack} sees of this scenario: one of L{STACKS}
        (C{"python-ssl"}: the running Python's C{ssl}), or L{CORRECT} for a
        strictly correct client (L{expectedOutcome}).

        @raise KeyError: for an unknown stack, naming the known ones.
        """
        if stack == CORRECT:
            return self.expectedOutcome
        try:
            return self.outcomes[stack]  # type: ignore[index]
        except KeyError:
            raise KeyError(
                f"unknown client stack {stack!r}: known are {', '.join((*STACKS, CORRECT))}"
            ) from None

    def forPython(self, facts: PythonSSLFacts) -> Scenario:
        """
        This scenario as stated for another Python (its C{"python-ssl"} and
        correct outcomes), from the facts it reports about itself: for
        C{make interop}, which runs Debian's C{/usr/bin/python3} too.
        """
        if self.forPythonOutcome is None:
            return self
        return Scenario(
            self.name,
            self.description,
            self.forPythonOutcome(facts),
            differences=self.differences,
            forPythonOutcome=self.forPythonOutcome,
        )


@dataclass
class BuiltScenario:
    """
    What a scenario's builder makes; L{tlsreply.scenarios.servers.buildScenario}
    adds the rest.

    @ivar finishContext: a change to every context built from the policy,
        for what a L{TLSPolicy} cannot say (serving TLS 1.0 alone).
    @ivar httpFiles: files a client fetches over HTTP while it verifies the
        certificate (a CRL), served once the scenario's helpers start.
    """

    credentials: list[ServerCredentials]
    policy: TLSPolicy = field(default_factory=TLSPolicy)
    clientCertificatePath: Path | None = None
    clientKeyPath: Path | None = None
    finishContext: Callable[[SSL.Context], None] | None = None
    httpFiles: HTTPFiles | None = None


#: Makes a scenario's certificates and policy from the test CA, writing any
#: files a client needs into the directory.
ScenarioBuilder = Callable[[TestCA, Path], BuiltScenario]


@dataclass(frozen=True)
class CatalogueEntry:
    """
    One scenario of the catalogue: what it is, and how it is built.

    @ivar unavailable: for a scenario that cannot be served everywhere, a
        function that says why it cannot be served here (C{None} if it
        can); C{None} for one that can.
    @ivar misbehaviour: for a hostile scenario, what its server does
        beyond its certificates and policy
        (L{tlsreply.scenarios.misbehaving.Misbehaviour}); C{None} for a server
        that replies as tlsreply does.
    """

    scenario: Scenario
    build: ScenarioBuilder
    unavailable: Callable[[], str | None] | None = None
    misbehaviour: str | None = None


#: Adds a scenario and its builder to a theme's entries.
Register = Callable[..., Callable[[ScenarioBuilder], ScenarioBuilder]]


def registrar(entries: list[CatalogueEntry]) -> Register:
    """
    A decorator factory that adds scenarios to C{entries}, in definition
    order (the order of every listing)::

        ENTRIES: list[CatalogueEntry] = []
        _scenario = registrar(ENTRIES)

        @_scenario("valid", ACCEPT, "A certificate ...")
        def _valid(ca, directory): ...
    """

    def scenario(
        name: str,
        expectedOutcome: ExpectedOutcome | OutcomeForPython,
        description: str,
        unavailable: Callable[[], str | None] | None = None,
        outcomes: Mapping[ClientStack, ExpectedOutcome] | None = None,
        misbehaviour: str | None = None,
    ) -> Callable[[ScenarioBuilder], ScenarioBuilder]:
        """
        @param expectedOutcome: what a strictly correct client sees, or a
            function that works it out for a Python (L{Scenario.forPython}).
        @param description: free text; its line breaks and indentation are
            folded into single spaces.
        @param unavailable: see L{CatalogueEntry.unavailable}.
        @param outcomes: the stacks whose outcome is not the one derived
            from the correct outcome (L{stackOutcomes}), with theirs.
        @param misbehaviour: see L{CatalogueEntry.misbehaviour}.
        """
        forPython: OutcomeForPython | None = None
        if isinstance(expectedOutcome, ExpectedOutcome):
            correct = expectedOutcome
        else:
            forPython = expectedOutcome
            correct = forPython(RUNNING)

        def register(builder: ScenarioBuilder) -> ScenarioBuilder:
            described = Scenario(
                name,
                " ".join(description.split()),
                correct,
                differences=MappingProxyType(dict(outcomes or {})),
                forPythonOutcome=forPython,
            )
            entries.append(CatalogueEntry(described, builder, unavailable, misbehaviour))
            return builder

        return register

    return scenario


def now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)
