"""The end of a version's life: deprecation with a sunset, retirement, and the shredding
of its artifact's data key once the card's retention after retirement has passed.

A deprecated version keeps serving until its sunset, every answer saying so; after the
sunset, and at once when retired, it answers Gone naming its successor (production's
target, else the latest version still in service). No alias moves onto a version on its
way out. Each step happens once, is audited, kept in the version's history and sent to
the lifecycle webhook; none is undone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from governance.accounts.actor import Actor
from governance.accounts.records import ApiKey
from governance.audit.records import AuditRecord
from governance.audit.service import AuditEvent
from governance.clock import isoformat, utcnow
from governance.db import after_commit
from governance.errors import Conflict, FieldError, Gone, InvalidInput
from governance.registry.artifacts import ArtifactStore
from governance.registry.records import (
    AliasHistory,
    ModelVersion,
    VersionEvent,
    VersionRetirement,
)

if TYPE_CHECKING:
    from governance.registry.service import Registry

MAX_REASON = 1000
MAX_SUNSET_YEAR = 9000  # far enough; nearer the end of datetime, offsets overflow
PRODUCTION = "production"  # the registry's default alias (service.DEFAULT_ALIAS)


@dataclass(frozen=True)
class Ending:
    """What serving knows of a version on its way out (a plain snapshot, no session)."""

    deprecated_at: datetime | None
    sunset_at: datetime | None
    reason: str
    retired_at: datetime | None
    successor: int | None

    def gone(self, now: datetime) -> bool:
        """True once it answers no more: retired, or its sunset passed."""
        return self.retired_at is not None or (self.sunset_at is not None and now >= self.sunset_at)


@dataclass(frozen=True)
class Step:
    """One line of a model's history: a publish, an alias move, a deprecation..."""

    at: datetime
    version: int
    action: str  # published | alias set | alias rollback | deprecated | retired | shredded
    actor: str
    details: dict[str, Any]


@dataclass(frozen=True)
class KeyCaller:
    """Who called a version (by API key, or user), how often, and when last."""

    actor_type: str
    actor_id: str
    name: str  # the key's name, else the actor id
    prefix: str | None
    requests: int
    last_seen: str  # canonical UTC text, as the audit record has it


def ending_of(version: ModelVersion) -> Ending | None:
    row = version.retirement
    if row is None:
        return None
    return Ending(row.deprecated_at, row.sunset_at, row.reason, row.retired_at, successor(version))


def is_out(version: ModelVersion) -> bool:
    """Deprecated or retired: no alias may move onto it, it is nobody's successor."""
    row = version.retirement
    return row is not None and (row.deprecated_at is not None or row.retired_at is not None)


def is_shredded(version: ModelVersion) -> bool:
    """Its artifact's data key is gone: it can never be loaded (nor re-wrapped) again."""
    row = version.retirement
    return row is not None and row.shredded_at is not None


def successor(version: ModelVersion) -> int | None:
    """The version callers of `version` should move to: production's target when that is
    another version in service, else the latest version in service; None without one."""
    model = version.model
    by_number = {v.version: v for v in model.versions}
    production = next((a.version for a in model.aliases if a.name == PRODUCTION), None)
    target = by_number.get(production) if production is not None else None
    if target is not None and target.version != version.version and not is_out(target):
        return target.version
    serving = [v.version for v in model.versions if v.version != version.version and not is_out(v)]
    return max(serving, default=None)


def refuse_alias_move(version: ModelVersion, alias: str) -> None:
    """Conflict when `alias` would move onto a deprecated or retired version."""
    row = version.retirement
    if row is None or not is_out(version):
        return
    state = "retired" if row.retired_at is not None else "deprecated"
    raise Conflict(
        f"version {version.version} of {version.model.name!r} is {state}; alias {alias!r} "
        "cannot move onto it" + _successor_hint(version.model.name, successor(version))
    )


def refuse_gone(name: str, version: int, ending: Ending | None) -> None:
    """Gone, naming the successor, for a version past its sunset or retired."""
    if ending is None or not ending.gone(utcnow()):
        return
    why = "was retired" if ending.retired_at is not None else "passed its sunset"
    named = f"{name}:{ending.successor}" if ending.successor is not None else None
    raise Gone(
        f"version {version} of {name!r} {why} and answers no more"
        + _successor_hint(name, ending.successor),
        named,
    )


def _successor_hint(name: str, number: int | None) -> str:
    return f"; use version {number} ({name}:{number})" if number is not None else ""


class Retirements:
    """Deprecate, retire and shred over the registry (its resolve, store, audit log and
    lifecycle webhook)."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    def deprecate(
        self,
        session: Session,
        actor: Actor,
        name: str,
        version: int,
        sunset: datetime,
        reason: str,
    ) -> VersionRetirement:
        """Mark a version deprecated: it serves until `sunset` (in the future), saying so."""
        actor.check_model(name)
        record = self.registry.resolve(session, name, version=version)
        _check_deprecation(sunset, reason)
        row = record.retirement
        if row is not None and row.retired_at is not None:
            raise Conflict(f"version {version} of {name!r} is retired; it cannot be deprecated")
        if row is not None and row.deprecated_at is not None:
            raise Conflict(
                f"version {version} of {name!r} is deprecated already "
                f"(sunset {isoformat(row.sunset_at or row.deprecated_at)})"
            )
        row = row or _new_row(session, record)
        row.deprecated_at, row.deprecated_by = utcnow(), actor.name
        row.sunset_at, row.reason = sunset, reason.strip()
        details = {"sunset": isoformat(sunset), "reason": row.reason}
        self._step(session, actor, record, "deprecated", details)
        return row

    def retire(self, session: Session, actor: Actor, name: str, version: int) -> VersionRetirement:
        """Take a version out of serving at once; its encrypted artifact is kept until the
        card's retention after today has passed (then `shred_due` shreds its key)."""
        actor.check_model(name)
        record = self.registry.resolve(session, name, version=version)
        row = record.retirement
        if row is not None and row.retired_at is not None:
            raise Conflict(f"version {version} of {name!r} is retired already")
        aliases = [a.name for a in record.model.aliases if a.version == version]
        if aliases:  # retiring it would take every caller of the alias out of service
            raise Conflict(
                f"version {version} of {name!r} is the target of {', '.join(aliases)}; "
                "move the alias to another version first"
            )
        row = row or _new_row(session, record)
        row.retired_at, row.retired_by = utcnow(), actor.name
        details = {"shred_after": isoformat(shred_after(record, row))}
        self._step(session, actor, record, "retired", details)
        return row

    def due(self, session: Session) -> list[ModelVersion]:
        """Retired versions whose retention after retirement has passed, not shredded yet."""
        now = utcnow()
        rows = session.scalars(
            select(VersionRetirement).where(
                VersionRetirement.retired_at.is_not(None), VersionRetirement.shredded_at.is_(None)
            )
        )
        return [r.model_version for r in rows if shred_after(r.model_version, r) <= now]

    def shred_due(self, session: Session, actor: Actor) -> list[ModelVersion]:
        """Shred the data keys of the artifacts `due` lists (the files go after commit)."""
        shredded = self.due(session)
        for record in shredded:
            self._shred(session, actor, record)
        return shredded

    def _shred(self, session: Session, actor: Actor, record: ModelVersion) -> None:
        files = [record.artifact_file]
        record.kek_id, record.wrapped_key = "", b""
        compiled = record.compilation
        if compiled is not None and compiled.artifact_file is not None:
            files.append(compiled.artifact_file)
            compiled.kek_id, compiled.wrapped_key = None, None
        row = record.retirement
        assert row is not None  # only retired versions are due
        row.shredded_at = utcnow()
        store = self.registry.store
        after_commit(session, lambda: _remove_all(store, files))  # the ciphertext goes too
        self._step(session, actor, record, "shredded", {"files": len(files)})

    def _step(
        self,
        session: Session,
        actor: Actor,
        record: ModelVersion,
        action: str,
        details: dict[str, Any],
    ) -> None:
        """Keep the step in the history, audit it, and tell the lifecycle webhook."""
        name = record.model.name
        session.add(
            VersionEvent(
                model_id=record.model_id,
                version=record.version,
                action=action,
                actor=actor.name,
                at=utcnow(),
                details=details,
            )
        )
        self.registry.audit.append(
            session,
            AuditEvent(
                kind=f"model.{action}",
                actor=actor,
                model_name=name,
                model_version=record.version,
                artifact_sha256=record.sha256,
                details=details | {"successor": successor(record)},
            ),
        )
        if action != "shredded":
            self.registry.announce(
                session,
                action,
                {"model": name, "version": record.version, "actor": actor.name}
                | details
                | {"successor": successor(record)},
            )
        session.flush()

    # -- reading ----------------------------------------------------------------------
    def history(self, session: Session, name: str) -> list[Step]:
        """Every step of a model's life, oldest first: publishes, alias moves, and each
        version's deprecation, retirement and shredding."""
        model = self.registry.model(session, name)
        steps = [
            Step(v.published_at, v.version, "published", v.published_by, {}) for v in model.versions
        ]
        moves = session.scalars(select(AliasHistory).where(AliasHistory.model_id == model.id))
        steps += [
            Step(m.at, m.to_version, f"alias {m.action}", m.actor, _move_details(m)) for m in moves
        ]
        events = session.scalars(select(VersionEvent).where(VersionEvent.model_id == model.id))
        steps += [Step(e.at, e.version, e.action, e.actor, dict(e.details)) for e in events]
        return sorted(steps, key=lambda s: s.at)

    def callers(self, session: Session, name: str, version: int) -> list[KeyCaller]:
        """Who called `version` since its deprecation (every caller when it is not
        deprecated), from the audit records of its predictions, answered or refused:
        the owners' list of whom to warn. Busiest first."""
        record = self.registry.resolve(session, name, version=version)
        row = record.retirement
        since = row.deprecated_at if row is not None else None
        stmt = (
            select(
                AuditRecord.actor_type,
                AuditRecord.actor_id,
                func.count(),
                func.max(AuditRecord.at),
            )
            .where(
                AuditRecord.model_name == name,
                AuditRecord.model_version == version,
                AuditRecord.kind == "prediction",
            )
            .group_by(AuditRecord.actor_type, AuditRecord.actor_id)
        )
        if since is not None:
            stmt = stmt.where(AuditRecord.at >= isoformat(since))
        found = session.execute(stmt).all()
        keys = _keys(session, [actor_id for kind, actor_id, _, _ in found if kind == "key"])
        callers = [_caller(kind, actor_id, n, last, keys) for kind, actor_id, n, last in found]
        return sorted(callers, key=lambda c: (-c.requests, c.name))


def shred_after(record: ModelVersion, row: VersionRetirement) -> datetime:
    """When a retired version's artifact key may go: the card's retention after retirement."""
    assert row.retired_at is not None
    return row.retired_at + timedelta(days=record.retention_days)


def parse_sunset(text: str) -> datetime:
    """A sunset as people write it: a date (midnight UTC) or an ISO 8601 time (UTC when
    it names no zone)."""
    try:
        moment = datetime.fromisoformat(text.strip())
        moment = (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)
    except (ValueError, OverflowError):
        moment = None
    if moment is None or moment.year > MAX_SUNSET_YEAR:
        raise InvalidInput(
            "the sunset is not a date or time",
            [FieldError("sunset", f"YYYY-MM-DD or an ISO 8601 time, before {MAX_SUNSET_YEAR}")],
        )
    return moment


def _remove_all(store: ArtifactStore, files: list[str]) -> None:
    for file_name in files:
        store.remove(file_name)


def _check_deprecation(sunset: datetime, reason: str) -> None:
    errors = []
    if sunset.tzinfo is None:
        errors.append(FieldError("sunset", "a date or time with its time zone (UTC)"))
    elif sunset <= utcnow():
        errors.append(FieldError("sunset", "must be in the future"))
    if not reason.strip():
        errors.append(FieldError("reason", "is required: callers are told why"))
    elif len(reason) > MAX_REASON:
        errors.append(FieldError("reason", f"at most {MAX_REASON} characters"))
    if errors:  # the CLI prints the detail only: it names each problem
        raise InvalidInput("; ".join(f"{e.field} {e.message}" for e in errors), errors)


def _new_row(session: Session, record: ModelVersion) -> VersionRetirement:
    row = VersionRetirement(model_version=record, deprecated_by="", reason="", retired_by="")
    session.add(row)
    return row


def _move_details(move: AliasHistory) -> dict[str, Any]:
    return {"alias": move.alias, "from_version": move.from_version, "to_version": move.to_version}


def _keys(session: Session, ids: list[str]) -> dict[str, ApiKey]:
    numbers = [int(i) for i in ids if i.isdigit()]
    if not numbers:
        return {}
    return {str(k.id): k for k in session.scalars(select(ApiKey).where(ApiKey.id.in_(numbers)))}


def _caller(
    kind: str, actor_id: str, requests: int, last: str, keys: dict[str, ApiKey]
) -> KeyCaller:
    key = keys.get(actor_id) if kind == "key" else None
    name = key.name if key is not None else actor_id
    return KeyCaller(kind, actor_id, name, key.prefix if key else None, int(requests), last)
