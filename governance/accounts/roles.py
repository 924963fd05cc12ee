"""The role table, kept as data: which role may do what (PRODUCT.md, "Roles").

Every route declares one permission from PERMISSIONS; a route that declares
none is denied to everybody (server/security/access.py enforces it).
"""

from __future__ import annotations

from enum import StrEnum

from governance.errors import FieldError, InvalidInput


class Role(StrEnum):
    ADMIN = "admin"
    PUBLISHER = "publisher"
    PREDICTOR = "predictor"
    AUDITOR = "auditor"
    # A Prometheus scraper's credential: /metrics (and /readyz's details), nothing else.
    METRICS = "metrics"


PERMISSIONS: dict[str, str] = {
    "model:read": "list and show models, versions, aliases and model cards",
    "model:publish": "publish new model versions",
    "model:alias": "move aliases and roll them back",
    "model:metrics": "see live model metrics and drift",
    "monitoring:read": "read monitoring reports: drift, data quality, performance, fairness",
    "predict": "call the prediction endpoints (native, MLflow, Open Inference)",
    "feedback": "send ground truth for earlier predictions",
    "audit:read": "read and search the audit log, with decrypted personal data",
    "audit:verify": "verify the audit chain and sign checkpoints",
    "audit:export": "export audit records, a request's or a subject's",
    "subject:manage": "handle data-subject requests and reviews",
    "review:open": "contest an automated decision on the person's behalf (open a review)",
    "compliance:read": "read the record of processing activities",
    "metrics:read": "scrape the Prometheus metrics",
    "account:manage": "create and disable users",
    "key:manage": "create, list and revoke API keys",
    "key:rotate": "rotate the master key",
    "operations:manage": "run backups, restores and scheduled jobs",
    "operations:read": "see backups, job history and appliance status",
}

ROLE_PERMISSIONS: dict[Role, frozenset[str]] = {
    Role.ADMIN: frozenset(PERMISSIONS),
    Role.PUBLISHER: frozenset(
        {
            "model:read",
            "model:publish",
            "model:alias",
            "model:metrics",
            "monitoring:read",
            "operations:read",
        }
    ),
    Role.PREDICTOR: frozenset({"predict", "feedback", "review:open"}),
    Role.AUDITOR: frozenset(
        {
            "model:read",
            "audit:read",
            "audit:verify",
            "audit:export",
            "subject:manage",
            "operations:read",
            "review:open",
            "compliance:read",
            "monitoring:read",
        }
    ),
    Role.METRICS: frozenset({"metrics:read"}),
}


def allows(role: Role | str, permission: str) -> bool:
    """True when `role` holds `permission`; unknown roles and permissions hold nothing."""
    try:
        return permission in ROLE_PERMISSIONS[Role(role)]
    except ValueError:
        return False


def parse_role(text: str) -> Role:
    try:
        return Role(text)
    except ValueError:
        # The rejected value is not echoed: error bodies never repeat the input.
        choices = ", ".join(r.value for r in Role)
        raise InvalidInput("unknown role", [FieldError("role", f"one of {choices}")]) from None
