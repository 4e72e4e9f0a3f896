# -*- test-case-name: tests.test_scenarios -*-
"""
Deliberately broken or unusual TLS servers, made on the fly from a
L{TestCA}: a local badssl.com for testing TLS clients.

Each scenario is a set of certificates and a L{TLSPolicy} that
L{ScenarioSetup.serverContexts} turns into a server (with, for a few, a
change the policy cannot express, or a CRL served over HTTP), plus the
outcome a correct client sees (L{ExpectedOutcome
<tlsreply.scenarios.base.ExpectedOutcome>}). "A correct client" is
defined concretely, so that the promise can be tested: Python's
C{ssl.create_default_context()} trusting only the test CA's root,
connecting with C{server_hostname="localhost"}, configured further only
where the outcome says so (C{requires}: checking CRLs, say). A client
under test that disagrees with it has either a bug or a deliberate policy
worth knowing about. The error texts are those of OpenSSL 3, which
Python's C{ssl} reports (OpenSSL 1.1.1 wrote "self signed certificate",
without the hyphen).

Certificates are made fresh for every build, valid for C{localhost},
C{127.0.0.1} and C{::1} unless the scenario says otherwise, and nothing is
cached between builds (except whether this OpenSSL can serve a SHA-1
certificate at all, which cannot change while the process runs).

The scenarios themselves, and how to add one, are in
L{tlsreply.scenarios.catalogue}; this module builds, serves and
lists them, and fits a command line's policy to them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final, TypedDict

from OpenSSL import SSL
from twisted.application.service import Service
from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IReactorTime

from tlsreply.errors import ConfigurationError
from tlsreply.logs.access import ConnectionLog
from tlsreply.protocol import (
    DEFAULT_CLOSE_TIMEOUT,
    DEFAULT_HANDSHAKE_TIMEOUT,
    ReplyFactory,
)
from tlsreply.scenarios._httpfiles import HTTPFiles
from tlsreply.scenarios.base import CORRECT, OutcomeDescription
from tlsreply.scenarios.ca import TestCA, certificatesPEM
from tlsreply.scenarios.catalogue import (
    CA_FILE,
    CATALOGUE,
    SERVER_NAME,
    CatalogueEntry,
    Scenario,
)
from tlsreply.tls.contexts import ServerContexts, buildServerContexts
from tlsreply.tls.credentials import ServerCredentials
from tlsreply.tls.policy import TLSPolicy
from tlsreply.tls.safefiles import describe, writeFile

if TYPE_CHECKING:
    from tlsreply.scenarios.misbehaving import HostileSettings


@dataclass(frozen=True)
class ScenarioSetup:
    """
    Everything needed to serve a scenario and to point a client at it.

    @ivar scenario: which scenario this is.
    @ivar credentials: the certificates to serve, for
        L{buildServerContexts}.
    @ivar policy: the TLS policy to serve them with.
    @ivar caPath: the test CA's root certificate (PEM), the only thing a
        correct client trusts.
    @ivar serverName: the name a client connects with.
    @ivar clientCertificatePath: for C{client-cert-required}, a client
        certificate the server accepts: one PEM file (mode 0600) with the
        certificate, any intermediates and the private key, as C{curl
        --cert}, Python's C{load_cert_chain(path)} and Twisted's
        C{PrivateCertificate.loadPEM} take it.
    @ivar clientKeyPath: the private key alone (PEM, mode 0600), for
        clients that want it in a file of its own.
    @ivar finishContext: what L{serverContexts} changes in every context
        beyond the policy (C{tls1.0-only}: the highest version).
    @ivar httpFiles: for C{crl-revoked}, the CRL its certificate points
        to, served over HTTP once L{startHelpers} has run.
    @ivar misbehaviour: for a hostile scenario, what its server does
        (L{tlsreply.scenarios.misbehaving}); see L{replyFactory}.
    """

    scenario: Scenario
    credentials: list[ServerCredentials]
    policy: TLSPolicy
    caPath: Path
    serverName: str = SERVER_NAME
    clientCertificatePath: Path | None = None
    clientKeyPath: Path | None = None
    finishContext: Callable[[SSL.Context], None] | None = None
    httpFiles: HTTPFiles | None = None
    misbehaviour: str | None = None

    def replyFactory(
        self,
        reply: bytes,
        clock: IReactorTime | None = None,
        handshakeTimeout: float = DEFAULT_HANDSHAKE_TIMEOUT,
        closeTimeout: float = DEFAULT_CLOSE_TIMEOUT,
        accessLog: ConnectionLog | None = None,
        hostile: HostileSettings | None = None,
    ) -> ReplyFactory:
        """
        The reply factory that serves this scenario: see
        L{scenarioReplyFactory}.
        """
        return scenarioReplyFactory(
            self.scenario.name, reply, clock, handshakeTimeout, closeTimeout, accessLog, hostile
        )

    def serverContexts(self, commandPolicy: TLSPolicy | None = None) -> ServerContexts:
        """
        The finished server contexts of this scenario, the policy's and
        the scenario's own change (L{finishContext}): what the fixtures and
        L{startTLSReplyServer <tlsreply.testing.server.startTLSReplyServer>}
        serve, and what a command line serving the scenario must serve.

        @param commandPolicy: a command line's policy, whose choices the
            scenario leaves open (ALPN, groups, ciphers, the key log, see
            L{withCommandPolicy}) apply on top of the scenario's.
        @raise ConfigurationError: for a setting OpenSSL refuses.
        """
        policy = self.policy
        if commandPolicy is not None:
            policy = withCommandPolicy(policy, commandPolicy)
        if policy.keyLogPath is not None and self.misbehaviour == "alert-instead-of-reply":
            raise ConfigurationError(
                "--scenario alert-instead-of-reply reads the TLS keys itself: drop --key-log"
            )
        contexts = buildServerContexts(self.credentials, policy)
        if self.finishContext is not None:
            # Every context is new: no connection has been made from any.
            finished = {id(c): c for c in (contexts.fallback, *contexts.byName.values())}
            for context in finished.values():
                self.finishContext(context)
        return contexts

    def startHelpers(self, reactor: Any) -> None:
        """
        Start what the scenario serves besides TLS (C{crl-revoked}'s CRL
        over HTTP) on C{reactor}, until L{stopHelpers}. Nothing for the
        other scenarios.
        """
        if self.httpFiles is not None:
            self.httpFiles.start(reactor)

    def stopHelpers(self) -> Deferred[None]:
        """
        Stop what L{startHelpers} started (or release what it would have).
        """
        if self.httpFiles is not None:
            return self.httpFiles.stop()
        return succeed(None)

    def helpersService(self, reactor: Any) -> Service:
        """
        L{startHelpers} and L{stopHelpers} as a service, for a server's
        service tree: the CRL is served while the server runs, and its port
        closes when the server stops.
        """
        return _ScenarioHelpers(self, reactor)


class _ScenarioHelpers(Service):
    """
    What a scenario serves besides TLS, started and stopped as a service
    (L{ScenarioSetup.helpersService}). A parent stops its children
    together, so the CRL's port closes as the server's listeners do, not
    after the connections in progress have finished.
    """

    def __init__(self, setup: ScenarioSetup, reactor: Any) -> None:
        self.setName("scenario-helpers")
        self._setup = setup
        self._reactor = reactor

    def startService(self) -> None:
        super().startService()
        self._setup.startHelpers(self._reactor)

    def stopService(self) -> Deferred[None]:
        super().stopService()
        return self._setup.stopHelpers()


#: Every scenario by name, in a stable order.
SCENARIOS: Final[Mapping[str, Scenario]] = MappingProxyType(
    {name: entry.scenario for name, entry in CATALOGUE.items()}
)


def _lookUp(name: str) -> CatalogueEntry:
    try:
        return CATALOGUE[name]
    except KeyError:
        raise ConfigurationError(
            f"unknown scenario {name!r} (known: {', '.join(CATALOGUE)})"
        ) from None


def unavailableReason(name: str) -> str | None:
    """
    Why a scenario cannot be served here, or C{None} if it can.

    The catalogue entry says (L{CatalogueEntry.unavailable}); today only
    C{sha1-signature} can be unavailable: it depends on the OpenSSL that
    pyOpenSSL uses being able to serve a SHA-1-signed certificate.

    @raise ConfigurationError: for an unknown scenario, listing the known
        ones.
    """
    unavailable = _lookUp(name).unavailable
    return unavailable() if unavailable is not None else None


def buildScenario(name: str, ca: TestCA, directory: Path | str) -> ScenarioSetup:
    """
    Make a scenario's certificates (fresh, from C{ca}) and policy, and
    write what a client needs into C{directory}: the root it trusts
    (L{CA_FILE}), and for C{client-cert-required} a client certificate and
    key.

    @param ca: the test CA a correct client trusts. It may be an
        intermediate: clients trust its root, and servers send its chain.
    @param directory: created if missing. Its files are replaced whole,
        never written through a symbolic link (L{tlsreply.tls.safefiles}), and
        the client's key is made readable by its owner only.
    @raise ConfigurationError: for an unknown scenario (listing the known
        ones), one that is unavailable here (with the reason), or files
        that cannot be written (a symbolic link among them).
    """
    entry = _lookUp(name)
    directory = Path(directory)
    caPath = directory / CA_FILE
    try:
        directory.mkdir(parents=True, exist_ok=True)
        writeFile(caPath, certificatesPEM(ca.root))
        built = entry.build(ca, directory)
    except OSError as e:
        raise ConfigurationError(
            f"cannot write the files of scenario {name}: {describe(e)}"
        ) from None
    return ScenarioSetup(
        entry.scenario,
        built.credentials,
        built.policy,
        caPath,
        clientCertificatePath=built.clientCertificatePath,
        clientKeyPath=built.clientKeyPath,
        finishContext=built.finishContext,
        httpFiles=built.httpFiles,
        misbehaviour=entry.misbehaviour,
    )


def scenarioReplyFactory(
    name: str,
    reply: bytes,
    clock: IReactorTime | None = None,
    handshakeTimeout: float = DEFAULT_HANDSHAKE_TIMEOUT,
    closeTimeout: float = DEFAULT_CLOSE_TIMEOUT,
    accessLog: ConnectionLog | None = None,
    hostile: HostileSettings | None = None,
) -> ReplyFactory:
    """
    The reply factory that serves scenario C{name}: tlsreply's own
    (L{ReplyFactory}), or for a hostile scenario one whose server
    misbehaves as it says (L{tlsreply.scenarios.misbehaving}), which the
    fixtures, L{startTLSReplyServer
    <tlsreply.testing.server.startTLSReplyServer>} and C{tlsreply serve
    --scenario} all serve.

    @param hostile: how long a hostile server stalls, how slowly it
        replies; the defaults (L{HostileSettings}) when C{None}.
    @raise ConfigurationError: for an unknown scenario, and for
        C{hostile} settings given with a scenario that is not hostile.
    """
    misbehaviour = _lookUp(name).misbehaviour
    if misbehaviour is None:
        if hostile is not None:
            raise ConfigurationError(
                f"scenario {name!r} does not misbehave: stall and byte-delay settings "
                "are for the hostile scenarios"
            )
        return ReplyFactory(reply, clock, handshakeTimeout, closeTimeout, accessLog)
    from tlsreply.scenarios.misbehaving import HostileReplyFactory

    return HostileReplyFactory(
        misbehaviour,  # type: ignore[arg-type]  # the catalogue names only known ones
        reply,
        clock,
        handshakeTimeout,
        closeTimeout,
        accessLog,
        hostile,
    )


def hostileSettings(
    stallLimit: float | None = None, byteDelay: float | None = None
) -> HostileSettings | None:
    """
    The hostile servers' settings with these timings, the defaults for
    those that are C{None}; C{None} (the defaults, and no hostile settings
    at all for a scenario that is not hostile) when neither is given.

    @raise ValueError: for a timing L{HostileSettings} refuses.
    """
    if stallLimit is None and byteDelay is None:
        return None
    from tlsreply.scenarios.misbehaving import HostileSettings

    given = {"stallLimit": stallLimit, "byteDelay": byteDelay}
    return HostileSettings(**{name: value for name, value in given.items() if value is not None})


class ScenarioDescription(TypedDict):
    """
    A scenario as plain values, as L{describeScenarios} lists it.

    @ivar expected: L{Scenario.expectedOutcome} in one line
        (L{ExpectedOutcome.summary
        <tlsreply.scenarios.base.ExpectedOutcome.summary>}):
        C{"accept"}, or the message a correct client reports.
    @ivar expectedOutcome: the whole of L{Scenario.expectedOutcome}, what a
        strictly correct client sees.
    @ivar outcomes: what each client stack does by default
        (L{Scenario.outcomes}), keyed by stack (C{"openssl"},
        C{"python-ssl"}, C{"node"}, C{"java"}, C{"gnutls"},
        C{"boringssl"}), and under C{"correct"} the strictly correct
        client's (L{expectedOutcome}).
    @ivar unavailable: why it cannot be served here (L{unavailableReason}),
        or C{None} when C{available}.
    """

    name: str
    description: str
    expected: str
    expectedOutcome: OutcomeDescription
    outcomes: dict[str, OutcomeDescription]
    available: bool
    unavailable: str | None


def describeScenarios() -> list[ScenarioDescription]:
    """
    Every scenario as plain values, in order, for a C{--json} listing: its
    name, description, expected outcome and each stack's, whether it is available here
    and if not, why not.
    """
    listing: list[ScenarioDescription] = []
    for name, scenario in SCENARIOS.items():
        reason = unavailableReason(name)
        listing.append(
            {
                "name": name,
                "description": scenario.description,
                "expected": scenario.expectedOutcome.summary,
                "expectedOutcome": scenario.expectedOutcome.describe(),
                "outcomes": {
                    **{stack: o.describe() for stack, o in scenario.outcomes.items()},
                    CORRECT: scenario.expectedOutcome.describe(),
                },
                "available": reason is None,
                "unavailable": reason,
            }
        )
    return listing


#: The policy fields a scenario decides: what it is about (versions,
#: sessions, client certificates). A command line that sets one of them
#: differently from the default is refused, not quietly overruled.
SCENARIO_DECIDES: Final = (
    "minimumVersion",
    "maximumVersion",
    "insecureMinimumVersion",
    "sessionCache",
    "sessionTickets",
    "sessionTimeout",
    "clientCAPath",
    "verifyClient",
)


def decidedByScenario(commandPolicy: TLSPolicy) -> list[str]:
    """
    The fields of a command line's policy that a scenario decides and that
    were set away from their defaults.
    """
    defaults = TLSPolicy()
    return [
        name
        for name in SCENARIO_DECIDES
        if getattr(commandPolicy, name) != getattr(defaults, name)
    ]


def withCommandPolicy(scenarioPolicy: TLSPolicy, commandPolicy: TLSPolicy) -> TLSPolicy:
    """
    A scenario's policy with what a command line may still choose: ALPN,
    groups (where the scenario sets none), TLS 1.2 ciphers (where the
    scenario neither sets them nor allows TLS 1.0 or 1.1, whose ciphers
    carry the security level that lets OpenSSL serve them), TLS 1.3
    suites and the key log.

    @raise ConfigurationError: for groups other than those of a scenario
        that is about its groups (C{pq-hybrid-only}), and for ciphers with
        a scenario that decides them (C{rsa1024}, C{tls1.0-only},
        C{tls1.1-only}): another cipher string would drop its security
        level and, silently, what the scenario is.
    """
    decidesCiphers = (
        scenarioPolicy.tls12Ciphers is not None
        or scenarioPolicy.insecureMinimumVersion is not None
    )
    if decidesCiphers and commandPolicy.tls12Ciphers not in (
        None,
        scenarioPolicy.effectiveTLS12Ciphers,
    ):
        raise ConfigurationError(
            "--scenario decides the TLS 1.2 ciphers (and OpenSSL's security level) "
            "itself: drop --ciphers"
        )
    groups = commandPolicy.groups
    if scenarioPolicy.groups is not None:
        if groups not in (None, scenarioPolicy.groups):
            raise ConfigurationError(
                f"--scenario decides the key-exchange groups ({scenarioPolicy.groups}) "
                "itself: drop --groups"
            )
        groups = scenarioPolicy.groups
    return replace(
        scenarioPolicy,
        alpnProtocols=commandPolicy.alpnProtocols,
        groups=groups,
        tls12Ciphers=commandPolicy.tls12Ciphers or scenarioPolicy.tls12Ciphers,
        tls13Ciphersuites=commandPolicy.tls13Ciphersuites,
        keyLogPath=commandPolicy.keyLogPath,
    )
