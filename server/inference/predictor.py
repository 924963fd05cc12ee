"""The prediction core: resolve, validate, predict, audit, in that order.

Every door (native, MLflow, Open Inference, batch) builds a PredictionRequest
and gets a PredictionResult or a domain error. The audit record is written and
committed before the result is returned; if it cannot be, AuditUnavailable is
raised and nothing is served (fail closed).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy.orm import Session, sessionmaker

from governance.accounts.actor import Actor
from governance.audit.service import AuditEvent, PersonalRow
from governance.audit.writer import AuditWriter
from governance.crypto.keyring import WrappedKey
from governance.db import read_session
from governance.errors import (
    CofreError,
    FieldError,
    InvalidInput,
    PermissionDenied,
)
from governance.registry.loading import load_trusted
from governance.registry.records import ModelVersion
from governance.registry.service import Registry
from server import metrics
from server.inference.cache import LruCache, TtlCache
from server.inference.table import Schema, Table, to_model_input

log = logging.getLogger("cofre.inference")
MAX_SUBJECT_ID = 128
MAX_PURPOSE = 256


@dataclass(frozen=True)
class PredictionRequest:
    """A door's request, already decoded from its wire format."""

    model: str
    table: Table
    endpoint: str  # "native" | "mlflow" | "v2" | "batch"
    request_id: str
    alias: str | None = None
    version: int | None = None
    subject_ids: Sequence[str | None] | None = None
    purpose: str | None = None
    want_proba: bool = True
    path: str = ""


@dataclass(frozen=True)
class ServedVersion:
    """A plain snapshot of a registry version: what serving needs, no ORM session."""

    name: str
    version: int
    sha256: str
    schema: Schema
    has_proba: bool
    classes: list[Any] | None
    versions: tuple[int, ...]
    artifact_file: str
    kek_id: str
    wrapped_key: bytes


@dataclass(frozen=True)
class PredictionResult:
    request_id: str
    name: str
    version: int
    sha256: str
    predictions: list[Any]
    probabilities: list[list[float]] | None
    classes: list[Any] | None


@dataclass(frozen=True)
class Limits:
    max_rows: int
    cache_size: int
    alias_ttl_seconds: float


class Predictor:
    """The core; one per worker, shared by every door."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        registry: Registry,
        writer: AuditWriter,
        limits: Limits,
    ) -> None:
        self.sessions = sessions
        self.registry = registry
        self.writer = writer
        self.limits = limits
        self.estimators: LruCache[Any] = LruCache(limits.cache_size)
        self._served: TtlCache[ServedVersion] = TtlCache(limits.alias_ttl_seconds)

    # -- resolving --------------------------------------------------------------------
    def served_version(
        self, actor: Actor, name: str, alias: str | None = None, version: int | None = None
    ) -> ServedVersion:
        """The version a request means, as cached for at most the alias TTL."""
        if not actor.may_use_model(name):
            raise PermissionDenied("this API key may not use that model")
        return self._served.get_or_load(
            (name, alias, version), lambda: self._resolve(name, alias, version)
        )

    def _resolve(self, name: str, alias: str | None, version: int | None) -> ServedVersion:
        with read_session(self.sessions) as session:
            record = self.registry.resolve(session, name, alias=alias, version=version)
            return _snapshot(record)

    def estimator(self, served: ServedVersion) -> Any:
        return self.estimators.get_or_load(
            (served.name, served.version, served.sha256), lambda: self._load(served)
        )

    def _load(self, served: ServedVersion) -> Any:
        plaintext = self.registry.store.get(
            served.name,
            served.version,
            served.sha256,
            served.artifact_file,
            WrappedKey(served.kek_id, served.wrapped_key),
        )
        return load_trusted(plaintext)

    # -- predicting -------------------------------------------------------------------
    def predict(self, actor: Actor, request: PredictionRequest) -> PredictionResult:
        started = time.perf_counter()
        served = self.served_version(actor, request.model, request.alias, request.version)
        _check_context(request)
        features, rows = to_model_input(request.table, served.schema, self.limits.max_rows)
        estimator = self.estimator(served)
        labels, proba = _score(
            estimator, features, served.has_proba and request.want_proba and not actor.labels_only
        )
        result = PredictionResult(
            request.request_id,
            served.name,
            served.version,
            served.sha256,
            labels,
            proba,
            served.classes if proba is not None else None,
        )
        latency_ms = int((time.perf_counter() - started) * 1000)
        self._audit_success(actor, request, served, rows, result, latency_ms)
        self._count(served, request.endpoint, "ok", len(rows), time.perf_counter() - started)
        return result

    def _audit_success(
        self,
        actor: Actor,
        request: PredictionRequest,
        served: ServedVersion,
        rows: list[dict[str, Any]],
        result: PredictionResult,
        latency_ms: int,
    ) -> None:
        subject_ids = request.subject_ids or [None] * len(rows)
        personal = [
            PersonalRow(subject, _audited_row(row, result, index))
            for index, (row, subject) in enumerate(zip(rows, subject_ids, strict=True))
        ]
        event = AuditEvent(
            kind="prediction",
            actor=actor,
            outcome="ok",
            status=200,
            endpoint=request.endpoint,
            request_id=request.request_id,
            model_name=served.name,
            model_version=served.version,
            artifact_sha256=served.sha256,
            purpose=request.purpose,
            rows=personal,
            details={"rows": len(rows), "latency_ms": latency_ms, "path": request.path},
        )
        self.append_or_fail_closed(event)

    def append_or_fail_closed(self, event: AuditEvent) -> None:
        """Commit the record durably (group commit), or raise AuditUnavailable."""
        self.writer.append(event)

    def record_failure(
        self,
        actor: Actor,
        endpoint: str,
        request_id: str,
        model: str | None,
        status: int,
        reason: str,
        path: str,
    ) -> None:
        """Denied and failed calls are audited too, without the rejected body."""
        outcome = "denied" if status in (401, 403) else "error" if status >= 500 else "rejected"
        if model:
            metrics.PREDICTIONS.labels(model, "", endpoint, outcome).inc()
        event = AuditEvent(
            kind="prediction",
            actor=actor,
            outcome=outcome,
            status=status,
            endpoint=endpoint,
            request_id=request_id,
            model_name=model,
            details={"reason": reason, "path": path},
        )
        try:
            self.append_or_fail_closed(event)
        except CofreError as exc:  # the answer is an error already; say so in the log
            log.error("could not audit a failed call %s: %s", request_id, exc.detail)

    def _count(
        self, served: ServedVersion, endpoint: str, outcome: str, rows: int, seconds: float
    ) -> None:
        version = str(served.version)
        metrics.PREDICTIONS.labels(served.name, version, endpoint, outcome).inc()
        metrics.PREDICTION_ROWS.labels(served.name, version, endpoint).inc(rows)
        metrics.LATENCY.labels(served.name, version, endpoint).observe(seconds)


def _snapshot(record: ModelVersion) -> ServedVersion:
    schema = Schema(
        names=tuple(f["name"] for f in record.features),
        dtypes=tuple(f["dtype"] for f in record.features),
        named=record.named_features,
        allow_missing=record.allow_missing,
    )
    return ServedVersion(
        name=record.model.name,
        version=record.version,
        sha256=record.sha256,
        schema=schema,
        has_proba=record.has_proba,
        classes=record.classes,
        versions=tuple(v.version for v in record.model.versions),
        artifact_file=record.artifact_file,
        kek_id=record.kek_id,
        wrapped_key=record.wrapped_key,
    )


def _check_context(request: PredictionRequest) -> None:
    errors: list[FieldError] = []
    if request.subject_ids is not None:
        if len(request.subject_ids) != len(request.table.rows):
            errors.append(FieldError("subject_ids", "needs exactly one entry per row"))
        elif not all(
            s is None or (isinstance(s, str) and 0 < len(s) <= MAX_SUBJECT_ID)
            for s in request.subject_ids
        ):
            errors.append(
                FieldError(
                    "subject_ids", f"entries are strings of 1-{MAX_SUBJECT_ID} characters or null"
                )
            )
    if request.purpose is not None and not (
        isinstance(request.purpose, str) and len(request.purpose) <= MAX_PURPOSE
    ):
        errors.append(FieldError("purpose", f"a string of at most {MAX_PURPOSE} characters"))
    if errors:
        raise InvalidInput("invalid request context", errors)


# Classifiers whose predict() is the argmax of predict_proba(): in scikit-learn's
# own code for the trees, and for logistic regression because its probabilities are
# a monotone function (expit, softmax) of the decision function that predict()
# takes the argmax of. When probabilities are wanted anyway, one pass gives both.
LABELS_FROM_PROBA = frozenset(
    {
        "sklearn.linear_model._logistic.LogisticRegression",
        "sklearn.ensemble._forest.RandomForestClassifier",
        "sklearn.ensemble._forest.ExtraTreesClassifier",
        "sklearn.tree._classes.DecisionTreeClassifier",
        "sklearn.tree._classes.ExtraTreeClassifier",
    }
)


def _score(
    estimator: Any, features: Any, with_proba: bool
) -> tuple[list[Any], list[list[float]] | None]:
    try:
        if with_proba:
            proba = estimator.predict_proba(features)
            labels = _labels_from(estimator, proba) if _argmax_predicts(estimator) else None
            labels = estimator.predict(features) if labels is None else labels
            return labels.tolist(), proba.tolist()
        return estimator.predict(features).tolist(), None
    except (ValueError, TypeError) as exc:
        # The values passed the schema but the model cannot use them (e.g. an unseen
        # category): a client problem. The message may quote input, so it stays in logs.
        log.info("model refused input: %s", type(exc).__name__)
        raise InvalidInput("the model could not score this input") from None


def _argmax_predicts(estimator: Any) -> bool:
    final = estimator[-1] if hasattr(estimator, "steps") else estimator
    return f"{type(final).__module__}.{type(final).__qualname__}" in LABELS_FROM_PROBA


def _labels_from(estimator: Any, proba: Any) -> Any:
    if not isinstance(proba, np.ndarray) or proba.ndim != 2:  # multi-output: no shortcut
        return None
    return estimator.classes_.take(np.argmax(proba, axis=1))


def _audited_row(row: dict[str, Any], result: PredictionResult, index: int) -> dict[str, Any]:
    audited: dict[str, Any] = {"input": row, "output": result.predictions[index]}
    if result.probabilities is not None:
        audited["proba"] = result.probabilities[index]
    return audited
