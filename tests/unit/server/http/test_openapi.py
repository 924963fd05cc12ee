"""/openapi.json describes every route the app has, and is a valid OpenAPI 3.1 document."""

from __future__ import annotations

import re

from flask import Flask
from flask.testing import FlaskClient
from openapi_spec_validator import validate

from server.http.openapi import BODIES

CONVERTER = re.compile(r"<(?:\w+(?:\([^)]*\))?:)?(\w+)>")


def test_every_route_and_method_is_described(app: Flask, client: FlaskClient) -> None:
    spec = client.get("/openapi.json").json
    validate(spec)
    missing = []
    for rule in app.url_map.iter_rules():
        path = CONVERTER.sub(r"{\1}", rule.rule)
        for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}:
            operation = spec["paths"].get(path, {}).get(method.lower())
            if operation is None or not operation["summary"]:
                missing.append(f"{method} {rule.rule}")
    assert missing == []


def test_described_bodies_belong_to_existing_routes(app: Flask) -> None:
    routes = {(m.lower(), r.rule) for r in app.url_map.iter_rules() for m in r.methods or ()}
    assert set(BODIES) <= routes


def test_permissions_are_published(client: FlaskClient) -> None:
    paths = client.get("/openapi.json").json["paths"]
    predict = paths["/api/v1/models/{name}/predict"]["post"]
    assert predict["x-cofre-permission"] == "predict"
    assert predict["security"]
    assert "security" not in paths["/healthz"]["get"]
