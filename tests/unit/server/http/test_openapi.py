"""/openapi.json describes every API route the app has, and is a valid OpenAPI 3.1 document."""

from __future__ import annotations

import re
from collections.abc import Callable

from flask import Flask
from flask.testing import FlaskClient
from openapi_spec_validator import validate

from server.http.openapi import BODIES

CONVERTER = re.compile(r"<(?:\w+(?:\([^)]*\))?:)?(\w+)>")


def test_every_route_and_method_is_described(app: Flask, client: FlaskClient) -> None:
    """Every route but the admin pages (HTML for a browser, not the API)."""
    spec = client.get("/openapi.json").json
    validate(spec)
    assert not [path for path in spec["paths"] if path.startswith("/admin")]
    missing = []
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/admin/"):
            continue
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


def test_rotate_master_is_not_also_a_key_to_revoke(
    client: FlaskClient, api_key: Callable[..., dict[str, str]]
) -> None:
    """`/keys/<key_ref>` matched `rotate-master` too: OPTIONS advertised DELETE on it."""
    admin = api_key("admin")
    allowed = client.options("/api/v1/keys/rotate-master", headers=admin).headers["Allow"]
    assert "DELETE" not in allowed and "POST" in allowed
    refused = client.delete("/api/v1/keys/rotate-master", headers=admin)
    assert refused.status_code == 405 and "DELETE" not in refused.headers["Allow"]


def test_ids_are_ascii_digits_in_the_database_range(
    client: FlaskClient, api_key: Callable[..., dict[str, str]]
) -> None:
    admin = api_key("admin")
    for ref in ("%D9%A3", "%C2%B2", "1" * 23):
        assert client.delete(f"/api/v1/keys/{ref}", headers=admin).status_code == 404
        assert client.get(f"/api/v1/reviews/{ref}", headers=admin).status_code == 404
    assert client.get("/api/v1/reviews/2147483648", headers=admin).status_code == 404
