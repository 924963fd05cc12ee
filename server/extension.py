"""The one accessor views use to reach the service container."""

from __future__ import annotations

from flask import current_app

from server.container import Container

EXTENSION = "cofre"


def services() -> Container:
    container: Container = current_app.extensions[EXTENSION]
    return container
