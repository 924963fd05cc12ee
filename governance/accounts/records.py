"""ORM classes for users and API keys."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, Boolean, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from governance.db import Base, UTCDateTime


class User(Base):
    """A person who signs in to the admin pages or the CLI's audit trail names."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ApiKey(Base):
    """A machine credential: only the hash of the secret is kept; `prefix` is shown."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    prefix: Mapped[str] = mapped_column(String(16), unique=True)
    secret_hash: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(16))
    # None means every model; otherwise the names of the models this key may use.
    models: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)
    labels_only: Mapped[bool] = mapped_column(Boolean, default=False)
    # Query budget and output precision (governance/accounts/budgets.py); None is
    # unlimited, or full precision.
    rate_per_second: Mapped[int | None] = mapped_column(Integer, nullable=True)
    rows_per_day: Mapped[int | None] = mapped_column(Integer, nullable=True)
    output_precision: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class LoginSession(Base):
    """A signed-in browser. Only a hash of the cookie's token is kept, so reading the
    table does not let anyone take over a session; ending it makes the cookie dead."""

    __tablename__ = "login_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # SHA-256 of the token
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    end_reason: Mapped[str | None] = mapped_column(String(16), nullable=True)


class LoginFailure(Base):
    """One failed sign-in, kept in the database so throttling holds across workers."""

    __tablename__ = "login_failures"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), index=True)
    client: Mapped[str] = mapped_column(String(64), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class KeyUsage(Base):
    """What a key has used of its budget in its current second ("s") or UTC day ("d"):
    one row per key and span, counted over in place by every worker and node."""

    __tablename__ = "key_usage"

    key_id: Mapped[int] = mapped_column(ForeignKey("api_keys.id"), primary_key=True)
    span: Mapped[str] = mapped_column(String(1), primary_key=True)
    span_start: Mapped[int] = mapped_column(BigInteger)  # epoch second, or epoch day
    used: Mapped[int] = mapped_column(BigInteger)
