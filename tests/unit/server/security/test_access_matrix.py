"""Every route against every role: allowed or denied exactly as the role table says.

The test walks `app.url_map`, so a route added later (prediction doors, admin
pages, backups...) is checked the day it appears, and one that declares no
permission fails the suite. Views are replaced by a stub that records the call:
what is under test is the guard (authentication, the declared permission, the
role table), not what each view makes of placeholder arguments, and no view's
side effect (a key rotation, a restore) runs with them. Prediction doors keep
their real views: their callers are authorised inside the prediction core, and
a caller who passes reaches the core's next check (no model "x": 404).
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask
from werkzeug.routing import AnyConverter, Rule, UUIDConverter
from werkzeug.routing.converters import NumberConverter

from governance.accounts.roles import Role, allows
from server.security.access import (
    DOOR_ATTRIBUTE,
    PUBLIC,
    declared_permission,
    public,
    requires,
)

ANONYMOUS = "anonymous"
IGNORED_METHODS = {"HEAD", "OPTIONS"}


def _placeholder(rule: Rule, argument: str) -> Any:
    converter = rule._converters.get(argument)
    if isinstance(converter, NumberConverter):
        return 1
    if isinstance(converter, UUIDConverter):
        return uuid.UUID(int=1)
    if isinstance(converter, AnyConverter):
        return converter.items[0]
    return "1" if argument == "model_version" else "x"  # V2 versions are path text


def _requests(app: Flask) -> Iterator[tuple[Rule, str, str]]:
    adapter = app.url_map.bind("localhost")
    for rule in app.url_map.iter_rules():
        values = {arg: _placeholder(rule, arg) for arg in rule.arguments}
        for method in sorted((rule.methods or set()) - IGNORED_METHODS):
            url = adapter.build(rule.endpoint, values, method=method)
            yield rule, method, url


@pytest.fixture
def calls(app: Flask) -> list[str]:
    """Replace every view by a stub that keeps its declaration and records its endpoint."""
    called: list[str] = []
    for endpoint, view in list(app.view_functions.items()):
        if not _is_door(view):
            app.view_functions[endpoint] = _stub(endpoint, view, called)
    return called


def _is_door(view: Callable[..., Any]) -> bool:
    return getattr(view, DOOR_ATTRIBUTE, None) is not None


def _stub(endpoint: str, view: Callable[..., Any], called: list[str]) -> Callable[..., Any]:
    @functools.wraps(view)  # copies the permission mark along with the name
    def stub(**_: Any) -> tuple[str, int]:
        called.append(endpoint)
        return "stub", 200

    return stub


def test_every_route_declares_a_known_permission(app: Flask) -> None:
    undeclared = [
        rule.rule
        for rule in app.url_map.iter_rules()
        if declared_permission(app, rule.endpoint) is None
    ]
    assert undeclared == [], "routes without @requires(...) or @public"


def test_every_role_against_every_route(
    app: Flask, calls: list[str], api_key: Callable[..., dict[str, str]]
) -> None:
    client = app.test_client()
    callers = {ANONYMOUS: {}} | {role.value: api_key(role.value) for role in Role}
    checked, problems = 0, []
    for rule, method, url in _requests(app):
        permission = declared_permission(app, rule.endpoint)
        for caller, headers in callers.items():
            calls.clear()
            response = client.open(url, method=method, headers=headers)
            expected = _expected(permission, caller)
            if _is_door(app.view_functions[rule.endpoint]):
                outcome = _door_outcome(response)
            else:
                outcome = _outcome(response, calls, rule.endpoint)
            if outcome != expected:
                problems.append(
                    f"{method} {rule.rule} ({permission}) as {caller}: expected {expected}, "
                    f"got {outcome} ({response.status_code})"
                )
            checked += 1
    assert problems == []
    assert checked >= 5 * 15  # the foundation alone has more than 15 method-routes


def _expected(permission: str | None, caller: str) -> str:
    if permission == PUBLIC:
        return "allowed"
    if caller == ANONYMOUS:
        return "unauthenticated"
    return "allowed" if permission and allows(caller, permission) else "forbidden"


def _outcome(response: Any, calls: list[str], endpoint: str) -> str:
    if calls == [endpoint] and response.status_code not in (401, 403):
        return "allowed"
    if calls:
        return f"view ran but answered {response.status_code}"
    if response.status_code == 401:
        return "unauthenticated"
    if response.status_code in (302, 303) and "login" in response.headers.get("Location", ""):
        return "unauthenticated"  # the admin pages send browsers to the login form
    if response.status_code == 403:
        return "forbidden"
    return f"denied with {response.status_code}"


def _door_outcome(response: Any) -> str:
    if response.status_code == 404 and "no model named" in response.json["detail"]:
        return "allowed"
    return {401: "unauthenticated", 403: "forbidden"}.get(
        response.status_code, f"door answered {response.status_code}"
    )


def test_a_route_without_a_declaration_is_denied_to_everybody(
    app: Flask, api_key: Callable[..., dict[str, str]]
) -> None:
    app.add_url_rule("/undeclared", "undeclared", lambda: "secret")
    app.add_url_rule("/declared", "declared", requires("model:read")(lambda: "ok"))
    app.add_url_rule("/open", "open", public(lambda: "ok"))
    client = app.test_client()
    admin = api_key("admin")
    assert client.get("/undeclared").status_code == 401
    assert client.get("/undeclared", headers=admin).status_code == 403
    assert client.get("/declared", headers=admin).status_code == 200
    assert client.get("/declared", headers=api_key("predictor")).status_code == 403
    assert client.get("/open").status_code == 200


def test_unknown_permissions_cannot_be_declared() -> None:
    with pytest.raises(ValueError, match="unknown permission"):
        requires("model:destroy")


@pytest.mark.parametrize(
    "header",
    ["Bearer", "Bearer   ", "Basic YWRtaW46YWRtaW4=", "Bearer cofre_00000000_" + "A" * 43],
)
def test_bad_credentials_are_401(app: Flask, header: str) -> None:
    response = app.test_client().get("/api/v1/models", headers={"Authorization": header})
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_monitoring_reports_are_for_publishers_auditors_and_admins(app: Flask) -> None:
    rule = next(r for r in app.url_map.iter_rules() if r.rule.endswith("/<name>/monitoring"))
    permission = declared_permission(app, rule.endpoint)
    assert permission == "monitoring:read"
    assert {r.value for r in Role if allows(r, permission)} == {"admin", "publisher", "auditor"}


def test_feedback_is_for_predictors_and_admins(
    app: Flask, api_key: Callable[..., dict[str, str]]
) -> None:
    """The ground-truth route, with its real view: predictor and admin reach it (an
    unknown request id is then a 404); every other caller is stopped by the guard."""
    rule = "/api/v1/predictions/<request_id>/feedback"
    endpoint = next(r.endpoint for r in app.url_map.iter_rules() if r.rule == rule)
    assert declared_permission(app, endpoint) == "feedback"
    client = app.test_client()
    url, body = "/api/v1/predictions/" + "0" * 32 + "/feedback", {"ground_truth": [0]}
    expected = {
        ANONYMOUS: 401,
        "admin": 404,
        "predictor": 404,
        "publisher": 403,
        "auditor": 403,
        "metrics": 403,
    }
    assert set(expected) == {ANONYMOUS} | {role.value for role in Role}
    answered = {
        caller: client.post(
            url, json=body, headers={} if caller == ANONYMOUS else api_key(caller)
        ).status_code
        for caller in expected
    }
    assert answered == expected


def test_a_metrics_key_scrapes_metrics_and_does_nothing_else(
    app: Flask, calls: list[str], api_key: Callable[..., dict[str, str]]
) -> None:
    """Issue 14.5: a Prometheus scraper needed an admin key. The `metrics` role is
    in the matrix above with every role; here: what it may do, route by route."""
    client = app.test_client()
    scraper = api_key("metrics")
    allowed = set()
    for rule, method, url in _requests(app):
        if declared_permission(app, rule.endpoint) == PUBLIC:
            continue
        calls.clear()
        response = client.open(url, method=method, headers=scraper)
        if _is_door(app.view_functions[rule.endpoint]):
            assert _door_outcome(response) == "forbidden", url
        elif _outcome(response, calls, rule.endpoint) == "allowed":
            allowed.add(f"{method} {rule.rule}")
    assert allowed == {"GET /metrics"}


def test_a_metrics_key_is_created_like_any_other(
    app: Flask, api_key: Callable[..., dict[str, str]]
) -> None:
    client = app.test_client()
    created = client.post(
        "/api/v1/keys", json={"name": "prometheus", "role": "metrics"}, headers=api_key("admin")
    )
    assert created.status_code == 201, created.json
    scraper = {"Authorization": f"Bearer {created.json['secret']}"}
    assert client.get("/metrics", headers=scraper).status_code == 200
    assert client.get("/api/v1/models", headers=scraper).status_code == 403
