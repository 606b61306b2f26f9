"""Prometheus metrics of one app: request latency per route, memory counts, consolidation runs.

Each app gets its own registry, so two apps in one process (tests) do not clash.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from agentmem.models import MemoryStats

_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class _MemoryCollector(Collector):
    """Memory counts, read from the store when Prometheus scrapes."""

    def __init__(self, stats: Callable[[], MemoryStats]) -> None:
        self._stats = stats

    def collect(self) -> Iterator[GaugeMetricFamily]:
        try:
            stats = self._stats()
        except Exception:  # a closed or unreachable store: report nothing rather than fail
            return
        records = GaugeMetricFamily(
            "agentmem_memories", "Memories in the store, by kind", labels=["kind"]
        )
        for kind, count in sorted(stats.by_kind.items()):
            records.add_metric([kind], count)
        yield records
        yield GaugeMetricFamily(
            "agentmem_pending_index",
            "Writes not yet in the vector index",
            value=stats.pending_index,
        )


class Metrics:
    """The app's metrics and the registry ``/metrics`` exposes."""

    def __init__(self, stats: Callable[[], MemoryStats]) -> None:
        self.registry = CollectorRegistry()
        self.latency = Histogram(
            "agentmem_http_request_duration_seconds",
            "Request latency by route",
            ["method", "route", "status"],
            buckets=_BUCKETS,
            registry=self.registry,
        )
        self.consolidation_runs = Counter(
            "agentmem_consolidation_runs",
            "Consolidation runs started through the API, by result",
            ["result"],
            registry=self.registry,
        )
        self.rate_limited = Counter(
            "agentmem_rate_limited_requests", "Requests refused with 429", registry=self.registry
        )
        self.registry.register(_MemoryCollector(stats))


__all__ = ["Metrics"]
