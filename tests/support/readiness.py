"""/readyz with its details: what an operator's metrics key sees (issue 14.6)."""

from __future__ import annotations

from typing import Any

from flask.testing import FlaskClient

from governance.accounts.actor import SYSTEM
from server.container import Container


def readyz(client: FlaskClient, cofre: Container) -> Any:
    """GET /readyz with a fresh key of role `metrics`: the response, checks included."""
    with cofre.write() as session:
        created = cofre.accounts.create_key(session, SYSTEM, "readiness", "metrics", None, False)
    return client.get("/readyz", headers={"Authorization": f"Bearer {created.secret}"})
