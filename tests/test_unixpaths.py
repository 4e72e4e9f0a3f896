"""
Who owns a Unix socket's path: the process that bound it. A port that
adopted its socket (from systemd, or from the parent of C{--workers}) leaves
the path, its mode and the socket itself as it found them when it stops; a
port that bound its own path removes it.
"""

from __future__ import annotations

import os
import socket
import stat
from pathlib import Path

from twisted.internet import reactor
from twisted.internet.endpoints import AdoptedStreamServerEndpoint

from tests.support import (
    WireTestCase,
    clientContext,
    inThread,
    makeCertificates,
    onMemoryBIO,
    startServer,
    temporaryDirectory,
)
from tlsreply import ReplyFactory, TLSReplyService, buildServerContexts, loadCredentials
from tlsreply.transport.listening import ListeningReactor


def fetchOverUnix(path: Path, caPath: str) -> bytes:
    """
    What a TLS client connected to the Unix socket at C{path} reads, up to
    the server's close_notify.
    """
    with socket.socket(socket.AF_UNIX) as raw:
        raw.settimeout(10)
        raw.connect(str(path))
        with clientContext(caPath).wrap_socket(
            raw, server_hostname="localhost", suppress_ragged_eofs=False
        ) as tls:
            chunks = []
            while chunk := tls.recv(100):
                chunks.append(chunk)
            return b"".join(chunks)


class UnixPathTests(WireTestCase):
    """
    A Unix socket handed over, as systemd hands one, outlives the server
    that served it; one the server bound does not.
    """

    async def test_adoptedSocketIsLeftAlone(self) -> None:
        """
        A server that adopted a listening Unix socket (as C{systemd:}
        addresses do) serves it, and when it stops leaves the path there,
        with its mode, and the socket listening: systemd still holds it for
        the next start, and a client that connects meanwhile waits in its
        queue instead of being refused or finding no such file.
        """
        directory = temporaryDirectory(self)
        certificates = makeCertificates(directory)
        path = directory / "tlsreply.sock"
        held = socket.socket(socket.AF_UNIX)
        self.addCleanup(held.close)
        held.bind(str(path))
        os.chmod(path, 0o600)
        held.listen()
        held.setblocking(False)
        credentials = loadCredentials(certificates.certificatePath, certificates.keyPath)
        # The endpoint closes the descriptor it adopted: give it a copy.
        endpoint = AdoptedStreamServerEndpoint(
            ListeningReactor(reactor, self.socketTLS), os.dup(held.fileno()), socket.AF_UNIX
        )
        service = TLSReplyService(
            [("systemd:domain=UNIX:index=0", endpoint)],
            buildServerContexts(credentials),
            ReplyFactory(b"test\n", clock=reactor),
        )
        service.startService()
        self.addCleanup(lambda: service.running and service.stopService())
        self.assertEqual(stat.S_IMODE(path.stat().st_mode), 0o600)
        caPath = str(certificates.caPath)
        self.assertEqual(await inThread(fetchOverUnix, path, caPath), b"test\n")
        await service.stopService()

        self.assertTrue(stat.S_ISSOCK(path.stat().st_mode))
        self.assertEqual(stat.S_IMODE(path.stat().st_mode), 0o600)
        with socket.socket(socket.AF_UNIX) as client:
            client.settimeout(10)
            client.connect(str(path))
            held.settimeout(10)
            accepted, _ = held.accept()
            accepted.close()

    async def test_boundPathIsRemoved(self) -> None:
        """
        A server that bound its C{unix:} path itself removes it when it
        stops.
        """
        path = temporaryDirectory(self) / "tlsreply.sock"
        server = await startServer(self, listen=f"unix:{path}")
        self.assertEqual(await inThread(fetchOverUnix, path, server.caPath), b"test\n")
        await server.service.stopService()
        self.assertFalse(path.exists())


UnixPathTestsOnMemoryBIO = onMemoryBIO(UnixPathTests)
