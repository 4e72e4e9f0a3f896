# -*- test-case-name: tests.test_lifecycle -*-
"""
Capping the connections in progress by not accepting more.

Past the cap tlsreply stops accepting (stops reading its listening
sockets) and the kernel's listen backlog holds new clients until a
connection ends. Accepting and then dropping them instead would turn a
short wait into a failure for every client past the cap.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from twisted.internet.interfaces import IListeningPort
from twisted.logger import Logger

#: Bounded, since every connection in its handshake holds a descriptor
#: and tens of kilobytes of OpenSSL state, yet far above what idle clients
#: holding connections open until the handshake timeout can fill quickly.
DEFAULT_MAX_CONNECTIONS = 4096


class AcceptLimit:
    """
    Pauses or resumes the listening ports around C{maximum} connections in
    progress, as the listening layer (which counts them) reports changes.

    Twisted accepts connections in batches; the cap takes effect at the end
    of the batch in which it is reached, so the count can briefly pass it by
    at most one batch.

    @ivar maximum: connections in progress at which accepting stops.
    @ivar paused: whether accepting is stopped.
    @ivar pauses: how many times accepting has stopped (for metrics,
        L{tlsreply.metrics.counting}).
    """

    _log = Logger()

    def __init__(self, maximum: int, now: Callable[[], float] = time.monotonic) -> None:
        """
        @param now: a monotonic clock in seconds, for L{pausedSeconds}.
        """
        if maximum < 1:
            raise ValueError("the connection limit must be at least 1")
        self.maximum = maximum
        self.paused = False
        self.pauses = 0
        self.ports: Sequence[IListeningPort] = ()
        self._now = now
        self._pausedBefore = 0.0
        self._pausedAt = 0.0

    @property
    def pausedSeconds(self) -> float:
        """
        Seconds accepting has been stopped, in all, the pause in progress
        included.
        """
        if self.paused:
            return self._pausedBefore + self._now() - self._pausedAt
        return self._pausedBefore

    def connectionsChanged(self, inProgress: int) -> None:
        """
        A connection was accepted or ended; C{inProgress} are open now.
        """
        if inProgress >= self.maximum and not self.paused:
            self.paused = True
            self.pauses += 1
            self._pausedAt = self._now()
            for port in self.ports:
                _stopReading(port)
            self._log.warn(
                "{inProgress} connections in progress (--max-connections "
                "{maximum}): not accepting until one ends",
                inProgress=inProgress,
                maximum=self.maximum,
            )
        elif inProgress < self.maximum and self.paused:
            self.paused = False
            self._pausedBefore += self._now() - self._pausedAt
            for port in self.ports:
                _startReading(port)
            self._log.info(
                "{inProgress} connections in progress: accepting again",
                inProgress=inProgress,
            )


def _stopReading(port: IListeningPort) -> None:
    # TCP and Unix ports are file descriptors; not reading the listening
    # socket means not accepting.
    stop = getattr(port, "stopReading", None)
    if stop is not None and getattr(port, "connected", True):
        stop()


def _startReading(port: IListeningPort) -> None:
    start = getattr(port, "startReading", None)
    if (
        start is not None
        and getattr(port, "connected", True)
        and not getattr(port, "disconnecting", False)
    ):
        start()
