"""Prometheus metrics, correct under several Gunicorn workers.

When PROMETHEUS_MULTIPROC_DIR is set (server/gunicorn_conf.py sets it before
the workers fork), prometheus_client keeps each worker's samples in files
there and /metrics aggregates them with a MultiProcessCollector.

The monitoring gauges (`cofre_feature_drift`, `cofre_model_performance`) are not
kept by any worker: `MonitoringCollector` reads every version's latest stored
rollups when scraped, so whichever worker answers says the same; the disk and
database gauges (`StorageCollector`) are read when scraped too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client import multiprocess as prometheus_multiprocess
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from governance.monitoring.figures import DRIFT, PERFORMANCE
from governance.operations.storage import Storage

PREDICTIONS = Counter(
    "cofre_predictions",
    "Prediction requests by model, version, protocol and outcome",
    ["model", "version", "protocol", "outcome"],
)
PREDICTION_ROWS = Counter("cofre_prediction_rows", "Rows scored", ["model", "version", "protocol"])
LATENCY = Histogram(
    "cofre_prediction_latency_seconds",
    "Time to validate, predict and audit one request",
    ["model", "version", "protocol"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)


def _env_multiproc() -> bool:
    from prometheus_client import values

    return values.ValueClass is not values.MutexValue


class MonitoringCollector(Collector):
    """Gauges of every version's latest monitoring figures, read at scrape time.

    `latest` answers the latest rollups of metrics `drift` and `performance`."""

    def __init__(self, latest: Callable[[], Iterable[Any]]) -> None:
        self.latest = latest

    def collect(self) -> Iterator[GaugeMetricFamily]:
        drift = GaugeMetricFamily(
            "cofre_feature_drift",
            "Latest drift of an input feature (or __output__) against the reference "
            "profile, by method (psi, ks, chi2, wasserstein)",
            labels=["model", "version", "feature", "method"],
        )
        performance = GaugeMetricFamily(
            "cofre_model_performance",
            "Latest performance of a version on its labelled rows",
            labels=["model", "version", "metric"],
        )
        for rollup in self.latest():
            if rollup.value is None:
                continue
            version = str(rollup.model_version)
            if rollup.metric == DRIFT:
                drift.add_metric(
                    [rollup.model_name, version, rollup.feature, rollup.method], rollup.value
                )
            elif rollup.metric == PERFORMANCE:
                performance.add_metric([rollup.model_name, version, rollup.method], rollup.value)
        yield drift
        yield performance


class StorageCollector(Collector):
    """Free and total bytes of each directory's file system, and the database's size,
    read when scraped (a statvfs per directory, one query on PostgreSQL)."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    def collect(self) -> Iterator[GaugeMetricFamily]:
        labels = ["directory"]
        free = GaugeMetricFamily(
            "cofre_disk_free_bytes",
            "Bytes available on the file system of an appliance directory",
            labels=labels,
        )
        size = GaugeMetricFamily(
            "cofre_disk_size_bytes",
            "Size of the file system of an appliance directory",
            labels=labels,
        )
        for space in self.storage.spaces():
            free.add_metric([space.directory], space.free_bytes)
            size.add_metric([space.directory], space.total_bytes)
        yield free
        yield size
        database = self.storage.database_bytes()
        if database is not None:
            yield GaugeMetricFamily(
                "cofre_database_size_bytes", "Size of the database on disk", value=database
            )


def exposition(*extra: Collector) -> bytes:
    """The text exposition of every worker's samples (or this process's), and of
    `extra` collectors."""
    registry = CollectorRegistry()
    if _env_multiproc():
        prometheus_multiprocess.MultiProcessCollector(registry)
    else:
        from prometheus_client import REGISTRY

        registry.register(_Delegate(REGISTRY))
    for collector in extra:
        registry.register(collector)
    return generate_latest(registry)


class _Delegate(Collector):
    """This process's default registry, inside another registry."""

    def __init__(self, inner: CollectorRegistry) -> None:
        self.inner = inner

    def collect(self) -> Iterator[Any]:
        yield from self.inner.collect()


ROLLOUT_REQUESTS = Counter(
    "cofre_rollout_requests",
    "Requests routed by a running rollout, by model, variant and routing reason",
    ["model", "variant", "reason"],
)
SHADOW_DROPPED = Counter(
    "cofre_shadow_dropped",
    "Shadow scorings not done because this worker's shadow queue was full",
    ["model"],
)
ROLLOUT_ABORTS = Counter(
    "cofre_rollout_guardrail_aborts", "Rollouts aborted by a guardrail", ["model"]
)
