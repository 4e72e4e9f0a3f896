"""
L{tlsreply.connection._deadlines}: many deadlines on one timer, on a fake clock.
"""

from __future__ import annotations

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from tlsreply.connection._deadlines import Deadlines


class DeadlinesTests(SynchronousTestCase):
    """
    Items expire exactly C{delay} after they were added, in order, with one
    timer for all of them.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.expired: list[tuple[str, float]] = []
        self.deadlines: Deadlines[str] = Deadlines(
            self.clock, 10, lambda item: self.expired.append((item, self.clock.seconds()))
        )

    def test_eachExpiresOnTime(self) -> None:
        """
        Items added at different times each expire exactly their delay
        later, in the order they were added.
        """
        self.deadlines.add("a")
        self.clock.advance(3)
        self.deadlines.add("b")
        self.clock.advance(6.9)
        self.assertEqual(self.expired, [])
        self.clock.advance(0.1)
        self.assertEqual(self.expired, [("a", 10)])
        self.clock.advance(3)
        self.assertEqual(self.expired, [("a", 10), ("b", 13)])
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_oneTimerForMany(self) -> None:
        """
        However many items wait, one timer is pending.
        """
        for index in range(1000):
            self.deadlines.add(str(index))
            self.clock.advance(0.001)
        self.assertEqual(len(self.clock.getDelayedCalls()), 1)
        self.assertEqual(len(self.deadlines), 1000)

    def test_discardedItemsDoNotExpire(self) -> None:
        """
        An item discarded in time never expires; the timer, set for it,
        moves on to the next item.
        """
        self.deadlines.add("a")
        self.clock.advance(1)
        self.deadlines.add("b")
        self.deadlines.discard("a")
        self.clock.advance(9)
        self.assertEqual(self.expired, [])
        self.clock.advance(1)
        self.assertEqual(self.expired, [("b", 11)])

    def test_timerCancelledWhenNoneLeft(self) -> None:
        """
        Discarding the last item cancels the timer: an idle server has none.
        """
        self.deadlines.add("a")
        self.deadlines.discard("a")
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.deadlines.discard("never added")
        self.assertNotIn("a", self.deadlines)

    def test_addingAgainMovesTheDeadline(self) -> None:
        """
        Adding an item again gives it the full delay from then.
        """
        self.deadlines.add("a")
        self.clock.advance(5)
        self.deadlines.add("a")
        self.clock.advance(9)
        self.assertEqual(self.expired, [])
        self.clock.advance(1)
        self.assertEqual(self.expired, [("a", 15)])

    def test_expiryMayAdd(self) -> None:
        """
        The expiry handler may add items (a close timeout extended for a
        client still reading): they get a deadline of their own.
        """
        seen: list[float] = []

        def extend(item: str) -> None:
            seen.append(self.clock.seconds())
            if len(seen) < 3:
                deadlines.add(item)

        deadlines: Deadlines[str] = Deadlines(self.clock, 2, extend)
        deadlines.add("reader")
        self.clock.pump([1] * 10)
        self.assertEqual(seen, [2, 4, 6])
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_zeroDelayMeansNoLimit(self) -> None:
        """
        With a delay of 0 nothing is kept and no timer is set.
        """
        deadlines: Deadlines[str] = Deadlines(self.clock, 0, lambda item: None)
        deadlines.add("a")
        self.assertEqual(len(deadlines), 0)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_clear(self) -> None:
        """
        L{Deadlines.clear} forgets every item and stops the timer.
        """
        self.deadlines.add("a")
        self.deadlines.clear()
        self.clock.advance(20)
        self.assertEqual((self.expired, self.clock.getDelayedCalls()), ([], []))
