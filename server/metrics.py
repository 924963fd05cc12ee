"""Prometheus metrics, correct under several Gunicorn workers.

When PROMETHEUS_MULTIPROC_DIR is set (server/gunicorn_conf.py sets it before
the workers fork), prometheus_client keeps each worker's samples in files
there and /metrics aggregates them with a MultiProcessCollector.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client import multiprocess as prometheus_multiprocess

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


def exposition() -> bytes:
    """The text exposition of every worker's samples (or this process's)."""
    if _env_multiproc():
        registry = CollectorRegistry()
        prometheus_multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry)
    return generate_latest()


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
