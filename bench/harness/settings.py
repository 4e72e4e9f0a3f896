"""
The benchmark's constants, its columns and its options: what every part of
the harness agrees on.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

BENCH = Path(__file__).resolve().parent.parent
REPO = BENCH.parent
CACHE = BENCH / ".cache"
LOOPBACK = "127.0.0.1"
SERVER_NAME = "localhost"
REPLY = b"test\n"
SERVER_CPU = 0
CLIENT_CPU = 1
#: Below this share of one core over the window, the server was not what
#: set the pace: the load generator was (its core full), or other processes
#: took the server's core, or neither core was full (latency: too few
#: connections in flight, Nagle and delayed ACKs).
SATURATED = 0.90
#: Other processes' share of the server's core (or the hypervisor's steal
#: time) above which a rate cell counts as disturbed and is run again.
DISTURBED = 0.10
#: How often a disturbed rate cell is run again (the least disturbed run
#: is kept).
RETRIES = 2
#: The marks of medians whose server was not saturated, by cause.
BOTTLENECK_MARKS = {"server": "", "client": " †", "latency": " ‡", "disturbed": " §"}
#: Timeouts passed to tlsreply for the memory columns only, so that neither
#: its handshake timeout (10 s) nor its close timeout (3 s) can close a
#: connection before its memory is read.
MEMORY_TIMEOUTS = ["--handshake-timeout", "60", "--close-timeout", "60"]
COMPILE_FLAGS = ["-O2", "-Wall", "-Wextra", "-Werror"]

KeyType = Literal["rsa", "ecdsa"]


class BenchmarkError(Exception):
    """
    The benchmark cannot run at all (exit status 2).
    """


class CellError(Exception):
    """
    One cell (server x column x repetition) failed; the run goes on.
    """



@dataclass(frozen=True)
class Column:
    """
    One measurement: a kind of handshake, or a kind of held connection.

    @ivar key: the name used on the command line and in the JSON.
    @ivar title: the table heading.
    @ivar kind: C{rate} (handshakes per server-CPU-second, higher is
        better) or C{memory} (KiB per connection, lower is better).
    @ivar hold: for memory columns, C{idle} (TCP only), C{hold} (handshake
        done, then the client stalls) or C{burst} (every connection started
        at once; each reads the reply and the server's close_notify, then
        the client stalls).
    """

    key: str
    title: str
    kind: Literal["rate", "memory"]
    keyType: KeyType
    tls: Literal["1.2", "1.3"]
    resume: bool = False
    hold: Literal["idle", "hold", "burst", ""] = ""


COLUMNS = [
    Column("rsa13", "full RSA-2048 TLS 1.3", "rate", "rsa", "1.3"),
    Column("ecdsa13", "full ECDSA P-256 TLS 1.3", "rate", "ecdsa", "1.3"),
    Column("resumed13", "resumed TLS 1.3", "rate", "ecdsa", "1.3", resume=True),
    Column("ecdsa12", "full ECDSA TLS 1.2", "rate", "ecdsa", "1.2"),
    Column("resumed12", "resumed TLS 1.2", "rate", "ecdsa", "1.2", resume=True),
    Column("idle", "KiB per idle conn", "memory", "ecdsa", "1.3", hold="idle"),
    Column("held", "KiB per held conn", "memory", "ecdsa", "1.3", hold="hold"),
    Column("burst", "KiB per burst conn", "memory", "ecdsa", "1.3", hold="burst"),
]
COLUMNS_BY_KEY = {column.key: column for column in COLUMNS}


@dataclass
class Options:
    """
    The run's settings, from the command line.
    """

    servers: list[str]
    columns: list[Column]
    repeat: int
    duration: float
    warmup: float
    concurrency: int
    connections: int
    burst: int
    #: The worker counts of C{--scaling} (empty: the table).
    scaling: list[int]
    checkouts: list[tuple[str, Path]]
    json: Path | None
    chart: Path | None
    smoke: bool
