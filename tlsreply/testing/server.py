# -*- test-case-name: tests.test_testing -*-
"""
A real TLS server for other people's test suites.

For trial and other Twisted code, L{startTLSReplyServer} starts a tlsreply
server on the running reactor, on an ephemeral 127.0.0.1 port, with a
certificate from a fresh test CA, and returns a L{TestServer} with
everything a client under test needs: the address, the CA certificate,
ready client contexts, and the record of every connection::

    from tlsreply.testing import startTLSReplyServer

    class MyClientTests(TestCase):
        async def test_resumes(self):
            server = startTLSReplyServer(self)
            await myClient.fetchTwice(server.host, server.port,
                                      server.clientTLSOptions())
            records = await server.whenRecorded(2)
            self.assertTrue(records[1].resumed)

For pytest suites (which need no reactor at all) the C{tlsreply_server}
fixtures of L{tlsreply.testing.pytest_plugin} run the same server on a private
reactor in a thread.
"""

from __future__ import annotations

import shutil
import ssl
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IOpenSSLClientConnectionCreator
from twisted.internet.ssl import (
    Certificate,
    PrivateCertificate,
    optionsForClientTLS,
)

from tlsreply.connection.records import ConnectionRecord
from tlsreply.protocol import DEFAULT_REPLY
from tlsreply.replies import httpResponse
from tlsreply.scenarios.base import ExpectedOutcome
from tlsreply.scenarios.ca import TestCA
from tlsreply.scenarios.servers import ScenarioSetup, buildScenario, hostileSettings
from tlsreply.service import TLSReplyService
from tlsreply.testing.issuing import ISSUED_DIRECTORY, IssuingCA
from tlsreply.tls.policy import TLSPolicy

if TYPE_CHECKING:
    from twisted.trial.unittest import SynchronousTestCase

LOOPBACK = "127.0.0.1"


@dataclass
class TestServer:
    """
    A running tlsreply server made for a test.

    @ivar host: C{"127.0.0.1"}.
    @ivar port: the ephemeral port it listens on.
    @ivar serverName: the name its certificate is for (C{"localhost"}).
    @ivar scenario: which scenario it serves (see L{tlsreply.scenarios.servers}).
    @ivar expectedOutcome: what a correct client sees of that scenario,
        as the catalogue promises it: whether it is accepted, the kind of
        refusal, the exact message of Python's C{ssl}
        (L{ExpectedOutcome}).
    @ivar caCertificatePEM: the test CA's certificate, to trust.
    @ivar caCertificatePath: the same, as a file.
    @ivar ca: the test CA, which issues more certificates as files
        (C{ca.issueClientCertificate("alice")}, L{IssuingCA}); a server
        that verifies clients trusts every one it issues.
    @ivar clientCertificatePath: for C{client-cert-required}, a PEM file
        holding a client certificate the server accepts and its key.
    @ivar service: the listening service (L{TLSReplyService}).
    @ivar setup: the scenario as built (L{ScenarioSetup}): its
        certificates, policy and what it serves besides TLS.
    @ivar records: every connection so far, oldest first.
    """

    # Not a test class, though its name begins with "Test".
    __test__ = False

    host: str
    port: int
    scenario: str
    caCertificatePEM: bytes
    caCertificatePath: Path
    service: TLSReplyService
    expectedOutcome: ExpectedOutcome
    ca: IssuingCA
    setup: ScenarioSetup = field(repr=False)
    clientCertificatePath: Path | None = None
    serverName: str = "localhost"
    records: list[ConnectionRecord] = field(default_factory=list)
    _waiting: list[tuple[int, Deferred[list[ConnectionRecord]]]] = field(
        default_factory=list, repr=False
    )
    _cleanups: list[Callable[[], object]] = field(default_factory=list, repr=False)

    @property
    def address(self) -> tuple[str, int]:
        return (self.host, self.port)

    def url(self, path: str = "/") -> str:
        """
        An C{https://} URL for HTTP clients (with C{http=True}).
        """
        return f"https://{self.serverName}:{self.port}{path}"

    def sslContext(self) -> ssl.SSLContext:
        """
        A verifying Python C{ssl} client context that trusts the test CA
        (and presents the client certificate, where the scenario needs one).
        """
        context = ssl.create_default_context(cadata=self.caCertificatePEM.decode())
        if self.clientCertificatePath is not None:
            context.load_cert_chain(str(self.clientCertificatePath))
        return context

    def clientTLSOptions(self, hostname: str | None = None) -> IOpenSSLClientConnectionCreator:
        """
        Client TLS options for Twisted (C{wrapClientTLS}, C{connectSSL})
        that trust the test CA and check the server's name.
        """
        trustRoot = Certificate.loadPEM(self.caCertificatePEM)
        clientCertificate = None
        if self.clientCertificatePath is not None:
            clientCertificate = PrivateCertificate.loadPEM(
                self.clientCertificatePath.read_bytes()
            )
        return optionsForClientTLS(
            hostname or self.serverName,
            trustRoot=trustRoot,
            clientCertificate=clientCertificate,
        )

    def whenRecorded(self, count: int) -> Deferred[list[ConnectionRecord]]:
        """
        @return: a C{Deferred} that fires once at least C{count}
            connections have ended, with the first C{count} records (so
            that C{first, second = await server.whenRecorded(2)} always
            unpacks; L{records} has all of them).
        """
        if len(self.records) >= count:
            return succeed(list(self.records[:count]))
        waiter: Deferred[list[ConnectionRecord]] = Deferred()
        self._waiting.append((count, waiter))
        return waiter

    def _record(self, record: ConnectionRecord) -> None:
        self.records.append(record)
        ready = [(n, d) for n, d in self._waiting if len(self.records) >= n]
        self._waiting = [(n, d) for n, d in self._waiting if len(self.records) < n]
        for count, waiter in ready:
            waiter.callback(list(self.records[:count]))

    def stop(self) -> Deferred[None]:
        """
        Stop listening, let connections in progress finish (briefly), and
        remove the test files.
        """
        stopped = self.service.stopService()
        stopped.addBoth(lambda _: self.setup.stopHelpers())

        def cleanUp(result: object) -> None:
            for cleanup in self._cleanups:
                cleanup()
            self._cleanups.clear()

        stopped.addBoth(cleanUp)
        return stopped


def startTLSReplyServer(
    testCase: SynchronousTestCase | None = None,
    *,
    scenario: str = "valid",
    reply: bytes = DEFAULT_REPLY,
    http: bool = False,
    httpStatus: int = 200,
    httpHeaders: Mapping[str, str] | Sequence[tuple[str, str]] = (),
    reactor: Any = None,
    directory: Path | None = None,
    ca: TestCA | None = None,
    stallLimit: float | None = None,
    byteDelay: float | None = None,
    **policyChanges: Any,
) -> TestServer:
    """
    Start a tlsreply server for a test, listening by the time this returns.

    @param testCase: if given, the server is stopped (and its files
        removed) in the test's cleanup.
    @param scenario: a name from L{tlsreply.scenarios.servers}: C{"valid"},
        C{"expired"}, C{"tls1.2-only"}, ...
    @param reply: the bytes every client receives (with C{http}, the
        response's body, which may be empty).
    @param http: wrap the reply in a minimal HTTP/1.1 response
        (L{tlsreply.replies.httpResponse}).
    @param httpStatus: the HTTP response's status code (100 to 599), as
        C{--http-status}; implies C{http=True}.
    @param httpHeaders: header fields the HTTP response adds, as a mapping
        (C{{"Location": "/elsewhere"}}) or as C{(name, value)} pairs where a
        name repeats, as C{--http-header}; C{Content-Type} and
        C{Cache-Control} replace tlsreply's defaults. Implies C{http=True}.
    @param reactor: the reactor to listen on; the global one by default.
    @param directory: where to write the CA and scenario files; a new
        temporary folder by default.
    @param ca: the test CA; a fresh one by default. It may be an
        intermediate: clients trust its root, and the server sends its
        chain.
    @param stallLimit: for a hostile scenario that stalls
        (C{stall-handshake}, C{stall-after-handshake},
        C{renegotiation-request}), the seconds after which the server
        closes the stalled connection (60 by default); see
        L{tlsreply.scenarios.misbehaving.HostileSettings}.
    @param byteDelay: for C{slow-reply}, the seconds between the reply's
        bytes (0.2 by default).
    @param policyChanges: L{TLSPolicy} fields to change on top of the
        scenario's policy (e.g. C{alpnProtocols=("h2",)}).
    """
    unknown = sorted(set(policyChanges) - {f.name for f in fields(TLSPolicy)})
    if unknown:
        raise TypeError(
            f"unknown tlsreply server setting {', '.join(map(repr, unknown))}: "
            "known are scenario, reply, http, httpStatus, httpHeaders, reactor, "
            "directory, ca, stallLimit, byteDelay and the "
            f"TLSPolicy fields ({', '.join(f.name for f in fields(TLSPolicy))})"
        )
    if reactor is None:
        from twisted.internet import reactor
    cleanups: list[Callable[[], object]] = []
    if directory is None:
        directory = Path(tempfile.mkdtemp(prefix="tlsreply-"))
        cleanups.append(lambda: shutil.rmtree(directory, ignore_errors=True))
    ca = ca or TestCA()
    setup: ScenarioSetup | None = None
    try:
        setup = buildScenario(scenario, ca, directory)
        if policyChanges:
            setup = replace(setup, policy=replace(setup.policy, **policyChanges))
        headers = tuple(httpHeaders.items() if isinstance(httpHeaders, Mapping) else httpHeaders)
        if http or httpStatus != 200 or headers:
            reply = httpResponse(reply, httpStatus, headers)
        hostile = hostileSettings(stallLimit, byteDelay)
        factory = setup.replyFactory(reply, clock=reactor, hostile=hostile)
        service = TLSReplyService.fromDescriptions(
            reactor,
            [f"tcp:0:interface={LOOPBACK}"],
            setup.serverContexts(),
            factory,
            shutdownGrace=2,
        )
        setup.startHelpers(reactor)
        service.startService()
    except BaseException:
        if setup is not None:
            setup.stopHelpers()
        for cleanup in cleanups:
            cleanup()
        raise
    port = service.listeningPorts[0].getHost().port  # type: ignore[attr-defined]
    server = TestServer(
        LOOPBACK,
        port,
        scenario,
        setup.caPath.read_bytes(),
        setup.caPath,
        service,
        setup.scenario.expectedOutcome,
        IssuingCA(ca, directory / ISSUED_DIRECTORY),
        setup,
        clientCertificatePath=setup.clientCertificatePath,
        _cleanups=cleanups,
    )
    factory.recorders.append(server._record)
    if testCase is not None:
        testCase.addCleanup(server.stop)
    return server
