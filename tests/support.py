"""
Shared test helpers: a test CA, a real tlsreply server on 127.0.0.1, and
blocking TLS clients (Python's C{ssl}, C{openssl}, C{curl}) that the
asynchronous tests run in a thread or a subprocess.
"""

from __future__ import annotations

import array
import fcntl
import os
import shutil
import socket
import ssl
import subprocess
import tempfile
import termios
import time
import unittest
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, NoReturn, TypeVar

import trustme
from twisted.internet import reactor
from twisted.internet.interfaces import IOpenSSLServerConnectionCreator
from twisted.internet.threads import deferToThread
from twisted.logger import ILogObserver, LogEvent, globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase, TestCase
from zope.interface import provider

from tlsreply import (
    ReplyFactory,
    TLSPolicy,
    TLSReplyService,
    buildServerContexts,
    loadCredentials,
)

LOOPBACK = "127.0.0.1"

T = TypeVar("T", bound=type)


class WireTestCase(TestCase):
    """
    A test against real servers, run over each connection path the server
    can take: tlsreply's own ports with TLS on the socket
    (L{tlsreply.transport.tlssocket}), and Twisted's ports with TLS over memory BIOs
    (L{tlsreply.transport.tlsmemory}, which C{haproxy:} and embedders' endpoints
    use); see L{onMemoryBIO}.

    @cvar socketTLS: which path this class's servers take.
    """

    socketTLS: ClassVar[bool] = True


def onMemoryBIO(testClass: T) -> T:
    """
    The same tests, with every server on the memory-BIO path.
    """
    return type(  # type: ignore[return-value]
        f"{testClass.__name__}OnMemoryBIO",
        (testClass,),
        {
            "socketTLS": False,
            "__module__": testClass.__module__,
            "__doc__": f"{testClass.__doc__}\n    (On the memory-BIO path.)\n",
        },
    )


@dataclass
class TestCertificates:
    """
    A fresh CA and a server certificate it issued, written to files.
    """

    __test__ = False  # a helper, not a test class, for pytest

    ca: trustme.CA
    caPath: Path
    certificatePath: Path
    keyPath: Path


def temporaryDirectory(testCase: SynchronousTestCase) -> Path:
    """
    A new directory, removed at the end of the test. (trial's C{mktemp}
    makes paths relative to the working directory, which under pytest is
    the checkout.)
    """
    path = Path(tempfile.mkdtemp(prefix="tlsreply-test-"))
    testCase.addCleanup(shutil.rmtree, path, ignore_errors=True)
    return path


def makeCertificates(directory: Path, *names: str) -> TestCertificates:
    """
    Make a test CA and a server certificate for C{names} (default:
    localhost, 127.0.0.1, ::1) in C{directory}.
    """
    directory.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA()
    server = ca.issue_cert(*(names or ("localhost", "127.0.0.1", "::1")))
    caPath = directory / "ca.pem"
    certificatePath = directory / "server.pem"
    keyPath = directory / "server.key"
    ca.cert_pem.write_to_path(str(caPath))
    certificatePath.write_bytes(b"".join(p.bytes() for p in server.cert_chain_pems))
    server.private_key_pem.write_to_path(str(keyPath))
    return TestCertificates(ca, caPath, certificatePath, keyPath)


@dataclass
class RunningServer:
    """
    A tlsreply server listening on 127.0.0.1 in this process.
    """

    port: int
    certificates: TestCertificates
    service: TLSReplyService
    factory: ReplyFactory
    events: list[LogEvent] = field(default_factory=list)

    @property
    def caPath(self) -> str:
        return str(self.certificates.caPath)

    def connectionEvents(self) -> list[LogEvent]:
        """
        The per-connection log events so far.
        """
        return [e for e in self.events if "outcome" in e]


def captureLogEvents(testCase: SynchronousTestCase) -> list[LogEvent]:
    """
    Collect every log event emitted until the end of the test.
    """
    events: list[LogEvent] = []

    @provider(ILogObserver)
    def observe(event: LogEvent) -> None:
        events.append(event)

    globalLogPublisher.addObserver(observe)
    testCase.addCleanup(globalLogPublisher.removeObserver, observe)
    return events


async def startServer(
    testCase: TestCase,
    reply: bytes = b"test\n",
    policy: TLSPolicy | None = None,
    listen: str = f"tcp:0:interface={LOOPBACK}",
    contextFactory: IOpenSSLServerConnectionCreator | None = None,
    socketTLS: bool | None = None,
    **factoryArguments: Any,
) -> RunningServer:
    """
    Start tlsreply on an ephemeral 127.0.0.1 port with a certificate from a
    fresh test CA (or the given C{contextFactory}); stop it (and wait for
    its connections) at test end. The connection path is C{socketTLS}'s,
    else the test class's (L{WireTestCase.socketTLS}).
    """
    events = captureLogEvents(testCase)
    certificates = makeCertificates(temporaryDirectory(testCase))
    credentials = loadCredentials(certificates.certificatePath, certificates.keyPath)
    factory = ReplyFactory(reply, clock=reactor, **factoryArguments)
    service = TLSReplyService.fromDescriptions(
        reactor,
        [listen],
        contextFactory or buildServerContexts(credentials, policy),
        factory,
        policy=policy,
        socketTLS=(
            socketTLS
            if socketTLS is not None
            else testCase.socketTLS if isinstance(testCase, WireTestCase) else True
        ),
    )
    service.startService()
    testCase.addCleanup(service.stopService)
    port = getattr(service.listeningPorts[0].getHost(), "port", 0)
    return RunningServer(port, certificates, service, factory, events)


def clientContext(
    caPath: str,
    configure: Callable[[ssl.SSLContext], None] | None = None,
) -> ssl.SSLContext:
    """
    A verifying Python C{ssl} client context that trusts the test CA.
    """
    context = ssl.create_default_context(cafile=caPath)
    if configure is not None:
        configure(context)
    return context


@dataclass
class SSLResult:
    """
    What a Python C{ssl} client saw.
    """

    data: bytes
    version: str | None
    cipher: str | None
    sessionReused: bool
    session: ssl.SSLSession | None
    alpnProtocol: str | None
    #: The server's certificate (DER) as the client received it.
    peerCertificate: bytes | None = None


def fetchWithSSL(
    port: int,
    context: ssl.SSLContext,
    session: ssl.SSLSession | None = None,
    sendFirst: bytes = b"",
    serverName: str = "localhost",
    timeout: float = 10.0,
) -> SSLResult:
    """
    Connect, optionally send something first, then read until the server's
    close_notify. Ragged EOFs are not suppressed: a server that closes TCP
    without close_notify makes this raise C{ssl.SSLEOFError}.
    """
    with socket.create_connection((LOOPBACK, port), timeout=timeout) as raw:
        with context.wrap_socket(
            raw,
            server_hostname=serverName,
            session=session,
            suppress_ragged_eofs=False,
        ) as tls:
            if sendFirst:
                tls.sendall(sendFirst)
            chunks = []
            while chunk := tls.recv(65536):
                chunks.append(chunk)
            cipher = tls.cipher()
            return SSLResult(
                b"".join(chunks),
                tls.version(),
                cipher[0] if cipher else None,
                bool(tls.session_reused),
                tls.session,
                tls.selected_alpn_protocol(),
                tls.getpeercert(binary_form=True),
            )


def inThread(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """
    Run a blocking client in the reactor's thread pool, so that the server
    in this process keeps running meanwhile.
    """
    return deferToThread(function, *args, **kwargs)


def runCommand(
    arguments: Sequence[str],
    input: bytes = b"",
    timeout: float = 30.0,
    **kwargs: Any,
) -> subprocess.CompletedProcess[bytes]:
    """
    Run a command (a real TLS client, or twistd) to completion.
    """
    return subprocess.run(
        list(arguments),
        input=input,
        capture_output=True,
        timeout=timeout,
        check=False,
        **kwargs,
    )


def inCI() -> bool:
    """
    Whether the suite runs in CI (C{CI} set, as C{.ci/run}'s hosts do),
    where every tool it needs has been installed.
    """
    return os.environ.get("CI", "").lower() not in ("", "0", "false", "no")


def missingTool(what: str, install: str) -> NoReturn:
    """
    A tool the suite needs is missing: skip the test on a developer's
    machine, but fail it in CI, where C{.ci/run} installs every such tool
    and a skip would hide a test that never ran.

    @param what: the missing tool, as the message names it.
    @param install: how to get it, e.g. C{apt-get install haproxy}.
    """
    if inCI():
        raise AssertionError(f"{what} is missing in CI: .ci/run must install it ({install})")
    raise unittest.SkipTest(f"{what} is not installed ({install})")


def requireTool(name: str, package: str | None = None) -> str:
    """
    The path of a command-line tool; if it is missing, skip the test (fail
    it in CI, see L{missingTool}).

    @param package: the Debian package that has it, if not named C{name}.
    """
    path = shutil.which(name)
    if path is None:
        missingTool(name, f"apt-get install {package or name}")
    assert path is not None
    return path


def requireCommand(testCase: SynchronousTestCase, name: str) -> str:
    """
    The path of a command-line tool, for C{testCase}: see L{requireTool}.
    """
    return requireTool(name)


README = Path(__file__).parent.parent / "README.md"


def readmeExample(firstLine: str) -> str:
    """
    The README's Python example that starts with C{firstLine} (its comment
    naming the file), as a user would copy it, so that the suite runs the
    README's samples rather than copies of them that could drift.
    """
    text = README.read_text()
    opening = f"```python\n{firstLine}\n"
    start = text.index(opening) + len("```python\n")
    return text[start : text.index("```", start)]


def acceptedByServer(client: socket.socket) -> bool:
    """
    Whether the server has accepted this IPv4 client's connection: the
    kernel gives a connection waiting in the accept queue no inode in
    C{/proc/net/tcp}, and one once a process has accepted it.
    """
    server = client.getpeername()[:2]
    own = client.getsockname()[:2]
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote = fields[1].split(":"), fields[2].split(":")
        if (int(local[1], 16), int(remote[1], 16)) == (server[1], own[1]):
            return fields[9] != "0"
    return False


def waitUntilAccepted(client: socket.socket, timeout: float = 10.0) -> None:
    """
    Wait until the server has accepted C{client}'s connection (a blocking
    test's way to know that a server in another process holds it), or
    fail after C{timeout} seconds.
    """
    deadline = time.monotonic() + timeout
    while not acceptedByServer(client):
        if time.monotonic() > deadline:
            raise AssertionError(f"the server did not accept {client.getsockname()} in {timeout}s")
        time.sleep(0.01)


def queuedBytes(raw: socket.socket) -> int:
    """
    How many bytes wait unread in C{raw}'s receive queue (C{FIONREAD}).
    """
    queued = array.array("i", [0])
    fcntl.ioctl(raw.fileno(), termios.FIONREAD, queued)
    return queued[0]


def waitForQueued(raw: socket.socket, count: int, timeout: float = 10.0) -> None:
    """
    Wait until at least C{count} bytes wait unread in C{raw}'s receive
    queue: what the peer has sent, whatever TLS has read so far. Fail
    after C{timeout} seconds.
    """
    deadline = time.monotonic() + timeout
    while True:
        queued = queuedBytes(raw)
        if queued >= count:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{queued} bytes queued after {timeout}s, not {count}")
        time.sleep(0.01)
