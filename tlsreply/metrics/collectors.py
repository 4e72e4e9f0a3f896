# -*- test-case-name: tests.test_metrics -*-
"""
Metrics read from the server's state when a scrape asks, in the process
that serves C{/metrics} (the server itself, or the parent of C{--workers}):
the certificates served and their expiry, the reloads, and with workers
each worker's process metrics.

Nothing here is touched per connection.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from cryptography import x509
from cryptography.x509.oid import NameOID
from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.process_collector import ProcessCollector

if TYPE_CHECKING:
    from tlsreply.tls.credentials import ServerCredentials
    from tlsreply.tls.reload import ReloadableContexts


def certificateName(credentials: ServerCredentials) -> str:
    """
    What a certificate is called in its metric's C{name} label: its first
    subjectAltName, else its subject's common name, else its whole subject.
    """
    names = credentials.subjectNames
    if names:
        return names[0]
    subject = credentials.certificate.subject
    common = subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if common:
        return str(common[0].value)
    return subject.rfc4514_string()


def _notAfter(certificate: x509.Certificate) -> float:
    return certificate.not_valid_after_utc.timestamp()


class ServerStateCollector:
    """
    The certificates the server serves now, and its reloads, from its
    L{ReloadableContexts}.

    Two certificates with the same name and key type (a C{--cert-dir}
    holding an old and a new one) are one series, with the earlier expiry:
    the one to be warned about.
    """

    def __init__(self, contexts: ReloadableContexts) -> None:
        self.contexts = contexts

    def collect(self) -> Iterable[Metric]:
        expiry = GaugeMetricFamily(
            "tlsreply_certificate_expiry_timestamp_seconds",
            "When each served certificate expires (its notAfter), in Unix seconds.",
            labels=["name", "key_type"],
        )
        earliest: dict[tuple[str, str], float] = {}
        for each in self.contexts.current.credentials:
            key = (certificateName(each), each.keyDescription)
            notAfter = _notAfter(each.certificate)
            earliest[key] = min(notAfter, earliest.get(key, notAfter))
        for labels, notAfter in earliest.items():
            expiry.add_metric(list(labels), notAfter)
        yield expiry
        reloads = CounterMetricFamily(
            "tlsreply_reloads",
            "Certificate reloads (SIGHUP), by outcome: success (new certificates "
            "in use) or failure (the previous ones stay).",
            labels=["outcome"],
        )
        reloads.add_metric(["success"], self.contexts.generation)
        reloads.add_metric(["failure"], self.contexts.failures)
        yield reloads


class WorkerProcessCollector:
    """
    Each live worker's process metrics (CPU, memory, descriptors, start
    time), read from C{/proc} by the parent, as
    C{tlsreply_worker_process_*} with a C{worker} label (its number, from
    1); C{process_*} is the parent's own.

    @param workers: the live workers' pids and numbers, as it is now.
    """

    def __init__(self, workers: Callable[[], Mapping[int, int]]) -> None:
        self._workers = workers

    def collect(self) -> Iterable[Metric]:
        families: dict[str, Metric] = {}
        for pid, number in sorted(self._workers().items(), key=lambda item: item[1]):
            collector = ProcessCollector(
                namespace="tlsreply_worker", pid=_always(pid), registry=None
            )
            for family in collector.collect():
                merged = families.get(family.name)
                if merged is None:
                    merged = families[family.name] = Metric(
                        family.name, family.documentation, family.type, family.unit
                    )
                for sample in family.samples:
                    labels: dict[str, Any] = {**sample.labels, "worker": str(number)}
                    merged.add_sample(sample.name, labels, sample.value)
        yield from families.values()


def _always(pid: int) -> Callable[[], int]:
    return lambda: pid


def addProcessCollector(registry: CollectorRegistry) -> None:
    """
    C{prometheus_client}'s process collector for this process
    (C{process_cpu_seconds_total}, C{process_resident_memory_bytes}, ...).
    """
    ProcessCollector(registry=registry)
