"""
The soak's clients, blocking, for worker threads: good ones (a fresh or a
resumed session, the reply checked byte for byte) and bad ones (random
bytes, plain HTTP, a truncated ClientHello then silence, resets).
"""

from __future__ import annotations

import socket
import ssl
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from bench.harness.settings import LOOPBACK, REPLY, SERVER_NAME
from tlsreply.testing.badclients import (
    PLAIN_HTTP,
    clientHello,
    randomBytes,
    readUntilClosed,
    resetClose,
)

# Per-operation socket timeout of a good client. Generous: a SYN dropped by
# a full listen backlog is retried after 1 s, then 3 s, then 7 s.
GOOD_TIMEOUT = 30.0
# How long after its handshake timeout a bad connection may stay open.
CUT_SLACK = 5.0
# How long to wait for the server to close everything after a phase.

GOOD_KINDS = ("good", "good-resumed")
BAD_KINDS = (
    "random-bytes",
    "plain-http",
    "truncated-hello",
    "reset-after-hello",
    "reset-after-handshake",
)
# Weights of each kind in the mixed phase (percent).
MIX = {
    "good": 35,
    "good-resumed": 25,
    "random-bytes": 8,
    "plain-http": 8,
    "truncated-hello": 8,
    "reset-after-hello": 8,
    "reset-after-handshake": 8,
}

@dataclass
class Result:
    """
    One client connection's outcome.
    """

    kind: str
    ok: bool
    seconds: float
    detail: str = ""
    resumed: bool = False
    parked: socket.socket | None = None


class Clients:
    """
    The client kinds, blocking, for worker threads; every connection goes
    to 127.0.0.1.
    """

    def __init__(self, port: int, caPath: Path, handshakeTimeout: float) -> None:
        self.port = port
        self.context = ssl.create_default_context(cafile=str(caPath))
        self.badTimeout = handshakeTimeout + CUT_SLACK
        self._connections = 0
        self._countLock = threading.Lock()
        self._sessions = threading.local()
        self.hello = clientHello(SERVER_NAME)

    @property
    def connections(self) -> int:
        with self._countLock:
            return self._connections

    def connect(self, timeout: float) -> socket.socket:
        """
        A TCP connection to the server, counted.
        """
        sock = socket.create_connection((LOOPBACK, self.port), timeout=timeout)
        with self._countLock:
            self._connections += 1
        return sock

    def run(self, kind: str, seed: int) -> Result:
        started = time.monotonic()
        try:
            result = getattr(self, "_" + kind.replace("-", "_"))(seed)
        except (OSError, ssl.SSLError, AssertionError) as e:
            result = Result(kind, False, 0.0, f"{type(e).__name__}: {e}")
        result.seconds = time.monotonic() - started
        return result

    def _fetch(self, kind: str, session: ssl.SSLSession | None) -> Result:
        with self.connect(GOOD_TIMEOUT) as raw:
            with self.context.wrap_socket(
                raw, server_hostname=SERVER_NAME, session=session,
                suppress_ragged_eofs=False,
            ) as tls:
                received = b""
                while chunk := tls.recv(65536):
                    received += chunk
                self._sessions.session = tls.session
                resumed = bool(tls.session_reused)
        if received != REPLY:
            return Result(kind, False, 0.0, f"reply {received!r}")
        if session is not None and not resumed:
            return Result(kind, False, 0.0, "session offered but not resumed")
        return Result(kind, True, 0.0, resumed=resumed)

    def _good(self, seed: int) -> Result:
        return self._fetch("good", None)

    def _good_resumed(self, seed: int) -> Result:
        session = getattr(self._sessions, "session", None)
        if session is None:
            # This worker's first connection: get a session to resume.
            first = self._fetch("good-resumed", None)
            if not first.ok:
                return first
            session = self._sessions.session
        return self._fetch("good-resumed", session)

    def _random_bytes(self, seed: int) -> Result:
        with self.connect(self.badTimeout) as sock:
            sock.sendall(randomBytes(seed))
            readUntilClosed(sock, self.badTimeout)
        return Result("random-bytes", True, 0.0)

    def _plain_http(self, seed: int) -> Result:
        with self.connect(self.badTimeout) as sock:
            sock.sendall(PLAIN_HTTP)
            readUntilClosed(sock, self.badTimeout)
        return Result("plain-http", True, 0.0)

    def _truncated_hello(self, seed: int) -> Result:
        # Half a ClientHello, then silence: the socket is parked, and the
        # phase checks at its end that the server has cut it.
        sock = self.connect(self.badTimeout)
        sock.sendall(self.hello[: len(self.hello) // 2])
        return Result("truncated-hello", True, 0.0, parked=sock)

    def _reset_after_hello(self, seed: int) -> Result:
        sock = self.connect(self.badTimeout)
        try:
            sock.sendall(self.hello)
            if sock.recv(1) != b"\x16":
                return Result("reset-after-hello", False, 0.0, "no ServerHello")
        finally:
            resetClose(sock)
        return Result("reset-after-hello", True, 0.0)

    def _reset_after_handshake(self, seed: int) -> Result:
        sock = self.connect(GOOD_TIMEOUT)
        try:
            tls = self.context.wrap_socket(sock, server_hostname=SERVER_NAME)
        except BaseException:
            resetClose(sock)
            raise
        resetClose(tls)
        return Result("reset-after-handshake", True, 0.0)


def awaitServerClose(sockets: list[socket.socket], deadline: float) -> tuple[int, int]:
    """
    Wait until the server has closed (or reset) each socket, at the latest
    until C{deadline} (a C{time.monotonic} value); close them all.

    @return: how many the server closed, and how many it left open.
    """
    import selectors

    closed = 0
    with selectors.DefaultSelector() as selector:
        for sock in sockets:
            selector.register(sock, selectors.EVENT_READ)
        waiting = len(sockets)
        while waiting and (left := deadline - time.monotonic()) > 0:
            for key, _ in selector.select(left):
                ready: socket.socket = key.fileobj  # type: ignore[assignment]
                try:
                    data = ready.recv(65536)
                except (ConnectionResetError, TimeoutError):
                    data = b""
                if data:
                    continue
                selector.unregister(ready)
                waiting -= 1
                closed += 1
    for sock in sockets:
        sock.close()
    return closed, len(sockets) - closed
