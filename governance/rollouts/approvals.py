"""Four-eyes promotion: with `promotion_approvals` at 1, a move of `production` (an
alias set, a rollout's promotion) becomes a request that another person approves.

The requester can never approve their own request: people are compared by actor
identity (user, API key or CLI login), never by display name. Only a caller whose
role may move aliases (publisher, admin) may approve or reject. One request per
model may be pending at a time. Requests, approvals and rejections are audited;
`history` lists them beside the alias moves. Rolling an alias back is not gated:
it returns to a target that was itself approved, and it is the emergency path.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError as DBIntegrityError
from sqlalchemy.orm import Session

from governance.accounts.actor import Actor
from governance.accounts.roles import allows
from governance.audit.service import AuditEvent, AuditLog
from governance.clock import isoformat, utcnow
from governance.errors import Conflict, FieldError, InvalidInput, NotFound, PermissionDenied
from governance.registry.retirement import refuse_alias_move
from governance.registry.service import DEFAULT_ALIAS, Registry, check_alias_name
from governance.rollouts.records import PromotionRequest
from governance.rollouts.service import Rollouts

PENDING, APPROVED, REJECTED = "pending", "approved", "rejected"


class SelfApproval(PermissionDenied):
    """The requester of a promotion tried to decide it."""


APPROVER_PERMISSION = "model:alias"


@dataclass(frozen=True)
class Moved:
    """What asking for a move did: moved at once, or `pending` approval."""

    name: str
    alias: str
    version: int
    pending: PromotionRequest | None = None


class Promotions:
    """Moves of `production`, approved by a second person when the setting says so."""

    def __init__(
        self, registry: Registry, audit: AuditLog, rollouts: Rollouts, required: int
    ) -> None:
        self.registry = registry
        self.audit = audit
        self.rollouts = rollouts
        self.required = required

    # -- asking ---------------------------------------------------------------------------
    def set_alias(
        self, session: Session, actor: Actor, name: str, version: int, alias: str
    ) -> Moved:
        """Point `alias` at `version`, or ask for it when it is production under four-eyes."""
        check_alias_name(alias)
        actor.check_model(name)
        if alias != DEFAULT_ALIAS or not self.required:
            self.registry.set_alias(session, actor, name, version, alias)
            return Moved(name, alias, version)
        record = self.registry.resolve(session, name, version=version)  # NotFound first
        refuse_alias_move(record, alias)  # no request for a move that could never be made
        return Moved(name, alias, version, self._ask(session, actor, name, version, None))

    def promote_rollout(self, session: Session, actor: Actor, name: str) -> Moved:
        """Promote the model's rollout, or ask for it under four-eyes."""
        actor.check_model(name)
        rollout = self.rollouts.active(session, name)
        if not self.required or rollout is None:
            promoted = self.rollouts.promote(session, actor, name)
            return Moved(name, DEFAULT_ALIAS, promoted.candidate_version)
        self.rollouts.check_promotable(rollout)
        pending = self._ask(session, actor, name, rollout.candidate_version, rollout.id)
        return Moved(name, DEFAULT_ALIAS, rollout.candidate_version, pending)

    def check_publish_aliases(self, aliases: list[str]) -> None:
        """Publishing straight into production would skip the second person."""
        if self.required and DEFAULT_ALIAS in aliases:
            raise Conflict(
                "production moves need an approval here: publish without the production "
                "alias, then ask for the move (cofre models alias)"
            )

    def _ask(
        self, session: Session, actor: Actor, name: str, version: int, rollout_id: int | None
    ) -> PromotionRequest:
        request = PromotionRequest(
            model_name=name,
            version=version,
            alias=DEFAULT_ALIAS,
            rollout_id=rollout_id,
            pending_model=name,
            status=PENDING,
            requested_by=actor.name,
            requested_by_id=identity(actor),
            requested_at=utcnow(),
        )
        session.add(request)
        try:
            session.flush()
        except DBIntegrityError:
            raise Conflict(f"model {name!r} has a promotion waiting for approval already") from None
        self._audit(session, actor, "promotion.requested", request)
        return request

    # -- deciding -------------------------------------------------------------------------
    def approve(self, session: Session, actor: Actor, request_id: int) -> PromotionRequest:
        request = self._decidable(session, actor, request_id)
        if request.rollout_id is not None:
            self.rollouts.promote(session, actor, request.model_name)
        else:
            self.registry.set_alias(
                session, actor, request.model_name, request.version, request.alias
            )
        return self._decide(session, actor, request, APPROVED, None)

    def reject(
        self, session: Session, actor: Actor, request_id: int, reason: str
    ) -> PromotionRequest:
        if not reason.strip():
            raise InvalidInput("say why it is rejected", [FieldError("reason", "required")])
        request = self._decidable(session, actor, request_id)
        return self._decide(session, actor, request, REJECTED, reason[:1000])

    def _decidable(self, session: Session, actor: Actor, request_id: int) -> PromotionRequest:
        request = session.get(PromotionRequest, request_id)
        if request is None:
            raise NotFound(f"no promotion request {request_id}")
        if request.status != PENDING:
            raise Conflict(f"promotion request {request_id} was {request.status} already")
        if not allows(actor.role, APPROVER_PERMISSION):
            raise PermissionDenied("only a publisher or an admin may decide a promotion")
        actor.check_model(request.model_name)
        if identity(actor) == request.requested_by_id:
            raise SelfApproval("the requester cannot approve or reject their own promotion")
        return request

    def record_refusal(self, session: Session, actor: Actor, request_id: int) -> None:
        """Audit a refused self-approval in a transaction of its own (the refused one
        rolled back); the API's edge records its refusals itself."""
        request = session.get(PromotionRequest, request_id)
        if request is not None:
            self._audit(session, actor, "promotion.self_approval_refused", request)

    def _decide(
        self,
        session: Session,
        actor: Actor,
        request: PromotionRequest,
        status: str,
        reason: str | None,
    ) -> PromotionRequest:
        request.status, request.pending_model, request.reason = status, None, reason
        request.decided_by, request.decided_by_id = actor.name, identity(actor)
        request.decided_at = utcnow()
        self._audit(session, actor, f"promotion.{status}", request)
        session.flush()
        return request

    # -- reading --------------------------------------------------------------------------
    def pending(self, session: Session) -> list[PromotionRequest]:
        stmt = select(PromotionRequest).where(PromotionRequest.status == PENDING)
        return list(session.scalars(stmt.order_by(PromotionRequest.id)))

    def history(self, session: Session, name: str) -> list[PromotionRequest]:
        stmt = select(PromotionRequest).where(PromotionRequest.model_name == name)
        return list(session.scalars(stmt.order_by(PromotionRequest.id)))

    def _audit(self, session: Session, actor: Actor, kind: str, request: PromotionRequest) -> None:
        self.audit.append(
            session,
            AuditEvent(
                kind=kind,
                actor=actor,
                model_name=request.model_name,
                model_version=request.version,
                details={
                    "request": request.id,
                    "alias": request.alias,
                    "rollout": request.rollout_id,
                    "requested_by": request.requested_by,
                    "reason": request.reason,
                },
            ),
        )


def identity(actor: Actor) -> str:
    return f"{actor.type}:{actor.id}"


def as_dict(request: PromotionRequest) -> dict[str, Any]:
    return {
        "id": request.id,
        "model": request.model_name,
        "version": request.version,
        "alias": request.alias,
        "rollout": request.rollout_id,
        "status": request.status,
        "requested_by": request.requested_by,
        "requested_at": isoformat(request.requested_at),
        "decided_by": request.decided_by,
        "decided_at": isoformat(request.decided_at) if request.decided_at else None,
        "reason": request.reason,
    }
