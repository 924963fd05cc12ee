"""Rollout use cases: start, read, promote, abort, report tallies.

One running rollout per model (a unique column, governance/rollouts/records.py).
Every change is audited in the caller's transaction and announced to every worker
(governance/broadcasts.py) once it commits, so routing changes everywhere at once.
The champion is the version `production` points at when the rollout starts; the
alias moves only on promotion.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError as DBIntegrityError
from sqlalchemy.orm import Session

from governance.accounts.actor import SYSTEM, Actor
from governance.audit.service import AuditEvent, AuditLog
from governance.broadcasts import Broadcast
from governance.clock import utcnow
from governance.errors import Conflict, FieldError, InvalidInput, NotFound
from governance.monitoring.alerts import Alerts
from governance.registry.retirement import refuse_alias_move
from governance.registry.service import DEFAULT_ALIAS, Registry
from governance.rollouts import guardrails
from governance.rollouts.records import Rollout, RolloutTally
from governance.rollouts.routing import Plan

STRATEGIES = ("canary", "ab", "shadow", "blue-green")
STICKY = ("subject", "request")
DEFAULT_PERCENT = {"canary": 10.0, "ab": 50.0, "shadow": 0.0, "blue-green": 100.0}
RUNNING, PROMOTED, ABORTED = "running", "promoted", "aborted"


@dataclass(frozen=True)
class RolloutRequest:
    """What a publisher asks for; `plan` holds the A/B test's settings."""

    name: str
    candidate: int
    strategy: str
    percent: float | None = None
    sticky: str = "subject"
    guardrails: tuple[str, ...] = ()
    min_requests: int = 50
    alpha: float = 0.05
    power: float = 0.8
    horizon: int = 1000  # A/B: labelled rows per variant at which the test ends
    looks: int = 5  # A/B: planned interim analyses (group-sequential)
    extra: dict[str, Any] = field(default_factory=dict)

    def problems(self) -> list[FieldError]:
        found = []
        if self.strategy not in STRATEGIES:
            found.append(FieldError("strategy", f"one of {', '.join(STRATEGIES)}"))
        if self.sticky not in STICKY:
            found.append(FieldError("sticky", f"one of {', '.join(STICKY)}"))
        split = self.strategy in ("canary", "ab")
        if split and self.percent is not None and not 0 < self.percent < 100:
            found.append(FieldError("percent", "more than 0 and less than 100"))
        if not 0 < self.alpha < 0.5:
            found.append(FieldError("alpha", "between 0 and 0.5"))
        if not 0.5 <= self.power < 1:
            found.append(FieldError("power", "at least 0.5 and less than 1"))
        if self.min_requests < 1 or self.horizon < 10 or not 1 <= self.looks <= 20:
            found.append(FieldError("plan", "min_requests >= 1, horizon >= 10, looks 1..20"))
        return found


class Rollouts:
    """Rollout use cases over the registry and the audit log."""

    def __init__(
        self, registry: Registry, audit: AuditLog, broadcast: Broadcast, alerts: Alerts
    ) -> None:
        self.registry = registry
        self.audit = audit
        self.broadcast = broadcast
        self.alerts = alerts

    # -- starting -----------------------------------------------------------------------
    def start(self, session: Session, actor: Actor, request: RolloutRequest) -> Rollout:
        actor.check_model(request.name)
        problems = request.problems()
        rules = [guardrails.parse(rule) for rule in request.guardrails]
        if problems:
            raise InvalidInput("the rollout is not valid", problems)
        champion = self.registry.resolve(session, request.name, alias=DEFAULT_ALIAS)
        candidate = self.registry.resolve(session, request.name, version=request.candidate)
        if candidate.version == champion.version:
            raise Conflict(f"version {candidate.version} is already production")
        refuse_alias_move(candidate, DEFAULT_ALIAS)  # its promotion would be refused
        if request.strategy == "blue-green":
            self.registry.check_artifact(candidate)  # the switch must not meet a bad file
        rollout = Rollout(
            model_name=request.name,
            active_model=request.name,
            champion_version=champion.version,
            candidate_version=candidate.version,
            strategy=request.strategy,
            percent=_percent(request),
            sticky=request.sticky,
            guardrails=[rule.as_dict() for rule in rules],
            plan=_plan(request),
            status=RUNNING,
            started_by=actor.name,
            started_at=utcnow(),
            start_seq=self.audit.head(session)[0],
        )
        session.add(rollout)
        try:
            session.flush()
        except DBIntegrityError:
            raise Conflict(f"model {request.name!r} has a rollout running already") from None
        self._audit(session, actor, "rollout.started", rollout, _describe(rollout))
        self.alerts.resolve_guardrails(session, actor, request.name)
        self.broadcast.announce(session)
        return rollout

    # -- reading ------------------------------------------------------------------------
    def active(self, session: Session, name: str) -> Rollout | None:
        return session.scalars(select(Rollout).where(Rollout.active_model == name)).first()

    def latest(self, session: Session, name: str) -> Rollout:
        """The running rollout of `name`, else its latest one; NotFound if it never had one."""
        stmt = select(Rollout).where(Rollout.model_name == name).order_by(Rollout.id.desc())
        found = session.scalars(stmt.limit(1)).first()
        if found is None:
            self.registry.model(session, name)  # NotFound names the model when it is unknown
            raise NotFound(f"model {name!r} has no rollout")
        return found

    def running(self, session: Session) -> list[Rollout]:
        stmt = select(Rollout).where(Rollout.active_model.is_not(None)).order_by(Rollout.id)
        return list(session.scalars(stmt))

    def plan(self, session: Session, name: str) -> Plan | None:
        """What routing needs of the model's running rollout, or None."""
        rollout = self.active(session, name)
        return plan_of(rollout) if rollout else None

    # -- ending -------------------------------------------------------------------------
    def promote(self, session: Session, actor: Actor, name: str) -> Rollout:
        """Point production at the candidate and end the rollout."""
        actor.check_model(name)
        rollout = self._running(session, name)
        if rollout.strategy == "ab" and not _decided_for_candidate(rollout):
            raise Conflict(
                "an A/B rollout is promoted only once its test decided for the candidate"
            )
        self.registry.set_alias(session, actor, name, rollout.candidate_version, DEFAULT_ALIAS)
        return self._end(session, actor, rollout, PROMOTED, "promoted")

    @staticmethod
    def check_promotable(rollout: Rollout) -> None:
        if rollout.strategy == "ab" and not _decided_for_candidate(rollout):
            raise Conflict(
                "an A/B rollout is promoted only once its test decided for the candidate"
            )

    def abort(
        self, session: Session, actor: Actor, name: str, reason: str, automatic: bool = False
    ) -> Rollout:
        """Send every request back to the champion and end the rollout."""
        if not reason.strip():
            raise InvalidInput("say why the rollout is aborted", [FieldError("reason", "required")])
        actor.check_model(name)
        rollout = self._running(session, name)
        return self._end(session, actor, rollout, ABORTED, reason[:1000], automatic)

    def abort_if_running(
        self, session: Session, actor: Actor, rollout_id: int, reason: str
    ) -> Rollout | None:
        """Abort rollout `rollout_id` unless it ended already (several workers may trip
        the same guardrail at once: only the first one's abort counts)."""
        ended = session.execute(
            update(Rollout)
            .where(Rollout.id == rollout_id, Rollout.status == RUNNING)
            .values(status=ABORTED, active_model=None)
        )
        if not ended.rowcount:  # type: ignore[attr-defined]
            return None
        rollout = session.get(Rollout, rollout_id)
        assert rollout is not None
        session.refresh(rollout)
        return self._end(session, actor, rollout, ABORTED, reason[:1000], automatic=True)

    def record_decision(self, session: Session, rollout_id: int, decision: dict[str, Any]) -> None:
        """Keep an A/B test's decision (once): later figures never overturn it."""
        rollout = session.get(Rollout, rollout_id)
        if rollout is None or rollout.decision is not None or rollout.status != RUNNING:
            return
        rollout.decision = decision
        self.audit.append(
            session,
            AuditEvent(
                kind="rollout.decided",
                actor=SYSTEM,
                model_name=rollout.model_name,
                model_version=rollout.candidate_version,
                details={"rollout": rollout.id, "decision": without_floats(decision)},
            ),
        )

    def _running(self, session: Session, name: str) -> Rollout:
        rollout = self.active(session, name)
        if rollout is None:
            self.registry.model(session, name)
            raise Conflict(f"model {name!r} has no rollout running")
        return rollout

    def _end(
        self,
        session: Session,
        actor: Actor,
        rollout: Rollout,
        status: str,
        reason: str,
        automatic: bool = False,
    ) -> Rollout:
        rollout.status, rollout.active_model = status, None
        rollout.ended_by, rollout.ended_at, rollout.end_reason = actor.name, utcnow(), reason
        details = _describe(rollout) | {"reason": reason, "automatic": automatic}
        kind = "rollout.promoted" if status == PROMOTED else "rollout.aborted"
        self._audit(session, actor, kind, rollout, details)
        session.flush()
        self.broadcast.announce(session)
        return rollout

    # -- tallies ------------------------------------------------------------------------
    def report(self, session: Session, tallies: list[RolloutTally]) -> None:
        """Add what a worker counted; tallies of rollouts that ended meanwhile are kept
        too (the figures of an aborted rollout include its last second)."""
        session.add_all(tallies)

    def compact(self, session: Session, rollout_id: int, keep: int = 64) -> bool:
        """Fold the rollout's tallies into one per variant once there are more than
        `keep` (a worker reports every second: a day would be 170,000 rows to add up
        at every guardrail check). False when another process folded them meanwhile
        (then this transaction must roll back: nothing is counted twice)."""
        rows = self.tallies(session, rollout_id)
        if len(rows) <= keep:
            return True
        folded: dict[str, RolloutTally] = {}
        for row in rows:
            into = folded.setdefault(
                row.variant,
                RolloutTally(
                    rollout_id=rollout_id,
                    variant=row.variant,
                    reported_at=row.reported_at,
                    requests=0,
                    errors=0,
                    compared=0,
                    agreed=0,
                    dropped=0,
                    latency={},
                ),
            )
            _add(into, row)
        ids = [row.id for row in rows]
        deleted = session.execute(delete(RolloutTally).where(RolloutTally.id.in_(ids)))
        if deleted.rowcount != len(ids):  # type: ignore[attr-defined]
            return False
        session.add_all(folded.values())
        return True

    def tallies(self, session: Session, rollout_id: int) -> list[RolloutTally]:
        stmt = select(RolloutTally).where(RolloutTally.rollout_id == rollout_id)
        return list(session.scalars(stmt))

    def _audit(
        self, session: Session, actor: Actor, kind: str, rollout: Rollout, details: dict[str, Any]
    ) -> None:
        self.audit.append(
            session,
            AuditEvent(
                kind=kind,
                actor=actor,
                model_name=rollout.model_name,
                model_version=rollout.candidate_version,
                details=details,
            ),
        )


def _add(into: RolloutTally, row: RolloutTally) -> None:
    into.reported_at = max(into.reported_at, row.reported_at)
    into.requests += row.requests
    into.errors += row.errors
    into.compared += row.compared
    into.agreed += row.agreed
    into.dropped += row.dropped
    latency = dict(into.latency)
    for key, count in (row.latency or {}).items():
        latency[key] = latency.get(key, 0) + int(count)
    into.latency = latency


def plan_of(rollout: Rollout) -> Plan:
    return Plan(
        id=rollout.id,
        model=rollout.model_name,
        champion=rollout.champion_version,
        candidate=rollout.candidate_version,
        strategy=rollout.strategy,
        percent=rollout.percent,
        sticky=rollout.sticky,
    )


def _percent(request: RolloutRequest) -> float:
    if request.strategy in ("shadow", "blue-green") or request.percent is None:
        return DEFAULT_PERCENT[request.strategy]
    return float(request.percent)


def _plan(request: RolloutRequest) -> dict[str, Any]:
    return {
        "min_requests": request.min_requests,
        "alpha": request.alpha,
        "power": request.power,
        "horizon": request.horizon,
        "looks": request.looks,
    } | request.extra


def _describe(rollout: Rollout) -> dict[str, Any]:
    return {
        "rollout": rollout.id,
        "strategy": rollout.strategy,
        "champion": rollout.champion_version,
        "candidate": rollout.candidate_version,
        "percent": f"{rollout.percent:g}",  # the chain hashes no floats
        "sticky": rollout.sticky,
        "guardrails": [str(g) for g in guardrails.from_dicts(rollout.guardrails)],
    }


def without_floats(value: Any) -> Any:
    """`value` with every float as text: the audit chain hashes no floats."""
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, dict):
        return {k: without_floats(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [without_floats(v) for v in value]
    return value


def _decided_for_candidate(rollout: Rollout) -> bool:
    return bool(rollout.decision and rollout.decision.get("winner") == "candidate")
