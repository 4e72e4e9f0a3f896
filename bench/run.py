#!/usr/bin/env python3
"""
tlsreply's benchmark: handshakes per server-CPU-second against nginx.

For each server (row) and each column, the harness starts the server pinned
to CPU 0, checks that it answers byte for byte, drives it with the project's
own C load generator (C{bench/loadgen.c}) pinned to CPU 1, and reads the
server's CPU time from C{/proc} over exactly the measured window. The
headline figure is handshakes per server-CPU-second: unlike a wall-clock
rate it does not depend on how fast the load generator is, so servers can be
compared even where one client core cannot saturate the server core (the
table says where that happened). Every figure of every other server is
printed as a ratio to nginx's, measured in the same run, so the machine's
speed and noise cancel out as far as they can.

Columns: full handshakes (RSA-2048 and ECDSA P-256 TLS 1.3, ECDSA TLS 1.2),
resumed handshakes (TLS 1.3 and 1.2), and the server's memory per idle
connection (TCP only) and per held connection (handshake done, client
stalls).

Rows: nginx's stream module (Debian's packages, unpacked into a cache
folder, one worker), tlsreply at its defaults, tlsreply with C{--workers 2}
(once it has the option), bare Twisted, uvloop with the standard library's
C{ssl}, and any C{--tlsreply-checkout NAME=DIR}.

Everything runs on 127.0.0.1, every wait has a bound, and every process the
harness starts is stopped, also on errors and Ctrl-C. Exit status: 0 when
every cell ran without an error, 1 when any cell had an error, 2 when the
benchmark could not run at all (a missing compiler, no nginx).
"""

from __future__ import annotations

import argparse
import ctypes
import datetime
import hashlib
import ipaddress
import json
import os
import platform
import select
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import FrameType
from typing import IO, Any, Literal

BENCH = Path(__file__).resolve().parent
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


def say(text: str = "") -> None:
    """
    Print a line at once (the run takes minutes; show progress as it goes).
    """
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def note(text: str) -> None:
    """
    Progress and diagnostics go to stderr, so that stdout is the report.
    """
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


class BenchmarkError(Exception):
    """
    The benchmark cannot run at all (exit status 2).
    """


class CellError(Exception):
    """
    One cell (server x column x repetition) failed; the run goes on.
    """


class Interrupted(BaseException):
    """
    SIGTERM or SIGHUP: unwind like Ctrl-C, so that every process is stopped.
    """


# --- columns -----------------------------------------------------------------


@dataclass(frozen=True)
class Column:
    """
    One measurement: a kind of handshake, or a kind of held connection.

    @ivar key: the name used on the command line and in the JSON.
    @ivar title: the table heading.
    @ivar kind: C{rate} (handshakes per server-CPU-second, higher is
        better) or C{memory} (KiB per connection, lower is better).
    @ivar hold: for memory columns, C{idle} (TCP only) or C{hold} (handshake
        done, then the client stalls).
    """

    key: str
    title: str
    kind: Literal["rate", "memory"]
    keyType: KeyType
    tls: Literal["1.2", "1.3"]
    resume: bool = False
    hold: Literal["idle", "hold", ""] = ""


COLUMNS = [
    Column("rsa13", "full RSA-2048 TLS 1.3", "rate", "rsa", "1.3"),
    Column("ecdsa13", "full ECDSA P-256 TLS 1.3", "rate", "ecdsa", "1.3"),
    Column("resumed13", "resumed TLS 1.3", "rate", "ecdsa", "1.3", resume=True),
    Column("ecdsa12", "full ECDSA TLS 1.2", "rate", "ecdsa", "1.2"),
    Column("resumed12", "resumed TLS 1.2", "rate", "ecdsa", "1.2", resume=True),
    Column("idle", "KiB per idle conn", "memory", "ecdsa", "1.3", hold="idle"),
    Column("held", "KiB per held conn", "memory", "ecdsa", "1.3", hold="hold"),
]
COLUMNS_BY_KEY = {column.key: column for column in COLUMNS}


# --- process bookkeeping ----------------------------------------------------

_started: list[subprocess.Popen[bytes]] = []


def _dieWithParent() -> None:
    """
    In the child, before exec: start a new session (so the whole group can
    be stopped at once) and ask the kernel for SIGTERM if the harness dies,
    so that not even a SIGKILLed harness leaves a server behind.
    """
    os.setsid()
    with suppress(Exception):
        libc = ctypes.CDLL(None, use_errno=True)
        PR_SET_PDEATHSIG = 1
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def spawn(
    command: Sequence[str],
    *,
    cwd: Path | None = None,
    stdin: int | IO[bytes] | None = subprocess.DEVNULL,
    stdout: int | IO[bytes] | None = None,
    stderr: int | IO[bytes] | None = None,
) -> subprocess.Popen[bytes]:
    """
    Start a process in its own session and remember it, so that L{stopAll}
    can stop it whatever happens.
    """
    process = subprocess.Popen(
        list(command),
        cwd=cwd,
        stdin=stdin,
        stdout=stdout,
        stderr=stderr,
        preexec_fn=_dieWithParent,
    )
    _started.append(process)
    return process


def stop(process: subprocess.Popen[bytes], grace: float = 8.0) -> int | None:
    """
    Stop a process and its group: SIGTERM to the process itself (a
    supervisor such as nginx's master or tlsreply's parent stops its own
    workers), then SIGKILL to whatever is left of the group after C{grace}
    seconds. Returns its exit status (None if it had to be killed and did
    not report).
    """
    if process.poll() is None:
        with suppress(ProcessLookupError, PermissionError):
            process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            pass
    # Whatever is left of the group (workers, children) goes too.
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    try:
        status = process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        status = None
    if process in _started:
        _started.remove(process)
    return status


def stopAll() -> None:
    """
    Stop every process this harness started and has not stopped yet.
    """
    for process in list(_started):
        stop(process, grace=3.0)


def _onSignal(signum: int, frame: FrameType | None) -> None:
    raise Interrupted(signal.Signals(signum).name)


# --- /proc ------------------------------------------------------------------


def processTree(root: int) -> list[int]:
    """
    C{root} and all its descendants (nginx's worker, tlsreply's workers),
    from the parent links in C{/proc/*/stat}.
    """
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            text = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        # The command name is in parentheses and may contain anything.
        fields = text[text.rfind(")") + 2 :].split()
        children.setdefault(int(fields[1]), []).append(int(entry))
    tree, pending = [], [root]
    while pending:
        pid = pending.pop()
        tree.append(pid)
        pending.extend(children.get(pid, []))
    return tree


_TICK = os.sysconf("SC_CLK_TCK")


def processCPU(pid: int) -> float:
    """
    CPU seconds used by one process, all its threads: the nanosecond
    counters of C{/proc/PID/task/*/schedstat} where the kernel has them,
    else C{utime + stime} from C{/proc/PID/stat} (clock ticks, 10 ms).
    """
    total = 0
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
        for task in tasks:
            with open(f"/proc/{pid}/task/{task}/schedstat") as file:
                total += int(file.read().split()[0])
        return total / 1e9
    except (OSError, ValueError, IndexError):
        pass
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = text[text.rfind(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


def treeCPU(root: int) -> float:
    """
    CPU seconds of a server: the sum over its process and descendants.
    """
    return sum(processCPU(pid) for pid in processTree(root))


@dataclass(frozen=True)
class CoreTimes:
    """
    One core's time from C{/proc/stat}, in clock ticks.
    """

    busy: int
    steal: int
    total: int


def coreTimes() -> dict[int, CoreTimes]:
    """
    Busy, stolen (by the hypervisor) and total time of every core: over a
    window, they tell whether other processes shared the server's core.
    """
    cores: dict[int, CoreTimes] = {}
    with suppress(OSError):
        for line in Path("/proc/stat").read_text().splitlines():
            name, *values = line.split()
            if not name.startswith("cpu") or name == "cpu":
                continue
            # user nice system idle iowait irq softirq steal (guest is in user)
            ticks = [int(value) for value in values[:8]]
            total = sum(ticks)
            steal = ticks[7] if len(ticks) > 7 else 0
            cores[int(name[3:])] = CoreTimes(total - ticks[3] - ticks[4] - steal, steal, total)
    return cores


def treeRSS(root: int) -> int:
    """
    Resident memory of a server in KiB, summed over its processes (shared
    pages count once per process, which cancels out in a difference).
    """
    total = 0
    for pid in processTree(root):
        with suppress(OSError):
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
    return total


def treeDescriptors(root: int) -> int:
    """
    Open descriptors of a server, summed over its processes.
    """
    total = 0
    for pid in processTree(root):
        with suppress(OSError):
            total += len(os.listdir(f"/proc/{pid}/fd"))
    return total


def waitUntil(predicate: Callable[[], bool], timeout: float, step: float = 0.02) -> bool:
    """
    Poll C{predicate} until it holds or C{timeout} seconds pass.
    """
    end = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= end:
            return False
        time.sleep(step)


# --- tools: the load generator, nginx, certificates -------------------------


def buildLoadGenerator() -> Path:
    """
    Compile C{loadgen.c} against the system's OpenSSL (Debian's libssl-dev)
    into the cache, once per version of the source.
    """
    source = BENCH / "loadgen.c"
    digest = hashlib.sha256(source.read_bytes() + " ".join(COMPILE_FLAGS).encode())
    binary = CACHE / f"loadgen-{digest.hexdigest()[:12]}"
    if binary.exists():
        return binary
    compiler = shutil.which("gcc") or shutil.which("cc")
    if compiler is None:
        raise BenchmarkError("no C compiler: install gcc (apt-get install gcc)")
    if not Path("/usr/include/openssl/ssl.h").exists():
        raise BenchmarkError(
            "no OpenSSL headers: install libssl-dev (apt-get install libssl-dev)"
        )
    CACHE.mkdir(parents=True, exist_ok=True)
    partial = binary.with_suffix(".partial")
    result = subprocess.run(
        [compiler, *COMPILE_FLAGS, "-o", str(partial), str(source), "-lssl", "-lcrypto"],
        capture_output=True,
        timeout=120,
    )
    if result.returncode != 0:
        raise BenchmarkError(
            "compiling bench/loadgen.c failed:\n" + result.stderr.decode(errors="replace")
        )
    partial.rename(binary)
    return binary


@dataclass
class Nginx:
    """
    An nginx binary, its stream module (when it is a separate module) and
    where they came from.
    """

    binary: Path
    module: Path | None
    origin: str
    version: str = ""
    openssl: str = ""


def _nginxFacts(nginx: Nginx) -> Nginx:
    """
    Fill in the version and the OpenSSL nginx runs with (C{nginx -V}).
    """
    result = subprocess.run([str(nginx.binary), "-V"], capture_output=True, timeout=30)
    text = result.stderr.decode(errors="replace")
    for line in text.splitlines():
        if line.startswith("nginx version:"):
            nginx.version = line.split(":", 1)[1].strip()
        if "OpenSSL" in line and line.startswith("built with"):
            running = line.split("running with", 1)[-1].strip(" ()")
            nginx.openssl = running if "running with" in line else line[len("built with ") :]
    if result.returncode != 0 or not nginx.version:
        raise BenchmarkError(f"{nginx.binary} -V failed: {text.strip()}")
    return nginx


def obtainNginx() -> Nginx:
    """
    Debian's C{nginx} and C{libnginx-mod-stream}, downloaded with
    C{apt-get download} and unpacked with C{dpkg -x} into the cache: no
    service is installed or started, nothing outside the cache changes
    (except C{apt-get update} when apt has no package lists yet). Falls
    back to an installed nginx with a stream module.
    """
    root = CACHE / "nginx" / "root"
    binary = root / "usr/sbin/nginx"
    module = root / "usr/lib/nginx/modules/ngx_stream_module.so"
    problems: list[str] = []
    if not (binary.exists() and module.exists()):
        try:
            _downloadNginx(root)
        except (OSError, subprocess.SubprocessError, BenchmarkError) as error:
            problems.append(f"downloading Debian's nginx failed: {error}")
    if binary.exists() and module.exists():
        missing = _missingLibraries(binary) + _missingLibraries(module)
        if not missing:
            return _nginxFacts(Nginx(binary, module, "Debian packages unpacked in bench/.cache"))
        problems.append("the unpacked nginx lacks libraries: " + ", ".join(missing))
    installed = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if installed:
        nginx = _nginxFacts(Nginx(Path(installed), None, f"installed ({installed})"))
        builtIn = subprocess.run([installed, "-V"], capture_output=True, timeout=30).stderr
        if b"--with-stream " in builtIn + b" " and b"--with-stream=dynamic" not in builtIn:
            return nginx
        for candidate in (
            Path("/usr/lib/nginx/modules/ngx_stream_module.so"),
            Path("/usr/lib64/nginx/modules/ngx_stream_module.so"),
        ):
            if candidate.exists():
                nginx.module = candidate
                return nginx
        problems.append(f"the installed {installed} has no stream module")
    raise BenchmarkError("no usable nginx: " + "; ".join(problems or ["none found"]))


def _downloadNginx(root: Path) -> None:
    download = CACHE / "nginx" / "debs"
    shutil.rmtree(download, ignore_errors=True)
    download.mkdir(parents=True)
    command = ["apt-get", "download", "-q", "nginx", "libnginx-mod-stream"]
    result = subprocess.run(command, cwd=download, capture_output=True, timeout=300)
    if result.returncode != 0 and os.geteuid() == 0:
        # A fresh machine may have no package lists yet.
        note("bench: apt-get download failed; running apt-get update once")
        subprocess.run(["apt-get", "update", "-qq"], capture_output=True, timeout=600)
        result = subprocess.run(command, cwd=download, capture_output=True, timeout=300)
    if result.returncode != 0:
        raise BenchmarkError(result.stderr.decode(errors="replace").strip().splitlines()[-1])
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    for package in sorted(download.glob("*.deb")):
        subprocess.run(["dpkg", "-x", str(package), str(root)], check=True, timeout=120)
    shutil.rmtree(download, ignore_errors=True)


def _missingLibraries(binary: Path) -> list[str]:
    result = subprocess.run(["ldd", str(binary)], capture_output=True, timeout=30)
    return [
        line.split()[0]
        for line in result.stdout.decode(errors="replace").splitlines()
        if "not found" in line
    ]


@dataclass(frozen=True)
class Credentials:
    """
    A certificate for localhost and its key, as PEM files.
    """

    certificate: Path
    key: Path
    authority: Path


def makeCredentials(directory: Path) -> dict[KeyType, Credentials]:
    """
    A throwaway CA and two server certificates for localhost and 127.0.0.1
    signed by it, RSA-2048 and ECDSA P-256, made with C{cryptography} at run
    time. The servers send the leaf only; the byte-exact check verifies it
    against the CA.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)
    caKey = ec.generate_private_key(ec.SECP256R1())
    caName = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "tlsreply bench CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(caName)
        .issuer_name(caName)
        .public_key(caKey.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(caKey, hashes.SHA256())
    )
    authority = directory / "ca.pem"
    authority.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    made: dict[KeyType, Credentials] = {}
    keys: dict[KeyType, Any] = {
        "rsa": rsa.generate_private_key(public_exponent=65537, key_size=2048),
        "ecdsa": ec.generate_private_key(ec.SECP256R1()),
    }
    for keyType, key in keys.items():
        leaf = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, SERVER_NAME)]))
            .issuer_name(caName)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(
                x509.SubjectAlternativeName(
                    [
                        x509.DNSName(SERVER_NAME),
                        x509.IPAddress(ipaddress.ip_address(LOOPBACK)),
                    ]
                ),
                critical=False,
            )
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(caKey, hashes.SHA256())
        )
        certificate = directory / f"{keyType}.pem"
        keyPath = directory / f"{keyType}.key"
        certificate.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
        keyPath.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        keyPath.chmod(0o600)
        made[keyType] = Credentials(certificate, keyPath, authority)
    return made


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

    def __init__(self, nginx: Nginx) -> None:
        super().__init__()
        self.nginx = nginx
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
            + f"""worker_processes 1;
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


# --- one cell ---------------------------------------------------------------


class LineReader:
    """
    Lines from a child's stdout, each read with a deadline: a load
    generator that stops talking cannot hang the harness.
    """

    def __init__(self, stream: IO[bytes]) -> None:
        self.fd = stream.fileno()
        self.buffer = b""
        self.eof = False

    def readline(self, timeout: float) -> str | None:
        """
        The next line without its newline, or None at EOF or timeout.
        """
        end = time.monotonic() + timeout
        while b"\n" not in self.buffer and not self.eof:
            left = end - time.monotonic()
            if left <= 0:
                return None
            ready, _, _ = select.select([self.fd], [], [], min(left, 0.5))
            if ready:
                chunk = os.read(self.fd, 65536)
                if chunk:
                    self.buffer += chunk
                else:
                    self.eof = True
        if b"\n" in self.buffer:
            line, self.buffer = self.buffer.split(b"\n", 1)
            return line.decode(errors="replace")
        return None


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
    server: Server, credentials: Credentials, workDirectory: Path, column: Column
) -> Iterator[RunningServer]:
    """
    Start a server pinned to the server core, wait (bounded) until it
    accepts connections, and stop it, whatever happens.
    """
    port = freePort()
    launch = server.launch(port, credentials, workDirectory, column)
    for path, text in launch.files.items():
        path.write_text(text)
    log = workDirectory / "server.log"
    with open(log, "ab") as output:
        process = spawn(
            ["taskset", "-c", str(SERVER_CPU), *launch.command],
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


@dataclass
class Window:
    """
    What one load generator run measured: its own figures, and over the
    measured window the server's CPU seconds, the wall seconds, and each
    core's busy and stolen share.
    """

    figures: dict[str, Any]
    serverCPU: float = 0.0
    wall: float = 0.0
    coreBusy: dict[int, float] = field(default_factory=dict)
    coreSteal: dict[int, float] = field(default_factory=dict)


def runLoadGenerator(
    loadgen: Path,
    running: RunningServer,
    column: Column,
    options: Options,
    duration: float,
    warmup: float,
    marks: bool = True,
) -> Window:
    """
    One load generator run in rate mode, pinned to the client core. With
    C{marks}, the server's CPU and the cores' times are read when the
    generator says the measured window starts and again when it ends.
    """
    command = [
        "taskset", "-c", str(CLIENT_CPU), str(loadgen),
        "--port", str(running.port),
        "--tls", column.tls,
        "--concurrency", str(options.concurrency),
        "--warmup", f"{warmup:g}",
        "--duration", f"{duration:g}",
    ]
    if column.resume:
        command.append("--resume")
    if marks:
        command.append("--marks")
    process = spawn(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdout is not None
    reader = LineReader(process.stdout)
    window = Window({})
    try:
        if marks:
            line = reader.readline(warmup + 30)
            if line != "start":
                raise CellError(f"the load generator did not start measuring ({line!r})")
            cpuStart, wallStart, coresStart = running.cpu(), time.monotonic(), coreTimes()
            line = reader.readline(duration + 30)
            if line != "end":
                raise CellError(f"the load generator did not end measuring ({line!r})")
            cpuEnd, wallEnd, coresEnd = running.cpu(), time.monotonic(), coreTimes()
            window.serverCPU, window.wall = cpuEnd - cpuStart, wallEnd - wallStart
            for core, end in coresEnd.items():
                start = coresStart.get(core)
                if start is not None and end.total > start.total:
                    total = end.total - start.total
                    window.coreBusy[core] = (end.busy - start.busy) / total
                    window.coreSteal[core] = (end.steal - start.steal) / total
        line = reader.readline(60)
        if line is None:
            raise CellError("the load generator printed no result")
        window.figures = json.loads(line)
        process.wait(timeout=30)
    finally:
        stop(process, grace=5)
        stderr = process.stderr.read().decode(errors="replace") if process.stderr else ""
        if process.stderr:
            process.stderr.close()
        process.stdout.close()
    if stderr.strip():
        window.figures["stderr"] = stderr.strip()[-2000:]
    return window


def measureRate(
    loadgen: Path,
    server: Server,
    column: Column,
    credentials: Credentials,
    workDirectory: Path,
    options: Options,
) -> dict[str, Any]:
    """
    One rate cell: start, check, warm up and measure, stop. A run that
    other processes disturbed (they took more than a tenth of the server's
    core, or the hypervisor did) is repeated, at most twice; the least
    disturbed run is kept.
    """
    best: dict[str, Any] | None = None
    for attempt in range(1 + RETRIES):
        cell = measureRateOnce(loadgen, server, column, credentials, workDirectory, options)
        cell["attempts"] = attempt + 1
        if best is None or cell["disturbance"] < best["disturbance"]:
            best = cell
        if cell["bottleneck"] != "disturbed" or cell["errors"] or attempt == RETRIES:
            break
        note(f"    {server.name} {column.key}: disturbed (other load "
             f"{cell['disturbance']:.0%} of the server's core), running it again")
    assert best is not None
    return best


def measureRateOnce(
    loadgen: Path,
    server: Server,
    column: Column,
    credentials: Credentials,
    workDirectory: Path,
    options: Options,
) -> dict[str, Any]:
    """
    One run of a rate cell, and what held it back: the server (its core
    full), the client (its core full), other processes on the server's
    core, or latency (neither core full).
    """
    with runningServer(server, credentials, workDirectory, column) as running:
        facts = checkReply(running.port, column, credentials)
        window = runLoadGenerator(
            loadgen, running, column, options, options.duration, options.warmup
        )
        if not running.alive():
            raise CellError(f"{server.name} exited during the run:\n{running.logTail()}")
        server.checkAfterRun(int(window.figures["handshakes"]))
    figures, serverCPU, wall = window.figures, window.serverCPU, window.wall
    handshakes = int(figures["handshakes"])
    errors = int(figures["errors_total"])
    utilisation = serverCPU / wall if wall > 0 else 0.0
    serverCore = window.coreBusy.get(SERVER_CPU, utilisation)
    clientCore = window.coreBusy.get(CLIENT_CPU, 0.0)
    disturbance = max(0.0, serverCore - utilisation) + window.coreSteal.get(SERVER_CPU, 0.0)
    if utilisation >= SATURATED:
        bottleneck = "server"
    elif disturbance > DISTURBED:
        bottleneck = "disturbed"
    elif clientCore >= SATURATED:
        bottleneck = "client"
    else:
        bottleneck = "latency"
    return {
        "check": facts,
        "handshakes": handshakes,
        "serverCPU": serverCPU,
        "wall": wall,
        "perCPUSecond": handshakes / serverCPU if serverCPU > 0 else 0.0,
        "cpuMicroseconds": serverCPU * 1e6 / handshakes if handshakes else 0.0,
        "wallRate": float(figures["rate_per_s"]),
        "p50": figures["latency_us"]["p50"] / 1000,
        "p99": figures["latency_us"]["p99"] / 1000,
        "errors": errors,
        "errorKinds": {k: v for k, v in figures["errors"].items() if v},
        "resumedRatio": float(figures["resumed_ratio"]),
        "serverUtilisation": utilisation,
        "clientUtilisation": float(figures["client_cpu_ratio"]),
        "serverCoreBusy": serverCore,
        "clientCoreBusy": clientCore,
        "disturbance": disturbance,
        "bottleneck": bottleneck,
        "protocol": figures["protocol"],
        "cipher": figures["cipher"],
        "loadgen": figures,
    }


def measureMemory(
    loadgen: Path,
    server: Server,
    column: Column,
    credentials: Credentials,
    workDirectory: Path,
    options: Options,
) -> dict[str, Any]:
    """
    One memory cell: start, check, warm up with a short burst of full
    handshakes, wait until the server has closed them, read its RSS; open N
    idle or held connections; once all are in place and the server has a
    descriptor for each, read its RSS again. KiB per connection is the
    difference over N.
    """
    count = options.connections
    with runningServer(server, credentials, workDirectory, column) as running:
        facts = checkReply(running.port, column, credentials)
        pid = running.process.pid
        # The descriptors of a quiet server, before the warm-up.
        quiet = treeDescriptors(pid)
        warm = runLoadGenerator(
            loadgen, running, column, options, duration=0.5, warmup=0, marks=False
        ).figures
        if warm["errors_total"]:
            raise CellError(f"warm-up errors: {warm['errors']}")
        if not waitUntil(lambda: treeDescriptors(pid) <= quiet, 10, step=0.05):
            raise CellError(
                f"{server.name} kept {treeDescriptors(pid) - quiet} connections "
                "open 10 s after the warm-up"
            )
        time.sleep(0.3)
        before, descriptorsBefore = treeRSS(pid), treeDescriptors(pid)
        flag = "--idle" if column.hold == "idle" else "--hold"
        process = spawn(
            [
                "taskset", "-c", str(CLIENT_CPU), str(loadgen),
                "--port", str(running.port),
                "--tls", column.tls,
                flag, str(count),
                "--concurrency", "64",
                "--timeout", "20",
                "--max-hold", "60",
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert process.stdin is not None and process.stdout is not None
        reader = LineReader(process.stdout)
        try:
            started = time.monotonic()
            line = reader.readline(60)
            if line != "ready":
                raise CellError(f"not all {count} connections could be placed: {line!r}")
            placed = count
            accepted = waitUntil(
                lambda: treeDescriptors(pid) >= descriptorsBefore + placed, 10
            )
            time.sleep(0.2)
            after, descriptorsAfter = treeRSS(pid), treeDescriptors(pid)
            sampled = time.monotonic() - started
            process.stdin.close()
            result = reader.readline(30)
            process.wait(timeout=30)
        finally:
            stop(process, grace=5)
            with suppress(OSError):
                process.stdin.close()
            stderr = process.stderr.read().decode(errors="replace") if process.stderr else ""
            if process.stderr:
                process.stderr.close()
            process.stdout.close()
        if not running.alive():
            raise CellError(f"{server.name} exited during the run:\n{running.logTail()}")
    figures = json.loads(result) if result else {}
    errors = int(figures.get("errors_total", 1))
    open_ = descriptorsAfter - descriptorsBefore
    cell = {
        "check": facts,
        "kibPerConnection": (after - before) / placed,
        "connections": placed,
        "rssBeforeKiB": before,
        "rssAfterKiB": after,
        "serverDescriptorsOpened": open_,
        "allAccepted": accepted,
        "secondsToSample": sampled,
        "errors": errors,
        "errorKinds": {k: v for k, v in figures.get("errors", {}).items() if v},
        "loadgen": figures,
    }
    if stderr.strip():
        cell["stderr"] = stderr.strip()[-2000:]
    if open_ < placed * 0.95:
        cell["warning"] = (
            f"the server held only {open_} of {placed} connections when its memory was read"
        )
    return cell


# --- the run ----------------------------------------------------------------


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
    checkouts: list[tuple[str, Path]]
    json: Path | None
    chart: Path | None
    smoke: bool


RATE_FIGURES = [
    "perCPUSecond", "cpuMicroseconds", "wallRate", "p50", "p99",
    "resumedRatio", "serverUtilisation", "clientUtilisation",
    "serverCoreBusy", "clientCoreBusy", "disturbance",
]
MEMORY_FIGURES = ["kibPerConnection", "rssBeforeKiB", "rssAfterKiB", "secondsToSample"]


def median(cells: list[dict[str, Any]], column: Column) -> dict[str, Any]:
    """
    The median of each figure over the repetitions that ran, with the
    errors summed and the most frequent bottleneck.
    """
    good = [cell for cell in cells if "failure" not in cell]
    figures = RATE_FIGURES if column.kind == "rate" else MEMORY_FIGURES
    result: dict[str, Any] = {
        name: statistics.median(cell[name] for cell in good) if good else None
        for name in figures
    }
    result["errors"] = sum(int(cell.get("errors", 0)) for cell in cells) + sum(
        1 for cell in cells if "failure" in cell
    )
    result["repetitions"] = len(good)
    if column.kind == "rate" and good:
        counts = Counter(cell["bottleneck"] for cell in good)
        result["bottleneck"] = counts.most_common(1)[0][0]
        result["bottlenecks"] = dict(counts)
    return result


def runBenchmark(options: Options, servers: list[Server], loadgen: Path) -> dict[str, Any]:
    """
    Every repetition of every column for every server. Within a repetition
    the servers take turns per column (their order rotates each time), so
    that slow drifts of a shared machine fall on all of them alike.
    """
    measured = [server for server in servers if not server.skipped]
    raw: dict[str, dict[str, list[dict[str, Any]]]] = {
        server.name: {column.key: [] for column in options.columns} for server in measured
    }
    total = len(measured) * len(options.columns) * options.repeat
    done = 0
    with tempfile.TemporaryDirectory(prefix="tlsreply-bench-") as temporary:
        base = Path(temporary)
        credentials = makeCredentials(base)
        for repetition in range(options.repeat):
            for column in options.columns:
                shift = repetition % len(measured)
                for server in measured[shift:] + measured[:shift]:
                    done += 1
                    workDirectory = base / f"{server.name}-{column.key}-{repetition + 1}"
                    workDirectory.mkdir()
                    started = time.monotonic()
                    measure = measureRate if column.kind == "rate" else measureMemory
                    try:
                        cell = measure(
                            loadgen, server, column, credentials[column.keyType],
                            workDirectory, options,
                        )
                    except (CellError, OSError, subprocess.SubprocessError, ssl.SSLError,
                            ValueError, KeyError) as error:
                        cell = {"failure": f"{type(error).__name__}: {error}", "errors": 1}
                    cell["seconds"] = round(time.monotonic() - started, 2)
                    raw[server.name][column.key].append(cell)
                    note(f"[{done}/{total}] {server.name} {column.key} "
                         f"#{repetition + 1}: {summarise(cell, column)}")
    return raw


def summarise(cell: dict[str, Any], column: Column) -> str:
    """
    One progress line for a cell.
    """
    if "failure" in cell:
        return "FAILED " + cell["failure"].splitlines()[0]
    attempts = f" ({cell['attempts']} runs)" if cell.get("attempts", 1) > 1 else ""
    if column.kind == "memory":
        text = (f"{cell['kibPerConnection']:.1f} KiB/conn over {cell['connections']} "
                f"({cell['secondsToSample']:.1f} s to sample)")
        return text + (f"; {cell['warning']}" if "warning" in cell else "")
    text = (f"{cell['perCPUSecond']:,.0f}/CPU-s, {cell['wallRate']:,.0f}/s wall, "
            f"server {cell['serverUtilisation']:.0%}, client {cell['clientUtilisation']:.0%}, "
            f"other load {cell['disturbance']:.0%}, bound by {cell['bottleneck']}{attempts}, "
            f"resumed {cell['resumedRatio']:.0%}, errors {cell['errors']}")
    return text + (f" {cell['errorKinds']}" if cell["errors"] else "")


# --- the report -------------------------------------------------------------


def ratios(
    medians: dict[str, dict[str, dict[str, Any]]], options: Options
) -> dict[str, dict[str, float | None]]:
    """
    Each server's headline figure over nginx's, per column.
    """
    result: dict[str, dict[str, float | None]] = {}
    reference = medians.get("nginx")
    for name, columns in medians.items():
        result[name] = {}
        for column in options.columns:
            key = "perCPUSecond" if column.kind == "rate" else "kibPerConnection"
            mine = columns[column.key].get(key)
            theirs = reference[column.key].get(key) if reference else None
            result[name][column.key] = mine / theirs if mine is not None and theirs else None
    return result


def metricsNote(medians: dict[str, dict[str, dict[str, Any]]], options: Options) -> str:
    """
    What C{--metrics} costs: the metrics row's handshakes per
    server-CPU-second over tlsreply's at its defaults, per rate column.
    """
    mine, defaults = medians.get("tlsreply-metrics"), medians.get("tlsreply")
    if mine is None or defaults is None:
        return ""
    parts = []
    for column in options.columns:
        with_, without = mine[column.key].get("perCPUSecond"), defaults[column.key].get("perCPUSecond")
        if column.kind == "rate" and with_ and without:
            parts.append(f"{column.title} {with_ / without:.3f}")
    if not parts:
        return ""
    return (
        "tlsreply --metrics over tlsreply (defaults), handshakes per server-CPU-second "
        "(1.000: metrics cost nothing; 0.950: 5% fewer): " + ", ".join(parts) + "."
    )


def headline(
    servers: list[Server],
    medians: dict[str, dict[str, dict[str, Any]]],
    relative: dict[str, dict[str, float | None]],
    options: Options,
) -> list[str]:
    """
    The main table: nginx's absolute figures, everyone else as a ratio.
    """
    lines = [
        "| server | " + " | ".join(column.title for column in options.columns) + " |",
        "|---|" + "---|" * len(options.columns),
    ]
    for server in servers:
        if server.skipped:
            lines.append(f"| {server.title} | " + " | ".join(
                "skipped" for _ in options.columns) + " |")
            continue
        cells = []
        for column in options.columns:
            figures = medians[server.name][column.key]
            if figures["repetitions"] == 0:
                cells.append("failed")
                continue
            if server.name == "nginx" or "nginx" not in medians:
                value = figures["perCPUSecond" if column.kind == "rate" else "kibPerConnection"]
                text = f"{value:,.0f}" if column.kind == "rate" else f"{value:.1f}"
            else:
                ratio = relative[server.name][column.key]
                text = f"{ratio:.2f}" if ratio is not None else "n/a"
            if column.kind == "rate":
                text += BOTTLENECK_MARKS[figures["bottleneck"]]
            if figures["errors"]:
                text += f" ({figures['errors']} errors)"
            cells.append(text)
        lines.append(f"| {server.title} | " + " | ".join(cells) + " |")
    return lines


def absolutes(
    servers: list[Server], medians: dict[str, dict[str, dict[str, Any]]], options: Options
) -> list[str]:
    """
    The second table: every absolute figure, one row per server and column.
    """
    rate = [column for column in options.columns if column.kind == "rate"]
    memory = [column for column in options.columns if column.kind == "memory"]
    lines: list[str] = []
    if rate:
        lines += [
            "| server | column | handshakes per server-CPU-s | µs server CPU per handshake "
            "| wall handshakes/s | p50 ms | p99 ms | server CPU | client CPU "
            "| other load on server core | resumed | errors |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for server in servers:
            if server.skipped:
                continue
            for column in rate:
                m = medians[server.name][column.key]
                if m["repetitions"] == 0:
                    lines.append(f"| {server.title} | {column.title} | failed "
                                 f"||||||||| {m['errors']} |")
                    continue
                bound = BOTTLENECK_MARKS[m["bottleneck"]]
                lines.append(
                    f"| {server.title} | {column.title} | {m['perCPUSecond']:,.0f}{bound} "
                    f"| {m['cpuMicroseconds']:,.0f} | {m['wallRate']:,.0f} "
                    f"| {m['p50']:.1f} | {m['p99']:.1f} | {m['serverUtilisation']:.0%} "
                    f"| {m['clientUtilisation']:.0%} | {m['disturbance']:.0%} "
                    f"| {m['resumedRatio']:.2f} | {m['errors']} |"
                )
    if memory:
        if lines:
            lines.append("")
        lines += [
            "| server | column | KiB per connection | connections | server RSS before → with them (KiB) | errors |",
            "|---|---|---|---|---|---|",
        ]
        for server in servers:
            if server.skipped:
                continue
            for column in memory:
                m = medians[server.name][column.key]
                if m["repetitions"] == 0:
                    lines.append(f"| {server.title} | {column.title} | failed ||| {m['errors']} |")
                    continue
                lines.append(
                    f"| {server.title} | {column.title} | {m['kibPerConnection']:.1f} "
                    f"| {options.connections} | {m['rssBeforeKiB']:,.0f} → {m['rssAfterKiB']:,.0f} "
                    f"| {m['errors']} |"
                )
    return lines


def drawChart(
    path: Path,
    servers: list[Server],
    medians: dict[str, dict[str, dict[str, Any]]],
    relative: dict[str, dict[str, float | None]],
    options: Options,
) -> str:
    """
    A bar chart (PNG) of each server's ratio to nginx per column, with
    nginx as the line at 1.0. Hatched bars and a † in a column's label mark
    medians where the load generator, not the server, was the bottleneck.
    Returns a note when it cannot be drawn.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as pyplot
        from matplotlib.patches import Patch
    except ImportError:
        return "matplotlib is not installed (pip install -e '.[bench]'): no chart"
    others = [s for s in servers if not s.skipped and s.name != "nginx" and s.name in relative]
    if not others or "nginx" not in relative:
        return "no chart: it needs nginx and at least one other server"
    columns = options.columns
    figure, axes = pyplot.subplots(figsize=(max(8, 1.6 * len(columns) + 3), 5), dpi=120)
    width = 0.8 / len(others)
    handles: list[Any] = []
    for index, server in enumerate(others):
        values = [relative[server.name][column.key] or 0.0 for column in columns]
        positions = [c + (index - (len(others) - 1) / 2) * width for c in range(len(columns))]
        bars = axes.bar(positions, values, width, color=f"C{index}")
        handles.append(Patch(facecolor=f"C{index}", label=server.title))
        for bar, column in zip(bars, columns, strict=True):
            if medians[server.name][column.key].get("bottleneck", "server") != "server":
                bar.set_hatch("//")
        axes.bar_label(bars, labels=[f"{v:.2f}" for v in values], fontsize=7, padding=2)
    line = axes.axhline(1.0, color="black", linewidth=1.2, linestyle="--")
    labels = []
    for column in columns:
        label = column.title
        if column.kind == "memory":
            label += "\n(lower is better)"
        elif (mark := BOTTLENECK_MARKS[medians["nginx"][column.key].get("bottleneck", "server")]):
            label += f"\n(nginx not saturated{mark})"
        labels.append(label)
    axes.set_xticks(range(len(columns)), labels, fontsize=8)
    axes.set_ylabel("ratio to nginx (same run)")
    axes.set_title(
        "Handshakes per server-CPU-second and KiB per connection, as a ratio to nginx"
        "\n(hatched: the server's core was not saturated, see the report's †, ‡, §)",
        fontsize=10,
    )
    line.set_label("nginx = 1.0")
    handles += [
        line,
        Patch(facecolor="white", edgecolor="black", hatch="//",
              label="server not saturated"),
    ]
    axes.legend(handles=handles, fontsize=8)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    pyplot.close(figure)
    return ""


def loadgenOpenSSL(loadgen: Path) -> str:
    """
    The OpenSSL the load generator runs with (C{loadgen --version}).
    """
    result = subprocess.run([str(loadgen), "--version"], capture_output=True, timeout=30)
    return result.stdout.decode(errors="replace").strip()


def machineFacts(loadgen: Path) -> dict[str, Any]:
    """
    What the figures depend on: processor, kernel, core count, OpenSSL of
    the load generator.
    """
    model = ""
    with suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "loadgenOpenSSL": loadgenOpenSSL(loadgen),
        "loadgen": str(loadgen),
    }


# --- command line -----------------------------------------------------------


def parseArguments(argv: Sequence[str]) -> Options:
    """
    The command line (see C{--help}).
    """
    names = ["nginx", "tlsreply", "tlsreply-metrics", "tlsreply-workers", "bare-twisted", "uvloop"]
    parser = argparse.ArgumentParser(
        prog="bench/run.py",
        description=(
            "Measure TLS handshakes per server-CPU-second (and memory per "
            "connection) of tlsreply and reference servers, as ratios to "
            "nginx measured in the same run. Server on CPU 0, load generator "
            "on CPU 1, everything on 127.0.0.1."
        ),
        epilog=(
            "Columns: " + ", ".join(f"{c.key} ({c.title})" for c in COLUMNS)
            + ". A mark on a median says the server used less than 90% of its "
            "core, and why: † the load generator's core was full, ‡ neither core "
            "was (latency), § other processes took the server's core. Exit status "
            "1 when any cell had an error, 2 when the benchmark could not run."
        ),
    )
    parser.add_argument(
        "--servers", default=",".join(names),
        help="comma-separated rows, of: " + ", ".join(names) + " (default: all)",
    )
    parser.add_argument(
        "--columns", default=",".join(COLUMNS_BY_KEY),
        help="comma-separated columns (default: all)",
    )
    parser.add_argument("--repeat", type=int, default=5,
                        help="repetitions of every cell; the median is reported (5)")
    parser.add_argument("--duration", type=float, default=1.5,
                        help="measured seconds per rate cell (1.5)")
    parser.add_argument("--warmup", type=float, default=0.5,
                        help="seconds of load before the measured window (0.5)")
    parser.add_argument("--concurrency", type=int, default=48,
                        help="connections in flight from the load generator (48)")
    parser.add_argument("--connections", type=int, default=500,
                        help="idle or held connections in the memory columns (500)")
    parser.add_argument(
        "--tlsreply-checkout", action="append", default=[], metavar="NAME=DIR",
        help="also measure the tlsreply of another checkout (DIR/.venv/bin/twistd, "
        "cwd DIR) as row NAME; may be repeated",
    )
    parser.add_argument("--smoke", action="store_true",
                        help="about a second per cell, one repetition, 100 connections "
                        "for memory (for CI)")
    parser.add_argument("--json", type=Path, help="write every raw and median figure here")
    parser.add_argument("--chart", type=Path, default=BENCH / "chart.png",
                        help="the PNG chart of ratios to nginx (default: bench/chart.png)")
    parser.add_argument("--no-chart", action="store_true", help="draw no chart")
    arguments = parser.parse_args(argv)

    servers = [name.strip() for name in arguments.servers.split(",") if name.strip()]
    for name in servers:
        if name not in names:
            parser.error(f"--servers: unknown server {name!r} (known: {', '.join(names)})")
    columns = []
    for key in arguments.columns.split(","):
        if key.strip() not in COLUMNS_BY_KEY:
            parser.error(f"--columns: unknown column {key!r} (known: {', '.join(COLUMNS_BY_KEY)})")
        columns.append(COLUMNS_BY_KEY[key.strip()])
    checkouts: list[tuple[str, Path]] = []
    for item in arguments.tlsreply_checkout:
        name, sep, directory = item.partition("=")
        if not sep or not name or not directory:
            parser.error(f"--tlsreply-checkout: expected NAME=DIR, got {item!r}")
        if name in names or name in (n for n, _ in checkouts):
            parser.error(f"--tlsreply-checkout: the name {name!r} is taken")
        checkouts.append((name, Path(directory).resolve()))
    if arguments.smoke:
        arguments.repeat, arguments.duration, arguments.warmup = 1, 0.8, 0.3
        arguments.connections = min(arguments.connections, 100)
    if arguments.repeat < 1 or arguments.duration <= 0 or arguments.warmup < 0:
        parser.error("--repeat must be at least 1, --duration positive, --warmup >= 0")
    if not 1 <= arguments.concurrency <= 10000 or not 1 <= arguments.connections <= 20000:
        parser.error("--concurrency: 1 to 10000; --connections: 1 to 20000")
    return Options(
        servers=servers,
        columns=columns,
        repeat=arguments.repeat,
        duration=arguments.duration,
        warmup=arguments.warmup,
        concurrency=arguments.concurrency,
        connections=arguments.connections,
        checkouts=checkouts,
        json=arguments.json,
        chart=None if arguments.no_chart else arguments.chart,
        smoke=arguments.smoke,
    )


def makeServers(options: Options, nginx: Nginx | None) -> list[Server]:
    """
    The rows, in table order.
    """
    servers: list[Server] = []
    for name in options.servers:
        if name == "nginx" and nginx is not None:
            servers.append(NginxServer(nginx))
        elif name == "tlsreply":
            servers.append(TlsreplyServer("tlsreply", "tlsreply (defaults)", REPO))
        elif name == "tlsreply-metrics":
            servers.append(
                TlsreplyServer("tlsreply-metrics", "tlsreply --metrics", REPO, metrics=True)
            )
        elif name == "tlsreply-workers":
            servers.append(
                TlsreplyServer("tlsreply-workers", "tlsreply --workers 2", REPO, workers=2)
            )
        elif name == "bare-twisted":
            servers.append(BareTwistedServer())
        elif name == "uvloop":
            servers.append(UvloopServer())
    for name, directory in options.checkouts:
        servers.append(TlsreplyServer(name, f"{name} (tlsreply at {directory})", directory))
    return servers


def main(argv: Sequence[str] | None = None) -> int:
    """
    Run the benchmark and print the report; the exit status says whether
    every cell ran clean.
    """
    options = parseArguments(sys.argv[1:] if argv is None else argv)
    began = time.monotonic()
    # Ctrl-C (even where the shell started us with SIGINT ignored), SIGTERM
    # and SIGHUP all unwind through the code that stops the processes.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _onSignal)
    signal.signal(signal.SIGHUP, _onSignal)
    # The harness itself stays off the server's core.
    if (os.cpu_count() or 1) < 2:
        raise BenchmarkError("the benchmark needs two cores (server and load generator)")
    with suppress(OSError):
        os.sched_setaffinity(0, {CLIENT_CPU})
    # Room for a descriptor per held connection, in every child too.
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    try:
        loadgen = buildLoadGenerator()
        nginx = obtainNginx() if "nginx" in options.servers else None
        servers = makeServers(options, nginx)
        note(f"bench: {len(servers)} servers x {len(options.columns)} columns x "
             f"{options.repeat} repetitions")
        raw = runBenchmark(options, servers, loadgen)
    finally:
        stopAll()

    medians = {
        name: {column.key: median(raw[name][column.key], column) for column in options.columns}
        for name in raw
    }
    relative = ratios(medians, options)
    elapsed = time.monotonic() - began
    notes = [
        "Rate columns: handshakes per server-CPU-second (higher is better); memory "
        "columns: KiB per connection (lower is better). nginx's row is absolute; every "
        "other row is a ratio to nginx from this run.",
        f"Median of {options.repeat} repetition(s); {options.duration:g} s measured after "
        f"{options.warmup:g} s of warm-up per cell; load generator with "
        f"{options.concurrency} connections in flight; memory over {options.connections} "
        "connections.",
        "Where the server used less than 90% of its core over the window, a mark says "
        "why: † the load generator's core was full (the client was the bottleneck); "
        "‡ neither core was full (latency-bound: connections waiting on the network "
        "stack, e.g. Nagle and delayed ACKs); § other processes took more than 10% "
        "of the server's core (a disturbed run, repeated up to twice).",
        "Server pinned to CPU 0, load generator (bench/loadgen.c, "
        f"{loadgenOpenSSL(loadgen)}) to CPU 1.",
    ]
    with suppress(OSError, ValueError):
        if int(Path("/proc/sys/net/ipv4/tcp_tw_reuse").read_text()) == 0:
            notes.append(
                "net.ipv4.tcp_tw_reuse is 0: the load generator's closed connections "
                "keep their ports for a minute, and fast cells may run out of ports "
                "(connect errors); sysctl -w net.ipv4.tcp_tw_reuse=2 (Linux's default) "
                "lets loopback connections reuse them."
            )
    if any(isinstance(s, TlsreplyServer) for s in servers) and any(
        c.kind == "memory" for c in options.columns
    ):
        notes.append(
            "tlsreply rows in the memory columns run with " + " ".join(MEMORY_TIMEOUTS)
            + " so that its timeouts (10 s, 3 s) cannot close a connection before its "
            "memory is read; every other cell runs at its defaults."
        )
    for server in servers:
        openssl = f"OpenSSL: {server.openssl}" if server.openssl else ""
        extra = ""
        if isinstance(server, TlsreplyServer) and server.revision:
            extra = f"; revision {server.revision}"
        skipped = f"; skipped: {server.skipped}" if server.skipped else ""
        if isinstance(server, NginxServer):
            extra += f"; {server.nginx.origin}"
        notes.append(f"{server.title}: {openssl}{extra}{skipped}")
    metricsCost = metricsNote(medians, options)
    if metricsCost:
        notes.append(metricsCost)
    for label, mark in BOTTLENECK_MARKS.items():
        bound = [
            f"{name} in {column.title} ({medians[name][column.key]['serverUtilisation']:.0%} "
            "of its core)"
            for name in medians
            for column in options.columns
            if column.kind == "rate" and medians[name][column.key].get("bottleneck") == label
        ]
        if mark and bound:
            notes.append(f"Server not saturated ({mark.strip()} {label}): " + "; ".join(bound) + ".")
    for name, columns in raw.items():
        for key, cells in columns.items():
            for cell in cells:
                if "failure" in cell:
                    notes.append(f"{name} {key}: {cell['failure'].splitlines()[0]}")
                elif cell.get("warning"):
                    notes.append(f"{name} {key}: {cell['warning']}")
    chartNote = ""
    if options.chart is not None:
        chartNote = drawChart(options.chart, servers, medians, relative, options)
        notes.append(chartNote or f"chart: {options.chart}")
    notes.append(f"Run time: {elapsed / 60:.1f} min.")

    say("## Handshakes per server-CPU-second, as a ratio to nginx")
    say()
    for line in headline(servers, medians, relative, options):
        say(line)
    say()
    say("## Absolute figures (medians)")
    say()
    for line in absolutes(servers, medians, options):
        say(line)
    say()
    for line in notes:
        say(f"- {line}")

    errors = sum(m["errors"] for columns in medians.values() for m in columns.values())
    if options.json is not None:
        options.json.parent.mkdir(parents=True, exist_ok=True)
        options.json.write_text(
            json.dumps(
                {
                    "date": datetime.datetime.now(datetime.UTC).isoformat(),
                    "machine": machineFacts(loadgen),
                    "options": {
                        **{k: v for k, v in asdict(options).items()
                           if k not in ("columns", "json", "chart", "checkouts")},
                        "columns": [c.key for c in options.columns],
                        "checkouts": {n: str(d) for n, d in options.checkouts},
                    },
                    "servers": [
                        {"name": s.name, "title": s.title, "openssl": s.openssl,
                         "skipped": s.skipped}
                        for s in servers
                    ],
                    "columns": [asdict(c) for c in options.columns],
                    "medians": medians,
                    "ratios": relative,
                    "raw": raw,
                    "errors": errors,
                    "notes": notes,
                    "seconds": round(elapsed, 1),
                },
                indent=1,
            )
            + "\n"
        )
    return 1 if errors else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchmarkError as error:
        note(f"bench: {error}")
        sys.exit(2)
    except (KeyboardInterrupt, Interrupted):
        stopAll()
        note("bench: interrupted; every process it started is stopped")
        sys.exit(130)
