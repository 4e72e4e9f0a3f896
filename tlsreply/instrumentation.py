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
    sampler = countConnections(server)
    service = _serveMetrics(reactor, description, sampler.metrics.registry, contexts)
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
    service = _serveMetrics(reactor, description, registry, contexts)
    registry.register(
        WorkerProcessCollector(
            lambda: {pid: w.slot + 1 for pid, w in pool.workers.items() if not w.retired}
        )
    )

    def exited(worker: Worker) -> None:
        files.processDied(worker.pid)

    pool.exitObservers.append(exited)
    return service


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
    sampler = countConnections(service, multiprocess=True)
    loop = LoopingCall(sampler.sample)
    loop.clock = reactor
    reactor.callWhenRunning(loop.start, WORKER_SAMPLE_INTERVAL)
    reactor.addSystemEventTrigger("before", "shutdown", sampler.sample)


def countConnections(service: TLSReplyService, multiprocess: bool = False) -> ServerSampler:
    """
    Count C{service}'s connections (into the multiprocess files a worker
    writes, if C{multiprocess}): the one place a server gets its
    L{ConnectionMetrics}, in one process or in a worker.

    @return: the sampler of the numbers the server keeps as plain ones.
    """
    metrics = ConnectionMetrics(len(service.replyFactory.reply), multiprocess=multiprocess)
    service.replyFactory.metrics = metrics
    return ServerSampler(metrics, service.connections, service.limit)


def _serveMetrics(
    reactor: Any, description: str, registry: CollectorRegistry, contexts: ReloadableContexts
) -> MetricsService:
    """
    Serve C{registry} at C{description}, with the certificates and reloads
    of C{contexts} and this process's own metrics added.
    """
    registry.register(ServerStateCollector(contexts))
    addProcessCollector(registry)
    return MetricsService(
        parseMetricsAddress(reactor, description), description, registry, reactor=reactor
    )
