#!/usr/bin/env python3
"""
The micro-benchmarks behind BENCHMARKS.md's C{timeit} figures: one named
case for each, timing one of tlsreply's functions on the connection path
(or a record's) in this process.

    .venv/bin/python bench/micro.py                    # every case
    .venv/bin/python bench/micro.py hello-parse ja4    # some (a prefix will do)
    .venv/bin/python bench/micro.py --list
    .venv/bin/python bench/micro.py --number 50 --repeat 1   # what the suite runs

Each case prints the microseconds per call of the best of C{--repeat}
runs of C{--number} calls (as C{timeit} reports it: the least disturbed
run), with the garbage collector off while a run is timed, next to the
figure BENCHMARKS.md gives. What a run needs that is not the call itself
(a fresh ClientHello for each call where its names are cached, a
connection whose handshake is done) is made before the run is timed.

Unlike C{bench/run.py}, which sees tlsreply only through C{twistd}, these
import tlsreply: they time its parts, not the server. Figures for code that
no longer exists (the versions a change replaced) come from running the
case of the same name in a checkout of that code, where it applies.
"""

from __future__ import annotations

import argparse
import atexit
import gc
import itertools
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tlsreply.clienthello.offered import ClientHello
    from tlsreply.connection.records import HandshakeInfo

#: How a completed connection ended, as its log line says.
CLOSED = "the client closed after close_notify"
#: Its kind, as the metrics count it (L{tlsreply.connection.ending}).
CLOSED_KIND = "client_closed"
PEER = "127.0.0.1:50123"


def out(text: str) -> None:
    """
    Print a line at once (a case can take seconds).
    """
    sys.stdout.write(text + "\n")
    sys.stdout.flush()

#: A run of C{number} calls, ready to be timed.
Run = Callable[[], None]


@dataclass(frozen=True)
class Case:
    """
    One micro-benchmark.

    @ivar name: how the command line names it.
    @ivar what: the call it times.
    @ivar figure: what BENCHMARKS.md gives for it.
    @ivar number: calls per run by default (what BENCHMARKS.md used).
    @ivar prepare: makes a run of the given number of calls; the run is
        what is timed.
    @ivar isolated: it changes the process for good (C{prometheus_client}'s
        multiprocess mode), so it runs in a process of its own.
    """

    name: str
    what: str
    figure: str
    number: int
    prepare: Callable[[int], Run]
    isolated: bool = False


# --- what the cases share ---------------------------------------------------


def handshakeInfo() -> HandshakeInfo:
    """
    The facts of a completed TLS 1.3 handshake, as the server logs them.
    """
    from tlsreply.connection.records import HandshakeInfo

    return HandshakeInfo(
        tlsVersion="TLSv1.3",
        cipher="TLS_AES_256_GCM_SHA384",
        group="x25519",
        resumed=False,
        serverName="localhost",
        alpnProtocol=None,
        duration=0.00123,
        certificate="ECDSA-P-256",
    )


def pythonClientHello() -> bytes:
    """
    What Python's C{ssl} client sends first (its ClientHello in one TLS
    record), made over memory BIOs.
    """
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    outgoing = ssl.MemoryBIO()
    client = context.wrap_bio(ssl.MemoryBIO(), outgoing, server_hostname="localhost")
    with suppress(ssl.SSLWantReadError):
        client.do_handshake()
    return outgoing.read()


def freshHellos(number: int) -> list[ClientHello]:
    """
    C{number} parses of the same ClientHello: each works out its names and
    fingerprints anew (they are cached per object).
    """
    from tlsreply.clienthello.parser import ClientHelloParser

    data = pythonClientHello()
    hellos = [ClientHelloParser().feed(data) for _ in range(number)]
    assert all(hello is not None for hello in hellos)
    return hellos  # type: ignore[return-value]


def loop(number: int, call: Callable[..., object], *arguments: Any) -> Run:
    """
    A run calling C{call(*arguments)} C{number} times.
    """

    def run() -> None:
        for _ in itertools.repeat(None, number):
            call(*arguments)

    return run


def overEach(items: Sequence[Any], call: Callable[[Any], object]) -> Run:
    """
    A run calling C{call} once on each of C{items}.
    """

    def run() -> None:
        for item in items:
            call(item)

    return run


# --- the cases -----------------------------------------------------------------


def metricsConnection(number: int) -> Run:
    from tlsreply.metrics.counting import ConnectionMetrics

    metrics = ConnectionMetrics(5)
    return loop(number, metrics.connectionEnded, CLOSED_KIND, handshakeInfo(), False)


def metricsConnectionWorker(number: int) -> Run:
    from tlsreply.metrics.counting import ConnectionMetrics
    from tlsreply.metrics.multiprocess import useMultiprocessFiles

    folder = tempfile.mkdtemp(prefix="tlsreply-micro-metrics-")
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    useMultiprocessFiles(Path(folder))
    metrics = ConnectionMetrics(5, multiprocess=True)
    return loop(number, metrics.connectionEnded, CLOSED_KIND, handshakeInfo(), False)


def histogramObserve(number: int) -> Run:
    from prometheus_client import CollectorRegistry, Histogram

    from tlsreply.metrics.counting import DURATION_BUCKETS

    histogram = Histogram(
        "micro_seconds", "micro", buckets=DURATION_BUCKETS, registry=CollectorRegistry()
    )
    return loop(number, histogram.observe, 0.00123)


def accessLog(json: bool, pieces: bool) -> Callable[[int], Run]:
    """
    C{AccessLog.connectionEnded} with its share of the writes: to
    C{/dev/null} (not a regular file: written in pieces of whole lines of
    at most 4,096 bytes, as to a pipe), or to a regular file (one write
    per buffer).
    """

    def prepare(number: int) -> Run:
        from twisted.internet.task import Clock

        from tlsreply.logs.access import AccessLog

        stream = open(os.devnull, "wb") if pieces else tempfile.TemporaryFile()
        log = AccessLog(stream, Clock(), json=json)
        each = loop(number, log.connectionEnded, PEER, CLOSED, handshakeInfo())

        def run() -> None:
            each()
            log.flush()
            stream.close()

        return run

    return prepare


def jsonThroughEncoder(number: int) -> Run:
    from tlsreply.logs._jsonlines import jsonLine
    from tlsreply.logs.access import connectionFields, connectionLine

    handshake = handshakeInfo()

    def line() -> None:
        jsonLine(
            1.0, "info", "tlsreply.access",
            connectionLine(PEER, CLOSED, handshake),
            connectionFields(PEER, CLOSED, handshake),
        )

    return loop(number, line)


def protocolData(number: int) -> Run:
    from twisted.internet.task import Clock

    from tlsreply.protocol import ReplyFactory

    protocol = ReplyFactory(clock=Clock()).buildProtocol(None)
    return loop(number, protocol.dataReceived, b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")


class _Connection:
    """
    What a protocol asks of its transport's connection as it ends.
    """

    abortReason = None
    overTCP = True
    clientHello = None

    def peerText(self) -> str:
        return PEER


class _Transport:
    connection = _Connection()


def protocolLifecycle(number: int) -> Run:
    from twisted.internet.protocol import connectionDone
    from twisted.internet.task import Clock

    from tlsreply.logs.access import NoAccessLog
    from tlsreply.protocol import ReplyFactory

    factory = ReplyFactory(clock=Clock(), accessLog=NoAccessLog())
    transport, handshake = _Transport(), handshakeInfo()
    build = factory.buildProtocol

    def one() -> None:
        protocol = build(None)
        protocol.transport = transport
        protocol.handshake = handshake
        protocol.connectionLost(connectionDone)

    return loop(number, one)


def protocolLifecycleFailed(number: int) -> Run:
    from OpenSSL import SSL
    from twisted.internet.task import Clock
    from twisted.python.failure import Failure

    from tlsreply.logs.access import NoAccessLog
    from tlsreply.metrics.counting import ConnectionMetrics
    from tlsreply.protocol import ReplyFactory

    factory = ReplyFactory(clock=Clock(), accessLog=NoAccessLog())
    factory.metrics = ConnectionMetrics(5)
    transport = _Transport()
    reason = Failure(SSL.Error([("SSL routines", "", "no shared cipher")]))
    build = factory.buildProtocol

    def one() -> None:
        protocol = build(None)
        protocol.transport = transport
        protocol.connectionLost(reason)

    return loop(number, one)


def helloParse(number: int) -> Run:
    from tlsreply.clienthello.parser import ClientHelloParser

    data = pythonClientHello()
    return loop(number, lambda: ClientHelloParser().feed(data))


def helloPeekScan(number: int) -> Run:
    from tlsreply.clienthello.peek import HelloPeek

    server, client = socket.socketpair()
    client.sendall(pythonClientHello())
    buffer = bytearray(16384)
    receive = server.recv_into

    def one() -> None:
        HelloPeek(False).look(buffer, receive(buffer, 16384, socket.MSG_PEEK))

    each = loop(number, one)

    def run() -> None:
        each()
        server.close()
        client.close()

    return run


def recordBuild(number: int) -> Run:
    from tlsreply.connection.records import ConnectionRecord

    handshake = handshakeInfo()
    return overEach(
        freshHellos(number),
        lambda hello: ConnectionRecord.build(PEER, CLOSED, handshake, hello, None),
    )


def helloNames(hello: ClientHello) -> None:
    for name in (
        "offeredCipherSuites", "offeredGroups", "offeredSignatureAlgorithms",
        "offeredExtensions", "offeredKeyShares", "offeredCompressionMethods",
    ):
        getattr(hello, name)


def peerAddress(number: int) -> Run:
    from tlsreply.connection.addresses import formatAddress, peerAddress

    address = ("127.0.0.1", 50123)
    return loop(number, lambda: formatAddress(peerAddress(socket.AF_INET, address)))


def peerText(number: int) -> Run:
    from tlsreply.connection.addresses import formatPeer

    return loop(number, formatPeer, socket.AF_INET, ("127.0.0.1", 50123))


def handshakeFacts(number: int) -> Run:
    """
    C{describeHandshake} on a pyOpenSSL server connection whose TLS 1.3
    handshake with Python's C{ssl} is done (over memory BIOs).
    """
    from tlsreply.connection.records import describeHandshake

    connection = _handshakenServer()
    return loop(number, describeHandshake, connection, 0.00123, False, "ECDSA-P-256")


def _handshakenServer() -> Any:
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    from OpenSSL import SSL

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(1)
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .sign(key, hashes.SHA256())
    )
    context = SSL.Context(SSL.TLS_METHOD)
    context.use_certificate(certificate)
    context.use_privatekey(key)
    server = SSL.Connection(context, None)
    server.set_accept_state()
    clientContext = ssl.create_default_context()
    clientContext.check_hostname = False
    clientContext.verify_mode = ssl.CERT_NONE
    toServer, toClient = ssl.MemoryBIO(), ssl.MemoryBIO()
    client = clientContext.wrap_bio(toClient, toServer, server_hostname="localhost")
    clientDone = serverDone = False
    for _ in range(10):
        if not clientDone:
            with suppress(ssl.SSLWantReadError):
                client.do_handshake()
                clientDone = True
        if data := toServer.read():
            server.bio_write(data)
        if not serverDone:
            with suppress(SSL.WantReadError):
                server.do_handshake()
                serverDone = True
        with suppress(SSL.WantReadError):
            toClient.write(server.bio_read(65536))
        if clientDone and serverDone:
            return server
    raise RuntimeError("the handshake did not complete in memory")


CASES = [
    Case("metrics-connection", "ConnectionMetrics.connectionEnded, a completed handshake, "
         "one process", "0.24 µs", 1_000_000, metricsConnection),
    Case("metrics-connection-worker", "the same in a worker (durations into "
         "prometheus_client's multiprocess histogram)", "1.9 µs", 200_000,
         metricsConnectionWorker, isolated=True),
    Case("histogram-observe", "prometheus_client's Histogram.observe alone", "1.0 µs",
         1_000_000, histogramObserve),
    Case("accesslog-text", "AccessLog.connectionEnded, text line, one write per buffer",
         "0.84 to 0.93 µs", 200_000, accessLog(json=False, pieces=False)),
    Case("accesslog-text-pieces", "the same to /dev/null, in pieces of 4,096 bytes",
         "0.96 µs", 200_000, accessLog(json=False, pieces=True)),
    Case("accesslog-json", "AccessLog.connectionEnded, JSON line, one write per buffer",
         "2.61 to 2.95 µs", 200_000, accessLog(json=True, pieces=False)),
    Case("accesslog-json-pieces", "the same to /dev/null, in pieces of 4,096 bytes",
         "2.79 µs", 200_000, accessLog(json=True, pieces=True)),
    Case("json-through-encoder", "a JSON connection line as the first version made it: "
         "the event's fields through the general encoder (the line alone)", "7.6 µs",
         200_000, jsonThroughEncoder),
    Case("protocol-data", "ReplyProtocol.dataReceived without a recorder, per chunk",
         "0.042 µs", 1_000_000, protocolData),
    Case("protocol-lifecycle", "a ReplyProtocol made and its connectionLost (the report, "
         "a no-op access log)", "0.35 µs", 1_000_000, protocolLifecycle),
    Case("protocol-lifecycle-failed", "the same for a failed handshake (OpenSSL's "
         "reason classified, counted in the metrics)", "2.4 µs", 1_000_000,
         protocolLifecycleFailed),
    Case("hello-peek-scan", "the peek at a ClientHello (recv MSG_PEEK) and its scan for "
         "the server name", "2.5 µs", 200_000, helloPeekScan),
    Case("hello-parse", "parsing Python ssl's ClientHello in full", "11.8 µs", 20_000,
         helloParse),
    Case("record-build", "ConnectionRecord.build with that hello (names, JA4, JA3)",
         "58 µs", 20_000, recordBuild),
    Case("hello-names", "the names of everything the hello offered", "9 µs", 20_000,
         lambda number: overEach(freshHellos(number), helloNames)),
    Case("ja4", "the hello's JA4", "15 µs", 20_000,
         lambda number: overEach(freshHellos(number), lambda hello: hello.ja4)),
    Case("ja3", "the hello's JA3", "6 µs", 20_000,
         lambda number: overEach(freshHellos(number), lambda hello: hello.ja3)),
    Case("handshake-facts", "describeHandshake: the handshake's facts, names checked "
         "printable", "7 µs", 200_000, handshakeFacts),
    Case("peer-address", "the peer's address object made for the log line, then "
         "formatted (the path removed; peer-text is what replaced it)",
         "1.5 µs saved", 1_000_000, peerAddress),
    Case("peer-text", "the peer formatted for the log line without an address object",
         "the rest of 1.5 µs", 1_000_000, peerText),
]
CASES_BY_NAME = {case.name: case for case in CASES}


# --- running them -----------------------------------------------------------


def timeCase(case: Case, number: int, repeat: int) -> float:
    """
    Microseconds per call: the best of C{repeat} timed runs.
    """
    best = float("inf")
    for _ in range(repeat):
        run = case.prepare(number)
        enabled = gc.isenabled()
        gc.collect()
        gc.disable()
        try:
            started = time.perf_counter()
            run()
            elapsed = time.perf_counter() - started
        finally:
            if enabled:
                gc.enable()
        best = min(best, elapsed)
    return best * 1e6 / number


def report(case: Case, microseconds: float, number: int, repeat: int) -> str:
    return (
        f"{case.name:<26} {microseconds:9.3f} µs  (BENCHMARKS.md: {case.figure}; "
        f"best of {repeat} x {number:,})  {case.what}"
    )


def runCase(case: Case, number: int | None, repeat: int, here: bool) -> bool:
    """
    Run one case and print its line; C{False} if it failed.
    """
    calls = number or case.number
    if case.isolated and not here:
        result = subprocess.run(
            [sys.executable, __file__, "--here", "--number", str(calls),
             "--repeat", str(repeat), case.name],
            capture_output=True,
            timeout=600,
        )
        sys.stdout.write(result.stdout.decode(errors="replace"))
        sys.stdout.flush()
        if result.returncode != 0:
            sys.stderr.write(result.stderr.decode(errors="replace")[-2000:])
        return result.returncode == 0
    try:
        microseconds = timeCase(case, calls, repeat)
    except Exception as error:
        out(f"{case.name:<26} FAILED {type(error).__name__}: {error}")
        return False
    out(report(case, microseconds, calls, repeat))
    return True


def parseArguments(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bench/micro.py",
        description="Time the parts of tlsreply whose cost BENCHMARKS.md gives from "
        "timeit, in microseconds per call.",
        epilog="Cases: " + ", ".join(CASES_BY_NAME),
    )
    parser.add_argument("cases", nargs="*", metavar="CASE",
                        help="cases to run, or prefixes of their names (default: all)")
    parser.add_argument("--number", type=int,
                        help="calls per run (default: each case's, as BENCHMARKS.md)")
    parser.add_argument("--repeat", type=int, default=5,
                        help="runs per case; the best is reported (5)")
    parser.add_argument("--list", action="store_true", help="list the cases and exit")
    parser.add_argument("--here", action="store_true", help=argparse.SUPPRESS)
    arguments = parser.parse_args(argv)
    if arguments.number is not None and not 1 <= arguments.number <= 100_000_000:
        parser.error("--number: 1 to 100000000")
    if not 1 <= arguments.repeat <= 1000:
        parser.error("--repeat: 1 to 1000")
    for name in arguments.cases:
        if not any(case.startswith(name) for case in CASES_BY_NAME):
            parser.error(f"no case named {name!r} (known: {', '.join(CASES_BY_NAME)})")
    return arguments


def main(argv: Sequence[str] | None = None) -> int:
    arguments = parseArguments(sys.argv[1:] if argv is None else argv)
    chosen = [
        case for case in CASES
        if not arguments.cases or any(case.name.startswith(n) for n in arguments.cases)
    ]
    if arguments.list:
        for case in chosen:
            out(f"{case.name:<26} {case.figure:<16} {case.what}")
        return 0
    failed = [
        case.name for case in chosen
        if not runCase(case, arguments.number, arguments.repeat, arguments.here)
    ]
    if failed:
        sys.stderr.write(f"micro: failed: {', '.join(failed)}\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
