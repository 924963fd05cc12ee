"""The application factory: the only way to get an app (Gunicorn, CLI, tests).

It wires and nothing else: no migrations, no network, no threads, no key
reads. Those happen in `cofre init`, on first use, or after fork.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask, Response

from server import errors, logging, request_ids, routing
from server.config import Settings, load_settings
from server.container import Container
from server.extension import EXTENSION
from server.http.bodies import InMemoryUploadRequest, StrictJSONProvider
from server.proxy import TrustedProxyFix, parse_addresses
from server.security.access import guard
from server.security.sessions import load_session_actor


def create_app(overrides: Mapping[str, Any] | None = None) -> Flask:
    settings = load_settings(overrides)
    logging.configure(settings.log_level, settings.log_json)
    app = Flask("server", static_folder=None)
    app.request_class = InMemoryUploadRequest
    app.json = StrictJSONProvider(app)
    _configure_flask(app, settings)
    routing.register(app)  # before the blueprints: ids are ASCII digits in range
    app.extensions[EXTENSION] = Container(settings)
    app.before_request(request_ids.assign)
    app.before_request(load_session_actor)  # sets g.session_actor for the guard
    app.before_request(guard)
    app.after_request(_stamp_response)
    errors.register(app)
    _register_blueprints(app)
    if settings.trust_proxy:
        app.wsgi_app = TrustedProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, parse_addresses(settings.trusted_proxies)
        )
    return app


def _configure_flask(app: Flask, settings: Settings) -> None:
    app.config.update(
        TESTING=settings.testing,
        MAX_CONTENT_LENGTH=settings.max_body_bytes,
        JSON_SORT_KEYS=False,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
        SESSION_COOKIE_SECURE=not settings.testing,
    )
    app.json.sort_keys = False  # type: ignore[attr-defined]


def _register_blueprints(app: Flask) -> None:
    from server.http import (
        api_accounts,
        api_alerts,
        api_audit,
        api_compliance,
        api_feedback,
        api_models,
        api_monitoring,
        api_operations,
        api_subjects,
        health,
        mlflow,
        observability,
        openapi,
        predict,
        v2,
    )

    # The prediction doors first: their /<name>/... rules are more specific
    # than the registry's /<path:name>.
    for module in (
        predict,
        mlflow,
        v2,
        health,
        api_models,
        api_accounts,
        api_audit,
        api_operations,
        observability,
        openapi,
        api_subjects,
        api_feedback,
        api_compliance,
        api_monitoring,
        api_alerts,
    ):
        app.register_blueprint(module.blueprint)
    from server.admin import blueprints as admin_blueprints

    for blueprint in admin_blueprints():
        app.register_blueprint(blueprint)


def _stamp_response(response: Response) -> Response:
    request_ids.stamp(response)
    response.headers.setdefault("Cache-Control", "no-store")
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    return response
