"""
The graceful stop proven with connections that still need the grace when
it begins: one mid-handshake, one whose client reads a large reply slowly.
Both finish normally within C{--shutdown-grace}, on both connection paths.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable

from tests.support import (
    LOOPBACK,
    RunningServer,
    WireTestCase,
    clientContext,
    inThread,
    onMemoryBIO,
    startServer,
)
from tests.test_lifecycle import waitUntil

#: Far more than the socket buffers between the server and a client that
#: does not read hold, so that most of it is still to be sent when the stop
#: begins.
LARGE_REPLY = bytes(range(256)) * (32 << 12)  # 32 MiB
GRACE = 30.0


class GracefulStopTests(WireTestCase):
    """
    L{TLSReplyService.stopService} lets connections in progress finish.
    """

    async def stopWhile(
        self,
        server: RunningServer,
        client: Callable[[threading.Event], bytes],
        connections: int = 1,
    ) -> tuple[bytes, float]:
        """
        Run C{client(stopping)} in a thread; once the server has accepted
        its connection, begin the stop and tell the client, which goes on
        only then. Return what the client returned and how long the stop
        took.
        """
        stopping = threading.Event()
        running = inThread(client, stopping)
        await waitUntil(lambda: server.service.connections.inProgress == connections, 10)
        started = time.monotonic()
        stopped = server.service.stopService()
        stopping.set()
        result = await running
        await stopped
        return result, time.monotonic() - started

    async def test_midHandshakeConnectionCompletes(self) -> None:
        """
        A client that has connected but not yet sent its ClientHello when
        the stop begins completes its handshake and gets the reply and
        close_notify; the stop waits for it, not for the grace.
        """
        server = await startServer(self, closeTimeout=GRACE)
        server.service.shutdownGrace = GRACE

        def lateHandshake(stopping: threading.Event) -> bytes:
            with socket.create_connection((LOOPBACK, server.port), timeout=GRACE) as raw:
                stopping.wait(GRACE)
                with clientContext(server.caPath).wrap_socket(
                    raw, server_hostname="localhost", suppress_ragged_eofs=False
                ) as tls:
                    return tls.recv(100) + tls.recv(100)

        reply, took = await self.stopWhile(server, lateHandshake)
        self.assertEqual(reply, b"test\n")
        self.assertLess(took, GRACE / 2)
        [event] = server.connectionEvents()
        self.assertEqual(event["outcome"], "replied")

    async def test_slowReaderOfALargeReplyCompletes(self) -> None:
        """
        A client that has read nothing of a 32 MiB reply when the stop
        begins, and reads it only then, gets all of it and close_notify.
        """
        server = await startServer(self, reply=LARGE_REPLY, closeTimeout=GRACE)
        server.service.shutdownGrace = GRACE

        def slowReader(stopping: threading.Event) -> bytes:
            with socket.socket() as raw:
                raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 16)
                raw.settimeout(GRACE)
                raw.connect((LOOPBACK, server.port))
                with clientContext(server.caPath).wrap_socket(
                    raw, server_hostname="localhost", suppress_ragged_eofs=False
                ) as tls:
                    first = tls.recv(1)
                    stopping.wait(GRACE)
                    chunks = [first]
                    while chunk := tls.recv(1 << 16):
                        chunks.append(chunk)
                    return b"".join(chunks)

        reply, took = await self.stopWhile(server, slowReader)
        self.assertEqual(len(reply), len(LARGE_REPLY))
        self.assertEqual(reply, LARGE_REPLY)
        self.assertLess(took, GRACE)
        [event] = server.connectionEvents()
        self.assertEqual(event["outcome"], "replied")


GracefulStopTestsOnMemoryBIO = onMemoryBIO(GracefulStopTests)
