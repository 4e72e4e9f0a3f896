# -*- test-case-name: tests.test_interop -*-
"""
The interop matrix's clients: real TLS stacks from the package registries,
each run as its own program, each trusting only the case's test CA and
checking the host name, each reporting what it did (accepted, or its
exact error) as an L{Observed}.

Command-line tools (C{openssl s_client}, C{curl}, C{gnutls-cli}) run once
for every case; the others (Python, Node.js, Java, curl_cffi) run once for
all cases, since their start costs more than a handshake.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

HERE = Path(__file__).parent

#: How long any one client program may take for one case.
CASE_TIMEOUT = 20.0

#: The timeout every client sets (connecting, and each read), unless the
#: case sets a shorter one (a stalling server's row).
CLIENT_TIMEOUT = 10.0


@dataclass(frozen=True)
class Case:
    """
    One connection (or two, for resumption) that every client makes.

    @ivar id: the row it is for.
    @ivar request: what the client sends after the handshake (an HTTP
        request: the servers of the matrix speak HTTP, as curl needs).
    @ivar twice: connect again, offering the first connection's session.
    @ivar maxVersion: C{"1.2"} to stop the client at TLS 1.2, or L{None}.
    @ivar timeout: the client's own timeout, where it has one; a client
        without one is stopped by the harness at twice this (L{patience}).
    """

    id: str
    host: str
    port: int
    serverName: str
    caFile: str
    request: str
    twice: bool = False
    maxVersion: str | None = None
    timeout: float = CLIENT_TIMEOUT

    @property
    def patience(self) -> float:
        """
        How long the harness waits for a client of this case that runs
        once for it, before it stops it.
        """
        return 2 * self.timeout

    def stopped(self) -> Observed:
        """
        What a client stopped by the harness did: it had no timeout of its
        own, or did not keep to it.
        """
        return Observed(False, f"no timeout of its own: stopped by the harness after "
                               f"{self.patience:g}s")


@dataclass
class Observed:
    """
    What a client did with a case.

    @ivar accepted: it completed the handshake(s) and read the reply to
        the end.
    @ivar error: its error, as it reports it (one line), or L{None}.
    @ivar reply: the end of what it read.
    @ivar version: the TLS version it negotiated, where it says.
    """

    accepted: bool
    error: str | None = None
    reply: str = ""
    version: str | None = None

    @classmethod
    def fromJSON(cls, values: dict[str, Any]) -> Observed:
        return cls(bool(values["accepted"]), values.get("error"), values.get("reply") or "",
                   values.get("version"))


@dataclass(frozen=True)
class Client:
    """
    A client of the matrix: a column of the table.

    @ivar name: the column's name (C{"gnutls-cli"}, C{"curl_cffi chrome131"}).
    @ivar stack: the stack whose stated outcome it is held to.
    @ivar version: what ran, as it says.
    @ivar runAll: runs every case, returning what it did with each, by id.
    """

    name: str
    stack: str
    version: str
    runAll: Callable[[Sequence[Case]], dict[str, Observed]]


def _oneLine(text: str) -> str:
    return " ".join(text.split())


#: The environment every client runs in: without the search path of the
#: Python that runs the matrix (trial's workers are given theirs in
#: PYTHONPATH), which would make Debian's Python import another Python's
#: standard library.
CLIENT_ENVIRONMENT = {
    name: value for name, value in os.environ.items() if name not in ("PYTHONPATH", "PYTHONHOME")
}

#: L{_run}'s exit status for a program it stopped at its timeout.
STOPPED = -999


def _run(command: list[str], stdin: str = "", timeout: float = CASE_TIMEOUT) -> tuple[int, str, str]:
    try:
        done = subprocess.run(command, input=stdin.encode(), capture_output=True, timeout=timeout,
                              env=CLIENT_ENVIRONMENT)
    except subprocess.TimeoutExpired:
        return STOPPED, "", "timed out"
    return (done.returncode, done.stdout.decode("utf-8", "replace"),
            done.stderr.decode("utf-8", "replace"))


def _perCase(run: Callable[[Case], Observed]) -> Callable[[Sequence[Case]], dict[str, Observed]]:
    return lambda cases: {case.id: run(case) for case in cases}


def _reply(case: Case, stdout: str) -> Observed:
    """
    Accepted if the reply (an HTTP response ending in C{test}) arrived.
    """
    return Observed("test" in stdout, None if "test" in stdout else "no reply", stdout[-200:])


# OpenSSL's command-line client.

#: An OpenSSL error line: error:CODE:LIBRARY:FUNCTION:REASON:FILE:LINE:...
_OPENSSL_ERROR = re.compile(r"error:[0-9A-F]+:[^:]*:[^:]*:([^:]+):")


def _opensslError(output: str) -> str:
    verify = re.search(r"verify error:num=\d+:(.*)", output)
    reasons = [m.group(1) for m in _OPENSSL_ERROR.finditer(output)]
    # s_client's own line for a failed read (errno=104: a reset).
    readError = re.search(r"read:errno=\d+", output)
    parts = ([verify.group(1).strip()] if verify else []) + reasons[:1]
    parts += [readError.group(0)] if readError and not parts else []
    return "; ".join(parts) or _oneLine(output)[-200:] or "failed"


def _sClient(openssl: str) -> Callable[[Case], Observed]:
    def run(case: Case) -> Observed:
        with tempfile.TemporaryDirectory() as directory:
            sessionFile = str(Path(directory) / "session.pem")
            result = Observed(False, "not run")
            for attempt in range(2 if case.twice else 1):
                command = [openssl, "s_client", "-connect", f"{case.host}:{case.port}",
                           "-servername", case.serverName, "-verify_hostname", case.serverName,
                           "-CAfile", case.caFile, "-verify_return_error", "-quiet"]
                if case.maxVersion == "1.2":
                    command.append("-tls1_2")
                if case.twice:
                    command += ["-sess_out", sessionFile]
                    if attempt:
                        command += ["-sess_in", sessionFile]
                code, out, err = _run(command, case.request, case.patience)
                if code == STOPPED:
                    return case.stopped()
                if code != 0 or "test" not in out:
                    return Observed(False, _opensslError(err + out), out[-200:])
                result = Observed(True, None, out[-200:])
            return result

    return run


def opensslClients() -> list[Client]:
    clients = []
    openssl = shutil.which("openssl")
    if openssl:
        version = _run([openssl, "version"])[1].strip()
        clients.append(Client("openssl s_client", "openssl", version, _perCase(_sClient(openssl))))
    curl = shutil.which("curl")
    if curl:
        version = _run([curl, "--version"])[1].splitlines()[0]
        clients.append(Client("curl", "openssl", version, _perCase(_curl(curl))))
    return clients


def _curl(curl: str) -> Callable[[Case], Observed]:
    def run(case: Case) -> Observed:
        url = f"https://{case.serverName}:{case.port}/"
        command = [curl, "-sS", "--max-time", f"{case.timeout:g}", "--cacert", case.caFile,
                   "--resolve", f"{case.serverName}:{case.port}:{case.host}", url]
        if case.maxVersion == "1.2":
            command += ["--tls-max", "1.2"]
        if case.twice:
            command.append(url)
        code, out, err = _run(command, timeout=case.patience)
        if code == STOPPED:
            return case.stopped()
        if code != 0:
            message = _oneLine(err.split("\nMore details here")[0])
            return Observed(False, message.removeprefix("curl: ") or f"exit {code}", out[-200:])
        return _reply(case, out)

    return run


# GnuTLS's command-line client.


def _gnutlsError(output: str) -> str:
    lines = [line.strip() for line in output.splitlines()]
    wanted = [
        line.removeprefix("- Status: ").removeprefix("*** ")
        for line in lines
        if line.startswith(("- Status: The certificate is NOT trusted", "*** Fatal error",
                            "*** Handshake has failed", "*** handshake has failed",
                            "*** Received alert", "*** Verifying", "*** PKI verification",
                            "*** Server has terminated", "*** Error"))
    ]
    return " | ".join(dict.fromkeys(wanted)) or _oneLine(output)[-200:] or "failed"


def _gnutls(gnutls: str) -> Callable[[Case], Observed]:
    def run(case: Case) -> Observed:
        command = [gnutls, "--x509cafile", case.caFile, "--sni-hostname", case.serverName,
                   "--verify-hostname", case.serverName, "-p", str(case.port), case.host]
        if case.maxVersion == "1.2":
            command.append("--priority=NORMAL:-VERS-TLS1.3")
        if case.twice:
            command.append("--resume")
        # Standard input stays open (communicate() would close it): at its
        # end, gnutls-cli says goodbye and may leave before the reply; the
        # server's close ends it. Its output goes to a file, read once it
        # has ended.
        with tempfile.TemporaryFile() as output:
            process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=output,
                                       stderr=subprocess.STDOUT)
            assert process.stdin is not None
            try:
                process.stdin.write(case.request.encode())
                process.stdin.flush()
                if case.twice:
                    _resumeGnutls(process, output)
                else:
                    process.wait(timeout=case.patience)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
                return case.stopped()
            finally:
                process.stdin.close()
            output.seek(0)
            text = output.read().decode("utf-8", "replace")
        version = re.search(r"- Version: (\S+)", text)
        # The reply's body after its header: "test" alone is also in the
        # certificate's subject, which gnutls-cli prints.
        # With --resume, only the second connection sends the request.
        if process.returncode == 0 and REPLY_BODY.decode() in text:
            return Observed(True, None, text[-200:], version.group(1) if version else None)
        return Observed(False, _gnutlsError(text), text[-200:])

    return run


#: The reply's body after its header, as gnutls-cli prints it: "test" alone
#: is also in the certificate's subject, which it prints too.
REPLY_BODY = b"\r\n\r\ntest"


def _resumeGnutls(process: subprocess.Popen[bytes], output: IO[bytes]) -> None:
    """
    With C{--resume}, gnutls-cli connects, waits for the end of its input,
    then connects again offering the session: the input ends once the
    first reply has arrived (and with it, in TLS 1.3, the session
    tickets, which the server sends before the reply), not after a guessed
    delay.
    """
    assert process.stdin is not None
    deadline = time.monotonic() + CASE_TIMEOUT
    while process.poll() is None and time.monotonic() < deadline:
        output.seek(0)
        if REPLY_BODY in output.read():
            break
        time.sleep(0.05)
    process.stdin.close()
    process.wait(timeout=CASE_TIMEOUT)


def gnutlsClients() -> list[Client]:
    gnutls = shutil.which("gnutls-cli")
    if gnutls is None:
        return []
    version = _run([gnutls, "--version"])[1].splitlines()[0]
    return [Client("gnutls-cli", "gnutls", version, _perCase(_gnutls(gnutls)))]


# The clients that run once for all cases.


def writeCases(cases: Sequence[Case], directory: Path) -> Path:
    path = directory / "cases.json"
    path.write_text(json.dumps([asdict(case) for case in cases]))
    return path


def _batch(command: list[str], timeout: float) -> Any:
    code, out, err = _run(command, timeout=timeout)
    if code != 0:
        raise RuntimeError(f"{' '.join(command[:2])} failed ({code}): {_oneLine(err)[-500:]}")
    return json.loads(out)


def pythonClient(executable: str, name: str, directory: Path) -> tuple[Client, dict[str, Any]] | None:
    """
    Python's C{ssl}, as C{executable} runs it, with the facts it reports
    about itself (what its outcomes are worked out from).
    """
    if shutil.which(executable) is None:
        return None
    factsOnly = _batch([executable, str(HERE / "pyclient.py"), str(writeCases([], directory))], 30)
    facts: dict[str, Any] = factsOnly["facts"]

    def runAll(cases: Sequence[Case]) -> dict[str, Observed]:
        output = _batch([executable, str(HERE / "pyclient.py"), str(writeCases(cases, directory))],
                        CASE_TIMEOUT * max(len(cases), 1))
        return {r["id"]: Observed.fromJSON(r) for r in output["results"]}

    version = f"Python {facts['python']} ({facts['executable']}), {facts['opensslVersion']}"
    return Client(name, "python-ssl", version, runAll), facts


def nodeClient(directory: Path) -> Client | None:
    node = shutil.which("node") or shutil.which("nodejs")
    if node is None:
        return None
    version = _run([node, "-p", "process.version + ', OpenSSL ' + process.versions.openssl"])[1]

    def runAll(cases: Sequence[Case]) -> dict[str, Observed]:
        output = _batch([node, str(HERE / "nodeclient.js"), str(writeCases(cases, directory))],
                        CASE_TIMEOUT * max(len(cases), 1))
        return {r["id"]: Observed.fromJSON(r) for r in output["results"]}

    return Client("node", "node", f"Node.js {version.strip()}", runAll)


def javaClient(cache: Path, directory: Path) -> Client | None:
    """
    Java's JSSE through a small C{SSLSocket} client, compiled with javac
    into C{cache} (again only when its source changed).
    """
    java, javac = shutil.which("java"), shutil.which("javac")
    if java is None or javac is None:
        return None
    source = HERE / "InteropClient.java"
    compiled = cache / "InteropClient.class"
    if not compiled.exists() or compiled.stat().st_mtime < source.stat().st_mtime:
        cache.mkdir(parents=True, exist_ok=True)
        code, _, err = _run([javac, "-d", str(cache), str(source)], timeout=120)
        if code != 0:
            raise RuntimeError(f"javac failed: {_oneLine(err)[-500:]}")
    version = _run([java, "-version"])[2].splitlines()
    described = next((line for line in version if "Runtime" in line), version[0])

    def runAll(cases: Sequence[Case]) -> dict[str, Observed]:
        path = directory / "cases.tsv"
        path.write_text("".join(
            "\t".join([case.id, case.host, str(case.port), case.serverName, case.caFile,
                       case.maxVersion or "", "1" if case.twice else "0",
                       base64.b64encode(case.request.encode()).decode(),
                       str(int(case.timeout * 1000))]) + "\n"
            for case in cases
        ))
        code, out, err = _run([java, "-cp", str(cache), "InteropClient", str(path)],
                              timeout=CASE_TIMEOUT * max(len(cases), 1))
        if code != 0:
            raise RuntimeError(f"the Java client failed ({code}): {_oneLine(err)[-500:]}")
        results = [json.loads(line) for line in out.splitlines() if line.strip()]
        return {r["id"]: Observed.fromJSON(r) for r in results}

    return Client("java", "java", described.strip(), runAll)


#: The curl_cffi browser profiles the matrix runs: a Chrome, a Firefox and
#: a Safari, each on the BoringSSL that curl_cffi bundles.
BROWSER_PROFILES = ("chrome131", "firefox144", "safari260")


def curlCffiClients(python: str, directory: Path,
                    profiles: Sequence[str] = BROWSER_PROFILES) -> list[Client]:
    """
    curl_cffi's browser impersonations, one process for each profile.
    """
    code, out, _ = _run([python, "-c", "import curl_cffi, sys; "
                         "sys.stdout.write(curl_cffi.__version__)"])
    if code != 0:
        return []

    def forProfile(profile: str) -> Callable[[Sequence[Case]], dict[str, Observed]]:
        def runAll(cases: Sequence[Case]) -> dict[str, Observed]:
            own = directory / profile
            own.mkdir(exist_ok=True)
            output = _batch([python, str(HERE / "cfficlient.py"), str(writeCases(cases, own)),
                             profile], CASE_TIMEOUT * max(len(cases), 1))
            return {r["id"]: Observed.fromJSON(r) for r in output["results"][profile]}

        return runAll

    return [
        Client(f"curl_cffi {profile}", "boringssl",
               f"curl_cffi {out.strip()} ({profile} impersonation, BoringSSL)", forProfile(profile))
        for profile in profiles
    ]
