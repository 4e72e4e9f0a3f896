"""
The policy tests' server and clients: tlsreply started from its command
line (L{tlsreply.command.tap}) on 127.0.0.1 with an ephemeral port, the way
C{twistd tlsreply} starts it, and Python C{ssl} and C{openssl s_client}
clients configured the way each test needs.

Shared by C{tests.test_negotiation}, C{tests.test_certificate_selection},
C{tests.test_sessions}, C{tests.test_client_certificates} and
C{tests.test_keylog}. Not named C{test_*}, so neither trial nor pytest
collects it.
"""

from __future__ import annotations

import ssl
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import trustme
from twisted.internet import reactor
from twisted.logger import LogEvent
from twisted.trial.unittest import TestCase

from tests.support import (
    LOOPBACK,
    SSLResult,
    WireTestCase,
    captureLogEvents,
    fetchWithSSL,
    inThread,
    makeCertificates,
    requireCommand,
    runCommand,
    temporaryDirectory,
)
from tlsreply.command.tap import Options, makeService
from tlsreply.connection.records import ConnectionRecord
from tlsreply.service import TLSReplyService

Configure = Callable[[ssl.SSLContext], None]


# Servers.


@dataclass
class PolicyServer:
    """
    A tlsreply server started from a command line, listening on 127.0.0.1.

    @ivar options: the parsed command line.
    @ivar caPath: the CA that issued the default test certificate, if the
        command line did not name certificates of its own.
    """

    port: int
    service: TLSReplyService
    options: Options
    events: list[LogEvent]
    caPath: str = ""

    def connectionEvents(self) -> list[LogEvent]:
        """
        The per-connection log events so far, in the order connections
        ended.
        """
        return [e for e in self.events if "outcome" in e]

    async def idle(self) -> list[LogEvent]:
        """
        Wait until no connection is in progress (so that every connection so
        far is logged), then return the per-connection events.
        """
        await self.service.connections.whenIdle()
        return self.connectionEvents()

    async def lastEvent(self) -> LogEvent:
        """
        The log event of the connection that ended last, once it has.
        """
        return (await self.idle())[-1]


def serve(testCase: TestCase, *arguments: str) -> PolicyServer:
    """
    Start tlsreply the way C{twistd tlsreply ARGUMENTS} does, on an
    ephemeral 127.0.0.1 port, with the default test certificate unless the
    arguments name certificates; stop it at the end of the test.
    """
    events = captureLogEvents(testCase)
    caPath = ""
    if "--cert" not in arguments and "--cert-dir" not in arguments:
        certificates = makeCertificates(temporaryDirectory(testCase))
        caPath = str(certificates.caPath)
        arguments = (
            "--cert", str(certificates.certificatePath),
            "--key", str(certificates.keyPath),
            *arguments,
        )
    options = Options()
    options.parseOptions(["--port", f"tcp:0:interface={LOOPBACK}", *arguments])
    socketTLS = testCase.socketTLS if isinstance(testCase, WireTestCase) else True
    top = makeService(options, reactor=reactor, socketTLS=socketTLS)
    top.privilegedStartService()
    top.startService()
    testCase.addCleanup(top.stopService)
    [service] = [s for s in top if isinstance(s, TLSReplyService)]  # type: ignore[attr-defined]
    port: int = getattr(service.listeningPorts[0].getHost(), "port", 0)
    return PolicyServer(port, service, options, events, caPath)


async def fetch(
    server: PolicyServer,
    context: ssl.SSLContext,
    serverName: str | None = "localhost",
    session: ssl.SSLSession | None = None,
) -> SSLResult:
    """
    Fetch the reply with Python's C{ssl} in a thread, and wait until the
    server has logged the connection (also when the client failed).
    """
    try:
        result: SSLResult = await inThread(
            fetchWithSSL, server.port, context, session=session,
            serverName=serverName,
        )
    finally:
        await server.idle()
    return result


async def sClient(
    testCase: TestCase, server: PolicyServer, *arguments: str
) -> tuple[int, str]:
    """
    Run C{openssl s_client} against the server until it closes, and wait
    until the server has logged the connection.

    @return: the exit status and the output (stdout and stderr).
    """
    openssl = requireCommand(testCase, "openssl")
    result = await inThread(
        runCommand,
        [openssl, "s_client", "-connect", f"{LOOPBACK}:{server.port}", "-ign_eof",
         *arguments],
    )
    await server.idle()
    return result.returncode, (result.stdout + result.stderr).decode("utf-8", "replace")


def recordConnections(server: PolicyServer) -> list[ConnectionRecord]:
    """
    Record every connection from now on, with what its client offered (a
    recorder makes the server parse each ClientHello in full).
    """
    records: list[ConnectionRecord] = []
    server.service.replyFactory.recorders.append(records.append)
    return records


# Clients.


def tls12(context: ssl.SSLContext) -> None:
    """
    Offer TLS 1.2 only (with session tickets, as clients do by default).
    """
    context.maximum_version = ssl.TLSVersion.TLSv1_2


def tls12SessionID(context: ssl.SSLContext) -> None:
    """
    Offer TLS 1.2 only, without session tickets: resumption can only be by
    session ID, from the server's session cache.
    """
    tls12(context)
    context.options |= ssl.OP_NO_TICKET


def tls13(context: ssl.SSLContext) -> None:
    """
    Offer TLS 1.3 only.
    """
    context.minimum_version = ssl.TLSVersion.TLSv1_3


def legacyVersion(version: ssl.TLSVersion) -> Configure:
    """
    Offer only TLS 1.0 or 1.1, which the client's own OpenSSL allows only at
    security level 0.
    """

    def configure(context: ssl.SSLContext) -> None:
        context.set_ciphers("DEFAULT:@SECLEVEL=0")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            context.minimum_version = version
            context.maximum_version = version

    return configure


def ciphers(names: str) -> Configure:
    """
    Offer TLS 1.2 only, with these cipher suites in this order.
    """

    def configure(context: ssl.SSLContext) -> None:
        tls12(context)
        context.set_ciphers(names)

    return configure


def anyName(context: ssl.SSLContext) -> None:
    """
    Verify the chain but not the name, to see which certificate an unknown
    (or missing) server name gets.
    """
    context.check_hostname = False


def both(*steps: Configure | None) -> Configure:
    """
    Apply several client configurations in order.
    """

    def configure(context: ssl.SSLContext) -> None:
        for step in steps:
            if step is not None:
                step(context)

    return configure


# Certificates.


def writeCombined(path: Path, leaf: trustme.LeafCert) -> Path:
    """
    Write key, certificate and intermediates to one file, as
    C{--cert FILE} alone takes them.
    """
    leaf.private_key_and_cert_chain_pem.write_to_path(str(path))
    return path
