"""Every way in: HTTP API, admin pages, CLI, scheduler; wires the rest together.

Dependency rule: server may import backups and governance; nothing imports
server. `server.inference` stays free of Flask so batch scoring reuses it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flask import Flask


def create_app(overrides: Mapping[str, Any] | None = None) -> Flask:
    """The application factory (see server/app.py).

    Imported lazily so that `server.config` can be read (by the Gunicorn config)
    before the app's modules, and prometheus_client with them, are imported.
    """
    from server.app import create_app as factory

    return factory(overrides)


__all__ = ["create_app"]
