# -*- test-case-name: tests.test_deadlines -*-
"""
Deadlines for many connections on one timer.

Every connection of a server gets the same handshake timeout and the same
close timeout, so the deadlines of one kind fall in the order the
connections reached the point they count from. Keeping them in that order
(a dict remembers insertion order) lets one reactor timer, set for the
earliest deadline, serve them all: adding or removing a connection is a
dict operation, with no C{IDelayedCall} made and cancelled for each one, as
a timer per connection would need (two timers each, at thousands of
handshakes a second).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from twisted.internet.interfaces import IDelayedCall, IReactorTime

K = TypeVar("K")


class Deadlines(Generic[K]):
    """
    Items that must be gone within C{delay} seconds of being added; those
    still here when their time is up are handed to C{expired}.

    A deadline is exact (the timer is set for the earliest one) as long as
    the clock does not go backwards; if it does, an item added after the
    step can expire late, by at most the size of the step.

    @ivar delay: seconds from L{add} to expiry; C{0} means never.
    """

    def __init__(
        self, clock: IReactorTime, delay: float, expired: Callable[[K], object]
    ) -> None:
        """
        @param clock: the time source and timer.
        @param delay: seconds from L{add} to expiry; C{0} for no limit, in
            which case L{add} does nothing.
        @param expired: called with each item whose time is up, after it
            was removed.
        """
        self.delay = delay
        self._clock = clock
        self._expired = expired
        self._due: dict[K, float] = {}
        self._timer: IDelayedCall | None = None

    def __len__(self) -> int:
        return len(self._due)

    def __contains__(self, item: K) -> bool:
        return item in self._due

    def add(self, item: K) -> None:
        """
        Give C{item} the delay from now. Adding an item again moves its
        deadline.

        Deadlines always count from the moment of adding, so that they
        stay in the order of the dict, which is what lets one timer serve
        them all.
        """
        if not self.delay:
            return
        due = self._due
        if item in due:
            del due[item]
        due[item] = self._clock.seconds() + self.delay
        if self._timer is None:
            self._timer = self._clock.callLater(self.delay, self._fire)

    def discard(self, item: K) -> None:
        """
        Forget C{item}, if it is here. The timer stays while other items
        wait (when it fires for an item that is gone, it is set again for
        the next one), and is cancelled when none is left.
        """
        due = self._due
        if due.pop(item, None) is not None and not due and self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def clear(self) -> None:
        """
        Forget every item and stop the timer.
        """
        self._due.clear()
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None

    def _fire(self) -> None:
        self._timer = None
        due = self._due
        now = self._clock.seconds()
        late: list[K] = []
        for item, deadline in due.items():
            if deadline > now:
                break
            late.append(item)
        for item in late:
            del due[item]
        # Set the timer before calling out: an expiry handler may add items.
        self._schedule(now)
        for item in late:
            self._expired(item)

    def _schedule(self, now: float) -> None:
        if self._timer is not None or not self._due:
            return
        first = next(iter(self._due.values()))
        self._timer = self._clock.callLater(max(0.0, first - now), self._fire)
