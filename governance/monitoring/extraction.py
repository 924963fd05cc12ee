"""Extraction and membership-probing detection: an API key whose traffic to a model
version looks like a sweep of the input space raises an `extraction` alert.

Over a sliding window of recent prediction records (read as the monitoring reports
read them: `Monitoring.served_rows`), the rows of each API key for each version are
judged on two signals:

- *One feature at a time.* The share of the key's rows that have another row of the
  same key differing from it in exactly one feature. Model extraction and probing
  (Tramèr et al., "Stealing Machine Learning Models via Prediction APIs", 2016;
  Papernot et al., 2017) walk one input at a time from a base row, or along a
  decision boundary; ordinary traffic is rows about different people, which almost
  never agree on all features but one. Computed exactly in O(rows x features): for
  each feature, rows are grouped on all the other features, and a group holding two
  or more values of that feature is a sweep along it.
- *Coverage far from the reference.* The largest population stability index of a
  feature between the key's rows and the version's reference profile (the drift
  module's PSI on the profile's bins): a grid laid over the input space, or a probe
  pinned on a few values, sits far from what real rows look like.

A key is suspicious with at least `min_rows` rows in the window and either share or
distance at or above its threshold. Evidence (counts, swept features, shares, PSI,
the share of values outside the reference's range, evenly spaced features) holds
aggregates only: no row, no value of a row, as it goes to the audit log and the
webhook. Only API keys are judged (the throttle acts on keys); users of the admin
pages are not.

What it cannot see: a sweep spread over many keys or slower than the window;
extraction by random queries drawn from the reference distribution; membership
inference with ordinary-looking rows. A key serving one branch's customers may sit
far from a reference made of all of them (turn the distance off with 0).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from governance.accounts.actor import SYSTEM, Actor
from governance.accounts.records import ApiKey
from governance.clock import isoformat, utcnow
from governance.monitoring import drift
from governance.monitoring.alerts import Alerts, Suspicion, Transition
from governance.monitoring.figures import PSI, Figure
from governance.monitoring.profiles import is_numeric, numbers
from governance.monitoring.service import Monitoring
from governance.monitoring.windows import Window

log = logging.getLogger("cofre.extraction")
KEY_ACTOR = "key"
ONE_FEATURE_SWEEP, OFF_PROFILE = "one_feature_sweep", "off_profile"
GRID_MIN_VALUES = 5  # distinct values before even spacing says "grid"
GRID_SPREAD = 0.01  # gaps this close to equal (relative spread) are a grid

# (session, key prefix, rate text such as "1/s"): slows the key down (wired by server/).
Throttle = Callable[[Session, str, str], None]


@dataclass(frozen=True)
class ExtractionPolicy:
    window: timedelta = timedelta(hours=1)
    min_rows: int = 50  # rows of one key before it is judged at all
    sweep_share: float = 0.5  # share of rows with a one-feature neighbour (0: off)
    distance: float = 2.0  # largest feature PSI against the reference (0: off)
    max_rows: int = 5000  # newest rows of a key judged (bounds memory and time)
    throttle_rate: str = ""  # "" alerts only; else the rate a suspicious key gets


# -- statistics -------------------------------------------------------------------------
@dataclass(frozen=True)
class Sweep:
    """How much of a key's traffic moves one feature at a time."""

    rows: int
    swept_rows: int  # rows with another row differing from them in exactly one feature
    pairs: int  # such pairs of rows
    by_feature: dict[str, int]  # rows with a partner differing in exactly that feature
    steps: dict[str, int]  # most values one fixed setting of the others saw it take

    @property
    def share(self) -> float:
        return self.swept_rows / self.rows if self.rows else 0.0

    def swept_features(self) -> list[str]:
        """Features along which at least a tenth of the rows were swept, most first."""
        floor = max(1, self.rows // 10)
        chosen = [name for name, count in self.by_feature.items() if count >= floor]
        return sorted(chosen, key=lambda name: -self.by_feature[name])


def value_codes(frame: pd.DataFrame) -> np.ndarray:
    """rows x features integer codes: equal values share a code (missing ones too)."""
    if frame.empty:
        return np.zeros((len(frame), len(frame.columns)), dtype=np.int64)
    columns = [pd.factorize(frame[name].astype(object), use_na_sentinel=False)[0] for name in frame]
    return np.column_stack(columns).astype(np.int64)


def one_feature_sweep(codes: np.ndarray, names: Sequence[str]) -> Sweep:
    """Rows and pairs of rows that differ in exactly one feature (codes: `value_codes`)."""
    rows = codes.shape[0]
    swept = np.zeros(rows, dtype=bool)
    pairs, by_feature, steps = 0, {}, {}
    for index, name in enumerate(names):
        groups = _groups_without(codes, index)
        settings, counts = np.unique(
            np.column_stack([groups, codes[:, index]]), axis=0, return_counts=True
        )
        values_per_group = np.bincount(settings[:, 0], minlength=int(groups.max(initial=0)) + 1)
        hit = values_per_group[groups] >= 2
        swept |= hit
        by_feature[name] = int(hit.sum())
        steps[name] = int(values_per_group.max(initial=0)) if hit.any() else 0
        sizes = np.bincount(groups)
        pairs += int(np.sum(sizes.astype(np.int64) ** 2) - np.sum(counts.astype(np.int64) ** 2))
    return Sweep(rows, int(swept.sum()), pairs // 2, by_feature, steps)


def _groups_without(codes: np.ndarray, index: int) -> np.ndarray:
    """The group of each row on every feature but `index` (one group with no others)."""
    rest = np.delete(codes, index, axis=1)
    if rest.shape[1] == 0 or rest.shape[0] == 0:
        return np.zeros(codes.shape[0], dtype=np.int64)
    return np.unique(rest, axis=0, return_inverse=True)[1].ravel().astype(np.int64)


@dataclass(frozen=True)
class Coverage:
    """How far a key's rows sit from the version's reference profile."""

    distance: float  # the largest PSI of a feature
    feature: str  # which feature
    psi: dict[str, float]
    out_of_range: dict[str, float]  # share of present values outside [min, max]
    grid: list[str]  # numeric features whose distinct values are evenly spaced


def coverage(
    frame: pd.DataFrame, features: Sequence[Mapping[str, str]], profile: Mapping[str, Any]
) -> Coverage | None:
    """The key's rows against the reference profile (None without a profiled feature)."""
    psi: dict[str, float] = {}
    outside: dict[str, float] = {}
    grid: list[str] = []
    for feature in features:
        name, reference = feature["name"], profile["features"].get(feature["name"])
        if reference is None:
            continue
        if is_numeric(feature["dtype"]) and reference["type"] == "numeric":
            values = numbers(frame[name].astype(object))
            present = values[~np.isnan(values)]
            figures = drift.numeric_drift(name, reference, present, drift.Thresholds())
            outside[name] = _outside_share(present, reference)
            grid += [name] if evenly_spaced(present) else []
        else:
            counts = frame[name].dropna().astype(str).value_counts().to_dict()
            figures = drift.categorical_drift(name, reference, counts, drift.Thresholds())
        psi.update(_psi_of(name, figures))
    if not psi:
        return None
    worst = max(psi, key=lambda name: psi[name])
    return Coverage(psi[worst], worst, psi, outside, grid)


def _psi_of(name: str, figures: list[Figure]) -> dict[str, float]:
    found = [f.value for f in figures if f.method == PSI and f.value is not None]
    return {name: float(found[0])} if found else {}


def _outside_share(values: np.ndarray, reference: Mapping[str, Any]) -> float:
    if values.size == 0 or "min" not in reference:
        return 0.0
    outside = (values < reference["min"]) | (values > reference["max"])
    return float(outside.mean())


def evenly_spaced(values: np.ndarray) -> bool:
    """Distinct values on a regular grid (as numpy.linspace lays them): a sweep's mark."""
    distinct = np.unique(values)
    if distinct.size < GRID_MIN_VALUES:
        return False
    gaps = np.diff(distinct)
    return bool(np.ptp(gaps) <= GRID_SPREAD * gaps.mean())


# -- judging ----------------------------------------------------------------------------
@dataclass
class KeyTraffic:
    """The rows one API key sent one version in the window (newest `max_rows` kept)."""

    key_id: str
    requests: int = 0
    rows: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class Finding:
    """One key's traffic to one version over the window, judged."""

    model_name: str
    model_version: int
    key_id: str
    key_prefix: str
    window: Window
    requests: int
    sweep: Sweep
    coverage: Coverage | None
    signals: tuple[str, ...]

    @property
    def rule_key(self) -> str:
        return f"extraction-key-{self.key_id}"

    def evidence(self) -> dict[str, Any]:
        """Aggregates only (no row, no value): the alert's, the audit's, the webhook's."""
        sweep, near = self.sweep, self.coverage
        swept = sweep.swept_features()
        evidence: dict[str, Any] = {
            "key": self.key_prefix,
            "window": {"start": isoformat(self.window.start), "end": isoformat(self.window.end)},
            "requests": self.requests,
            "rows": sweep.rows,
            "signals": list(self.signals),
            "one_feature_rows": sweep.swept_rows,
            "one_feature_share": round(sweep.share, 4),
            "one_feature_pairs": sweep.pairs,
            "swept": {
                name: {"rows": sweep.by_feature[name], "steps": sweep.steps[name]} for name in swept
            },
            "breaching": swept if ONE_FEATURE_SWEEP in self.signals else [],
            "figures": self._figures(),
            "reason": self._reason(),
        }
        if near is not None:
            evidence["distance"] = {"psi": round(near.distance, 4), "feature": near.feature}
            evidence["out_of_range_share"] = {
                k: round(v, 4) for k, v in near.out_of_range.items() if v
            }
            evidence["evenly_spaced"] = near.grid
            if OFF_PROFILE in self.signals and near.feature not in evidence["breaching"]:
                evidence["breaching"] = [*evidence["breaching"], near.feature]
        return evidence

    def _figures(self) -> list[dict[str, Any]]:
        end = isoformat(self.window.end)
        rows = self.sweep.rows
        found = [
            {
                "feature": name,
                "window_end": end,
                "value": count / rows if rows else 0.0,
                "rows": rows,
            }
            for name, count in self.sweep.by_feature.items()
            if count
        ]
        if self.coverage is not None:
            found.append(
                {
                    "feature": f"psi:{self.coverage.feature}",
                    "window_end": end,
                    "value": self.coverage.distance,
                    "rows": rows,
                }
            )
        return found

    def _reason(self) -> str:
        sweep, near = self.sweep, self.coverage
        text = (
            f"key {self.key_prefix}: {sweep.swept_rows} of {sweep.rows} rows "
            f"({sweep.share:.0%}) differ from another of its rows in one feature"
        )
        swept = sweep.swept_features()
        if swept:
            text += f" ({', '.join(swept)})"
        if near is not None:
            text += f"; largest PSI against the reference {near.distance:.2f} ({near.feature})"
        return text


class Extraction:
    """Judges every API key's recent traffic; raises and resolves `extraction` alerts,
    and throttles a suspicious key when a rate is configured and a throttle wired."""

    def __init__(
        self,
        monitoring: Monitoring,
        alerts: Alerts,
        policy: ExtractionPolicy | None = None,
        throttle: Throttle | None = None,
    ) -> None:
        self.monitoring = monitoring
        self.alerts = alerts
        self.policy = policy or ExtractionPolicy()
        self.throttle = throttle

    def scan(self, session: Session, now: datetime | None = None) -> list[Finding]:
        """Judge each key with at least `min_rows` rows for each version served in the
        window ending now (give it a read session: this reads and opens rows)."""
        end = now or utcnow()
        window = Window(end - self.policy.window, end + timedelta(microseconds=1))
        findings: list[Finding] = []
        for name, number in self.monitoring.served_versions(session, window):
            model = self.monitoring.registry.model(session, name)
            version = next((v for v in model.versions if v.version == number), None)
            if version is None:  # records of a version the registry no longer holds
                continue
            traffic = self._traffic_by_key(session, version, window)
            judged = [t for t in traffic.values() if len(t.rows) >= self.policy.min_rows]
            prefixes = _prefixes(session, [t.key_id for t in judged])
            profile = self.monitoring.profiles.get(session, name, number)
            for keyed in judged:
                facts = (name, number, prefixes.get(keyed.key_id, keyed.key_id), window)
                findings.append(self._judge(facts, version.features, profile, keyed))
        return findings

    def judge(
        self, session: Session, findings: Iterable[Finding], actor: Actor = SYSTEM
    ) -> list[Transition]:
        """Fire and resolve the alerts for these findings (a write session), throttling
        the key of each alert just fired when a rate is configured."""
        found = list(findings)
        throttling = {"throttle": self.policy.throttle_rate} if self._throttles() else {}
        suspicious = [
            Suspicion(
                f.model_name,
                f.model_version,
                f.rule_key,
                _description(f),
                f.evidence() | throttling,
            )
            for f in found
            if f.signals
        ]
        calm = {
            (f.model_name, f.model_version, f.rule_key): _calm(f.evidence())
            for f in found
            if not f.signals
        }
        transitions, fired = self.alerts.judge_extraction(session, suspicious, calm, actor)
        for alert in fired:
            self._throttle(session, alert.evidence["key"])
        return transitions

    def _throttles(self) -> bool:
        return bool(self.policy.throttle_rate) and self.throttle is not None

    def _throttle(self, session: Session, prefix: str) -> None:
        """Slow the key down in the alert's transaction: both stand or neither."""
        if not self.policy.throttle_rate:
            return
        if self.throttle is None:
            log.warning("extraction_throttle_rate is set but no throttle is wired: key %s", prefix)
            return
        self.throttle(session, prefix, self.policy.throttle_rate)

    def _traffic_by_key(
        self, session: Session, version: Any, window: Window
    ) -> dict[str, KeyTraffic]:
        by_key: dict[str, KeyTraffic] = {}
        for record, rows in self.monitoring.served_rows(session, version, window):
            if record.actor_type != KEY_ACTOR:
                continue
            keyed = by_key.setdefault(record.actor_id, KeyTraffic(record.actor_id))
            keyed.requests += 1
            keyed.rows.extend(row.get("input") or {} for row in rows)
            if len(keyed.rows) > 2 * self.policy.max_rows:  # bounded: keep the newest
                del keyed.rows[: -self.policy.max_rows]
        for keyed in by_key.values():
            del keyed.rows[: -self.policy.max_rows]
        return by_key

    def _judge(
        self,
        facts: tuple[str, int, str, Window],
        features: Sequence[Mapping[str, str]],
        profile: Any,
        keyed: KeyTraffic,
    ) -> Finding:
        names = [f["name"] for f in features]
        frame = pd.DataFrame.from_records(keyed.rows, columns=names)
        sweep = one_feature_sweep(value_codes(frame), names)
        near = coverage(frame, features, profile.profile) if profile is not None else None
        signals = []
        if self.policy.sweep_share > 0 and sweep.share >= self.policy.sweep_share:
            signals.append(ONE_FEATURE_SWEEP)
        if self.policy.distance > 0 and near is not None and near.distance >= self.policy.distance:
            signals.append(OFF_PROFILE)
        name, number, prefix, window = facts
        return Finding(
            name, number, keyed.key_id, prefix, window, keyed.requests, sweep, near, tuple(signals)
        )


def _calm(evidence: dict[str, Any]) -> dict[str, Any]:
    return evidence | {"reason": f"traffic looks ordinary again: {evidence['reason']}"}


def _description(finding: Finding) -> str:
    return f"key {finding.key_prefix}: traffic looks like a sweep of the input space"


def _prefixes(session: Session, key_ids: Sequence[str]) -> dict[str, str]:
    """Each key's shown prefix, by the id the audit records carry."""
    ids = [int(k) for k in key_ids if k.isdigit()]
    if not ids:
        return {}
    stmt = select(ApiKey.id, ApiKey.prefix).where(ApiKey.id.in_(ids))
    return {str(key_id): prefix for key_id, prefix in session.execute(stmt)}
