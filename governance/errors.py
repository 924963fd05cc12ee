"""Typed domain errors; they carry no HTTP codes (server/errors.py maps them)."""

from __future__ import annotations

from dataclasses import dataclass


class CofreError(Exception):
    """Base of every error the domain raises on purpose.

    `detail` is safe to show to the caller: it never holds secrets or echoed input.
    """

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


@dataclass(frozen=True)
class FieldError:
    """One field-level problem, as RFC 9457 `errors` entries."""

    field: str
    message: str
    row: int | None = None

    def as_dict(self) -> dict[str, object]:
        out: dict[str, object] = {"field": self.field, "message": self.message}
        if self.row is not None:
            out["row"] = self.row
        return out


class NotFound(CofreError):
    """The named thing does not exist."""


class Conflict(CofreError):
    """The request clashes with the current state (name taken, already revoked...)."""


class InvalidInput(CofreError):
    """The input is well-formed but wrong; `errors` names the fields."""

    def __init__(self, detail: str, errors: list[FieldError] | None = None) -> None:
        super().__init__(detail)
        self.errors: list[FieldError] = errors or []


class MalformedInput(CofreError):
    """The input cannot even be parsed (bad JSON, bad CSV, wrong envelope, a key
    that has no meaning here); `errors` may name the fields."""

    def __init__(self, detail: str, errors: list[FieldError] | None = None) -> None:
        super().__init__(detail)
        self.errors: list[FieldError] = errors or []


class UnsupportedMediaType(CofreError):
    """The body's content type is not one this endpoint reads."""


class TooLarge(CofreError):
    """The body or the number of rows is over the configured limit."""


class UntrustedArtifact(CofreError):
    """A model file is not skops, or names types outside the trusted list."""

    def __init__(self, detail: str, untrusted_types: list[str] | None = None) -> None:
        super().__init__(detail)
        self.untrusted_types = untrusted_types or []


class IntegrityError(CofreError):
    """Stored data failed authentication: tampered, swapped, or the wrong key."""


class Unverified(CofreError):
    """A version may not load under the running libraries until it is verified again
    under them (`cofre models verify`)."""


class KeyUnavailable(CofreError):
    """A key the operation needs is missing or unreadable."""


class AuditUnavailable(CofreError):
    """The audit record could not be written durably; nothing may be served."""


class Unauthenticated(CofreError):
    """No valid credentials were presented."""


class PermissionDenied(CofreError):
    """The caller is known but its role or scope does not allow this."""


class NotInitialised(CofreError):
    """The data directory, keys or schema are missing: run `cofre init`."""


class Gone(CofreError):
    """A version past its sunset, or retired, answers no more; `successor` names the
    version callers should move to ("NAME:V"), when there is one."""

    def __init__(self, detail: str, successor: str | None = None) -> None:
        super().__init__(detail)
        self.successor = successor


class OverBudget(CofreError):
    """An API key has used up a budget; `retry_after` is how many seconds until the
    window that refused it frees."""

    def __init__(self, detail: str, retry_after: int) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class RateLimited(OverBudget):
    """More requests this second than the key's rate allows."""


class RowsSpent(OverBudget):
    """More rows today (UTC) than the key's daily budget allows."""
