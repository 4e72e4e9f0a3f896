# -*- test-case-name: tests.test_metrics -*-
"""
Counting connections for Prometheus, cheaply.

L{ConnectionMetrics} holds the metrics that change with every connection
and is what the hot path touches: L{ReplyFactory.report} calls
L{ConnectionMetrics.connectionEnded} once per connection, when the factory
has one (L{ReplyFactory.metrics}; without one the cost is that attribute
check). It increments label children resolved once and kept in a dict
keyed by the label values, never C{labels()} per connection, and it reads
only what the connection's log line already has: no ClientHello is parsed
for it (that is what L{ReplyFactory.recorders} cost).

What changes without a connection ending (connections in progress, accept
pauses at the cap, timeouts) is kept as plain numbers by the server's
L{ServerConnections} and L{AcceptLimit} and copied into the metrics by
L{ServerSampler}: when a scrape asks, in a single process; every second and
at the end, in a worker of C{--workers} (whose metrics are written to
C{prometheus_client}'s multiprocess files and read by the parent).

The metric objects are C{prometheus_client}'s, so the same code serves a
single process (values in memory) and workers (values in memory-mapped
files, C{PROMETHEUS_MULTIPROC_DIR}; see L{tlsreply.metricsworkers}).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from tlsreply.metricsreasons import FAILURE_REASONS, failureReason

if TYPE_CHECKING:
    from tlsreply.connections import ServerConnections
    from tlsreply.limits import AcceptLimit
    from tlsreply.records import HandshakeInfo

#: Handshake durations, in seconds: from a tenth of a millisecond (a
#: resumed handshake on loopback) to the default handshake timeout.
DURATION_BUCKETS: Final = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)

#: The kinds of timeout (the label of C{tlsreply_timeouts_total}).
TIMEOUT_KINDS: Final = ("handshake", "close")

_HandshakeKey = tuple[str, "str | None", "str | None", bool]


class ConnectionMetrics:
    """
    The per-connection metrics of one server process.

    @ivar registry: where they are registered (a private registry, so that
        two servers in one process, or tests, never share counts).
    """

    def __init__(self, replyLength: int, registry: CollectorRegistry | None = None) -> None:
        """
        @param replyLength: bytes in each reply, for
            C{tlsreply_reply_bytes_total}.
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
        self.duration = Histogram(
            "tlsreply_handshake_duration_seconds",
            "Seconds from accept to a completed handshake.",
            buckets=DURATION_BUCKETS,
            registry=registry,
        )
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
        # Bound methods, looked up once: this is the per-connection path.
        self._observeDuration = self.duration.observe
        self._incReplies = self.replies.inc
        self._incReplyBytes = self.replyBytes.inc

    def connectionEnded(
        self, closed: str, handshake: HandshakeInfo | None, aborted: bool
    ) -> None:
        """
        Count one connection, as it ends.

        @param closed: how it ended, as its log line says.
        @param handshake: what the handshake negotiated, or L{None} if it
            did not complete.
        @param aborted: whether tlsreply aborted it (a timeout, the
            shutdown) rather than the client closing it.
        """
        if handshake is None:
            self._failureChildren[failureReason(closed)].inc()
            return
        key = (handshake.tlsVersion, handshake.cipher, handshake.group, handshake.resumed)
        child = self._handshakeChildren.get(key)
        if child is None:
            child = self._handshakeChildren[key] = self.handshakes.labels(
                handshake.tlsVersion,
                handshake.cipher or "none",
                handshake.group or "none",
                "true" if handshake.resumed else "false",
            )
        child.inc()
        self._observeDuration(handshake.duration)
        if not aborted:
            self._incReplies()
            self._incReplyBytes(self.replyLength)

    def timedOut(self, kind: str, count: int) -> None:
        """
        Add C{count} timeouts of C{kind} (one of L{TIMEOUT_KINDS}).
        """
        if count:
            self._timeoutChildren[kind].inc(count)


class ServerSampler:
    """
    Copies what a server counts as plain numbers (L{ServerConnections},
    L{AcceptLimit}) into its L{ConnectionMetrics}: the connections in
    progress as they are, the counters by what they gained since the last
    sample.
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
