"""Reading the admin pages' form fields and query strings into typed values."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from governance.accounts.budgets import UNSET, Limit, parse_limit
from governance.audit.search import AuditQuery
from governance.clock import isoformat
from governance.errors import FieldError, InvalidInput
from governance.identifiers import parse_number
from governance.registry.service import ModelCard

# Audit filters that travel in the page's URL (the subject only as its pseudonym).
QUERY_FIELDS = ("request_id", "model", "version", "caller", "outcome", "kind", "since", "until")


def audit_query(values: Mapping[str, str], pseudonym: str = "") -> AuditQuery:
    """Filters from a query string or form; times are read as UTC."""
    return AuditQuery(
        request_id=_text(values, "request_id"),
        model_name=_text(values, "model"),
        model_version=optional_int(values, "version"),
        caller=_text(values, "caller"),
        outcome=_text(values, "outcome"),
        kind=_text(values, "kind"),
        subject=pseudonym or _text(values, "subject"),
        since=utc_text(values, "since"),
        until=utc_text(values, "until"),
    )


def query_args(values: Mapping[str, str], pseudonym: str = "") -> dict[str, str]:
    """The non-empty filters as URL parameters (for links to other pages of results)."""
    args = {name: _text(values, name) for name in QUERY_FIELDS if _text(values, name)}
    subject = pseudonym or _text(values, "subject")
    return args | ({"subject": subject} if subject else {})


def optional_int(values: Mapping[str, str], name: str) -> int | None:
    text = _text(values, name)
    if not text:
        return None
    number = parse_number(text)
    if number is None:
        raise InvalidInput(f"{name} must be a number", [FieldError(name, "must be a number")])
    return number


def page_number(values: Mapping[str, str]) -> int:
    return optional_int(values, "page") or 1


def utc_text(values: Mapping[str, str], name: str) -> str:
    """A `datetime-local` value (or ISO text), taken as UTC, in the log's canonical form."""
    text = _text(values, name)
    if not text:
        return ""
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(
            f"{name} is not a date and time", [FieldError(name, "use YYYY-MM-DDTHH:MM (UTC)")]
        ) from None
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment
    return isoformat(moment)


def model_card(values: Mapping[str, str]) -> ModelCard:
    return ModelCard(
        purpose=_text(values, "purpose"),
        legal_basis=_text(values, "legal_basis"),
        description=_text(values, "description"),
        decision_mode=_text(values, "decision_mode") or "human-reviewed",
        owner=_text(values, "owner"),
        retention_days=optional_int(values, "retention_days"),
        recipients=_text(values, "recipients"),
    )


def key_limits(values: Mapping[str, str]) -> dict[str, Limit]:
    """A key's limits from the form: an empty field is the default (UNSET), "none"
    lifts the limit."""
    return {
        field: parse_limit(field, text) if (text := _text(values, field)) else UNSET
        for field in ("rate", "rows_per_day", "precision")
    }


def required_text(values: Mapping[str, str], name: str) -> str:
    text = _text(values, name)
    if not text:
        raise InvalidInput(f"{name} is required", [FieldError(name, "is required")])
    return text


def _text(values: Mapping[str, Any], name: str) -> str:
    value = values.get(name)
    return value.strip() if isinstance(value, str) else ""


def optional_upload(files: Mapping[str, Any], name: str) -> bytes | None:
    """The bytes of an optional file field; None when no file was chosen."""
    upload = files.get(name)
    return upload.read() if upload is not None and upload.filename else None
