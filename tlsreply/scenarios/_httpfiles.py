# -*- test-case-name: tests.test_revocation -*-
"""
Files served over plain HTTP on 127.0.0.1, for what a client fetches while
it verifies a scenario's certificate: C{crl-revoked}'s CRL, at the
distribution point its certificate names.

The socket is bound and listening as soon as an L{HTTPFiles} is made, so
that its URLs are known before the certificate that names them is issued,
and nothing needs a reactor until the files are served: L{HTTPFiles.start}
hands the socket to a reactor (C{IReactorSocket.adoptStreamPort}), where a
C{twisted.web} site serves it. A client that connects in between waits in
the listen queue.
"""

from __future__ import annotations

import socket
from typing import Any, Final

from twisted.internet.defer import Deferred, maybeDeferred, succeed
from twisted.internet.interfaces import IListeningPort
from twisted.web import http
from twisted.web.resource import Resource
from twisted.web.server import Request, Site

#: Where the files are served.
LOOPBACK: Final = "127.0.0.1"


class _QuietSite(Site):
    """
    A site that logs no request: a client's CRL fetch is not the server's
    news.
    """

    noisy = False

    def logPrefix(self) -> str:
        # Its port's start and stop lines: "scenario files over HTTP
        # starting on 53375".
        return "scenario files over HTTP"

    def log(self, request: http.Request) -> None:
        pass


class _Files(Resource):
    """
    Fixed bytes at fixed paths, with their media types; 404 elsewhere.
    (Not C{twisted.web.static}, whose import warns of deprecations in
    every test run that uses a fixture.)
    """

    isLeaf = True

    def __init__(self) -> None:
        super().__init__()
        self.files: dict[bytes, tuple[bytes, str]] = {}

    def render_GET(self, request: Request) -> bytes:
        found = self.files.get(request.path)
        if found is None:
            request.setResponseCode(http.NOT_FOUND)
            request.setHeader(b"Content-Type", b"text/plain; charset=utf-8")
            return b"not found\n"
        data, contentType = found
        request.setHeader(b"Content-Type", contentType.encode("ascii"))
        return data


class HTTPFiles:
    """
    A few files at fixed paths on an ephemeral 127.0.0.1 port.

    @ivar host: C{"127.0.0.1"}.
    @ivar port: the port, bound when this was made.
    """

    def __init__(self) -> None:
        self._socket: socket.socket | None = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.bind((LOOPBACK, 0))
        self._socket.listen(50)
        self._socket.setblocking(False)
        self.host = LOOPBACK
        self.port: int = self._socket.getsockname()[1]
        self._files = _Files()
        self._listening: IListeningPort | None = None

    def __repr__(self) -> str:
        return f"<HTTPFiles http://{self.host}:{self.port}/ {sorted(self._files.files)}>"

    def url(self, name: str) -> str:
        """
        The URL of the file C{name}, before or after it is added.

        @param name: one path segment (no slash).
        """
        if not name or "/" in name:
            raise ValueError(f"a file name is one path segment, not {name!r}")
        return f"http://{self.host}:{self.port}/{name}"

    def add(self, name: str, data: bytes, contentType: str) -> str:
        """
        Serve C{data} at C{/name}, as C{contentType}.

        @return: its URL.
        """
        url = self.url(name)
        self._files.files[f"/{name}".encode("ascii")] = (data, contentType)
        return url

    def start(self, reactor: Any) -> None:
        """
        Serve the files on C{reactor} (which must provide
        C{IReactorSocket}), from now until L{stop}.
        """
        if self._socket is None:
            raise RuntimeError("these files are served already, or were stopped")
        self._listening = reactor.adoptStreamPort(
            self._socket.fileno(), socket.AF_INET, _QuietSite(self._files)
        )
        # The reactor serves its own duplicate of the socket.
        self._socket.close()
        self._socket = None

    def stop(self) -> Deferred[None]:
        """
        Stop serving, or close the socket if it was never served.
        """
        if self._socket is not None:
            self._socket.close()
            self._socket = None
        listening, self._listening = self._listening, None
        if listening is None:
            return succeed(None)
        return maybeDeferred(listening.stopListening).addCallback(lambda _: None)
