#!/usr/bin/env python3
"""
Soak test: run C{twistd -n tlsreply} in a subprocess on 127.0.0.1 and
hammer it with good and bad clients, watching the server's descriptors and
memory.

Phases, in order:

  1. warm-up: a few connections of every kind, so that whatever the server
     opens or allocates lazily is in place; its descriptor count after this
     is the reference;
  2. baseline: good clients only (fresh and resumed sessions), for speed;
  3. mixed: good clients interleaved with bad ones (random bytes, plain
     HTTP, a truncated ClientHello then silence, a reset after the
     ClientHello, a reset after the handshake);
  4. idle: many connections that send nothing, all held open at once, then
     cut by the server's handshake timeout;
  5. burst: many good clients released at once.

After each phase the script waits (bounded) for the server to close every
connection, then records the server's open descriptors (/proc/PID/fd) and
resident memory (VmRSS). At the end it stops the server with SIGTERM.

Exit status: 0 if every check passed; 1 if a check failed (final descriptor
count differs from the post-warm-up count, a good client failed, a bad
connection was left open by the server, the server logged an error or a
traceback, the server's log does not have one line per connection, or the
server did not exit cleanly); 2 if the run could not finish (the server did
not start, or the deadline ran out); 3 if the watchdog had to kill it.

Every connection goes to 127.0.0.1; connection counts and run time are
bounded (--deadline).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import tempfile
import threading
from contextlib import suppress
from pathlib import Path

if __package__ in (None, ""):
    # Run as a script (scripts/soak.py): the checkout's folder holds the
    # benchmark's harness and the soak's parts.
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness.processes import (  # noqa: E402
    Deadline,
    DeadlineExceeded,
    Interrupted,
    raiseDescriptorLimit,
    say,
    unwindOnSignals,
)
from bench.harness.settings import LOOPBACK  # noqa: E402
from scripts.soaking.clients import Clients  # noqa: E402
from scripts.soaking.phases import FULL, QUICK, Sizes, Soak  # noqa: E402
from scripts.soaking.report import report  # noqa: E402
from scripts.soaking.server import SoakServer  # noqa: E402


def parseArguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Soak-test twistd tlsreply on 127.0.0.1 with good and bad clients.",
    )
    parser.add_argument("--quick", action="store_true", help="a CI-sized run (about 20 s)")
    parser.add_argument("--deadline", type=float, help="seconds the whole run may take "
                        f"(default {FULL.deadline:g}, quick {QUICK.deadline:g})")
    parser.add_argument("--mixed", type=int, help="connections in the mixed phase")
    parser.add_argument("--baseline", type=int, help="connections in the good-only baseline")
    parser.add_argument("--idle", type=int, help="idle connections held at once")
    parser.add_argument("--burst", type=int, help="good clients released at once")
    parser.add_argument("--workers", type=int, help="client threads in the baseline and mixed phases")
    parser.add_argument("--handshake-timeout", type=float, help="the server's --handshake-timeout")
    parser.add_argument("--growth-limit", type=int, default=2048, metavar="KIB",
                        help="KiB the server's memory may grow over the mixed phase's "
                        "second half (default 2048)")
    parser.add_argument("--seed", type=int, default=1, help="seed for the client mix (default 1)")
    parser.add_argument("--twistd", help="the twistd to run (default: next to this Python)")
    parser.add_argument("--server-arg", action="append", default=[], metavar="ARG",
                        help="one more argument for twistd tlsreply; may be repeated")
    arguments = parser.parse_args(argv)
    limits = {"mixed": 100_000, "baseline": 100_000, "idle": 10_000, "burst": 1_000, "workers": 256}
    for name, limit in limits.items():
        value = getattr(arguments, name)
        if value is not None and not 1 <= value <= limit:
            parser.error(f"--{name} must be between 1 and {limit}")
    if arguments.deadline is not None and not 0 < arguments.deadline <= 3600:
        parser.error("--deadline must be between 0 and 3600 seconds")
    return arguments


def main(argv: list[str] | None = None) -> int:
    arguments = parseArguments(argv)
    defaults = QUICK if arguments.quick else FULL
    sizes = Sizes(
        warmUp=defaults.warmUp,
        baseline=arguments.baseline or defaults.baseline,
        mixed=arguments.mixed or defaults.mixed,
        idle=arguments.idle or defaults.idle,
        burst=arguments.burst or defaults.burst,
        workers=arguments.workers or defaults.workers,
        handshakeTimeout=(
            arguments.handshake_timeout
            if arguments.handshake_timeout is not None
            else defaults.handshakeTimeout
        ),
        deadline=arguments.deadline or defaults.deadline,
        growthLimit=arguments.growth_limit,
    )
    if not Path("/proc/self/fd").is_dir():
        say("soak: needs /proc (Linux)")
        return 2
    twistd = arguments.twistd or str(Path(sys.executable).with_name("twistd"))
    if not Path(twistd).exists():
        twistd = shutil.which("twistd") or twistd
    limit = raiseDescriptorLimit()
    deadline = Deadline(sizes.deadline)
    workDirectory = Path(tempfile.mkdtemp(prefix="tlsreply-soak-"))
    server = SoakServer(
        twistd, workDirectory,
        ["--handshake-timeout", f"{sizes.handshakeTimeout:g}", *arguments.server_arg],
    )

    def watchdog() -> None:
        say(f"soak: watchdog: still running {sizes.deadline + 60:g}s after start; killing the server")
        with suppress(OSError):
            os.killpg(server.pid, signal.SIGKILL)
        os._exit(3)

    dog = threading.Timer(sizes.deadline + 60, watchdog)
    dog.daemon = True
    dog.start()
    say(
        f"tlsreply soak ({'quick' if arguments.quick else 'full'}): {' '.join(server.command)}"
    )
    say(
        f"  server pid {server.pid}, working directory {workDirectory}; {os.cpu_count()} CPUs "
        f"shared by server and clients; RLIMIT_NOFILE {limit}; deadline {sizes.deadline:g}s"
    )
    say(
        f"  sizes: warm-up {sizes.warmUp}, baseline {sizes.baseline}, mixed {sizes.mixed}, "
        f"idle {sizes.idle}, burst {sizes.burst}; {sizes.workers} workers; seed {arguments.seed}"
    )
    soak: Soak | None = None
    exitStatus: int | None = None
    try:
        port = server.waitForPort(min(30.0, deadline.remaining()))
        if port is None:
            say("soak: the server did not start listening; its output:")
            for line in server.lines[-30:]:
                say("  " + line)
            return 2
        clients = Clients(port, workDirectory / "certs" / "dev-cert.pem", sizes.handshakeTimeout)
        soak = Soak(sizes, server, clients, deadline, arguments.seed, arguments.quick)
        say(f"  listening on {LOOPBACK}:{port}")
        soak.snapshot("start (listening)")
        soak.warmUp()
        soak.baseline()
        soak.mixed()
        soak.idle()
        soak.burst()
        soak.snapshot("end (server has closed everything)")
    except DeadlineExceeded as e:
        say(f"soak: {e}")
        if soak is not None:
            soak.failures.append(str(e))
            exitStatus = server.stop(15)
            report(soak, exitStatus)
        return 2
    finally:
        if exitStatus is None:
            exitStatus = server.stop(15)
        dog.cancel()
        shutil.rmtree(workDirectory, ignore_errors=True)
    return report(soak, exitStatus)


if __name__ == "__main__":
    unwindOnSignals()
    try:
        sys.exit(main())
    except (KeyboardInterrupt, Interrupted):
        say("soak: interrupted; the server is stopped")
        sys.exit(130)
