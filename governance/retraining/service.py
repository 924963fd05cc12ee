"""Retraining use cases: register a plan, run it, list plans and runs.

A run retrains with the champion's own recipe: `sklearn.base.clone` of the
estimator (or pipeline) behind the `production` alias, fitted on fresh data.
Gates come first (schema, data quality against the training profile, label
noise); then champion and candidate are scored on the same held-out rows of
the fresh data. Only a candidate that beats the champion by the plan's margin
is published, with alias `candidate`; a run never moves `production` (a
publisher promotes). Every run is recorded, whatever its verdict.

The slow parts (reading data, fitting) run between short transactions, never
inside one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
import skops.io as sio
from sklearn.base import clone, is_classifier
from sklearn.model_selection import cross_val_predict, train_test_split
from sqlalchemy import select
from sqlalchemy.orm import Session

from governance.accounts.actor import Actor
from governance.audit.service import AuditEvent, AuditLog
from governance.clock import utcnow
from governance.errors import CofreError, FieldError, InvalidInput, NotFound
from governance.monitoring.rules import TRIGGER_KINDS
from governance.operations.transactions import Transactions
from governance.registry.records import ModelVersion
from governance.registry.service import (
    DEFAULT_ALIAS,
    ModelCard,
    PreparedPublish,
    PublishRequest,
    Registry,
)
from governance.retraining import quality
from governance.retraining.evaluation import Metric, beats, metric_named, score
from governance.retraining.records import RetrainingPlan, RetrainingRun
from governance.retraining.sources import Dataset, DataSources

CANDIDATE_ALIAS = "candidate"
_CRON_FIELD = re.compile(r"^[0-9A-Za-z*/,?-]+$")


@dataclass(frozen=True)
class PlanRequest:
    model_name: str
    source_kind: str
    source: str
    target: str
    schedule: str
    metric: str
    min_improvement: float
    holdout: float = 0.25
    profile_source: str | None = None  # a file of the champion's training data
    on_alert: str | None = None  # also run when an alert of this kind fires (drift | performance)


@dataclass(frozen=True)
class Champion:
    """What a run needs of the production version, read in one short transaction."""

    version: int
    estimator: Any
    features: list[dict[str, str]]
    named: bool
    allow_missing: bool
    card: ModelCard


@dataclass
class Verdict:
    decision: str  # registered | rejected | failed
    reason: str
    champion_metric: float | None = None
    candidate_metric: float | None = None
    candidate: Any = None
    profile: dict[str, Any] | None = None
    details: dict[str, Any] = field(default_factory=dict)


class Retraining:
    """Plans and runs over the registry, the audit log and the data sources."""

    def __init__(
        self, registry: Registry, audit: AuditLog, sources: DataSources, tx: Transactions
    ) -> None:
        self.registry = registry
        self.audit = audit
        self.sources = sources
        self.tx = tx

    # -- plans ------------------------------------------------------------------------
    def create_plan(self, actor: Actor, request: PlanRequest) -> RetrainingPlan:
        _check_request(request)
        actor.check_model(request.model_name)
        _check_on_alert(request.on_alert)
        self.sources.check(request.source_kind, request.source)
        with self.tx.read() as session:
            champion = self._champion(session, request.model_name)
        schema = _schema(champion, request.target)
        metric_named(request.metric, schema.classification)
        if request.target in schema.names:
            raise InvalidInput("the target is one of the features", [FieldError("target", "")])
        profile = None
        if request.profile_source:
            data = self.sources.read("file", request.profile_source)
            profile = _profile(data.frame, schema, champion)
        with self.tx.write() as session:
            plan = RetrainingPlan(
                model_name=request.model_name,
                source_kind=request.source_kind,
                source=request.source,
                target=request.target,
                schedule=request.schedule.strip(),
                metric=request.metric,
                min_improvement=float(request.min_improvement),
                holdout=float(request.holdout),
                profile=profile,
                enabled=True,
                on_alert=request.on_alert or None,
                created_by=actor.name,
                created_at=utcnow(),
            )
            session.add(plan)
            session.flush()
            self.audit.append(session, _plan_event(actor, plan))
        return plan

    def set_on_alert(self, actor: Actor, plan_id: int, on_alert: str | None) -> RetrainingPlan:
        """Make the plan also run when an alert of kind `on_alert` fires (None: schedule only)."""
        _check_on_alert(on_alert)
        with self.tx.write() as session:
            plan = self.plan(session, plan_id, actor)
            before, plan.on_alert = plan.on_alert, on_alert or None
            self.audit.append(
                session,
                AuditEvent(
                    kind="retraining.plan_updated",
                    actor=actor,
                    model_name=plan.model_name,
                    details={"plan": plan.id, "on_alert": plan.on_alert, "was": before},
                ),
            )
        return plan

    def plans(self, session: Session, actor: Actor) -> list[RetrainingPlan]:
        """The plans of the models `actor` may act on."""
        stmt = select(RetrainingPlan).order_by(RetrainingPlan.id)
        if actor.models is not None:
            stmt = stmt.where(RetrainingPlan.model_name.in_(actor.models))
        return list(session.scalars(stmt))

    def plan(self, session: Session, plan_id: int, actor: Actor) -> RetrainingPlan:
        """One plan; PermissionDenied when `actor` is limited to other models."""
        plan = session.get(RetrainingPlan, plan_id)
        if plan is None:
            raise NotFound(f"no retraining plan {plan_id}")
        actor.check_model(plan.model_name)
        return plan

    def runs(
        self, session: Session, actor: Actor, plan_id: int | None = None, limit: int = 50
    ) -> list[RetrainingRun]:
        """The latest runs (of one plan), of the models `actor` may act on."""
        stmt = (
            select(RetrainingRun).order_by(RetrainingRun.id.desc()).limit(max(1, min(limit, 500)))
        )
        if plan_id is not None:
            stmt = stmt.where(RetrainingRun.plan_id == plan_id)
        if actor.models is not None:
            mine = select(RetrainingPlan.id).where(RetrainingPlan.model_name.in_(actor.models))
            stmt = stmt.where(RetrainingRun.plan_id.in_(mine))
        return list(session.scalars(stmt))

    # -- runs -------------------------------------------------------------------------
    def run(self, plan_id: int, actor: Actor, trigger: str | None = None) -> RetrainingRun:
        """Read, gate, fit, compare, and record; publish the candidate only if it wins.

        `trigger` says why it runs when not by its schedule (an alert), for the record.
        """
        started = utcnow()
        with self.tx.read() as session:
            plan = self.plan(session, plan_id, actor)
            champion = self._champion(session, plan.model_name)
        data: Dataset | None = None
        try:
            data = self.sources.read(plan.source_kind, plan.source)
            verdict = assess(plan, champion, data.frame, _seed(data.sha256))
        except CofreError as exc:
            verdict = Verdict("failed", exc.detail)
        except Exception as exc:  # a fit can fail in many ways; record it, do not crash
            verdict = Verdict("failed", f"{type(exc).__name__}: {str(exc)[:200]}")
        if trigger:
            verdict.details["trigger"] = trigger
        # Described and compiled before the write transaction, which would otherwise
        # hold the database's write lock for as long as the proof takes.
        candidate = (
            self.registry.prepare(actor, _candidate_request(plan, champion, verdict, data))
            if verdict.decision == "registered"
            else None
        )
        return self._record(plan_id, actor, champion, started, data, verdict, candidate)

    def _record(
        self,
        plan_id: int,
        actor: Actor,
        champion: Champion,
        started: datetime,
        data: Dataset | None,
        verdict: Verdict,
        candidate: PreparedPublish | None,
    ) -> RetrainingRun:
        with self.tx.write() as session:
            plan = self.plan(session, plan_id, actor)
            candidate_version = None
            if candidate is not None:
                candidate_version = self.registry.publish(session, actor, candidate).version
            if verdict.profile is not None and plan.profile is None:
                plan.profile = verdict.profile
            run = RetrainingRun(
                plan_id=plan.id,
                started_at=started,
                finished_at=utcnow(),
                source=data.source if data else f"{plan.source_kind}:{plan.source[:200]}",
                data_sha256=data.sha256 if data else None,
                rows=len(data.frame) if data else 0,
                champion_version=champion.version,
                champion_metric=verdict.champion_metric,
                candidate_metric=verdict.candidate_metric,
                decision=verdict.decision,
                reason=verdict.reason,
                candidate_version=candidate_version,
                details=verdict.details or None,
            )
            session.add(run)
            session.flush()
            self.audit.append(session, _run_event(actor, plan, run))
        return run

    def _champion(self, session: Session, model_name: str) -> Champion:
        version: ModelVersion = self.registry.resolve(session, model_name, alias=DEFAULT_ALIAS)
        return Champion(
            version=version.version,
            estimator=self.registry.load_estimator(version),
            features=[dict(f) for f in version.features],
            named=version.named_features,
            allow_missing=version.allow_missing,
            card=ModelCard(
                purpose=version.purpose,
                legal_basis=version.legal_basis,
                description=version.description,
                decision_mode=version.decision_mode,
                owner=version.owner,
            ),
        )


# -- the assessment (pure: no database) ---------------------------------------------------
def assess(plan: RetrainingPlan, champion: Champion, frame: pd.DataFrame, seed: int) -> Verdict:
    """Gates, then fit the clone and compare on a held-out split."""
    schema = _schema(champion, plan.target)
    metric = metric_named(plan.metric, schema.classification)
    problems = quality.schema_problems(frame, schema)
    if problems:
        return Verdict("rejected", "schema: " + "; ".join(problems), details={"gate": problems})
    frame = _usable_rows(frame, schema, champion.allow_missing)
    profile, first = plan.profile, plan.profile is None
    noise = quality.measure_label_noise(
        lambda: _out_of_fold(champion, frame, schema, seed),
        frame[schema.target],
        schema.classification,
    )
    if first:
        profile = quality.build_profile(frame, schema, noise)
    else:
        assert profile is not None
        problems = quality.quality_problems(frame, schema, profile)
        noisy = quality.label_noise_problem(noise, profile)
        problems += [noisy] if noisy else []
        if problems:
            return Verdict(
                "rejected",
                "data quality: " + "; ".join(problems),
                details={"gate": problems, "label_noise": noise},
            )
    verdict = _compare(plan, champion, frame, schema, metric, seed)
    verdict.details["label_noise"] = noise
    if first:
        verdict.profile = profile
        verdict.details["profile"] = "derived from this data (first run)"
    return verdict


def _compare(
    plan: RetrainingPlan,
    champion: Champion,
    frame: pd.DataFrame,
    schema: quality.Schema,
    metric: Metric,
    seed: int,
) -> Verdict:
    features, labels = _xy(frame, schema, champion.named)
    stratify = labels if schema.classification and labels.value_counts().min() >= 2 else None
    x_train, x_test, y_train, y_test = train_test_split(
        features, labels, test_size=plan.holdout, random_state=seed, stratify=stratify
    )
    candidate = clone(champion.estimator).fit(x_train, y_train)
    old = score(metric, champion.estimator, x_test, y_test)
    new = score(metric, candidate, x_test, y_test)
    details = {"metric": metric.name, "train_rows": len(y_train), "holdout_rows": len(y_test)}
    if beats(metric, old, new, plan.min_improvement):
        reason = (
            f"{metric.name} {new:.4f} beats the champion's {old:.4f} "
            f"by at least {plan.min_improvement}"
        )
        return Verdict("registered", reason, old, new, candidate, details=details)
    reason = (
        f"{metric.name} {new:.4f} does not beat the champion's {old:.4f} "
        f"by the margin {plan.min_improvement}"
    )
    return Verdict("rejected", reason, old, new, details=details)


def _out_of_fold(
    champion: Champion, frame: pd.DataFrame, schema: quality.Schema, seed: int
) -> np.ndarray:
    features, labels = _xy(frame, schema, champion.named)
    folds = int(min(3, labels.value_counts().min()))
    if folds < 2:
        return np.asarray(labels)
    return np.asarray(cross_val_predict(clone(champion.estimator), features, labels, cv=folds))


def _xy(frame: pd.DataFrame, schema: quality.Schema, named: bool) -> tuple[Any, pd.Series]:
    features = frame[schema.names]
    return (features if named else features.to_numpy()), frame[schema.target]


def _usable_rows(frame: pd.DataFrame, schema: quality.Schema, allow_missing: bool) -> pd.DataFrame:
    """Rows without a label never train; rows with missing features only if the model takes them."""
    columns = [schema.target] if allow_missing else [*schema.names, schema.target]
    return frame.dropna(subset=columns).reset_index(drop=True)


def _schema(champion: Champion, target: str) -> quality.Schema:
    return quality.Schema(champion.features, target, bool(is_classifier(champion.estimator)))


def _profile(frame: pd.DataFrame, schema: quality.Schema, champion: Champion) -> dict[str, Any]:
    problems = quality.schema_problems(frame, schema)
    if problems:
        raise InvalidInput("the profile data does not fit the model: " + "; ".join(problems))
    frame = _usable_rows(frame, schema, champion.allow_missing)
    noise = quality.measure_label_noise(
        lambda: _out_of_fold(champion, frame, schema, 0),
        frame[schema.target],
        schema.classification,
    )
    return quality.build_profile(frame, schema, noise)


def _seed(sha256: str) -> int:
    """Same data, same split: a run can be reproduced from the recorded hash."""
    return int(sha256[:8], 16) % (2**31)


def _check_request(request: PlanRequest) -> None:
    errors = []
    if not request.target.strip():
        errors.append(FieldError("target", "is required"))
    if not valid_cron(request.schedule):
        errors.append(FieldError("schedule", "a cron expression: 5 fields, or 6 with seconds"))
    if not 0 <= request.min_improvement < 1e6:
        errors.append(FieldError("min_improvement", "zero or more"))
    if not 0.05 <= request.holdout <= 0.5:
        errors.append(FieldError("holdout", "between 0.05 and 0.5"))
    if errors:
        raise InvalidInput("the retraining plan is invalid", errors)


def _check_on_alert(on_alert: str | None) -> None:
    if on_alert and on_alert not in TRIGGER_KINDS:
        raise InvalidInput(
            "unknown alert kind", [FieldError("on_alert", " or ".join(TRIGGER_KINDS))]
        )


def valid_cron(expression: str) -> bool:
    """Shape check only (the scheduler parses it fully before the plan is saved)."""
    fields = expression.split()
    return len(fields) in (5, 6) and all(_CRON_FIELD.match(f) for f in fields)


def _plan_event(actor: Actor, plan: RetrainingPlan) -> AuditEvent:
    return AuditEvent(
        kind="retraining.plan_created",
        actor=actor,
        model_name=plan.model_name,
        details={
            "plan": plan.id,
            "source_kind": plan.source_kind,
            "target": plan.target,
            "schedule": plan.schedule,
            "metric": plan.metric,
            "min_improvement": str(plan.min_improvement),
            "profile": "given" if plan.profile else "from first data",
            "on_alert": plan.on_alert,
        },
    )


def _candidate_request(
    plan: RetrainingPlan, champion: Champion, verdict: Verdict, data: Dataset | None
) -> PublishRequest:
    card = champion.card
    description = (
        f"Retrained by plan {plan.id} from {data.source if data else plan.source_kind} "
        f"(sha256 {data.sha256[:12] if data else '-'}); "
        f"champion was version {champion.version}."
    )
    return PublishRequest(
        name=plan.model_name,
        artifact=sio.dumps(verdict.candidate),
        card=ModelCard(
            purpose=card.purpose,
            legal_basis=card.legal_basis,
            description=description,
            decision_mode=card.decision_mode,
            owner=card.owner,
        ),
        features=champion.features,
        allow_missing=champion.allow_missing,
        aliases=[CANDIDATE_ALIAS],
    )


def _run_event(actor: Actor, plan: RetrainingPlan, run: RetrainingRun) -> AuditEvent:
    # Audit details hold no floats (their text is not canonical): metrics go as text.
    return AuditEvent(
        kind="retraining.run",
        actor=actor,
        outcome="ok" if run.decision != "failed" else "failed",
        model_name=plan.model_name,
        model_version=run.candidate_version,
        details={
            "plan": plan.id,
            "run": run.id,
            "decision": run.decision,
            "reason": run.reason[:500],
            "data_sha256": run.data_sha256,
            "rows": run.rows,
            "champion_version": run.champion_version,
            "champion_metric": _text(run.champion_metric),
            "candidate_metric": _text(run.candidate_metric),
            "trigger": (run.details or {}).get("trigger"),
        },
    )


def _text(value: float | None) -> str | None:
    return None if value is None else f"{value:.6f}"
