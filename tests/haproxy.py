"""
A real HAProxy in front of real tlsreply daemons, for the integration
tests (L{tests.test_haproxy}), configured with the deployment guide's own
configuration (C{docs/deployment.md}), addresses and ports aside.
"""

from __future__ import annotations

import re
import signal
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

from tests.support import LOOPBACK, clientContext, requireTool
from tests.test_plugin import CHECKOUT, SCRIPTS, Daemon

GUIDE = CHECKOUT / "docs" / "deployment.md"

#: The options the guide gives each instance behind HAProxy, with
#: ephemeral loopback ports for its 4433 and 9102.
BEHIND_HAPROXY = (
    "--port", f"haproxy:tcp:0:interface={LOOPBACK}",
    "--metrics", f"tcp:0:interface={LOOPBACK}",
    "--drain-delay", "3",
)


def freePort() -> int:
    """
    A TCP port on the loopback that nothing listens on now (for HAProxy's
    frontend, which cannot report an ephemeral port).
    """
    with socket.socket() as probe:
        probe.bind((LOOPBACK, 0))
        return int(probe.getsockname()[1])


@dataclass
class Backend:
    """
    One tlsreply server behind HAProxy.

    @ivar name: its name in HAProxy's configuration.
    @ivar port: where it listens (C{haproxy:tcp:...}, the PROXY protocol).
    @ivar healthPort: where its C{/ready} check answers, if it has one.
    """

    name: str
    port: int
    healthPort: int | None = None


@dataclass(kw_only=True)
class DaemonBackend(Backend):
    """
    A tlsreply daemon (C{twistd -n tlsreply}) behind HAProxy.
    """

    daemon: Daemon


def startBackend(
    testCase: SynchronousTestCase,
    name: str,
    workdir: Path,
    certificatePath: Path,
    keyPath: Path,
    *arguments: str,
) -> DaemonBackend:
    """
    Start C{twistd -n tlsreply} as the guide runs each instance behind
    HAProxy (L{BEHIND_HAPROXY}), and wait until it listens.
    """
    command = [
        str(SCRIPTS / "twistd"), "-n", "--pidfile=", "tlsreply", *BEHIND_HAPROXY,
        "--cert", str(certificatePath), "--key", str(keyPath),
        "--access-log", "stdout", *arguments,
    ]
    daemon = Daemon(command, workdir)
    testCase.addCleanup(lambda: daemon.process.poll() is None and daemon.stop())
    # In the order they are logged: the metrics port as it is bound, the
    # TLS listener once the server has started.
    healthPort = int(daemon.waitFor(r"metrics on 127\.0\.0\.1:(\d+)").group(1))
    port = int(daemon.waitFor(r"listening on \['127\.0\.0\.1:(\d+)'\]").group(1))
    return DaemonBackend(name, port, healthPort, daemon=daemon)


def guideConfig() -> str:
    """
    The HAProxy configuration in the deployment guide.
    """
    text = GUIDE.read_text()
    start = text.index("```haproxy\n") + len("```haproxy\n")
    return text[start : text.index("```", start)]


_SERVER = re.compile(r"^    server (\S+) \S+ port \d+$", re.MULTILINE)


def haproxyConfig(
    frontendPort: int,
    backends: Sequence[Backend],
    statsSocket: Path,
    balance: str | None = None,
) -> str:
    """
    The guide's configuration, with a loopback port for its frontend,
    C{backends} for its servers (their names as in the guide), a stats
    socket for the tests to ask HAProxy which servers are up, and, for
    tests that need clients spread over the servers, another C{balance}.
    """
    config = guideConfig()
    names = _SERVER.findall(config)
    if [b.name for b in backends] != names[: len(backends)]:
        raise ValueError(f"the guide's servers are {names}")
    lines = iter(
        f"    server {b.name} {LOOPBACK}:{b.port} port {b.healthPort}" for b in backends
    )
    config = _SERVER.sub(lambda _: next(lines, ""), config)
    config = config.replace("    bind :443\n", f"    bind {LOOPBACK}:{frontendPort}\n")
    config = re.sub(
        "^global\n",
        f"global\n    stats socket {statsSocket} mode 600 level admin\n",
        config,
        count=1,
        flags=re.MULTILINE,
    )
    if balance is not None:
        config = config.replace("    balance source\n", f"    balance {balance}\n")
    return config


@dataclass
class HAProxy:
    """
    A running HAProxy (in the foreground, C{-db}).
    """

    process: subprocess.Popen[bytes]
    port: int
    statsSocket: Path
    logPath: Path

    def log(self) -> str:
        """
        What HAProxy has written: one line per session (C{option tcplog}),
        and its warnings.
        """
        return self.logPath.read_text(errors="replace")

    def command(self, text: str) -> str:
        """
        Send a command to HAProxy's stats socket (C{show servers state}).
        """
        with socket.socket(socket.AF_UNIX) as admin:
            admin.settimeout(5)
            admin.connect(str(self.statsSocket))
            admin.sendall(text.encode() + b"\n")
            answer = b""
            while chunk := admin.recv(65536):
                answer += chunk
        return answer.decode()

    def serversUp(self) -> dict[str, bool]:
        """
        Each server's state as HAProxy sees it: up (its checks pass) or not.
        """
        states = {}
        for line in self.command("show servers state tlsreply").splitlines():
            fields = line.split()
            if len(fields) > 5 and fields[0].isdigit():
                # be_id be_name srv_id srv_name srv_addr srv_op_state ...
                states[fields[3]] = fields[5] == "2"
        return states

    def sessions(self) -> dict[str, int]:
        """
        How many sessions HAProxy has sent each server so far.
        """
        rows = self.command("show stat").splitlines()
        header = rows[0].lstrip("# ").split(",")
        totals = {}
        for row in rows[1:]:
            fields = dict(zip(header, row.split(","), strict=False))
            if fields.get("pxname") == "tlsreply" and fields.get("svname") not in (
                "BACKEND", "FRONTEND", None
            ):
                totals[fields["svname"]] = int(fields["stot"] or 0)
        return totals

    def waitUntil(self, wanted: dict[str, bool], timeout: float = 10.0) -> None:
        """
        Wait until HAProxy sees each server as C{wanted} says. Its stats
        socket's file appears when HAProxy binds it, a moment before it
        listens, so a refused connection is a "not yet" here.
        """
        deadline = time.monotonic() + timeout
        seen: dict[str, bool] | str = "no answer on the stats socket"
        while True:
            try:
                seen = self.serversUp()
            except ConnectionRefusedError:
                pass
            else:
                if seen == wanted:
                    return
            if time.monotonic() > deadline:
                raise AssertionError(f"servers {seen}, expected {wanted}")
            time.sleep(0.05)


def checkingConfig(frontendPort: int, backends: Sequence[Backend], statsSocket: Path) -> str:
    """
    A configuration whose health checks go to each server's C{haproxy:}
    port itself, with the PROXY header (C{send-proxy-v2}), as HAProxy's
    manual shows: HAProxy sends those checks a v2 LOCAL header. Each server
    is checked with C{check-ssl} (a TLS handshake after the header) if its
    name ends in C{-ssl}, else by connecting and closing; every 200 ms,
    down at the first failure.
    """
    servers = "".join(
        f"    server {b.name} {LOOPBACK}:{b.port} send-proxy-v2 check inter 200ms "
        f"fall 1 rise 1{' check-ssl verify none' if b.name.endswith('-ssl') else ''}\n"
        for b in backends
    )
    return (
        f"global\n    stats socket {statsSocket} mode 600 level admin\n"
        "    log stdout format raw local0 info\n\n"
        "defaults\n    mode tcp\n    log global\n    option tcplog\n"
        "    timeout connect 2s\n    timeout client 30s\n    timeout server 30s\n\n"
        f"frontend tls\n    bind {LOOPBACK}:{frontendPort}\n    default_backend tlsreply\n\n"
        f"backend tlsreply\n    balance roundrobin\n{servers}"
    )


def startHAProxy(
    testCase: SynchronousTestCase,
    workdir: Path,
    backends: Sequence[Backend],
    balance: str = "source",
    checkProxyPort: bool = False,
) -> HAProxy:
    """
    Start HAProxy in front of C{backends} and wait until every server's
    health check passes. Skips the test if HAProxy is not installed
    (C{.ci/run} installs it).

    @param checkProxyPort: check each server on its C{haproxy:} port
        (L{checkingConfig}) rather than with the guide's configuration.
    """
    binary = requireTool("haproxy")
    workdir.mkdir(parents=True, exist_ok=True)
    port = freePort()
    statsSocket = workdir / "haproxy.sock"
    config = workdir / "haproxy.cfg"
    config.write_text(
        checkingConfig(port, backends, statsSocket)
        if checkProxyPort
        else haproxyConfig(port, backends, statsSocket, None if balance == "source" else balance)
    )
    check = subprocess.run([binary, "-c", "-f", str(config)], capture_output=True)
    testCase.assertEqual(check.returncode, 0, (check.stdout + check.stderr).decode())
    logPath = workdir / "haproxy.log"
    with logPath.open("wb") as log:
        process = subprocess.Popen(
            [binary, "-db", "-f", str(config)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    proxy = HAProxy(process, port, statsSocket, logPath)

    def stop() -> None:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        process.wait(timeout=10)

    testCase.addCleanup(stop)
    deadline = time.monotonic() + 10
    while not statsSocket.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            stop()
            raise AssertionError(f"HAProxy did not start: {proxy.log()}")
        time.sleep(0.02)
    proxy.waitUntil({backend.name: True for backend in backends})
    return proxy


@dataclass
class Fetched:
    """
    One client connection through HAProxy: what it read, from which local
    port, and whether it resumed.
    """

    reply: bytes
    localPort: int
    resumed: bool
    session: ssl.SSLSession | None


def fetchThrough(
    port: int,
    caPath: Path,
    session: ssl.SSLSession | None = None,
    context: ssl.SSLContext | None = None,
) -> Fetched:
    """
    Connect through HAProxy, read the whole reply up to close_notify.
    """
    context = context or clientContext(str(caPath))
    with socket.create_connection((LOOPBACK, port), timeout=10) as raw:
        localPort = raw.getsockname()[1]
        try:
            with context.wrap_socket(
                raw, server_hostname="localhost", session=session, suppress_ragged_eofs=False
            ) as tls:
                data = b""
                while chunk := tls.recv(1024):
                    data += chunk
                return Fetched(data, localPort, bool(tls.session_reused), tls.session)
        except (OSError, ssl.SSLError) as e:
            # Which connection, to find it in the logs of HAProxy and tlsreply.
            e.add_note(f"from local port {localPort}")
            raise


@dataclass
class LoadResult:
    """
    What a client loop saw: successes, and each failure's description.
    """

    succeeded: int = 0
    failures: list[str] = field(default_factory=list)


def clientLoops(
    port: int, caPath: Path, clients: int, total: int, interval: float = 0.0
) -> tuple[LoadResult, list[threading.Thread]]:
    """
    Start C{clients} threads that connect through HAProxy one after another,
    C{interval} seconds apart, until C{total} connections have been made
    between them; each must read exactly C{test\\n} and close_notify.
    """
    result = LoadResult()
    lock = threading.Lock()
    remaining = [total]
    context = clientContext(str(caPath))

    def loop() -> None:
        while True:
            with lock:
                if remaining[0] == 0:
                    return
                remaining[0] -= 1
            try:
                reply = fetchThrough(port, caPath, context=context).reply
                problem = None if reply == b"test\n" else f"reply {reply!r}"
            except (OSError, ssl.SSLError) as e:
                problem = f"{type(e).__name__}: {e} {' '.join(getattr(e, '__notes__', []))}"
            with lock:
                if problem is None:
                    result.succeeded += 1
                else:
                    result.failures.append(problem)
            time.sleep(interval)

    threads = [threading.Thread(target=loop, daemon=True) for _ in range(clients)]
    for thread in threads:
        thread.start()
    return result, threads
