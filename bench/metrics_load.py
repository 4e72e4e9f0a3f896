#!/usr/bin/env python3
"""
What the metrics endpoint's clients cost the TLS clients: TLS handshake
latency of C{twistd -n tlsreply --metrics ...}, unloaded, with scrapers
fetching C{/metrics} in a loop, and (C{--flood}) while one client sends
20,000 pipelined C{GET /metrics} in one write; and meanwhile, how long
C{/ready} takes to answer.

The server runs pinned to CPU 0 (as in C{bench/run.py}), from a checkout
(C{--checkout}, this one by default), with a certificate made for the run;
the handshake client, the scrapers and the flood run pinned to CPU 1. The
handshake client makes one full TLS 1.3 handshake (ECDSA P-256) at a time
and times each from C{connect} to the handshake's end, then reads the reply
to the server's close. Phases alternate (unloaded, scrapers, flood) for
C{--rounds} rounds, so a slow drift of a shared machine falls on each; the
figures pool the rounds. The scrapers run in a process of their own, one
thread each, with a kept-alive connection, as fast as the server answers;
a thread of the handshake client's process asks C{/ready} every 0.1 s.
Server CPU is the share of a core the server's process (with
C{--workers}, the parent, which serves the metrics) used in the phase.

It imports nothing from tlsreply: the server is the installed command, as
a user runs it. Everything stays on 127.0.0.1 and every wait is bounded.

    .venv/bin/python bench/metrics_load.py --flood               # 8 scrapers, 3 rounds
    .venv/bin/python bench/metrics_load.py --flood --checkout /tmp/baseline
    .venv/bin/python bench/metrics_load.py --flood --workers 2
"""

from __future__ import annotations

import argparse
import http.client
import os
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path

# The harness's helpers, from bench/run.py (nothing from tlsreply).
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness.processes import say  # noqa: E402
from bench.harness.servers import freePort  # noqa: E402
from bench.harness.settings import LOOPBACK, REPO  # noqa: E402
from bench.harness.tools import makeCredentials  # noqa: E402

#: The CPU the server is pinned to, and the one everything else is.
SERVER_CPU, CLIENT_CPU = 0, 1

#: Pipelined requests the flood sends in one write.
FLOOD_REQUESTS = 20_000

SCRAPE = b"GET /metrics HTTP/1.1\r\nHost: bench\r\nAccept: text/plain\r\n\r\n"


def pin(cpu: int) -> None:
    """
    Run this process on C{cpu} only, where the machine has it.
    """
    with suppress(AttributeError, OSError):
        os.sched_setaffinity(0, {cpu})


@contextmanager
def tlsreply(checkout: Path, directory: Path, workers: int) -> Iterator[tuple[int, int, int]]:
    """
    C{twistd -n tlsreply} from C{checkout}, with C{--metrics} (and
    C{--workers} if C{workers}), until the block ends: its TLS port, its
    metrics port and its pid.
    """
    credentials = makeCredentials(directory)["ecdsa"]
    port, metricsPort = freePort(), freePort()
    twistd = Path(sys.executable).parent / "twistd"
    command = [
        str(twistd), "-n", "--pidfile=", "tlsreply",
        "--port", f"tcp:{port}:interface={LOOPBACK}",
        "--cert", str(credentials.certificate), "--key", str(credentials.key),
        "--metrics", f"tcp:{metricsPort}:interface={LOOPBACK}",
    ]
    if workers:
        command += ["--workers", str(workers)]
    if shutil.which("taskset"):
        command = ["taskset", "-c", str(SERVER_CPU), *command]
    environment = {**os.environ, "PYTHONPATH": str(checkout)}
    with open(directory / "server.log", "wb") as log:
        server = subprocess.Popen(
            command, cwd=checkout, env=environment, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 30
        while not (ready(port) and ready(metricsPort)):
            if server.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(
                    "the server did not start:\n" + (directory / "server.log").read_text()
                )
            time.sleep(0.1)
        yield port, metricsPort, server.pid
    finally:
        with suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(10)


def ready(port: int) -> bool:
    try:
        socket.create_connection((LOOPBACK, port), timeout=1).close()
    except OSError:
        return False
    return True


def handshakes(port: int, count: int) -> list[float]:
    """
    C{count} full handshakes, one at a time: the seconds each took from
    C{connect} to the handshake's end.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    seconds = []
    for _ in range(count):
        started = time.perf_counter()
        with socket.create_connection((LOOPBACK, port), timeout=10) as raw:
            with context.wrap_socket(raw, server_hostname="localhost") as tls:
                seconds.append(time.perf_counter() - started)
                with suppress(ssl.SSLError, OSError):
                    while tls.recv(1024):
                        pass
    return seconds


def scrapeLoop(port: int, stop: threading.Event, counts: list[int], index: int) -> None:
    """
    Fetch C{/metrics} over one kept-alive connection until C{stop}, as
    fast as the server answers; reconnect when the server closes.
    """
    while not stop.is_set():
        connection = http.client.HTTPConnection(LOOPBACK, port, timeout=10)
        try:
            while not stop.is_set():
                connection.request("GET", "/metrics")
                response = connection.getresponse()
                response.read()
                counts[index] += 1
        except (OSError, http.client.HTTPException):
            pass
        finally:
            connection.close()


def scrapers(port: int, count: int) -> int:
    """
    In a process of its own: C{count} scrapers until standard input
    closes; print how many scrapes they made a second.
    """
    pin(CLIENT_CPU)
    stop = threading.Event()
    counts = [0] * count
    threads = [
        threading.Thread(target=scrapeLoop, args=(port, stop, counts, i), daemon=True)
        for i in range(count)
    ]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    sys.stdin.read()
    stop.set()
    seconds = time.monotonic() - started
    for thread in threads:
        thread.join(15)
    sys.stdout.write(f"{sum(counts) / seconds:.1f}\n")
    return 0


def flood(port: int) -> int:
    """
    In a process of its own: one connection, 20,000 pipelined scrapes in
    one write, then read answers until standard input closes; print how
    many came.
    """
    pin(CLIENT_CPU)
    received = b""
    stop = threading.Event()
    with socket.create_connection((LOOPBACK, port), timeout=10) as client:

        def send() -> None:
            with suppress(OSError):
                client.sendall(SCRAPE * FLOOD_REQUESTS)

        threading.Thread(target=send, daemon=True).start()
        def waitForEnd() -> None:
            sys.stdin.read()
            stop.set()

        threading.Thread(target=waitForEnd, daemon=True).start()
        client.settimeout(0.2)
        answers = 0
        while not stop.is_set():
            try:
                chunk = client.recv(1 << 20)
            except TimeoutError:
                continue
            except OSError:
                break
            if not chunk:
                break
            received = received[-16:] + chunk
            answers += chunk.count(b"HTTP/1.1 200")
    sys.stdout.write(f"{answers}\n")
    return 0


@contextmanager
def background(mode: str, port: int, count: int) -> Iterator[list[str]]:
    """
    This script in another process (C{--scrapers} or C{--flood-client}),
    stopped when the block ends; what it printed, once it has.
    """
    process = subprocess.Popen(
        [sys.executable, __file__, mode, str(port), str(count)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE,
    )
    printed: list[str] = []
    try:
        time.sleep(0.5)  # let them start
        yield printed
    finally:
        out, _ = process.communicate(b"", timeout=30)
        printed.append(out.decode().strip())


def cpuSeconds(pid: int) -> float:
    """
    The CPU time the process has used, from C{/proc}.
    """
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def probing(port: int) -> Iterator[list[float]]:
    """
    C{GET /ready} every 0.1 s while the block runs: the seconds each took.
    """
    stop = threading.Event()
    seconds: list[float] = []

    def probe() -> None:
        while not stop.wait(0.1):
            started = time.perf_counter()
            try:
                connection = http.client.HTTPConnection(LOOPBACK, port, timeout=30)
                connection.request("GET", "/ready")
                connection.getresponse().read()
                connection.close()
            except (OSError, http.client.HTTPException):
                seconds.append(float("inf"))
                continue
            seconds.append(time.perf_counter() - started)

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    try:
        yield seconds
    finally:
        stop.set()
        thread.join(35)


def residentKiB(pid: int) -> int:
    """
    The process's resident memory, from C{/proc}.
    """
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


class Phase:
    """
    What one kind of phase measured, over the rounds.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.handshakes: list[float] = []
        self.probes: list[float] = []
        self.serverSeconds = 0.0
        self.seconds = 0.0
        self.notes: list[str] = []

    @contextmanager
    def measuring(self, pid: int, metricsPort: int) -> Iterator[None]:
        cpu, started = cpuSeconds(pid), time.monotonic()
        with probing(metricsPort) as probes:
            yield
        self.seconds += time.monotonic() - started
        self.serverSeconds += cpuSeconds(pid) - cpu
        self.probes += probes

    def p99(self) -> float:
        ordered = sorted(self.handshakes)
        return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]

    def summary(self) -> str:
        ordered = sorted(self.handshakes)
        return (
            f"{self.name:<22} {len(ordered):>5} handshakes: p50 "
            f"{statistics.median(ordered) * 1000:5.2f} ms, p99 {self.p99() * 1000:6.2f} ms, "
            f"max {ordered[-1] * 1000:7.1f} ms; server CPU "
            f"{self.serverSeconds / self.seconds:4.0%}; /ready every 0.1 s: slowest "
            f"{max(self.probes, default=0) * 1000:.0f} ms of {len(self.probes)}"
            + "".join(f"; {note}" for note in self.notes)
        )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkout", type=Path, default=REPO,
                        help="the tlsreply checkout to run (default: this one)")
    parser.add_argument("--scrapers", type=int, default=8,
                        help="scrapers fetching /metrics in a loop (default 8)")
    parser.add_argument("--handshakes", type=int, default=2000,
                        help="handshakes per phase and round (default 2000)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds (default 3)")
    parser.add_argument("--flood", action="store_true",
                        help="also a phase with 20,000 pipelined scrapes in one write")
    parser.add_argument("--workers", type=int, default=0,
                        help="run the server with --workers N (default: none)")
    options = parser.parse_args(argv)
    pin(CLIENT_CPU)
    unloaded = Phase("unloaded")
    scraped = Phase(f"{options.scrapers} scrapers in a loop")
    flooded = Phase("pipelined flood")
    scrapeRates: list[float] = []
    with tempfile.TemporaryDirectory(prefix="tlsreply-metrics-load-") as temporary:
        server = tlsreply(options.checkout.resolve(), Path(temporary), options.workers)
        with server as (port, metricsPort, pid):
            handshakes(port, 200)  # warm-up
            for _ in range(options.rounds):
                with unloaded.measuring(pid, metricsPort):
                    unloaded.handshakes += handshakes(port, options.handshakes)
                with background("--scrapers-client", metricsPort, options.scrapers) as out:
                    with scraped.measuring(pid, metricsPort):
                        scraped.handshakes += handshakes(port, options.handshakes)
                scrapeRates.append(float(out[0] or 0))
                if options.flood:
                    before = residentKiB(pid)
                    with background("--flood-client", metricsPort, 1) as out:
                        with flooded.measuring(pid, metricsPort):
                            flooded.handshakes += handshakes(port, options.handshakes)
                        grown = residentKiB(pid) - before
                    flooded.notes.append(f"{out[0]} answers, RSS {grown:+,d} KiB")
                    time.sleep(1)
    say(
        f"tlsreply from {options.checkout}"
        + (f" with --workers {options.workers}" if options.workers else "")
        + f": full TLS 1.3 handshakes (ECDSA P-256), one at a time, {options.rounds} round(s)"
    )
    scraped.notes.append(f"{statistics.mean(scrapeRates):.0f} scrapes/s")
    for phase in (unloaded, scraped, *((flooded,) if options.flood else ())):
        say(phase.summary())
    say(f"p99 with scrapers / unloaded: {scraped.p99() / unloaded.p99():.2f}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--scrapers-client":
        sys.exit(scrapers(int(sys.argv[2]), int(sys.argv[3])))
    if len(sys.argv) == 4 and sys.argv[1] == "--flood-client":
        sys.exit(flood(int(sys.argv[2])))
    sys.exit(main())
