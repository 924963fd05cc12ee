"""Which audit records a reader limited to named models may see.

A key or user limited with `--model` reads the records about those models only;
records about no model (logins, key changes, backups) are not about its models
either, so they stay out of its reach too (least privilege). Every audit read
(search, a record, a request's or a subject's records, exports) goes through
`visible_to`, whatever the door.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement

from governance.accounts.actor import Actor
from governance.audit.records import AuditRecord
from governance.errors import PermissionDenied


def visible_to(actor: Actor) -> list[ColumnElement[bool]]:
    """WHERE clauses keeping the records `actor` may read (none for an unlimited one)."""
    if actor.models is None:
        return []
    return [AuditRecord.model_name.in_(actor.models)]


def may_read(actor: Actor, record: AuditRecord) -> bool:
    return actor.models is None or (record.model_name or "") in actor.models


def check_readable(actor: Actor, record: AuditRecord) -> None:
    if not may_read(actor, record):
        raise PermissionDenied("this caller is limited to other models")
