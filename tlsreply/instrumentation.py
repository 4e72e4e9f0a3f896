# -*- test-case-name: tests.test_metrics -*-
"""
The metrics of the server the command line runs (C{--metrics}), put
together: for a single process (L{singleProcessMetrics}), for the parent
of C{--workers} (L{parentMetrics}) and for each of its workers
(L{instrumentWorker}).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from prometheus_client import CollectorRegistry
from twisted.internet.task import LoopingCall

from tlsreply.metrics.collectors import (
    ServerStateCollector,
    WorkerProcessCollector,
    addProcessCollector,
)
from tlsreply.metrics.counting import ConnectionMetrics, ServerSampler
from tlsreply.metrics.multiprocess import MultiprocessFiles, useMultiprocessFiles
from tlsreply.metrics.web import MetricsService, parseMetricsAddress

if TYPE_CHECKING:
    from tlsreply.service import TLSReplyService
    from tlsreply.tls.reload import ReloadableContexts
    from tlsreply.workers.supervisor import Worker, WorkerPool

#: Seconds between two samples of a worker's gauges and counters kept as
#: plain numbers (L{ServerSampler}): what a scrape of the parent can lag.
WORKER_SAMPLE_INTERVAL: Final = 1.0


def singleProcessMetrics(
    reactor: Any,
    description: str,
    server: TLSReplyService,
    contexts: ReloadableContexts,
) -> MetricsService:
    """
    Count C{server}'s connections and serve its metrics at C{description};
    the plain numbers are sampled as each scrape asks.
    """
    metrics = ConnectionMetrics(len(server.replyFactory.reply))
    server.replyFactory.metrics = metrics
    sampler = ServerSampler(metrics, server.connections, server.limit)
    registry = metrics.registry
    registry.register(ServerStateCollector(contexts))
    addProcessCollector(registry)
    service = MetricsService(
        parseMetricsAddress(reactor, description), description, registry, reactor=reactor
    )
    service.metricsResource.beforeScrape.append(sampler.sample)
    return service


def parentMetrics(
    reactor: Any,
    description: str,
    pool: WorkerPool,
    contexts: ReloadableContexts,
    files: MultiprocessFiles,
) -> MetricsService:
    """
    Serve, from the parent, the metrics of every worker (from C{files},
    which must be the parent service of C{pool}: the folder is made as the
    workers start and removed once they have stopped), the certificates
    and reloads (the parent's), the parent's process metrics and each live
    worker's.
    """
    registry = CollectorRegistry()
    files.addCollector(registry)
    registry.register(ServerStateCollector(contexts))
    addProcessCollector(registry)
    registry.register(
        WorkerProcessCollector(
            lambda: {pid: w.slot + 1 for pid, w in pool.workers.items() if not w.retired}
        )
    )

    def exited(worker: Worker) -> None:
        files.processDied(worker.pid)

    pool.exitObservers.append(exited)
    return MetricsService(
        parseMetricsAddress(reactor, description), description, registry, reactor=reactor
    )


def instrumentWorker(service: TLSReplyService, reactor: Any, files: MultiprocessFiles) -> None:
    """
    In a worker, right after C{fork}: count C{service}'s connections into
    the multiprocess files of C{files}, and sample its plain numbers every
    L{WORKER_SAMPLE_INTERVAL} seconds and once more as the worker stops
    (after its last connection).

    @raise RuntimeError: if the parent has not made the folder (the pool is
        not a child of C{files}).
    """
    if files.path is None:
        raise RuntimeError("the workers' metrics folder was not made before the fork")
    useMultiprocessFiles(files.path)
    metrics = ConnectionMetrics(len(service.replyFactory.reply), multiprocess=True)
    service.replyFactory.metrics = metrics
    sampler = ServerSampler(metrics, service.connections, service.limit)
    loop = LoopingCall(sampler.sample)
    loop.clock = reactor
    reactor.callWhenRunning(loop.start, WORKER_SAMPLE_INTERVAL)
    reactor.addSystemEventTrigger("before", "shutdown", sampler.sample)
