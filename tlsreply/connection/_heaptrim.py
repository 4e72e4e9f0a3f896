# -*- test-case-name: tests.test_heaptrim -*-
"""
Giving back to the system the heap a burst of handshakes freed.

A handshake in progress holds tens of kilobytes of OpenSSL state (key
shares, the transcript, the handshake's buffers) that it frees when it
ends. When many run at once (a burst of clients arriving together), that
memory is freed in the middle of the heap, below the connections that
outlive their handshake, and glibc's C{free} gives back only the top of
the heap: the process keeps the burst's peak (BENCHMARKS.md, "Memory under
a burst": 26.6 of 48.9 KiB per connection). C{malloc_trim(0)} returns those
holes' pages to the system.

It costs about 12 ms after a burst of 1,000, so it runs only when the
handshakes in progress fall to none after at least L{BURST} were in
progress at once since the last trim, at most once every L{INTERVAL}
seconds, and from its own reactor turn (C{callLater}), never inside a
connection's callback. Where the C library is not glibc, nothing is done.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import mmap
import time
from collections.abc import Callable
from functools import cache

from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger

#: Handshakes in progress at once that make a burst worth a trim: below
#: it the freed holes are small, and a steady load (the benchmark's 48 in
#: flight) never pays for a trim.
BURST = 64

#: Seconds at least between two trims, so that bursts in quick succession
#: pay for one trim a second at most.
INTERVAL = 1.0


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        )
    ]


def _glibc() -> ctypes.CDLL | None:
    """
    The C library, if it is glibc (it has C{malloc_trim}); else C{None}.
    """
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        libc = ctypes.CDLL(name)
    except OSError:
        return None
    if not hasattr(libc, "malloc_trim"):
        return None
    libc.malloc_trim.argtypes = [ctypes.c_size_t]
    libc.malloc_trim.restype = ctypes.c_int
    if hasattr(libc, "mallinfo2"):
        libc.mallinfo2.argtypes = []
        libc.mallinfo2.restype = _MallInfo2
    return libc


class GlibcHeap:
    """
    glibc's heap, through C{malloc_trim} and C{mallinfo2} (glibc 2.33 and
    later; without it the freed bytes are not reported).
    """

    def __init__(self, libc: ctypes.CDLL) -> None:
        self._libc = libc
        self._mallinfo2 = getattr(libc, "mallinfo2", None)

    def freeBytes(self) -> int | None:
        """
        Bytes free in the heap but kept by the process (C{fordblks}), or
        C{None} if this glibc cannot say.
        """
        if self._mallinfo2 is None:
            return None
        return int(self._mallinfo2().fordblks)

    def trim(self) -> None:
        """
        Return every free page of the heap to the system.
        """
        self._libc.malloc_trim(0)


def residentBytes() -> int | None:
    """
    This process's resident memory (Linux's C{/proc/self/statm}), or
    C{None} where there is none to read.
    """
    try:
        with open("/proc/self/statm", "rb") as statm:
            pages = int(statm.read().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return pages * mmap.PAGESIZE


@cache
def glibcHeap() -> GlibcHeap | None:
    """
    @return: this process's heap if its C library is glibc, else C{None}
        (musl, macOS: nothing to trim).
    """
    libc = _glibc()
    return None if libc is None else GlibcHeap(libc)


class HeapTrim:
    """
    Watches the handshakes in progress of one server, and trims the heap
    once they have fallen to none after a burst.

    @ivar trims: how many times the heap was trimmed.
    @ivar heap: what is trimmed; C{None} (not glibc) makes every method a
        no-op beyond counting.
    """

    _log = Logger()

    def __init__(
        self,
        clock: IReactorTime,
        heap: GlibcHeap | None,
        burst: int = BURST,
        interval: float = INTERVAL,
        timer: Callable[[], float] = time.perf_counter,
    ) -> None:
        """
        @param clock: the reactor that runs the trim, in a turn of its own,
            and whose seconds space the trims.
        @param heap: the heap to trim (L{glibcHeap}), or C{None}.
        @param burst: handshakes in progress at once that make a burst.
        @param interval: seconds at least between two trims.
        @param timer: times the trim for its log event.
        """
        self.clock = clock
        self.heap = heap
        self.burst = burst
        self.interval = interval
        self.trims = 0
        self._timer = timer
        self._handshaking: dict[object, None] = {}
        self._peak = 0
        self._lastTrim: float | None = None
        self._pending: IDelayedCall | None = None

    def handshakeStarted(self, connection: object) -> None:
        """
        C{connection} was accepted: its handshake is in progress.
        """
        handshaking = self._handshaking
        handshaking[connection] = None
        if len(handshaking) > self._peak:
            self._peak = len(handshaking)

    def handshakeEnded(self, connection: object) -> None:
        """
        C{connection}'s handshake ended (completed or failed), or the
        connection did; calling it again for the same connection does
        nothing.
        """
        handshaking = self._handshaking
        if connection in handshaking:
            del handshaking[connection]
            if not handshaking and self._peak >= self.burst and self.heap is not None:
                self._schedule()

    def _schedule(self) -> None:
        if self._pending is not None and self._pending.active():
            return
        delay = 0.0
        if self._lastTrim is not None:
            delay = max(0.0, self._lastTrim + self.interval - self.clock.seconds())
        self._pending = self.clock.callLater(delay, self._trim)

    def _trim(self) -> None:
        self._pending = None
        heap = self.heap
        if self._handshaking or heap is None:
            # A new burst began meanwhile: its own end trims.
            return
        peak, self._peak = self._peak, 0
        self._lastTrim = self.clock.seconds()
        heldFree = heap.freeBytes()
        residentBefore = residentBytes()
        started = self._timer()
        heap.trim()
        elapsed = self._timer() - started
        residentAfter = residentBytes()
        self.trims += 1
        self._log.debug(
            "heap trimmed after {handshakes} handshakes at once "
            "({heldFree} bytes of it free), resident {residentBefore} bytes "
            "before, {residentAfter} after, in {milliseconds:.1f} ms",
            handshakes=peak,
            heldFree=heldFree,
            residentBefore=residentBefore,
            residentAfter=residentAfter,
            milliseconds=elapsed * 1000,
            heapTrimmed=True,
        )

    def stop(self) -> None:
        """
        Cancel a trim not run yet (the server is stopping).
        """
        if self._pending is not None and self._pending.active():
            self._pending.cancel()
        self._pending = None
