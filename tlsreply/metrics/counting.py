# -*- test-case-name: tests.test_metrics -*-
"""
Counting connections for Prometheus, cheaply.

L{ConnectionMetrics} is what the hot path touches: L{ReplyFactory.report}
calls L{ConnectionMetrics.connectionEnded} once per connection, when the
factory has one (L{ReplyFactory.metrics}; without one the cost is that
attribute check). It counts in plain Python numbers (a dict keyed by the
label values, a list of histogram buckets): about a tenth of what
incrementing C{prometheus_client}'s metrics costs, which takes a lock per
value and, with workers, writes a memory-mapped file. It reads only what
the connection's log line already has: no ClientHello is parsed for it
(that is what L{ReplyFactory.recorders} cost).

L{ServerSampler} copies those numbers into C{prometheus_client}'s metrics
(label children resolved once), with what the server keeps as plain
numbers anyway (connections in progress in L{ServerConnections}, its
timeouts, the pauses of its L{AcceptLimit}): when a scrape asks, in a
single process; every second and once more at the end, in a worker of
C{--workers}, whose metrics are in C{prometheus_client}'s multiprocess
files, read by the parent (L{tlsreply.metrics.multiprocess}).

The duration histogram is exported from its buckets by a collector in a
single process; a worker observes into C{prometheus_client}'s histogram
directly, since only that writes histograms to the multiprocess files.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Final

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import HistogramMetricFamily, Metric
from prometheus_client.utils import floatToGoString

from tlsreply.metrics._reasons import FAILURE_REASONS

if TYPE_CHECKING:
    from tlsreply.connection.ending import EndingKind
    from tlsreply.connection.limits import AcceptLimit
    from tlsreply.connection.records import HandshakeInfo
    from tlsreply.connection.registry import ServerConnections

#: Handshake durations, in seconds: from a tenth of a millisecond (a
#: resumed handshake on loopback) to the default handshake timeout.
DURATION_BUCKETS: Final = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)

#: The kinds of timeout (the label of C{tlsreply_timeouts_total}).
TIMEOUT_KINDS: Final = ("handshake", "close")

_HandshakeKey = tuple[str, "str | None", "str | None", bool]

_DURATION_NAME: Final = "tlsreply_handshake_duration_seconds"
_DURATION_HELP: Final = "Seconds from accept to a completed handshake."


class DurationHistogram:
    """
    The handshake durations as plain bucket counts, exported by
    L{collect} (a collector of the registry).
    """

    def __init__(self, bounds: tuple[float, ...] = DURATION_BUCKETS) -> None:
        self.bounds = bounds
        #: Observations per bucket (not cumulative), the last for +Inf.
        self.counts = [0] * (len(bounds) + 1)
        self.sum = 0.0

    def observe(self, seconds: float) -> None:
        self.counts[bisect_left(self.bounds, seconds)] += 1
        self.sum += seconds

    def collect(self) -> Iterable[Metric]:
        cumulative, buckets = 0, []
        for bound, count in zip((*self.bounds, float("inf")), self.counts, strict=True):
            cumulative += count
            buckets.append((floatToGoString(bound), cumulative))
        yield HistogramMetricFamily(
            _DURATION_NAME, _DURATION_HELP, buckets=buckets, sum_value=self.sum
        )


class ConnectionMetrics:
    """
    The per-connection metrics of one server process.

    @ivar registry: where they are registered (a private registry, so that
        two servers in one process, or tests, never share counts).
    """

    def __init__(
        self,
        replyLength: int,
        registry: CollectorRegistry | None = None,
        multiprocess: bool = False,
    ) -> None:
        """
        @param replyLength: bytes in each reply, for
            C{tlsreply_reply_bytes_total}.
        @param multiprocess: the metrics are in C{prometheus_client}'s
            multiprocess files (a worker's): observe durations into its
            histogram directly.
        """
        if registry is None:
            registry = CollectorRegistry()
        self.registry = registry
        self.replyLength = replyLength
        self.handshakes = Counter(
            "tlsreply_handshakes",
            "TLS handshakes completed, as each connection ends.",
            ["tls_version", "cipher", "group", "resumed"],
            registry=registry,
        )
        self.failures = Counter(
            "tlsreply_handshake_failures",
            "Connections whose TLS handshake did not complete, by reason.",
            ["reason"],
            registry=registry,
        )
        self.duration: DurationHistogram | Histogram
        if multiprocess:
            self.duration = Histogram(
                _DURATION_NAME, _DURATION_HELP, buckets=DURATION_BUCKETS, registry=registry
            )
        else:
            self.duration = DurationHistogram()
            registry.register(self.duration)
        self.replies = Counter(
            "tlsreply_replies",
            "Replies sent: connections that completed the handshake and that "
            "the client closed (not aborted by a timeout or the shutdown).",
            registry=registry,
        )
        self.replyBytes = Counter(
            "tlsreply_reply_bytes",
            "Bytes of reply (application data) in the replies sent.",
            registry=registry,
        )
        self.inProgress = Gauge(
            "tlsreply_connections_in_progress",
            "Connections accepted and not yet closed.",
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.acceptPauses = Counter(
            "tlsreply_accept_pauses",
            "Times accepting stopped at --max-connections (new clients wait in "
            "the kernel's backlog).",
            registry=registry,
        )
        self.acceptPausedSeconds = Counter(
            "tlsreply_accept_paused_seconds",
            "Seconds accepting was stopped at --max-connections.",
            registry=registry,
        )
        self.timeouts = Counter(
            "tlsreply_timeouts",
            "Connections aborted by a timeout: handshake (--handshake-timeout) "
            "or close (--close-timeout).",
            ["kind"],
            registry=registry,
        )
        self._handshakeChildren: dict[_HandshakeKey, Any] = {}
        self._failureChildren = {reason: self.failures.labels(reason) for reason in FAILURE_REASONS}
        self._timeoutChildren = {kind: self.timeouts.labels(kind) for kind in TIMEOUT_KINDS}
        # What connections added since the last publish().
        self._handshakeCounts: dict[_HandshakeKey, int] = {}
        self._failureCounts: dict[EndingKind, int] = {}
        self._replyCount = 0
        # Looked up once: this is the per-connection path.
        self._observeDuration = self.duration.observe

    def connectionEnded(
        self, kind: EndingKind, handshake: HandshakeInfo | None, aborted: bool
    ) -> None:
        """
        Count one connection, as it ends.

        @param kind: how it ended (L{tlsreply.connection.ending.Ending.kind}):
            a failed handshake's label, as it is.
        @param handshake: what the handshake negotiated, or C{None} if it
            did not complete.
        @param aborted: whether tlsreply aborted it (a timeout, the
            shutdown) rather than the client closing it.
        """
        if handshake is None:
            self._failureCounts[kind] = self._failureCounts.get(kind, 0) + 1
            return
        key = (handshake.tlsVersion, handshake.cipher, handshake.group, handshake.resumed)
        counts = self._handshakeCounts
        counts[key] = counts.get(key, 0) + 1
        self._observeDuration(handshake.duration)
        if not aborted:
            self._replyCount += 1

    def publish(self) -> None:
        """
        Add what connections counted since the last call to
        C{prometheus_client}'s metrics.
        """
        handshakes, self._handshakeCounts = self._handshakeCounts, {}
        for key, count in handshakes.items():
            child = self._handshakeChildren.get(key)
            if child is None:
                tlsVersion, cipher, group, resumed = key
                child = self._handshakeChildren[key] = self.handshakes.labels(
                    tlsVersion, cipher or "none", group or "none", "true" if resumed else "false"
                )
            child.inc(count)
        failures, self._failureCounts = self._failureCounts, {}
        for reason, count in failures.items():
            self._failureChildren[reason].inc(count)
        replies, self._replyCount = self._replyCount, 0
        if replies:
            self.replies.inc(replies)
            self.replyBytes.inc(replies * self.replyLength)

    def timedOut(self, kind: str, count: int) -> None:
        """
        Add C{count} timeouts of C{kind} (one of L{TIMEOUT_KINDS}).
        """
        if count:
            self._timeoutChildren[kind].inc(count)


class ServerSampler:
    """
    Copies what a server counts as plain numbers (its L{ConnectionMetrics},
    L{ServerConnections}, L{AcceptLimit}) into C{prometheus_client}'s
    metrics: the connections in progress as they are, the counters by what
    they gained since the last sample.
    """

    def __init__(
        self,
        metrics: ConnectionMetrics,
        connections: ServerConnections,
        limit: AcceptLimit | None,
    ) -> None:
        self.metrics = metrics
        self.connections = connections
        self.limit = limit
        self._handshakeTimeouts = 0
        self._closeTimeouts = 0
        self._pauses = 0
        self._pausedSeconds = 0.0

    def sample(self) -> None:
        """
        Bring the metrics up to date.
        """
        metrics = self.metrics
        metrics.publish()
        connections = self.connections
        metrics.inProgress.set(connections.inProgress)
        handshakeTimeouts, closeTimeouts = connections.handshakeTimeouts, connections.closeTimeouts
        metrics.timedOut("handshake", handshakeTimeouts - self._handshakeTimeouts)
        metrics.timedOut("close", closeTimeouts - self._closeTimeouts)
        self._handshakeTimeouts, self._closeTimeouts = handshakeTimeouts, closeTimeouts
        limit = self.limit
        if limit is None:
            return
        pauses, pausedSeconds = limit.pauses, limit.pausedSeconds
        if pauses > self._pauses:
            metrics.acceptPauses.inc(pauses - self._pauses)
        if pausedSeconds > self._pausedSeconds:
            metrics.acceptPausedSeconds.inc(pausedSeconds - self._pausedSeconds)
        self._pauses, self._pausedSeconds = pauses, pausedSeconds
