"""Alerts: each model's rules, their evaluation over the rollups, and the alerts raised.

A model follows the configured default rules until a publisher changes its rules:
the first change copies the defaults into the model's own rows (all but the one
removed, when the change is a removal), so the model then has exactly the rules
its rows say. `evaluate` opens an alert when a rule's condition holds for a model
version and resolves it when the condition stops holding (a rule without figures
to judge by leaves its alert as it is); every transition is an audit event, a log
line, and outbox rows (governance/monitoring/delivery.py) for the webhook and for
each retraining plan waiting for an alert of that kind. Nothing here talks to the
network: delivery is the scheduler's job.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from governance.accounts.actor import SYSTEM, Actor
from governance.audit.service import AuditEvent, AuditLog
from governance.clock import isoformat, utcnow
from governance.errors import FieldError, InvalidInput, NotFound
from governance.monitoring import rules as vocabulary
from governance.monitoring.delivery import outbox_row
from governance.monitoring.records import Alert, AlertDelivery, AlertRule, MonitoringRollup
from governance.monitoring.rules import Point, Rule
from governance.operations.storage import LowDisk, StoragePolicy, human_bytes
from governance.registry.records import RegisteredModel
from governance.retraining.records import RetrainingPlan

log = logging.getLogger("cofre.alerts")
FIRING, RESOLVED = "firing", "resolved"
STATES = (FIRING, RESOLVED)
DEFAULT_PREFIX = "default-"
WEBHOOK, RETRAIN = "webhook", "retrain"
# An alert no monitoring rule judges: a rollout's guardrail aborted it. It fires once,
# with the abort, and resolves when the model's next rollout starts (someone acted).
GUARDRAIL = "guardrail"
# An alert about the appliance, not a model: a file system it writes is running out
# of space. Its model name is APPLIANCE; it resolves when the space is back.
DISK = "disk"
APPLIANCE = ""
# An alert about one API key's traffic to one model version: it looks like a sweep of
# the input space (governance/monitoring/extraction.py). Its rule key names the key;
# it resolves when the key's traffic in the detector's window looks ordinary again.
EXTRACTION = "extraction"


@dataclass(frozen=True)
class Transition:
    """An alert that fired or resolved in one evaluation."""

    alert_id: int
    model_name: str
    model_version: int
    state: str
    rule: dict[str, Any]
    evidence: dict[str, Any]


@dataclass(frozen=True)
class Suspicion:
    """A finding of a detector that judges traffic rather than rollups: which model
    version, under which rule key (one alert per key at a time), why, and the evidence
    (aggregates only: it goes to the audit log and the webhook)."""

    model_name: str
    model_version: int
    rule_key: str
    description: str
    evidence: dict[str, Any]


class Alerts:
    """Rules, evaluation and reading of alerts; sessions come from the caller."""

    def __init__(self, audit: AuditLog, defaults: list[Rule], webhook: bool) -> None:
        self.audit = audit
        self.defaults = [
            Rule(r.kind, r.method, r.threshold, r.windows, r.feature, None, f"{DEFAULT_PREFIX}{i}")
            for i, r in enumerate(defaults, 1)
        ]
        self.webhook = webhook

    # -- rules --------------------------------------------------------------------------
    def rules(self, session: Session, actor: Actor, model_name: str) -> list[Rule]:
        """The rules `model_name` follows now: its own, or the defaults."""
        actor.check_model(model_name)
        _model(session, model_name)
        return self._effective(session, model_name)

    def add_rule(self, session: Session, actor: Actor, model_name: str, rule: Rule) -> Rule:
        actor.check_model(model_name)
        _model(session, model_name)
        copied = len(self._adopt_defaults(session, actor, model_name))
        row = _row(model_name, rule, actor)
        session.add(row)
        session.flush()
        added = _rule_of(row)
        self.audit.append(
            session, _rule_event("alert.rule_added", actor, model_name, added, copied)
        )
        return added

    def remove_rule(self, session: Session, actor: Actor, model_name: str, ref: str) -> Rule:
        """Remove rule `ref` (its id, or default-N while the model follows the defaults).

        Removing a default copies them all and marks that copy removed, so the model
        keeps a row saying it no longer follows the defaults, even with no rule left.
        """
        actor.check_model(model_name)
        _model(session, model_name)
        copied = 0
        if ref.startswith(DEFAULT_PREFIX) and not self._customised(session, model_name):
            if ref not in {r.ref for r in self.defaults}:
                raise NotFound(f"no default rule {ref}")
            adopted = self._adopt_defaults(session, actor, model_name)
            copied, row = len(adopted) - 1, adopted[ref]
        else:
            row = _live_row(session, model_name, ref)
        row.removed_by, row.removed_at = actor.name, utcnow()
        removed = _rule_of(row)
        self.audit.append(
            session, _rule_event("alert.rule_removed", actor, model_name, removed, copied)
        )
        return removed

    def _effective(self, session: Session, model_name: str) -> list[Rule]:
        if not self._customised(session, model_name):
            return list(self.defaults)
        rows = session.scalars(
            select(AlertRule)
            .where(AlertRule.model_name == model_name, AlertRule.removed_at.is_(None))
            .order_by(AlertRule.id)
        )
        return [_rule_of(row) for row in rows]

    def _customised(self, session: Session, model_name: str) -> bool:
        found = session.scalar(
            select(AlertRule.id).where(AlertRule.model_name == model_name).limit(1)
        )
        return found is not None

    def _adopt_defaults(
        self, session: Session, actor: Actor, model_name: str
    ) -> dict[str, AlertRule]:
        """Copy the defaults into the model's own rows (once); by default ref. Alerts
        firing on a default follow its copy, so the copy does not fire them again."""
        if self._customised(session, model_name):
            return {}
        adopted = {r.ref: _row(model_name, r, actor) for r in self.defaults}
        session.add_all(adopted.values())
        session.flush()
        copies = {r.key: _rule_of(adopted[r.ref]) for r in self.defaults}
        firing = select(Alert).where(
            Alert.model_name == model_name, Alert.state == FIRING, Alert.rule_key.in_(copies)
        )
        for alert in session.scalars(firing):
            copy = copies[alert.rule_key]
            alert.rule_key, alert.rule_id = copy.key, copy.id
        return adopted

    # -- evaluation ---------------------------------------------------------------------
    def evaluate(
        self, session: Session, model_name: str, version: int, actor: Actor = SYSTEM
    ) -> list[Transition]:
        """Judge every rule of the model on this version's rollups; fire and resolve."""
        firing = {
            a.rule_key: a
            for a in session.scalars(
                select(Alert).where(
                    Alert.model_name == model_name,
                    Alert.model_version == version,
                    Alert.state == FIRING,
                    # Alerts no rule judges keep their own ends.
                    Alert.kind.not_in((GUARDRAIL, EXTRACTION)),
                )
            )
        }
        transitions = []
        for rule in self._effective(session, model_name):
            finding = vocabulary.assess(rule, _points(session, model_name, version, rule))
            alert = firing.pop(rule.key, None)
            if finding.holds and alert is None:
                alert = self._fire(session, actor, model_name, version, rule, finding.evidence)
                transitions.append(_transition(alert, alert.evidence))
            elif finding.holds is False and alert is not None:
                self._resolve(session, actor, alert, finding.evidence)
                transitions.append(_transition(alert, finding.evidence))
        for alert in firing.values():  # their rules were removed
            self._resolve(session, actor, alert, {"reason": "the rule was removed"})
            transitions.append(_transition(alert, alert.resolution or {}))
        return transitions

    def fire_for_guardrail(
        self,
        session: Session,
        model_name: str,
        version: int,
        rollout_id: int,
        guardrail: str,
        evidence: dict[str, Any],
    ) -> Alert:
        """The alert of a rollout its guardrail aborted: audited, logged, to the webhook."""
        rule = {"kind": GUARDRAIL, "guardrail": guardrail, "rollout": rollout_id}
        rule["description"] = f"rollout {rollout_id}: guardrail {guardrail} breached"
        alert = Alert(
            model_name=model_name,
            model_version=version,
            rule_id=None,
            rule_key=f"rollout-{rollout_id}",
            kind=GUARDRAIL,
            state=FIRING,
            firing_slot=1,
            rule=rule,
            evidence=evidence,
            fired_at=utcnow(),
        )
        session.add(alert)
        session.flush()
        self._announce(session, SYSTEM, alert, evidence)
        return alert

    def resolve_guardrails(self, session: Session, actor: Actor, model_name: str) -> None:
        """A new rollout of the model answers the guardrail alerts of its earlier ones."""
        firing = select(Alert).where(
            Alert.model_name == model_name, Alert.kind == GUARDRAIL, Alert.state == FIRING
        )
        for alert in session.scalars(firing):
            self._resolve(session, actor, alert, {"reason": "a new rollout of the model started"})

    def judge_storage(
        self, session: Session, low: list[LowDisk], policy: StoragePolicy
    ) -> list[Transition]:
        """Fire a `disk` alert for each low file system not alerted yet, and resolve
        those whose file system is no longer low (or whose directories changed)."""
        firing = {
            a.rule_key: a
            for a in session.scalars(select(Alert).where(Alert.kind == DISK, Alert.state == FIRING))
        }
        transitions = []
        for disk in low:
            if firing.pop(disk.key, None) is None:
                alert = self._fire_for_disk(session, disk, policy)
                transitions.append(_transition(alert, alert.evidence))
        for alert in firing.values():
            self._resolve(session, SYSTEM, alert, {"reason": "free space is above the floor"})
            transitions.append(_transition(alert, alert.resolution or {}))
        return transitions

    def judge_extraction(
        self,
        session: Session,
        suspicious: list[Suspicion],
        calm: Mapping[tuple[str, int, str], dict[str, Any]],
        actor: Actor = SYSTEM,
    ) -> tuple[list[Transition], list[Alert]]:
        """Fire an `extraction` alert for each suspicion not alerted yet, and resolve
        every firing one not suspected any more, with its key's ordinary figures from
        `calm` when it sent enough rows to judge. Returns the transitions and the
        alerts just fired (the caller may throttle their keys)."""
        firing = {
            (a.model_name, a.model_version, a.rule_key): a
            for a in session.scalars(
                select(Alert).where(Alert.kind == EXTRACTION, Alert.state == FIRING)
            )
        }
        transitions, fired = [], []
        for suspicion in suspicious:
            where = (suspicion.model_name, suspicion.model_version, suspicion.rule_key)
            if firing.pop(where, None) is None:
                alert = self._fire_for_suspicion(session, suspicion, actor)
                fired.append(alert)
                transitions.append(_transition(alert, alert.evidence))
        for where, alert in firing.items():
            evidence = dict(calm.get(where) or {"reason": "too few requests in the window"})
            evidence.setdefault("reason", "the key's traffic looks ordinary again")
            self._resolve(session, actor, alert, evidence)
            transitions.append(_transition(alert, alert.resolution or {}))
        return transitions, fired

    def _fire_for_suspicion(self, session: Session, suspicion: Suspicion, actor: Actor) -> Alert:
        alert = Alert(
            model_name=suspicion.model_name,
            model_version=suspicion.model_version,
            rule_id=None,
            rule_key=suspicion.rule_key,
            kind=EXTRACTION,
            state=FIRING,
            firing_slot=1,
            rule={"kind": EXTRACTION, "description": suspicion.description},
            evidence=suspicion.evidence,
            fired_at=utcnow(),
        )
        session.add(alert)
        session.flush()
        self._announce(session, actor, alert, suspicion.evidence)
        return alert

    def _fire_for_disk(self, session: Session, disk: LowDisk, policy: StoragePolicy) -> Alert:
        space = disk.space
        floor = f"{policy.min_free_percent:g}% or {human_bytes(policy.min_free_bytes)}"
        reason = (
            f"{'+'.join(disk.directories)}: {human_bytes(space.free_bytes)} free "
            f"({space.free_percent:.1f}%) on {space.path}"
        )
        evidence = disk.evidence(policy) | {"breaching": list(disk.directories), "reason": reason}
        alert = Alert(
            model_name=APPLIANCE,
            model_version=0,
            rule_id=None,
            rule_key=disk.key,
            kind=DISK,
            state=FIRING,
            firing_slot=1,
            rule={"kind": DISK, "description": f"free disk space under {floor}"},
            evidence=evidence,
            fired_at=utcnow(),
        )
        session.add(alert)
        session.flush()
        self._announce(session, SYSTEM, alert, evidence)
        return alert

    def _fire(
        self,
        session: Session,
        actor: Actor,
        model_name: str,
        version: int,
        rule: Rule,
        evidence: dict[str, Any],
    ) -> Alert:
        alert = Alert(
            model_name=model_name,
            model_version=version,
            rule_id=rule.id,
            rule_key=rule.key,
            kind=rule.kind,
            state=FIRING,
            firing_slot=1,
            rule=rule.as_dict(),
            evidence=evidence,
            fired_at=utcnow(),
        )
        session.add(alert)
        session.flush()
        self._announce(session, actor, alert, evidence)
        for plan in _waiting_plans(session, model_name, rule.kind):
            session.add(_delivery(alert, FIRING, RETRAIN, {"alert_id": alert.id}, plan.id))
        return alert

    def _resolve(
        self, session: Session, actor: Actor, alert: Alert, evidence: dict[str, Any]
    ) -> None:
        alert.state, alert.resolved_at, alert.resolution = RESOLVED, utcnow(), evidence
        alert.firing_slot = None
        session.flush()
        self._announce(session, actor, alert, evidence)

    def _announce(
        self, session: Session, actor: Actor, alert: Alert, evidence: dict[str, Any]
    ) -> None:
        """The transition's audit event, log line and webhook outbox row."""
        self.audit.append(session, _alert_event(actor, alert, evidence))
        log.warning(
            "alert %s %s: %s version %s: %s (breaching: %s)",
            alert.id,
            alert.state,
            alert.model_name,
            alert.model_version,
            alert.rule.get("description", ""),
            ", ".join(evidence.get("breaching", [])) or "-",
        )
        if self.webhook:
            session.add(_delivery(alert, alert.state, WEBHOOK, webhook_body(alert, evidence)))

    # -- reading ------------------------------------------------------------------------
    def listing(
        self,
        session: Session,
        actor: Actor,
        state: str | None = None,
        model_name: str | None = None,
        limit: int = 100,
    ) -> list[Alert]:
        """Alerts newest first, only of the models the caller may see."""
        if state is not None and state not in STATES:
            raise InvalidInput("unknown alert state", [FieldError("state", "firing or resolved")])
        stmt = select(Alert).order_by(Alert.id.desc()).limit(max(1, min(limit, 1000)))
        if state:
            stmt = stmt.where(Alert.state == state)
        if model_name:
            stmt = stmt.where(Alert.model_name == model_name)
        if actor.models is not None:
            stmt = stmt.where(Alert.model_name.in_(actor.models))
        return list(session.scalars(stmt))

    def deliveries(self, session: Session, alert_ids: list[int]) -> dict[int, list[AlertDelivery]]:
        """The outbox rows of these alerts (one query), by alert id, oldest first."""
        found: dict[int, list[AlertDelivery]] = {alert_id: [] for alert_id in alert_ids}
        if alert_ids:
            stmt = (
                select(AlertDelivery)
                .where(AlertDelivery.alert_id.in_(alert_ids))
                .order_by(AlertDelivery.id)
            )
            for row in session.scalars(stmt):
                assert row.alert_id is not None  # selected by alert id
                found[row.alert_id].append(row)
        return found


def webhook_body(alert: Alert, evidence: dict[str, Any]) -> dict[str, Any]:
    """What the webhook receives: aggregates about a model, never a row or a person."""
    return {
        "alert_id": alert.id,
        "model": alert.model_name,
        "version": alert.model_version,
        "state": alert.state,
        "rule": alert.rule,
        "evidence": evidence,
        "fired_at": isoformat(alert.fired_at),
        "resolved_at": isoformat(alert.resolved_at) if alert.resolved_at else None,
    }


def _points(session: Session, model_name: str, version: int, rule: Rule) -> list[Point]:
    """This version's figures of the rule's kind, in its newest windows only."""
    figure = vocabulary.KINDS[rule.kind]
    where = (
        MonitoringRollup.model_name == model_name,
        MonitoringRollup.model_version == version,
        MonitoringRollup.metric == figure.metric,
        MonitoringRollup.method == rule.method,
    )
    windows = session.execute(
        select(MonitoringRollup.window_start, MonitoringRollup.window_end)
        .where(*where)
        .distinct()
        .order_by(MonitoringRollup.window_end.desc(), MonitoringRollup.window_start.desc())
        .limit(vocabulary.MAX_WINDOWS * 4)
    ).all()
    if not windows:
        return []
    oldest = min(start for start, _ in windows)
    rows = session.scalars(
        select(MonitoringRollup).where(*where, MonitoringRollup.window_start >= oldest)
    )
    return [Point(r.window_start, r.window_end, r.feature, r.value, r.rows) for r in rows]


def _waiting_plans(session: Session, model_name: str, kind: str) -> list[RetrainingPlan]:
    if kind not in vocabulary.TRIGGER_KINDS:
        return []
    return list(
        session.scalars(
            select(RetrainingPlan).where(
                RetrainingPlan.model_name == model_name,
                RetrainingPlan.on_alert == kind,
                RetrainingPlan.enabled.is_(True),
            )
        )
    )


def _delivery(
    alert: Alert, transition: str, channel: str, payload: dict[str, Any], plan_id: int | None = None
) -> AlertDelivery:
    return outbox_row(transition, channel, payload, alert.id, plan_id)


def _transition(alert: Alert, evidence: dict[str, Any]) -> Transition:
    return Transition(
        alert.id, alert.model_name, alert.model_version, alert.state, alert.rule, evidence
    )


def _model(session: Session, model_name: str) -> RegisteredModel:
    model = session.scalar(select(RegisteredModel).where(RegisteredModel.name == model_name))
    if model is None:
        raise NotFound(f"no model named {model_name!r}")
    return model


def _live_row(session: Session, model_name: str, ref: str) -> AlertRule:
    row = session.get(AlertRule, int(ref)) if ref.isdigit() else None
    if row is None or row.model_name != model_name or row.removed_at is not None:
        raise NotFound(f"no alert rule {ref} for this model")
    return row


def _row(model_name: str, rule: Rule, actor: Actor) -> AlertRule:
    return AlertRule(
        model_name=model_name,
        kind=rule.kind,
        method=rule.method,
        feature=rule.feature,
        threshold=rule.threshold,
        windows=rule.windows,
        created_by=actor.name,
        created_at=utcnow(),
    )


def _rule_of(row: AlertRule) -> Rule:
    return Rule(row.kind, row.method, row.threshold, row.windows, row.feature, row.id, str(row.id))


def _text(value: Any) -> str | None:
    # Audit details hold no floats (their text is not canonical): numbers go as text.
    return None if value is None else f"{value:.6g}"


def _rule_event(kind: str, actor: Actor, model_name: str, rule: Rule, copied: int) -> AuditEvent:
    details: dict[str, Any] = {
        "rule": rule.ref,
        "kind": rule.kind,
        "method": rule.method,
        "feature": rule.feature or None,
        "threshold": _text(rule.threshold),
        "windows": rule.windows,
        "description": rule.describe(),
    }
    if copied:
        details["defaults_copied"] = copied
    return AuditEvent(kind=kind, actor=actor, model_name=model_name, details=details)


def _alert_event(actor: Actor, alert: Alert, evidence: dict[str, Any]) -> AuditEvent:
    figures = [
        {
            "feature": f["feature"],
            "window_end": f["window_end"],
            "value": _text(f["value"]),
            "rows": f["rows"],
        }
        for f in evidence.get("figures", [])
    ]
    details: dict[str, Any] = {
        "alert": alert.id,
        "rule": alert.rule_key,
        "description": alert.rule.get("description", ""),
        "breaching": evidence.get("breaching", []),
        "figures": figures,
    }
    if "reason" in evidence:
        details["reason"] = evidence["reason"]
    if "key" in evidence:  # an extraction alert: which API key's traffic
        details["key"] = evidence["key"]
    return AuditEvent(
        kind=f"alert.{alert.state}",
        actor=actor,
        model_name=alert.model_name or None,  # APPLIANCE: about no model
        model_version=alert.model_version if alert.model_name else None,
        details=details,
    )
