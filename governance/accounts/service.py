"""Account use cases: users with argon2id passwords, API keys kept only as hashes.

An API key reads `cofre_<prefix>_<secret>`. The prefix is public (shown in
listings and logs, and used to find the row); the secret is 256 random bits,
shown once and stored as SHA-256. A fast hash is right here: the secret is
random, not a password, so there is nothing to brute-force, and every
prediction request checks one.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass
from functools import cache
from typing import Protocol

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from governance.accounts.actor import Actor
from governance.accounts.budgets import UNLIMITED, UNSET, Budget, Limit
from governance.accounts.records import ApiKey, User
from governance.accounts.revocations import MAX_AGE_SECONDS, Generation, Revocations
from governance.accounts.roles import Role, parse_role
from governance.audit.service import AuditEvent, AuditLog
from governance.clock import utcnow
from governance.errors import Conflict, FieldError, InvalidInput, NotFound, Unauthenticated
from governance.identifiers import parse_id

MIN_PASSWORD_LENGTH = 12
_USERNAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9._@-]{0,63}")
# Printable ASCII, not all spaces: a key's name is shown in pages, logs and the audit log.
_KEY_NAME = re.compile(r"[ -~]*[!-~][ -~]*")
_KEY_FORMAT = re.compile(r"^cofre_([a-z0-9]{8})_([A-Za-z0-9_-]{43})$")
_HASHER = PasswordHasher()  # argon2id with the library's current recommended parameters
# Every API call looks its key up: the columns an Actor needs, in a statement built
# once (SQLAlchemy then neither rebuilds it nor recomputes its cache key).
_KEY_BY_PREFIX = select(
    ApiKey.id,
    ApiKey.prefix,
    ApiKey.secret_hash,
    ApiKey.role,
    ApiKey.models,
    ApiKey.labels_only,
    ApiKey.rate_per_second,
    ApiKey.rows_per_day,
    ApiKey.output_precision,
    ApiKey.revoked_at,
).where(ApiKey.prefix == bindparam("prefix"))


MAX_CACHED_KEYS = 10_000


@cache
def _dummy_hash() -> str:
    """Verified against when the user does not exist, so timing does not reveal names;
    made on first use (0.4 s), not at import by every CLI start and Gunicorn master."""
    return _HASHER.hash(secrets.token_urlsafe(16))


@dataclass(frozen=True)
class NewApiKey:
    key: ApiKey
    secret: str  # the whole token; shown once, never stored


def hash_secret(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class Accounts:
    """Users and API keys; every change is an audit event in the same transaction."""

    def __init__(
        self,
        audit: AuditLog,
        revocations: Revocations | None = None,
        default_budget: Budget = UNLIMITED,
    ) -> None:
        self.audit = audit
        self.revocations = revocations
        self.default_budget = default_budget  # what a key gets for a limit not given
        # token hash -> (actor, revocation generation when read, monotonic deadline)
        self._verified: dict[str, tuple[Actor, Generation, float]] = {}

    # -- users -------------------------------------------------------------------------
    def create_user(
        self, session: Session, actor: Actor, username: str, role: str, password: str
    ) -> User:
        if not _USERNAME.fullmatch(username):
            raise InvalidInput(
                "invalid username",
                [FieldError("username", "1-64 letters, digits, '.', '_', '@' or '-'")],
            )
        if len(password) < MIN_PASSWORD_LENGTH:
            raise InvalidInput(
                "password too short",
                [FieldError("password", f"at least {MIN_PASSWORD_LENGTH} characters")],
            )
        parsed = parse_role(role)
        if session.scalars(select(User).where(User.username == username)).first():
            raise Conflict(f"user {username!r} exists already")
        user = User(
            username=username,
            password_hash=_HASHER.hash(password),
            role=parsed.value,
            disabled=False,
            created_at=utcnow(),
        )
        session.add(user)
        session.flush()
        self._event(session, actor, "user.created", {"user": username, "role": parsed.value})
        return user

    def users(self, session: Session) -> list[User]:
        return list(session.scalars(select(User).order_by(User.username)))

    def user(self, session: Session, username: str) -> User:
        user = session.scalars(select(User).where(User.username == username)).first()
        if user is None:
            raise NotFound(f"no user named {username!r}")
        return user

    def disable_user(self, session: Session, actor: Actor, username: str) -> User:
        user = self.user(session, username)
        self._keep_an_admin(session, user, "be disabled")
        user.disabled = True
        self._event(session, actor, "user.disabled", {"user": username})
        return user

    def set_role(self, session: Session, actor: Actor, username: str, role: str) -> User:
        """Give a user another role. Login sessions read the role on every request,
        so it takes effect at the user's next click, without a new login."""
        user = self.user(session, username)
        parsed = parse_role(role).value
        if actor.type == "user" and actor.id == str(user.id):
            raise Conflict("you cannot change your own role; another admin can")
        if user.role == parsed:
            return user
        if parsed != Role.ADMIN.value:
            self._keep_an_admin(session, user, "lose the admin role")
        previous, user.role = user.role, parsed
        self._event(
            session, actor, "user.role_changed", {"user": username, "from": previous, "to": parsed}
        )
        return user

    def _keep_an_admin(self, session: Session, user: User, change: str) -> None:
        """Refuse a change that would leave no active admin to manage the appliance."""
        if user.role != Role.ADMIN.value or user.disabled:
            return
        # The active admins' rows stay locked until commit (PostgreSQL; SQLite's write
        # transactions are serial anyway), in one order: two admins demoting each other
        # at once take turns, and the second sees the first's change.
        admins = session.scalars(
            select(User.id)
            .where(User.role == Role.ADMIN.value, User.disabled.is_(False))
            .order_by(User.id)
            .with_for_update()
        ).all()
        if not set(admins) - {user.id}:
            raise Conflict(f"the last active admin cannot {change}")

    def authenticate_user(self, session: Session, username: str, password: str) -> Actor:
        """The user's Actor, or Unauthenticated (same answer for every failure)."""
        user = session.scalars(select(User).where(User.username == username)).first()
        try:
            _HASHER.verify(user.password_hash if user else _dummy_hash(), password)
        except (VerificationError, InvalidHashError):
            raise Unauthenticated("unknown user or wrong password") from None
        if user is None or user.disabled:
            raise Unauthenticated("unknown user or wrong password")
        if _HASHER.check_needs_rehash(user.password_hash):
            user.password_hash = _HASHER.hash(password)
        return user_actor(user)

    # -- API keys -----------------------------------------------------------------------
    def create_key(
        self,
        session: Session,
        actor: Actor,
        name: str,
        role: str,
        models: list[str] | None = None,
        labels_only: bool = False,
        *,
        rate: Limit = UNSET,
        rows_per_day: Limit = UNSET,
        precision: Limit = UNSET,
    ) -> NewApiKey:
        """A new key; the limits not given are the configured defaults, copied into the
        key's row (so `keys list` shows what binds it; later defaults do not move it)."""
        budget = self.default_budget.with_changes(rate, rows_per_day, precision)
        if not _KEY_NAME.fullmatch(name) or len(name) > 64:
            raise InvalidInput(
                "invalid key name", [FieldError("name", "1-64 printable ASCII characters")]
            )
        parsed = parse_role(role)
        prefix = secrets.token_hex(4)
        token = f"cofre_{prefix}_{secrets.token_urlsafe(32)}"
        key = ApiKey(
            name=name,
            prefix=prefix,
            secret_hash=hash_secret(token),
            role=parsed.value,
            models=sorted(set(models)) if models else None,
            labels_only=labels_only,
            rate_per_second=budget.rate,
            rows_per_day=budget.rows_per_day,
            output_precision=budget.precision,
            created_by=int(actor.id) if actor.type == "user" else None,
            created_at=utcnow(),
        )
        session.add(key)
        session.flush()
        self._event(
            session,
            actor,
            "key.created",
            {
                "key_id": key.id,
                "prefix": prefix,
                "name": name,
                "role": parsed.value,
                "models": key.models,
                "labels_only": labels_only,
            }
            | budget.as_dict(),
        )
        return NewApiKey(key, token)

    def keys(self, session: Session) -> list[ApiKey]:
        return list(session.scalars(select(ApiKey).order_by(ApiKey.id)))

    def key(self, session: Session, key_ref: str) -> ApiKey:
        """A key by prefix or by id.

        The prefix is tried first: it is hex, so one in forty is all digits and
        would otherwise be taken for an id.
        """
        key = session.scalars(select(ApiKey).where(ApiKey.prefix == key_ref)).first()
        key_id = parse_id(key_ref)
        if key is None and key_id is not None:
            key = session.get(ApiKey, key_id)
        if key is None:
            raise NotFound(f"no API key {key_ref!r}")
        return key

    def limit_key(
        self,
        session: Session,
        actor: Actor,
        key_ref: str,
        *,
        rate: Limit = UNSET,
        rows_per_day: Limit = UNSET,
        precision: Limit = UNSET,
    ) -> ApiKey:
        """Change a key's budget or output precision (None lifts a limit). Every worker
        re-reads the key before its next request, as after a revocation, so the new
        limits bind at once; the extraction detector throttles a key through here."""
        key = self.key(session, key_ref)
        if key.revoked_at is not None:
            raise Conflict(f"API key {key.prefix} is revoked")
        before = key_budget(key)
        after = before.with_changes(rate, rows_per_day, precision)
        if after == before:
            return key
        key.rate_per_second, key.rows_per_day = after.rate, after.rows_per_day
        key.output_precision = after.precision
        self._event(
            session,
            actor,
            "key.limited",
            {
                "key_id": key.id,
                "prefix": key.prefix,
                "from": before.as_dict(),
                "to": after.as_dict(),
            },
        )
        if self.revocations:
            self.revocations.announce(session)
        return key

    def revoke_key(self, session: Session, actor: Actor, key_ref: str) -> ApiKey:
        """Revoke by prefix or by id."""
        key = self.key(session, key_ref)
        if key.revoked_at is not None:
            raise Conflict(f"API key {key.prefix} is already revoked")
        key.revoked_at = utcnow()
        self._event(session, actor, "key.revoked", {"key_id": key.id, "prefix": key.prefix})
        if self.revocations:
            self.revocations.announce(session)
        return key

    def authenticate_key(self, session: Session, token: str) -> Actor:
        """The key's actor: from this process's cache while no key was revoked since it
        was read (governance/accounts/revocations.py), else from its row."""
        match = _KEY_FORMAT.match(token)
        if not match:
            raise Unauthenticated("malformed API key")
        digest = hash_secret(token)
        generation = self.revocations.generation() if self.revocations else None
        cached = self._verified.get(digest)
        if cached and generation and cached[1] == generation and cached[2] > time.monotonic():
            return cached[0]
        key = session.connection().execute(_KEY_BY_PREFIX, {"prefix": match.group(1)}).first()
        if key is None or not hmac.compare_digest(key.secret_hash, digest):
            raise Unauthenticated("unknown API key")
        if key.revoked_at is not None:
            raise Unauthenticated("this API key was revoked")
        actor = key_actor(key)
        if generation:
            if len(self._verified) >= MAX_CACHED_KEYS:
                self._verified.clear()
            self._verified[digest] = (actor, generation, time.monotonic() + MAX_AGE_SECONDS)
        return actor

    def _event(self, session: Session, actor: Actor, kind: str, details: dict[str, object]) -> None:
        self.audit.append(session, AuditEvent(kind=kind, actor=actor, details=details))


def user_actor(user: User) -> Actor:
    return Actor(type="user", id=str(user.id), role=user.role, name=user.username)


class KeyFacts(Protocol):
    """What an Actor is made of: an ApiKey, or a row of _KEY_BY_PREFIX."""

    @property
    def id(self) -> int: ...
    @property
    def prefix(self) -> str: ...
    @property
    def role(self) -> str: ...
    @property
    def models(self) -> list[str] | None: ...
    @property
    def labels_only(self) -> bool: ...
    @property
    def rate_per_second(self) -> int | None: ...
    @property
    def rows_per_day(self) -> int | None: ...
    @property
    def output_precision(self) -> int | None: ...


def key_budget(key: KeyFacts) -> Budget:
    return Budget(key.rate_per_second, key.rows_per_day, key.output_precision)


def key_actor(key: KeyFacts) -> Actor:
    return Actor(
        type="key",
        id=str(key.id),
        role=key.role,
        name=f"key:{key.prefix}",
        models=tuple(key.models) if key.models is not None else None,
        labels_only=key.labels_only,
        rate=key.rate_per_second,
        rows_per_day=key.rows_per_day,
        precision=key.output_precision,
    )
