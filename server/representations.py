"""Plain-dict views of records, shared by the JSON API and the CLI's --json."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from governance.accounts.records import ApiKey, User
from governance.monitoring.extraction import Finding
from governance.monitoring.records import Alert, AlertDelivery
from governance.operations.records import JobRun
from governance.provenance.records import TrustedSigner
from governance.registry import lifecycle
from governance.registry.records import (
    AliasHistory,
    Compilation,
    ModelVersion,
    RegisteredModel,
    VersionVerification,
)
from governance.registry.retirement import KeyCaller, Step, shred_after, successor
from governance.registry.service import VersionCheck
from governance.retraining.records import RetrainingPlan, RetrainingRun
from governance.subjects.erasure import Erasure, SubjectStatus
from governance.subjects.records import SubjectHold
from governance.subjects.retention import RetentionReport


def model_summary(model: RegisteredModel) -> dict[str, Any]:
    latest = model.versions[-1] if model.versions else None
    return {
        "name": model.name,
        "created_at": model.created_at.isoformat(),
        "latest_version": latest.version if latest else None,
        "aliases": {a.name: a.version for a in model.aliases},
    }


def model_detail(model: RegisteredModel) -> dict[str, Any]:
    return model_summary(model) | {"versions": [version_detail(v) for v in model.versions]}


def version_detail(version: ModelVersion) -> dict[str, Any]:
    return {
        "name": version.model.name,
        "version": version.version,
        "sha256": version.sha256,
        "size": version.size,
        "features": version.features,
        "named_features": version.named_features,
        "has_proba": version.has_proba,
        "classes": version.classes,
        "allow_missing": version.allow_missing,
        "estimator": version.estimator_type,
        "sklearn_version": version.sklearn_version,
        "runtime": version.runtime,
        "compilation": compilation(version.compilation),
        "published_by": version.published_by,
        "published_at": version.published_at.isoformat(),
        "aliases": sorted(a.name for a in version.model.aliases if a.version == version.version),
        "card": {
            "description": version.description,
            "purpose": version.purpose,
            "legal_basis": version.legal_basis,
            "decision_mode": version.decision_mode,
            "owner": version.owner,
            "retention_days": version.retention_days,
            "recipients": version.recipients,
        },
        "signature": _signature(version),
        "origin": _origin(version),
        "retirement": retirement_detail(version),
    } | made(version)


def retirement_detail(version: ModelVersion) -> dict[str, Any] | None:
    """A version's way out of serving (None while it is in service)."""
    row = version.retirement
    if row is None:
        return None
    return {
        "deprecated_at": _iso(row.deprecated_at),
        "deprecated_by": row.deprecated_by or None,
        "sunset": _iso(row.sunset_at),
        "reason": row.reason,
        "retired_at": _iso(row.retired_at),
        "retired_by": row.retired_by or None,
        "shred_after": _iso(shred_after(version, row)) if row.retired_at else None,
        "shredded_at": _iso(row.shredded_at),
        "successor": successor(version),
    }


def lifecycle_step(step: Step) -> dict[str, Any]:
    return {
        "at": step.at.isoformat(),
        "version": step.version,
        "action": step.action,
        "actor": step.actor,
        "details": step.details,
    }


def key_caller(caller: KeyCaller) -> dict[str, Any]:
    return {
        "actor_type": caller.actor_type,
        "actor_id": caller.actor_id,
        "name": caller.name,
        "prefix": caller.prefix,
        "requests": caller.requests,
        "last_seen": caller.last_seen,
    }


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def made(version: ModelVersion) -> dict[str, Any]:
    """How the version was made (None where it predates the record), what changed
    against the version it replaced, and whether it may load here."""
    facts = version.facts
    return {
        "params": facts.params if facts else None,
        "libraries": facts.libraries if facts else None,
        "note": facts.note if facts else None,
        "changelog": facts.changelog if facts else None,
        "reference_sample_rows": len(facts.sample["rows"]) if facts and facts.sample else None,
        "verifications": [verification(v) for v in version.verifications],
        "load_refusal": lifecycle.load_refusal(version),
    }


def version_check(check: VersionCheck) -> dict[str, Any]:
    return {
        "name": check.name,
        "version": check.version,
        "sklearn_version": check.sklearn_version,
        "trained_with": check.trained_with,
        "passed": check.passed,
        "problems": check.problems,
        "comparison": lifecycle.json_safe(check.comparison),  # JSON has no Infinity
    }


def verification(row: VersionVerification) -> dict[str, Any]:
    return {
        "sklearn_version": row.sklearn_version,
        "comparison": row.comparison,
        "verified_by": row.verified_by,
        "verified_at": row.verified_at.isoformat(),
    }


def _origin(version: ModelVersion) -> dict[str, Any] | None:
    """Where the version came from: an MLflow run or another appliance's bundle."""
    origin = getattr(version, "origin", None)
    if origin is None:
        return None
    return {
        "source": origin.source,
        "reference": origin.reference,
        "run_id": origin.run_id,
        "link": origin.link,
        "params": origin.params,
        "metrics": origin.metrics,
        **origin.details,
    }


def _signature(version: ModelVersion) -> dict[str, Any] | None:
    """Who signed the version, as verified at publish (it is verified again at load)."""
    signed = getattr(version, "signature", None)
    if signed is None:
        return None
    return {
        "signer": signed.signer,
        "fingerprint": signed.fingerprint,
        "format": signed.format,
        "verified_at": signed.verified_at.isoformat(),
    }


def signer_summary(signer: TrustedSigner) -> dict[str, Any]:
    return {
        "name": signer.name,
        "kind": signer.kind,
        "fingerprint": signer.fingerprint,
        "added_by": signer.added_by,
        "added_at": signer.added_at.isoformat(),
    }


def compilation(row: Compilation | None) -> dict[str, Any]:
    """Which runtime answers and why; the proof's figures when there was one."""
    if row is None:
        return {"runtime": "sklearn", "reason": "never compiled (cofre models compile)"}
    return {
        "runtime": row.runtime,
        "requested": row.requested,
        "reason": row.reason,
        "onnx_sha256": row.sha256,
        "onnx_size": row.size,
        "proof": row.proof,
        "compiled_by": row.compiled_by,
        "compiled_at": row.compiled_at.isoformat(),
    }


def alias_move(entry: AliasHistory) -> dict[str, Any]:
    return {
        "alias": entry.alias,
        "from_version": entry.from_version,
        "to_version": entry.to_version,
        "action": entry.action,
        "actor": entry.actor,
        "at": entry.at.isoformat(),
    }


def user_summary(user: User) -> dict[str, Any]:
    return {
        "id": user.id,
        "username": user.username,
        "role": user.role,
        "disabled": user.disabled,
        "created_at": user.created_at.isoformat(),
    }


def key_summary(key: ApiKey) -> dict[str, Any]:
    return {
        "id": key.id,
        "name": key.name,
        "prefix": key.prefix,
        "role": key.role,
        "models": key.models,
        "labels_only": key.labels_only,
        "rate": key.rate_per_second,
        "rows_per_day": key.rows_per_day,
        "precision": key.output_precision,
        "created_at": key.created_at.isoformat(),
        "revoked_at": key.revoked_at.isoformat() if key.revoked_at else None,
    }


def job_run(run: JobRun) -> dict[str, Any]:
    return {
        "id": run.id,
        "job": run.job,
        "scheduled_for": run.scheduled_for.isoformat() if run.scheduled_for else None,
        "started_at": run.started_at.isoformat(),
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
        "outcome": run.outcome,
        "message": run.message,
        "attempts": run.attempts,
        "runner": run.runner,
    }


def retraining_plan(plan: RetrainingPlan) -> dict[str, Any]:
    return {
        "id": plan.id,
        "model": plan.model_name,
        "source_kind": plan.source_kind,
        "source": plan.source,
        "target": plan.target,
        "schedule": plan.schedule,
        "metric": plan.metric,
        "min_improvement": plan.min_improvement,
        "holdout": plan.holdout,
        "profile": "set" if plan.profile else "derived from the first data",
        "enabled": plan.enabled,
        "on_alert": plan.on_alert,
        "created_by": plan.created_by,
        "created_at": plan.created_at.isoformat(),
    }


def retraining_run(run: RetrainingRun) -> dict[str, Any]:
    return {
        "id": run.id,
        "plan": run.plan_id,
        "started_at": run.started_at.isoformat(),
        "finished_at": run.finished_at.isoformat(),
        "source": run.source,
        "data_sha256": run.data_sha256,
        "rows": run.rows,
        "champion_version": run.champion_version,
        "champion_metric": run.champion_metric,
        "candidate_metric": run.candidate_metric,
        "decision": run.decision,
        "reason": run.reason,
        "candidate_version": run.candidate_version,
        "details": run.details,
    }


def subject_hold(hold: SubjectHold) -> dict[str, Any]:
    return {
        "id": hold.id,
        "subject": hold.pseudonym,
        "reason": hold.reason,
        "placed_by": hold.placed_by,
        "placed_at": hold.placed_at.isoformat(),
        "released_by": hold.released_by,
        "released_at": hold.released_at.isoformat() if hold.released_at else None,
    }


def erasure(result: Erasure) -> dict[str, Any]:
    return {
        "subject": result.pseudonym,
        "keys_destroyed": result.keys_destroyed,
        "already_erased": result.already_erased,
        "seq": result.seq,
        "at": result.at,
    }


def subject_status(status: SubjectStatus) -> dict[str, Any]:
    return {
        "subject": status.pseudonym,
        "known": status.known,
        "held": status.held,
        "live_keys": status.live_keys,
        "destroyed_keys": status.destroyed_keys,
        "holds": [subject_hold(h) for h in status.holds],
        "events": [
            {"seq": r.seq, "at": r.at, "kind": r.kind, "outcome": r.outcome, "details": r.details}
            for r in status.events
        ],
    }


def retention_report(report: RetentionReport, dry_run: bool) -> dict[str, Any]:
    return {
        "at": report.at.isoformat(),
        "dry_run": dry_run,
        "due": report.due,
        "shredded": report.shredded,
        "versions": [e.as_dict() for e in report.expiries],
        "artifacts": report.artifacts,
    }


def alert(record: Alert, deliveries: list[AlertDelivery] | None = None) -> dict[str, Any]:
    out = {
        "id": record.id,
        "model": record.model_name,
        "version": record.model_version,
        "state": record.state,
        "kind": record.kind,
        "rule": record.rule,
        "fired_at": record.fired_at.isoformat(),
        "resolved_at": record.resolved_at.isoformat() if record.resolved_at else None,
        "evidence": record.evidence,
        "resolution": record.resolution,
    }
    if deliveries is not None:
        out["deliveries"] = [alert_delivery(d) for d in deliveries]
    return out


def extraction_finding(finding: Finding) -> dict[str, Any]:
    """One key's traffic to one version, judged for sweeps (aggregates only)."""
    return {"model": finding.model_name, "version": finding.model_version, **finding.evidence()}


def alert_delivery(row: AlertDelivery) -> dict[str, Any]:
    return {
        "id": row.id,
        "transition": row.transition,
        "channel": row.channel,
        "plan": row.plan_id,
        "status": row.status,
        "attempts": row.attempts,
        "next_attempt_at": row.next_attempt_at.isoformat() if row.status == "pending" else None,
        "last_error": row.last_error or None,
        "history": row.history,
    }
