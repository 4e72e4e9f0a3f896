# -*- test-case-name: tests.test_metricsweb -*-
"""
Turns for requests: at most so many a second, first come first served,
urgent ones first.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from twisted.internet.interfaces import IDelayedCall, IReactorTime


class RequestPacer:
    """
    Turns for the requests of every connection of the endpoint: at most
    C{perSecond} a second, in bursts of at most C{burst}, in the order they
    asked, urgent ones before the others (a token bucket, with two queues
    for those that wait).
    """

    def __init__(self, clock: IReactorTime, perSecond: float, burst: int) -> None:
        self._clock = clock
        self._perSecond = perSecond
        self._burst = burst
        self._tokens = float(burst)
        # When the tokens were last counted; the clock is first read when
        # a request comes (a reactor being built may not tell the time).
        self._refilled: float | None = None
        self._waiting: deque[Callable[[], None]] = deque()
        self._urgent: deque[Callable[[], None]] = deque()
        self._call: IDelayedCall | None = None

    def ask(self, turn: Callable[[], None], urgent: bool = False) -> None:
        """
        Call C{turn} now if nobody waits and the pace allows it, else when
        its turn comes (unless L{cancel}ed first).

        @param urgent: the turn comes before those of every request that
            is not (a health check, which must not wait behind scrapes).
        """
        if not self._urgent and (urgent or not self._waiting) and self._take():
            turn()
            return
        (self._urgent if urgent else self._waiting).append(turn)
        self._schedule()

    def cancel(self, turn: Callable[[], None]) -> None:
        """
        Forget C{turn}, if it still waits.
        """
        for queue in (self._waiting, self._urgent):
            try:
                queue.remove(turn)
            except ValueError:
                continue
            break
        if not (self._waiting or self._urgent) and self._call is not None:
            self._call.cancel()
            self._call = None

    def _take(self) -> bool:
        now = self._clock.seconds()
        if self._refilled is not None:
            gained = (now - self._refilled) * self._perSecond
            self._tokens = min(self._burst, self._tokens + max(0.0, gained))
        self._refilled = now
        # A little slack: a call made when a token is due must find it
        # there, whatever the floating-point sums say.
        if self._tokens < 1 - 1e-9:
            return False
        self._tokens = max(0.0, self._tokens - 1)
        return True

    def _schedule(self) -> None:
        if self._call is None and (self._waiting or self._urgent):
            delay = max(0.0, (1 - self._tokens) / self._perSecond)
            self._call = self._clock.callLater(delay, self._run)

    def _run(self) -> None:
        self._call = None
        try:
            while (self._urgent or self._waiting) and self._take():
                (self._urgent or self._waiting).popleft()()
        finally:
            self._schedule()
