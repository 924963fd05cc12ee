"""Sign-in sessions for the admin pages: start, resume, end, and throttle failures.

Sessions live in the database, not in a signed cookie, so that logging out (or
disabling the user) kills the cookie at once on every worker. The cookie holds
a random token; the table holds its SHA-256, so a copy of the database does not
hand out live sessions. Failed sign-ins are counted in the database too, so the
throttle holds across Gunicorn workers and nodes.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, or_, select
from sqlalchemy.orm import Session

from governance.accounts.actor import ANONYMOUS, Actor
from governance.accounts.records import LoginFailure, LoginSession, User
from governance.accounts.roles import allows
from governance.accounts.service import Accounts, user_actor
from governance.audit.service import AuditEvent, AuditLog
from governance.clock import utcnow
from governance.errors import Unauthenticated

# A role must hold this to use the admin pages at all (admin, publisher, auditor).
PAGES_PERMISSION = "model:read"


@dataclass(frozen=True)
class SessionPolicy:
    """How long sessions live and how many failures lock sign-in for a while."""

    idle: timedelta
    absolute: timedelta
    max_failures_per_user: int = 5
    max_failures_per_client: int = 20
    failure_window: timedelta = timedelta(minutes=15)
    # last_seen is written at most this often, so browsing is not a write per request.
    touch_every: timedelta = timedelta(seconds=30)


@dataclass(frozen=True)
class StartedSession:
    token: str  # goes into the cookie; never stored
    csrf_token: str
    actor: Actor


@dataclass(frozen=True)
class LiveSession:
    id: str
    csrf_token: str
    actor: Actor


@dataclass(frozen=True)
class LoginRefused:
    """Why a sign-in was refused; the words shown for it live with the pages."""

    reason: str  # "credentials" | "throttled" | "no-access"


def token_id(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class Logins:
    """Sign-in use cases; every sign-in, failure and sign-out is an audit event."""

    def __init__(self, accounts: Accounts, audit: AuditLog, policy: SessionPolicy) -> None:
        self.accounts = accounts
        self.audit = audit
        self.policy = policy

    def log_in(
        self,
        session: Session,
        username: str,
        password: str,
        client: str,
        replaces: str | None = None,
        request_id: str | None = None,
    ) -> StartedSession | LoginRefused:
        """A fresh session (never the one the browser had: that one is ended), or why not."""
        now = utcnow()
        if self._throttled(session, username, client, now):
            return self._refuse(session, username, "throttled", request_id)
        try:
            actor = self.accounts.authenticate_user(session, username, password)
        except Unauthenticated:
            session.add(LoginFailure(username=username[:64], client=client[:64], at=now))
            return self._refuse(session, username, "credentials", request_id)
        if not allows(actor.role, PAGES_PERMISSION):
            return self._refuse(session, username, "no-access", request_id)
        if replaces:
            self._end(session, token_id(replaces), "renewed", now)
        session.execute(delete(LoginFailure).where(LoginFailure.username == username))
        return self._start(session, actor, now, request_id)

    def _start(
        self, session: Session, actor: Actor, now: datetime, request_id: str | None
    ) -> StartedSession:
        token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        session.add(
            LoginSession(
                id=token_id(token),
                user_id=int(actor.id),
                csrf_token=csrf,
                created_at=now,
                last_seen_at=now,
            )
        )
        self._event(session, actor, "auth.login", "ok", request_id, None)
        return StartedSession(token=token, csrf_token=csrf, actor=actor)

    def _throttled(self, session: Session, username: str, client: str, now: datetime) -> bool:
        since = now - self.policy.failure_window
        stmt = select(
            func.count().filter(LoginFailure.username == username),
            func.count().filter(LoginFailure.client == client),
        ).where(
            LoginFailure.at > since,
            or_(LoginFailure.username == username, LoginFailure.client == client),
        )
        per_user, per_client = session.execute(stmt).one()
        return bool(
            per_user >= self.policy.max_failures_per_user
            or per_client >= self.policy.max_failures_per_client
        )

    def _refuse(
        self, session: Session, username: str, reason: str, request_id: str | None
    ) -> LoginRefused:
        known = session.scalars(select(User.id).where(User.username == username)).first()
        # Only names of real accounts go into the log: people type passwords into the
        # username field, and an unknown name is worth nothing to an investigation.
        details: dict[str, object] = {"username": username if known else None, "reason": reason}
        self._event(session, ANONYMOUS, "auth.login", "denied", request_id, details)
        return LoginRefused(reason)

    def resume(self, session: Session, token: str) -> LiveSession | None:
        """The session behind a cookie, or None when it is unknown, ended or timed out."""
        found = session.execute(
            select(LoginSession, User)
            .join(User, User.id == LoginSession.user_id)
            .where(LoginSession.id == token_id(token))
        ).first()
        if found is None:
            return None
        row, user = found
        if row.ended_at is not None or user.disabled or self.expiry(row, utcnow()):
            return None
        return LiveSession(id=row.id, csrf_token=row.csrf_token, actor=user_actor(user))

    def expiry(self, row: LoginSession, now: datetime) -> str | None:
        """Why the session has timed out ("idle" or "absolute"), or None."""
        if now - row.created_at > self.policy.absolute:
            return "absolute"
        if now - row.last_seen_at > self.policy.idle:
            return "idle"
        return None

    def touch(self, session: Session, session_id: str) -> None:
        """Record activity, at most every `touch_every`, for the idle timeout."""
        now = utcnow()
        row = session.get(LoginSession, session_id)
        if row is not None and now - row.last_seen_at >= self.policy.touch_every:
            row.last_seen_at = now

    def needs_touch(self, session: Session, session_id: str) -> bool:
        row = session.get(LoginSession, session_id)
        return row is not None and utcnow() - row.last_seen_at >= self.policy.touch_every

    def log_out(
        self, session: Session, token: str, actor: Actor, request_id: str | None = None
    ) -> None:
        if self._end(session, token_id(token), "logout", utcnow()):
            self._event(session, actor, "auth.logout", "ok", request_id, None)

    def _end(self, session: Session, session_id: str, reason: str, now: datetime) -> bool:
        row = session.get(LoginSession, session_id)
        if row is None or row.ended_at is not None:
            return False
        row.ended_at, row.end_reason = now, reason
        return True

    def _event(
        self,
        session: Session,
        actor: Actor,
        kind: str,
        outcome: str,
        request_id: str | None,
        details: dict[str, object] | None,
    ) -> None:
        self.audit.append(
            session,
            AuditEvent(
                kind=kind,
                actor=actor,
                outcome=outcome,
                endpoint="admin",
                request_id=request_id,
                details=details,
            ),
        )
