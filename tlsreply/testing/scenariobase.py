# -*- test-case-name: tests.test_scenarios -*-
"""
What a scenario is made of: its expected outcome, its description, the
builder that makes its certificates and policy, and what that builder
returns. The scenarios themselves are in the catalogue's theme modules
(L{tlsreply.testing.certificatescenarios},
L{tlsreply.testing.protocolscenarios},
L{tlsreply.testing.revocationscenarios}), which
L{tlsreply.testing.scenariocatalogue} puts in order.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Literal, TypedDict, get_args

from OpenSSL import SSL

from tlsreply.credentials import ServerCredentials
from tlsreply.policy import TLSPolicy
from tlsreply.testing.ca import TestCA
from tlsreply.testing.httpfiles import HTTPFiles

#: The names every scenario's certificate is for, unless it says otherwise.
NAMES: Final = ("localhost", "127.0.0.1", "::1")

#: The server name a correct client connects with.
SERVER_NAME: Final = "localhost"

#: The files in a scenario's directory: the test CA's root, which
#: L{tlsreply.testing.scenarios.buildScenario} writes for every scenario,
#: and the client certificate and key that C{client-cert-required} writes.
CA_FILE: Final = "ca.pem"
CLIENT_CERTIFICATE_FILE: Final = "client.pem"
CLIENT_KEY_FILE: Final = "client.key"

#: What an outcome is about: C{"accept"}, or why a correct client refuses.
OutcomeKind = Literal[
    "accept",
    "certificate-expired",
    "certificate-not-yet-valid",
    "hostname-mismatch",
    "self-signed",
    "untrusted-root",
    "unknown-issuer",
    "weak-signature",
    "weak-key",
    "certificate-revoked",
    "client-certificate-required",
    "protocol-version",
    "handshake-failure",
]
OUTCOME_KINDS: Final[tuple[str, ...]] = get_args(OutcomeKind)


class OutcomeDescription(TypedDict):
    """
    An L{ExpectedOutcome} as plain values, for JSON.
    """

    accepted: bool
    kind: str
    message: str | None
    requires: str | None


@dataclass(frozen=True)
class ExpectedOutcome:
    """
    What a correct client sees of a scenario: the catalogue's promise,
    which the test suite checks for every scenario with Python's C{ssl}.

    "A correct client" is concrete: Python's
    C{ssl.create_default_context()} trusting only the test CA, connecting
    to C{localhost}, presenting no client certificate, and configured as
    L{requires} says where the catalogue asks for more than that.

    @ivar accepted: whether it completes the handshake and receives the
        reply.
    @ivar kind: C{"accept"}, or what the refusal is about: one of
        L{OUTCOME_KINDS}.
    @ivar message: the error text Python's C{ssl} reports, exactly:
        OpenSSL's verification message for a refused certificate (the
        exception's C{verify_message}), Python's own for a hostname
        mismatch, or OpenSSL's reason for a TLS alert (C{"tlsv1 alert
        protocol version"}); each also appears in C{str(error)}. L{None}
        when the client accepts, or when Python's C{ssl} cannot check what
        the scenario is about (C{revoked}: OCSP stapling).
    @ivar requires: what a client must do beyond
        C{ssl.create_default_context()} to see this outcome, in words
        (checking CRLs, not falling back to the common name); L{None} when
        the default context sees it as it is.
    """

    accepted: bool
    kind: OutcomeKind
    message: str | None = None
    requires: str | None = None

    @property
    def summary(self) -> str:
        """
        One line: C{"accept"}, the message, or (without a message) the kind.
        """
        if self.accepted:
            return "accept"
        return self.message or self.kind

    def describe(self) -> OutcomeDescription:
        """
        This outcome as plain values, for C{tlsreply scenarios --json}.
        """
        return {
            "accepted": self.accepted,
            "kind": self.kind,
            "message": self.message,
            "requires": self.requires,
        }


#: The outcome of a scenario that a correct client accepts: the handshake
#: completes and the reply arrives.
ACCEPT: Final = ExpectedOutcome(True, "accept")


def refused(kind: OutcomeKind, message: str | None, requires: str | None = None) -> ExpectedOutcome:
    """
    The outcome of a scenario that a correct client refuses.
    """
    return ExpectedOutcome(False, kind, message, requires)


@dataclass(frozen=True)
class Scenario:
    """
    A kind of server a TLS client should be tested against.

    @ivar name: what it is called (C{"expired"}), as on badssl.com where
        there is an equivalent.
    @ivar description: what is unusual or broken about it, and why a
        client should care.
    @ivar expectedOutcome: what a correct client sees.
    """

    name: str
    description: str
    expectedOutcome: ExpectedOutcome


@dataclass
class BuiltScenario:
    """
    What a scenario's builder makes; L{tlsreply.testing.scenarios.buildScenario}
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
        function that says why it cannot be served here (L{None} if it
        can); L{None} for one that can.
    """

    scenario: Scenario
    build: ScenarioBuilder
    unavailable: Callable[[], str | None] | None = None


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
        expectedOutcome: ExpectedOutcome,
        description: str,
        unavailable: Callable[[], str | None] | None = None,
    ) -> Callable[[ScenarioBuilder], ScenarioBuilder]:
        """
        @param description: free text; its line breaks and indentation are
            folded into single spaces.
        @param unavailable: see L{CatalogueEntry.unavailable}.
        """

        def register(builder: ScenarioBuilder) -> ScenarioBuilder:
            described = Scenario(name, " ".join(description.split()), expectedOutcome)
            entries.append(CatalogueEntry(described, builder, unavailable))
            return builder

        return register

    return scenario


def now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)
