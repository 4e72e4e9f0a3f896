"""
The rows of the table: the servers the benchmark can start, one started on
a free port and pinned to the server core, and the byte-exact check that
comes before any measurement.
"""

from __future__ import annotations

import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

from bench.harness.processes import spawn, stop, waitUntil
from bench.harness.procfs import treeCPU
from bench.harness.settings import (
    BENCH,
    LOOPBACK,
    MEMORY_TIMEOUTS,
    REPLY,
    REPO,
    SERVER_CPU,
    SERVER_NAME,
    CellError,
    Column,
)
from bench.harness.tools import Credentials, Nginx


def freePort() -> int:
    """
    A TCP port on 127.0.0.1 that was free a moment ago.
    """
    with socket.socket() as probe:
        probe.bind((LOOPBACK, 0))
        return int(probe.getsockname()[1])


# --- servers ----------------------------------------------------------------


@dataclass
class Launch:
    """
    How to start one server: its command, its working directory and extra
    files it needs written first.
    """

    command: list[str]
    cwd: Path | None = None
    files: dict[Path, str] = field(default_factory=dict)


class Server:
    """
    A row of the table: a server the harness can start on a port with a
    certificate.

    @ivar name: the row's name (command line, JSON).
    @ivar title: the row's label in the table.
    @ivar openssl: the OpenSSL it runs with, for the report.
    @ivar skipped: why the row is not measured, or C{""}.
    """

    name = ""
    title = ""

    def __init__(self) -> None:
        self.openssl = ""
        self.skipped = ""
        self.notes: list[str] = []

    def launch(
        self, port: int, credentials: Credentials, workDirectory: Path, column: Column
    ) -> Launch:
        raise NotImplementedError()

    def checkAfterRun(self, handshakes: int) -> None:
        """
        After a rate cell's window, while the server still runs: check
        what the server says of itself (nothing, for most servers).

        @param handshakes: what the load generator counted in the window.
        @raise CellError: if it is wrong.
        """


class NginxServer(Server):
    """
    nginx's stream module, one worker: C{return "test\\n";} with session
    cache and tickets on, access log off, in the foreground with a private
    prefix.
    """

    name = "nginx"
    title = "nginx"

    def __init__(self, nginx: Nginx, workers: int = 1) -> None:
        super().__init__()
        self.nginx = nginx
        self.workers = workers
        self.openssl = nginx.openssl
        self.title = f"nginx {nginx.version.removeprefix('nginx/')} (absolute)"

    def launch(
        self, port: int, credentials: Credentials, workDirectory: Path, column: Column
    ) -> Launch:
        prefix = workDirectory / "nginx"
        prefix.mkdir(exist_ok=True)
        loadModule = f"load_module {self.nginx.module};\n" if self.nginx.module else ""
        configuration = (
            loadModule
            + f"""worker_processes {self.workers};
pid {prefix}/nginx.pid;
error_log {workDirectory}/server.log notice;
worker_rlimit_nofile 16384;
events {{ worker_connections 8192; }}
stream {{
    access_log off;
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_session_cache shared:SSL:10m;
    ssl_session_tickets on;
    server {{
        listen {LOOPBACK}:{port} ssl;
        ssl_certificate {credentials.certificate};
        ssl_certificate_key {credentials.key};
        return "test\\n";
    }}
}}
"""
        )
        path = prefix / "nginx.conf"
        return Launch(
            [
                str(self.nginx.binary),
                "-p", f"{prefix}/",
                "-c", str(path),
                "-e", str(workDirectory / "server.log"),
                "-g", "daemon off;",
            ],
            cwd=prefix,
            files={path: configuration},
        )


class TlsreplyServer(Server):
    """
    C{twistd -n tlsreply} from a checkout's virtual environment, at its
    defaults (logging on, timeouts on), its log in the cell's folder.
    """

    def __init__(
        self, name: str, title: str, checkout: Path, workers: int = 0, metrics: bool = False
    ) -> None:
        super().__init__()
        self.name = name
        self.title = title
        self.checkout = checkout
        self.workers = workers
        self.metrics = metrics
        self.metricsPort = 0
        self.revision = ""
        self.twistd = checkout / ".venv" / "bin" / "twistd"
        python = checkout / ".venv" / "bin" / "python"
        if checkout == REPO and not self.twistd.exists():
            self.twistd = Path(sys.executable).parent / "twistd"
            python = Path(sys.executable)
        if not self.twistd.exists():
            self.skipped = f"{self.twistd} does not exist (make -C {checkout} .venv/bin/.installed)"
            return
        self.openssl = _pythonOutput(
            python,
            "import OpenSSL.SSL as s; print(s.SSLeay_version(s.SSLEAY_VERSION).decode())",
        )
        if workers and "--workers" not in self.help():
            self.skipped = "`twistd tlsreply --help` does not list --workers yet"
        if metrics and "--metrics" not in self.help():
            self.skipped = "`twistd tlsreply --help` does not list --metrics yet"
        self.revision = _gitRevision(checkout)

    def help(self) -> str:
        result = subprocess.run(
            [str(self.twistd), "tlsreply", "--help"],
            cwd=self.checkout,
            capture_output=True,
            timeout=60,
        )
        return result.stdout.decode(errors="replace")

    def launch(
        self, port: int, credentials: Credentials, workDirectory: Path, column: Column
    ) -> Launch:
        command = [
            str(self.twistd), "-n", "--pidfile=", "tlsreply",
            "--port", f"tcp:{port}:interface={LOOPBACK}",
            "--cert", str(credentials.certificate),
            "--key", str(credentials.key),
        ]
        if self.workers:
            command += ["--workers", str(self.workers)]
        if self.metrics:
            self.metricsPort = freePort()
            command += ["--metrics", f"tcp:{self.metricsPort}:interface={LOOPBACK}"]
        if column.kind == "memory":
            command += MEMORY_TIMEOUTS
        return Launch(command, cwd=self.checkout)

    def checkAfterRun(self, handshakes: int) -> None:
        """
        With C{--metrics}: one scrape, as Prometheus would make it, must
        count at least the window's handshakes (the server also counted
        the warm-up and the check), within a few seconds (a connection is
        counted as it ends).
        """
        if not self.metrics:
            return
        counted = 0.0
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            counted = scrapeHandshakes(self.metricsPort)
            if counted >= handshakes:
                return
            time.sleep(0.1)
        raise CellError(
            f"/metrics counts {counted:.0f} handshakes, the load generator {handshakes}"
        )


def scrapeHandshakes(port: int) -> float:
    """
    The sum of C{tlsreply_handshakes_total} over its labels, from one
    scrape of C{/metrics}.
    """
    import urllib.request

    with urllib.request.urlopen(f"http://{LOOPBACK}:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("tlsreply_handshakes_total{")
    )


class BareTwistedServer(Server):
    """
    C{bench/servers/bare_twisted.py}: C{TLSMemoryBIOFactory} and
    C{CertificateOptions} with sessions and tickets on, nothing else.
    """

    name = "bare-twisted"
    title = "bare Twisted"

    def __init__(self) -> None:
        super().__init__()
        self.openssl = _pythonOutput(
            Path(sys.executable),
            "import OpenSSL.SSL as s; print(s.SSLeay_version(s.SSLEAY_VERSION).decode())",
        )

    def launch(
        self, port: int, credentials: Credentials, workDirectory: Path, column: Column
    ) -> Launch:
        return Launch(
            [
                sys.executable, str(BENCH / "servers" / "bare_twisted.py"),
                "--port", str(port),
                "--cert", str(credentials.certificate),
                "--key", str(credentials.key),
            ]
        )


class UvloopServer(Server):
    """
    C{bench/servers/uvloop_ssl.py}: uvloop and the standard library's
    C{ssl} at its server defaults.
    """

    name = "uvloop"
    title = "uvloop + stdlib ssl"

    def __init__(self) -> None:
        super().__init__()
        self.openssl = ssl.OPENSSL_VERSION
        probe = subprocess.run(
            [sys.executable, "-c", "import uvloop"], capture_output=True, timeout=60
        )
        if probe.returncode != 0:
            self.skipped = "uvloop is not installed (pip install -e '.[bench]')"

    def launch(
        self, port: int, credentials: Credentials, workDirectory: Path, column: Column
    ) -> Launch:
        return Launch(
            [
                sys.executable, str(BENCH / "servers" / "uvloop_ssl.py"),
                "--port", str(port),
                "--cert", str(credentials.certificate),
                "--key", str(credentials.key),
            ]
        )


def _pythonOutput(python: Path, code: str) -> str:
    try:
        result = subprocess.run([str(python), "-c", code], capture_output=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return result.stdout.decode(errors="replace").strip() or "unknown"


def _gitRevision(checkout: Path) -> str:
    try:
        revision = subprocess.run(
            ["git", "-C", str(checkout), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            timeout=30,
        ).stdout.decode().strip()
        dirty = subprocess.run(
            ["git", "-C", str(checkout), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            timeout=30,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""
    return revision + ("+changes" if dirty else "")

@dataclass
class RunningServer:
    """
    A started server: its process and where it listens and logs.
    """

    server: Server
    process: subprocess.Popen[bytes]
    port: int
    log: Path

    def alive(self) -> bool:
        return self.process.poll() is None

    def cpu(self) -> float:
        return treeCPU(self.process.pid)

    def logTail(self, lines: int = 15) -> str:
        with suppress(OSError):
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        return ""


@contextmanager
def runningServer(
    server: Server,
    credentials: Credentials,
    workDirectory: Path,
    column: Column,
    cpus: str | None = str(SERVER_CPU),
) -> Iterator[RunningServer]:
    """
    Start a server pinned to the server core (or to C{cpus}, a C{taskset}
    list; C{None}: anywhere), wait (bounded) until it accepts connections,
    and stop it, whatever happens.
    """
    port = freePort()
    launch = server.launch(port, credentials, workDirectory, column)
    for path, text in launch.files.items():
        path.write_text(text)
    log = workDirectory / "server.log"
    with open(log, "ab") as output:
        process = spawn(
            ["taskset", "-c", cpus, *launch.command] if cpus is not None else launch.command,
            cwd=launch.cwd,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    running = RunningServer(server, process, port, log)
    try:

        def accepting() -> bool:
            if not running.alive():
                return True
            with socket.socket() as probe:
                probe.settimeout(0.5)
                return probe.connect_ex((LOOPBACK, port)) == 0

        if not waitUntil(accepting, 30, step=0.05) or not running.alive():
            status = process.poll()
            why = "did not listen within 30 s" if status is None else f"exited ({status})"
            tail = running.logTail()
            last = tail.splitlines()[-1] if tail else "(empty log)"
            raise CellError(f"{server.name} {why} on port {port}: {last}\n{tail}")
        yield running
    finally:
        stop(process)


def checkReply(port: int, column: Column, credentials: Credentials) -> str:
    """
    The byte-exact check before measuring: with Python's C{ssl}, verify the
    server's certificate for localhost against the run's CA, read until
    close_notify (an EOF without it is an error here), compare the reply
    byte for byte; for a resumed column, also prove that a second connection
    resumes the first one's session. Returns the protocol and cipher.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(str(credentials.authority))
    version = ssl.TLSVersion.TLSv1_3 if column.tls == "1.3" else ssl.TLSVersion.TLSv1_2
    context.minimum_version = context.maximum_version = version
    session: ssl.SSLSession | None = None
    facts = ""
    for attempt in range(2 if column.resume else 1):
        with socket.create_connection((LOOPBACK, port), timeout=10) as raw:
            with context.wrap_socket(
                raw,
                server_hostname=SERVER_NAME,
                suppress_ragged_eofs=False,
                session=session,
            ) as connection:
                data = b""
                try:
                    while chunk := connection.recv(4096):
                        data += chunk
                        if len(data) > len(REPLY):
                            break
                except ssl.SSLEOFError as error:
                    raise CellError(f"no close_notify after {data!r}: {error}") from None
                if data != REPLY:
                    raise CellError(f"reply {data!r}, expected {REPLY!r}")
                if attempt == 1 and not connection.session_reused:
                    raise CellError("the second connection did not resume the session")
                session = connection.session
                cipher = connection.cipher()
                facts = f"{connection.version()} {cipher[0] if cipher else ''}"
                with suppress(OSError, ValueError):
                    connection.unwrap()
    return facts
