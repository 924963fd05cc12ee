"""What a rollout looks like now: its traffic, its ground-truth comparison, its
guardrails and, for A/B, its decision (governance/rollouts/statistics.py says how).

Ground truth comes from the feedback labels of the rows each variant answered
during the rollout; the output each label is compared with is read back from the
row's sealed audit record (the only copy of it), so erased rows drop out.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from governance.accounts.actor import Actor
from governance.audit.records import AuditRecord
from governance.audit.service import AuditLog
from governance.clock import isoformat, utcnow
from governance.monitoring.alerts import Alerts
from governance.monitoring.feedback import Feedback
from governance.monitoring.figures import DRIFT, PSI
from governance.monitoring.records import MonitoringRollup
from governance.registry.service import Registry
from governance.rollouts import guardrails, statistics
from governance.rollouts.records import Rollout
from governance.rollouts.routing import CANDIDATE, CHAMPION
from governance.rollouts.service import RUNNING, Rollouts

_CHUNK = 500


class RolloutReports:
    """Status, guardrail checks and A/B decisions of rollouts."""

    def __init__(
        self,
        rollouts: Rollouts,
        registry: Registry,
        audit: AuditLog,
        feedback: Feedback,
        alerts: Alerts,
    ) -> None:
        self.rollouts = rollouts
        self.registry = registry
        self.audit = audit
        self.feedback = feedback
        self.alerts = alerts

    def status(self, session: Session, name: str) -> dict[str, Any]:
        """The model's running (else latest) rollout with every figure."""
        rollout = self.rollouts.latest(session, name)
        variants = self._traffic(session, rollout)
        out = describe(rollout) | {"variants": variants}
        out["comparison"] = self.comparison(session, rollout)
        return out

    def _traffic(self, session: Session, rollout: Rollout) -> dict[str, dict[str, Any]]:
        variants = statistics.traffic(self.rollouts.tallies(session, rollout.id))
        variants[CANDIDATE]["drift"] = self._drift(session, rollout)
        return {
            variant: figures
            | {
                "version": rollout.champion_version
                if variant == CHAMPION
                else rollout.candidate_version
            }
            for variant, figures in variants.items()
        }

    def comparison(self, session: Session, rollout: Rollout) -> dict[str, Any]:
        """The variants compared on ground truth, and for A/B the sequential test."""
        plan = rollout.plan
        samples = self.samples(session, rollout)
        champion, candidate = samples[CHAMPION], samples[CANDIDATE]
        alpha, power = float(plan["alpha"]), float(plan["power"])
        needed = statistics.needed(champion, candidate, alpha, power)
        out: dict[str, Any] = {
            CHAMPION: statistics.metric(champion, alpha),
            CANDIDATE: statistics.metric(candidate, alpha),
            "test": statistics.test(champion, candidate),
            "alpha": alpha,
            "power": power,
            "needed_per_variant": needed,
            "still_needed": None
            if needed is None
            else max(0, needed - min(len(champion.values), len(candidate.values))),
        }
        if rollout.strategy == "ab":
            decision, analysis = statistics.sequential(champion, candidate, plan)
            out["sequential"] = analysis
            out["decision"] = rollout.decision or decision
        return out

    def samples(self, session: Session, rollout: Rollout) -> dict[str, statistics.Samples]:
        until = rollout.ended_at or utcnow()
        versions = {CHAMPION: rollout.champion_version, CANDIDATE: rollout.candidate_version}
        kind = self._metric_kind(session, rollout)
        return {
            variant: statistics.Samples(
                kind, self._values(session, rollout, version, kind, rollout.started_at, until)
            )
            for variant, version in versions.items()
        }

    def _metric_kind(self, session: Session, rollout: Rollout) -> str:
        version = self.registry.resolve(
            session, rollout.model_name, version=rollout.champion_version
        )
        return "accuracy" if version.classes is not None else "mae"

    def _values(
        self,
        session: Session,
        rollout: Rollout,
        version: int,
        kind: str,
        since: datetime,
        until: datetime,
    ) -> list[float]:
        labels = self.feedback.labels(session, rollout.model_name, version, since, until)
        outputs = self._outputs(session, rollout, version, sorted({r for r, _ in labels}))
        values = []
        for ref in sorted(labels, key=lambda ref: outputs.get(ref, (math.inf, None))[0]):
            if ref not in outputs:
                continue  # not routed by this rollout (an explicit ?version=), or erased
            output, truth = outputs[ref][1], labels[ref].ground_truth
            values.append(float(output == truth) if kind == "accuracy" else abs(output - truth))
        return values

    def _outputs(
        self, session: Session, rollout: Rollout, version: int, request_ids: list[str]
    ) -> dict[tuple[str, int], tuple[int, Any]]:
        """(request id, row) -> (audit seq, output) of the rows this rollout routed."""
        found: dict[tuple[str, int], tuple[int, Any]] = {}
        for start in range(0, len(request_ids), _CHUNK):
            stmt = select(AuditRecord).where(
                AuditRecord.request_id.in_(request_ids[start : start + _CHUNK]),
                AuditRecord.kind == "prediction",
                AuditRecord.model_version == version,
                AuditRecord.seq > rollout.start_seq,
            )
            for record in session.scalars(stmt):
                if (record.details or {}).get("rollout") != rollout.id:
                    continue
                for row, data in enumerate(self.audit.decrypt_payload(session, record)):
                    if "output" in data:
                        found[(record.request_id, row)] = (record.seq, data["output"])
        return found

    def _drift(self, session: Session, rollout: Rollout) -> float | None:
        """The largest PSI the monitoring rollups found on the candidate's inputs since
        the rollout started (None until a rollup covers it)."""
        stmt = select(func.max(MonitoringRollup.value)).where(
            MonitoringRollup.model_name == rollout.model_name,
            MonitoringRollup.model_version == rollout.candidate_version,
            MonitoringRollup.metric == DRIFT,
            MonitoringRollup.method == PSI,
            MonitoringRollup.window_end > rollout.started_at,
        )
        value = session.scalar(stmt)
        return None if value is None else float(value)

    # -- checks ---------------------------------------------------------------------------
    def check(self, session: Session, actor: Actor, rollout_id: int) -> str | None:
        """Abort the rollout if a guardrail is breached; record an A/B decision once it
        is reached. The abort's reason, or None."""
        rollout = session.get(Rollout, rollout_id)
        if rollout is None or rollout.status != RUNNING:
            return None
        figures = self._traffic(session, rollout)[CANDIDATE]
        rules = guardrails.from_dicts(rollout.guardrails)
        broken = guardrails.breached(rules, figures, int(rollout.plan["min_requests"]))
        if broken is not None:
            rule, value = broken
            reason = (
                f"guardrail {rule} breached: {rule.metric} {value:.4g} "
                f"over {figures['requests']} candidate requests"
            )
            ended = self.rollouts.abort_if_running(session, actor, rollout.id, reason)
            if ended is None:
                return None
            evidence = {
                "reason": reason,
                "breaching": [rule.metric],
                "candidate": {"requests": figures["requests"], rule.metric: value},
            }
            self.alerts.fire_for_guardrail(
                session,
                rollout.model_name,
                rollout.candidate_version,
                rollout.id,
                str(rule),
                evidence,
            )
            return reason
        if rollout.strategy == "ab" and rollout.decision is None:
            decision = self.comparison(session, rollout).get("decision")
            if decision is not None:
                self.rollouts.record_decision(session, rollout.id, decision)
        return None


def describe(rollout: Rollout) -> dict[str, Any]:
    return {
        "id": rollout.id,
        "model": rollout.model_name,
        "status": rollout.status,
        "strategy": rollout.strategy,
        "champion": rollout.champion_version,
        "candidate": rollout.candidate_version,
        "percent": rollout.percent,
        "sticky": rollout.sticky,
        "guardrails": [str(g) for g in guardrails.from_dicts(rollout.guardrails)],
        "plan": rollout.plan,
        "started_by": rollout.started_by,
        "started_at": isoformat(rollout.started_at),
        "ended_by": rollout.ended_by,
        "ended_at": isoformat(rollout.ended_at) if rollout.ended_at else None,
        "end_reason": rollout.end_reason,
        "decision": rollout.decision,
    }
