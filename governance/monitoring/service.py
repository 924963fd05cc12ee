"""Monitoring use cases: a version's report over a window, computed from the audit
log and stored as rollups; reports, histories and the latest figures read back.

`Monitoring.run` is the one computation: the scheduled job and `cofre monitor`
both call it (and whatever is hooked after it, the alerts, sees the same
figures). It reads with the caller's session (give it a read session) and
writes its results in short transactions of its own, so a long computation
never holds SQLite's write lock while predictions wait to be audited.

It reads the window's prediction records a page at a time (keyset on seq), opens
their rows in this process with the audit log's bulk opener (each data key
unwrapped once), and keeps per feature only a float array or category counts, so
a million rows fit in memory. Rows whose key was destroyed (erasure, retention)
are skipped and counted. Readers never scan the log: they read rollups.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

import numpy as np
import pandas as pd
from sqlalchemy import and_, delete, insert, or_, select
from sqlalchemy.exc import IntegrityError as DBIntegrityError
from sqlalchemy.orm import Session

from governance.accounts.actor import Actor
from governance.audit.records import AuditRecord
from governance.audit.service import AuditLog, RowOpener
from governance.clock import utcnow
from governance.errors import CofreError
from governance.monitoring import drift, fairness, performance, quality
from governance.monitoring import traffic as traffic_rollups
from governance.monitoring.feedback import Label
from governance.monitoring.figures import OUTPUT, TRAFFIC, WHOLE_MODEL, Figure
from governance.monitoring.profiles import (
    SERVED,
    Profiles,
    build_profile,
    categories,
    is_numeric,
    numbers,
)
from governance.monitoring.records import MonitoringRollup, ReferenceProfile
from governance.monitoring.report import summarise
from governance.monitoring.windows import Window, window_ending
from governance.operations.transactions import Transactions
from governance.registry.records import ModelVersion
from governance.registry.service import Registry

PREDICTION = "prediction"


class LabelReader(Protocol):
    """Ground truth of a version's predictions in [since, until), keyed (request id, row)."""

    def labels(
        self, session: Session, model_name: str, version: int, since: datetime, until: datetime
    ) -> Mapping[tuple[str, int], Label]: ...


# Called with the run's (read) session and the reports just stored.


@dataclass(frozen=True)
class MonitoringPolicy:
    thresholds: drift.Thresholds = field(default_factory=drift.Thresholds)
    profile_rows: int = 1000  # served rows that make the profile of a version without one
    step: timedelta = timedelta(hours=1)  # windows end on multiples of it
    page_records: int = 2000  # audit records read (and opened) at a time


@dataclass
class _Traffic:
    requests: int = 0
    errors: int = 0
    refused: int = 0
    rows: int = 0
    latencies: list[int] = field(default_factory=list)

    def count(self, outcome: str, details: dict[str, Any] | None) -> None:
        self.requests += 1
        if outcome == "error":
            self.errors += 1
        elif outcome != "ok":
            self.refused += 1
        details = details or {}
        if outcome == "ok" and isinstance(details.get("rows"), int):
            self.rows += details["rows"]
        latency = details.get("latency_ms")
        if isinstance(latency, int) and not isinstance(latency, bool):
            self.latencies.append(latency)

    def figures(self) -> list[Figure]:
        rate = self.errors / self.requests if self.requests else 0.0
        values: list[tuple[str, float | None]] = [
            ("requests", self.requests),
            ("rows", self.rows),
            ("errors", self.errors),
            ("error_rate", rate),
            ("refused", self.refused),
            ("latency_p50_ms", _percentile(self.latencies, 50)),
            ("latency_p95_ms", _percentile(self.latencies, 95)),
        ]
        return [Figure(WHOLE_MODEL, TRAFFIC, m, v, self.requests) for m, v in values]


@dataclass
class _Rows:
    """What the window's rows add up to: per feature a float array or category counts,
    the outputs, and the labelled rows."""

    features: Sequence[Mapping[str, str]]
    classification: bool
    numeric: dict[str, list[np.ndarray]] = field(default_factory=dict)
    counts: dict[str, Counter[str]] = field(default_factory=dict)
    missing: Counter[str] = field(default_factory=Counter)
    outputs: list[Any] = field(default_factory=list)
    erased: int = 0
    seen: int = 0
    labelled: list[tuple[Any, Any, Any, str | None]] = field(default_factory=list)
    _inputs: list[dict[str, Any]] = field(default_factory=list)

    def add(
        self,
        request_id: str,
        rows: list[dict[str, Any]],
        labels: Mapping[tuple[str, int], Label],
    ) -> None:
        for index, row in enumerate(rows):
            if row.get("erased"):
                self.erased += 1
                continue
            self.seen += 1
            self._inputs.append(row.get("input") or {})
            self.outputs.append(row.get("output"))
            label = labels.get((request_id, index)) if labels else None
            if label is not None:
                self.labelled.append(
                    (label.ground_truth, row.get("output"), row.get("proba"), label.group)
                )

    def flush(self) -> None:
        """Fold the pending rows into the columns (called once per page of records)."""
        if not self._inputs:
            return
        names = [f["name"] for f in self.features]
        frame = pd.DataFrame.from_records(self._inputs, columns=names)
        for feature in self.features:
            name = feature["name"]
            if is_numeric(feature["dtype"]):
                self.numeric.setdefault(name, []).append(numbers(frame[name].astype(object)))
            else:
                texts = categories(frame[name].astype(object))
                self.missing[name] += int(texts.isna().sum())
                self.counts.setdefault(name, Counter()).update(
                    texts.dropna().value_counts().to_dict()
                )
        self._inputs = []

    def column(self, name: str) -> np.ndarray:
        parts = self.numeric.get(name) or [np.empty(0)]
        return np.concatenate(parts)


class Monitoring:
    """Computes and reads monitoring reports; sessions come from the caller."""

    def __init__(
        self,
        audit: AuditLog,
        registry: Registry,
        policy: MonitoringPolicy | None = None,
        labels: LabelReader | None = None,
        tx: Transactions | None = None,
    ) -> None:
        self.audit = audit
        self.registry = registry
        self.policy = policy or MonitoringPolicy()
        self.labels = labels
        self.tx = tx

    @property
    def profiles(self) -> Profiles:
        return self.registry.profiles

    # -- computing --------------------------------------------------------------------
    def run(
        self,
        session: Session,
        model_name: str,
        version: int | None,
        window: timedelta,
        now: datetime | None = None,
    ) -> list[dict[str, Any]]:
        """Compute and store the reports of the window ending at the next step after
        `now`: of `version`, or of every version of the model served in the window."""
        span = window_ending(now or utcnow(), window, self.policy.step)
        model = self.registry.model(session, model_name)
        if version is None:
            versions = [v for n, v in self.served_versions(session, span) if n == model_name]
            versions = versions or [self.registry.resolve(session, model_name).version]
        else:
            versions = [self.registry.resolve(session, model_name, version=version).version]
        chosen = [v for v in model.versions if v.version in versions]
        # The alert rules are judged after this, by the caller (server/jobs.py
        # evaluate_alerts, for the job and `cofre monitor` alike).
        return [self._run_version(session, v, span) for v in chosen]

    def run_due(
        self, session: Session, window: timedelta, now: datetime | None = None
    ) -> list[dict[str, Any]]:
        """What the scheduled job computes, through `run`: for every version served in
        the current window or the one before, the current window; then the one before
        again, once, if it was last computed before it ended (so every window ends
        final)."""
        now = now or utcnow()
        current = window_ending(now, window, self.policy.step)
        before = Window(current.start - self.policy.step, current.end - self.policy.step)
        just_before = before.end - timedelta(microseconds=1)  # a moment inside `before`
        reports, failed = [], []
        for name, number in self.served_versions(session, Window(before.start, current.end)):
            try:
                # The current window first: readers of the latest window see it at once.
                reports += self.run(session, name, number, window, now)
                if not self._final(session, name, number, before):
                    reports += self.run(session, name, number, window, just_before)
            except CofreError as exc:  # one version's problem leaves the others computed
                failed.append(f"{name} v{number}: {exc.detail}")
        if failed:
            raise CofreError(f"{len(reports)} report(s) stored; failed: {'; '.join(failed)}")
        return reports

    def _final(self, session: Session, name: str, version: int, window: Window) -> bool:
        stmt = select(MonitoringRollup.computed_at).where(
            MonitoringRollup.model_name == name,
            MonitoringRollup.model_version == version,
            MonitoringRollup.window_start == window.start,
            MonitoringRollup.window_end == window.end,
            MonitoringRollup.computed_at >= window.end,
        )
        return session.execute(stmt.limit(1)).first() is not None

    def served_versions(self, session: Session, window: Window) -> list[tuple[str, int]]:
        """(model, version) of every version with prediction records in the window."""
        stmt = (
            select(AuditRecord.model_name, AuditRecord.model_version)
            .where(
                AuditRecord.kind == PREDICTION,
                AuditRecord.model_version.is_not(None),
                AuditRecord.at >= window.since,
                AuditRecord.at < window.until,
            )
            .distinct()
        )
        return sorted({(str(n), int(v)) for n, v in session.execute(stmt) if n and v})

    def _run_version(
        self, session: Session, version: ModelVersion, window: Window
    ) -> dict[str, Any]:
        name = version.model.name
        profile = self.profiles.get(session, name, version.version) or self._served_profile(
            session, version
        )
        labels = self._labels(session, version, window)
        rows, traffic, buckets = self._scan(session, version, window, labels)
        figures = traffic.figures() + self._figures(version, profile, rows)
        # Rows whose data key was destroyed (erasure, retention): left out of every figure.
        figures.append(Figure(WHOLE_MODEL, TRAFFIC, "erased_rows", rows.erased, rows.erased))
        computed_at = utcnow()
        with self._writing(session) as writer:
            self._store(writer, name, version.version, window, figures, computed_at)
            for bucket, counted in buckets.items():
                # Only the traffic of a bucket is replaced: the same span computed as a
                # window of its own (cofre monitor --window 1h) keeps its other figures.
                self._store(
                    writer, name, version.version, bucket, counted.figures(), computed_at, TRAFFIC
                )
        meta = _profile_meta(profile)
        report = summarise(name, version.version, window, figures, computed_at, meta)
        report["thresholds"] = self.policy.thresholds.as_dict()
        return report

    def _labels(
        self, session: Session, version: ModelVersion, window: Window
    ) -> Mapping[tuple[str, int], Label]:
        if self.labels is None:
            return {}
        return self.labels.labels(
            session, version.model.name, version.version, window.start, window.end
        )

    def _scan(
        self,
        session: Session,
        version: ModelVersion,
        window: Window,
        labels: Mapping[tuple[str, int], Label],
    ) -> tuple[_Rows, _Traffic, dict[Window, _Traffic]]:
        rows = _Rows(version.features, version.classes is not None)
        traffic = _Traffic()
        step = self.policy.step
        cuts = window.buckets(step) if window.length > step else []
        buckets = [_Traffic() for _ in cuts]
        opener = self.audit.opener(session)
        for page in self._pages(session, version, window):
            opener.prefetch(r.payload for r in page if r.outcome == "ok")
            for record in page:
                traffic.count(record.outcome, record.details)
                if buckets:
                    index = min(len(buckets) - 1, (_moment(record.at) - window.start) // step)
                    buckets[index].count(record.outcome, record.details)
                if record.outcome == "ok" and record.payload:
                    rows.add(record.request_id, _opened(opener, record), labels)
            rows.flush()
        return rows, traffic, dict(zip(cuts, buckets, strict=True))

    def served_rows(
        self, session: Session, version: ModelVersion, window: Window
    ) -> Iterator[tuple[Any, list[dict[str, Any]]]]:
        """Each answered prediction record of the version in the window (seq, at,
        actor_type, actor_id, details...) with its opened rows, erased rows left out:
        the same reading as the reports', for detectors that group rows otherwise
        (governance/monitoring/extraction.py groups them by API key)."""
        opener = self.audit.opener(session)
        for page in self._pages(session, version, window):
            answered = [r for r in page if r.outcome == "ok" and r.payload]
            opener.prefetch(r.payload for r in answered)
            for record in answered:
                rows = [row for row in _opened(opener, record) if not row.get("erased")]
                yield record, rows

    def _pages(self, session: Session, version: ModelVersion, window: Window | None) -> Any:
        """The version's prediction records (in the window), a page at a time."""
        after = 0
        while True:
            stmt = (
                select(
                    AuditRecord.seq,
                    AuditRecord.request_id,
                    AuditRecord.at,
                    AuditRecord.outcome,
                    AuditRecord.details,
                    AuditRecord.payload,
                    AuditRecord.actor_type,
                    AuditRecord.actor_id,
                )
                .where(
                    AuditRecord.kind == PREDICTION,
                    AuditRecord.model_name == version.model.name,
                    AuditRecord.model_version == version.version,
                    AuditRecord.seq > after,
                )
                .order_by(AuditRecord.seq)
                .limit(self.policy.page_records)
            )
            if window is not None:
                stmt = stmt.where(AuditRecord.at >= window.since, AuditRecord.at < window.until)
            page = list(session.execute(stmt))
            if not page:
                return
            yield page
            after = page[-1].seq

    def _served_profile(self, session: Session, version: ModelVersion) -> ReferenceProfile | None:
        """A profile of the version's first `profile_rows` served rows, stored once
        there are that many; None until then."""
        wanted = self.policy.profile_rows
        inputs: list[dict[str, Any]] = []
        outputs: list[Any] = []
        opener = self.audit.opener(session)
        for page in self._pages(session, version, None):
            for record in page:
                if record.outcome != "ok" or not record.payload:
                    continue
                for row in _opened(opener, record):
                    if not row.get("erased"):
                        inputs.append(row.get("input") or {})
                        outputs.append(row.get("output"))
            if len(inputs) >= wanted:
                break
        if len(inputs) < wanted:
            return None
        inputs, outputs = inputs[:wanted], outputs[:wanted]
        frame = pd.DataFrame.from_records(inputs, columns=[f["name"] for f in version.features])
        columns = {f["name"]: frame[f["name"]].astype(object) for f in version.features}
        classification = version.classes is not None
        profile = build_profile(version.features, columns, outputs, classification, SERVED)
        try:
            with self._writing(session) as writer:
                return self.profiles.keep(writer, version.model.name, version.version, profile)
        except DBIntegrityError:  # another run stored it first: theirs stands
            with self._reading(session) as reader:
                return self.profiles.get(reader, version.model.name, version.version)

    @contextmanager
    def _writing(self, session: Session) -> Iterator[Session]:
        """Where results are written: a short write transaction of their own when the
        service has a transaction source, so that the long read of a window (a
        minute for a million rows) never holds SQLite's write lock and predictions
        go on being audited; else the caller's session."""
        if self.tx is None:
            yield session
            return
        with self.tx.write() as writer:
            yield writer

    @contextmanager
    def _reading(self, session: Session) -> Iterator[Session]:
        if self.tx is None:
            yield session
            return
        with self.tx.read() as reader:
            yield reader

    def _figures(
        self, version: ModelVersion, profile: ReferenceProfile | None, rows: _Rows
    ) -> list[Figure]:
        figures: list[Figure] = []
        if profile is not None:
            figures += self._drift_and_quality(version, profile.profile, rows)
        figures += self._performance(version, rows)
        return figures

    def _drift_and_quality(
        self, version: ModelVersion, profile: dict[str, Any], rows: _Rows
    ) -> list[Figure]:
        thresholds = self.policy.thresholds
        figures: list[Figure] = []
        for feature in version.features:
            name = feature["name"]
            reference = profile["features"].get(name)
            if reference is None:
                continue
            if reference["type"] == "numeric":
                values = rows.column(name)
                present = values[~np.isnan(values)]
                figures += drift.numeric_drift(name, reference, present, thresholds)
                figures += quality.numeric_quality(name, reference, values)
            else:
                counts = rows.counts.get(name, Counter())
                figures += drift.categorical_drift(name, reference, counts, thresholds)
                figures += quality.categorical_quality(name, reference, counts, rows.missing[name])
        figures += self._output_drift(profile["output"], rows)
        return figures

    def _output_drift(self, reference: dict[str, Any], rows: _Rows) -> list[Figure]:
        thresholds = self.policy.thresholds
        if reference["type"] == "numeric":
            values = numbers(rows.outputs)
            present = values[~np.isnan(values)]
            return drift.numeric_drift(OUTPUT, reference, present, thresholds)
        counts = Counter(str(o) for o in rows.outputs if o is not None)
        return drift.categorical_drift(OUTPUT, reference, counts, thresholds)

    def _performance(self, version: ModelVersion, rows: _Rows) -> list[Figure]:
        if not rows.labelled:
            return []
        truth, predicted, proba, groups = (list(x) for x in zip(*rows.labelled, strict=True))
        if version.classes is None:
            return performance.regression(truth, predicted)
        found = performance.classification(truth, predicted, version.classes, proba)
        if any(g is not None for g in groups):
            found += fairness.fairness(truth, predicted, groups, version.classes)
        return found

    def _store(
        self,
        session: Session,
        name: str,
        version: int,
        window: Window,
        figures: list[Figure],
        computed_at: datetime,
        metric: str | None = None,
    ) -> None:
        """Replace the window's rollups (of one metric, or all) by these figures."""
        stale = delete(MonitoringRollup).where(
            MonitoringRollup.model_name == name,
            MonitoringRollup.model_version == version,
            MonitoringRollup.window_start == window.start,
            MonitoringRollup.window_end == window.end,
        )
        if metric is not None:
            stale = stale.where(MonitoringRollup.metric == metric)
        session.execute(stale)
        values = [
            {
                "model_name": name,
                "model_version": version,
                "window_start": window.start,
                "window_end": window.end,
                "feature": f.feature,
                "metric": f.metric,
                "method": f.method,
                "value": _finite(f.value),
                "rows": f.rows,
                "computed_at": computed_at,
                "details": f.details,
            }
            for f in figures
        ]
        if values:
            session.execute(insert(MonitoringRollup), values)

    # -- reading ------------------------------------------------------------------------
    def windows(
        self, session: Session, name: str, version: int, length: timedelta, limit: int = 200
    ) -> list[Window]:
        """The version's stored windows of this length, newest first."""
        stmt = (
            select(MonitoringRollup.window_start, MonitoringRollup.window_end)
            .where(MonitoringRollup.model_name == name, MonitoringRollup.model_version == version)
            .distinct()
            .order_by(MonitoringRollup.window_end.desc())
        )
        found = [Window(s, e) for s, e in session.execute(stmt)]
        return [w for w in found if w.length == length][:limit]

    def rollups(
        self,
        session: Session,
        name: str,
        version: int,
        windows: Sequence[Window],
        metrics: Sequence[str] = (),
    ) -> list[MonitoringRollup]:
        if not windows:
            return []
        stmt = select(MonitoringRollup).where(
            MonitoringRollup.model_name == name,
            MonitoringRollup.model_version == version,
            or_(
                *(
                    and_(
                        MonitoringRollup.window_start == w.start,
                        MonitoringRollup.window_end == w.end,
                    )
                    for w in windows
                )
            ),
        )
        if metrics:
            stmt = stmt.where(MonitoringRollup.metric.in_(metrics))
        return list(session.scalars(stmt.order_by(MonitoringRollup.window_end)))

    def report(
        self, session: Session, name: str, version: int, length: timedelta
    ) -> dict[str, Any] | None:
        """The latest stored report of this version for windows of `length`, or None."""
        latest = self.windows(session, name, version, length, limit=1)
        if not latest:
            return None
        found = self.rollups(session, name, version, latest)
        computed = max((r.computed_at for r in found), default=None)
        profile = self.profiles.get(session, name, version)
        report = summarise(name, version, latest[0], found, computed, _profile_meta(profile))
        report["thresholds"] = self.policy.thresholds.as_dict()
        return report

    def traffic(
        self, session: Session, actor: Actor, length: timedelta
    ) -> list[traffic_rollups.Series]:
        """The traffic of every version `actor` may see in its latest window of
        `length`, by step."""
        windows = self._latest_windows(session, length, (TRAFFIC,))
        visible = {k: w for k, w in windows.items() if actor.may_use_model(k[0])}
        return traffic_rollups.series(session, visible, self.policy.step)

    def traffic_since(
        self, session: Session, actor: Actor, start: datetime
    ) -> list[traffic_rollups.Series]:
        """The traffic of every version `actor` may see in the steps since `start`."""
        found = traffic_rollups.since(session, start, self.policy.step)
        return [s for s in found if actor.may_use_model(s.model_name)]

    def latest(
        self, session: Session, length: timedelta, metrics: Sequence[str]
    ) -> list[MonitoringRollup]:
        """Every version's figures of `metrics` in its latest window of `length` (for
        the Prometheus gauges): one query for the windows, one per version."""
        found: list[MonitoringRollup] = []
        for (name, version), window in sorted(
            self._latest_windows(session, length, metrics).items()
        ):
            found += self.rollups(session, name, version, [window], metrics)
        return found

    def _latest_windows(
        self, session: Session, length: timedelta, metrics: Sequence[str]
    ) -> dict[tuple[str, int], Window]:
        stmt = (
            select(
                MonitoringRollup.model_name,
                MonitoringRollup.model_version,
                MonitoringRollup.window_start,
                MonitoringRollup.window_end,
            )
            .where(MonitoringRollup.metric.in_(metrics))
            .distinct()
            .order_by(MonitoringRollup.window_end.desc())
        )
        newest: dict[tuple[str, int], Window] = {}
        for name, version, start, end in session.execute(stmt):
            window = Window(start, end)
            if window.length == length:
                newest.setdefault((name, version), window)
        return newest


def _opened(opener: RowOpener, record: Any) -> list[dict[str, Any]]:
    return opener.rows(record.request_id, record.seq, record.payload)


def _moment(at: str) -> datetime:
    return datetime.fromisoformat(at.replace("Z", "+00:00"))


def _profile_meta(profile: ReferenceProfile | None) -> dict[str, Any] | None:
    if profile is None:
        return None
    return {"source": profile.source, "rows": profile.rows}


def _finite(value: float | None) -> float | None:
    """NaN and infinities are not JSON and not comparable: stored as null."""
    if value is None or not np.isfinite(value):
        return None
    return float(value)


def _percentile(values: list[int], pct: int) -> float | None:
    if not values:
        return None
    return float(np.percentile(np.asarray(values), pct, method="inverted_cdf"))
