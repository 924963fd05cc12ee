"""RFC 9457 problem details at the edge: no stack trace, no echoed input, no secret
in any error body or log line."""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient

from governance.accounts.actor import SYSTEM
from server.container import Container
from server.security.access import public
from tests.support.publishing import publish

ECHO = "ECHO-7f3a9c"  # a value no error body may repeat
PROBLEM_FIELDS = {"type", "title", "status", "detail"}


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """Every log record, the `cofre` logger's included (it does not propagate)."""
    cofre_logger = logging.getLogger("cofre")
    cofre_logger.addHandler(caplog.handler)
    caplog.set_level(logging.DEBUG)
    cofre_logger.setLevel(logging.DEBUG)
    yield caplog
    cofre_logger.removeHandler(caplog.handler)


def _assert_problem(response: object, status: int) -> dict[str, object]:
    assert response.status_code == status  # type: ignore[attr-defined]
    assert response.mimetype == "application/problem+json"  # type: ignore[attr-defined]
    body: dict[str, object] = response.json  # type: ignore[attr-defined]
    assert set(body) >= PROBLEM_FIELDS
    assert body["status"] == status
    assert str(body["type"]).startswith("urn:cofre:problem:")
    text = response.get_data(as_text=True)  # type: ignore[attr-defined]
    assert "Traceback" not in text and 'File "' not in text
    assert ECHO not in text
    return body


def test_unknown_url_and_wrong_method(client: FlaskClient) -> None:
    _assert_problem(client.get(f"/no/such/{ECHO}"), 404)
    wrong = client.delete("/healthz")
    _assert_problem(wrong, 405)
    assert "GET" in wrong.headers["Allow"]


def test_malformed_and_wrong_bodies(
    client: FlaskClient, api_key: Callable[..., dict[str, str]]
) -> None:
    admin = api_key("admin") | {"Content-Type": "application/json"}
    _assert_problem(client.post("/api/v1/users", data="{" + ECHO, headers=admin), 400)
    _assert_problem(client.post("/api/v1/users", data=f'["{ECHO}"]', headers=admin), 400)
    text = api_key("admin") | {"Content-Type": "text/plain"}
    _assert_problem(client.post("/api/v1/users", data=ECHO, headers=text), 415)
    body = _assert_problem(
        client.post(
            "/api/v1/users",
            json={"username": "someone", "role": ECHO, "password": ECHO + " long enough"},
            headers=admin,
        ),
        422,
    )
    assert body["errors"] == [{"field": "role", "message": body["errors"][0]["message"]}]  # type: ignore[index]
    short = _assert_problem(
        client.post(
            "/api/v1/users",
            json={"username": "u", "role": "admin", "password": ECHO},
            headers=admin,
        ),
        422,
    )
    assert short["errors"][0]["field"] == "password"  # type: ignore[index]


def test_publish_errors_do_not_echo_the_file(
    client: FlaskClient, api_key: Callable[..., dict[str, str]]
) -> None:
    response = client.post(
        "/api/v1/models/iris/versions",
        data={
            "file": (io.BytesIO(ECHO.encode() * 10), "m.skops"),
            "purpose": "p",
            "legal_basis": "l",
            "features": "[" + ECHO,
        },
        headers=api_key("publisher"),
        content_type="multipart/form-data",
    )
    _assert_problem(response, 422)


def test_unexpected_errors_are_generic_and_logged_redacted(
    app: Flask, api_key: Callable[..., dict[str, str]], logs: pytest.LogCaptureFixture
) -> None:
    headers = api_key("admin")
    secret = headers["Authorization"].removeprefix("Bearer ")

    @public
    def explode() -> str:
        raise RuntimeError(f"internal state {ECHO} with {secret} and password=hunter2")

    app.add_url_rule("/explode", "explode", explode)
    response = app.test_client().get("/explode", headers=headers)
    body = _assert_problem(response, 500)
    assert body["request_id"] == response.headers["X-Request-ID"]
    assert "hunter2" not in response.get_data(as_text=True)
    assert secret not in response.get_data(as_text=True)
    assert "unhandled error" in logs.text
    assert "RuntimeError" in logs.text  # the trace is logged, for the operator
    assert secret not in logs.text and "hunter2" not in logs.text
    assert secret.split("_")[-1] not in logs.text


def test_no_api_key_in_any_body_or_log(
    client: FlaskClient,
    cofre: Container,
    api_key: Callable[..., dict[str, str]],
    logs: pytest.LogCaptureFixture,
) -> None:
    good = api_key("publisher")
    secret = good["Authorization"].removeprefix("Bearer ")
    prefix = secret.split("_")[1]
    wrong_secret = f"cofre_{prefix}_" + "B" * 43
    bodies = [
        client.get("/api/v1/models", headers=good),
        client.get("/api/v1/models/none", headers=good),
        client.get("/api/v1/models", headers={"Authorization": f"Bearer {wrong_secret}"}),
        client.get("/api/v1/users", headers=good),
        client.get("/api/v1/models", headers={"Authorization": f"Token {secret}"}),
    ]
    with cofre.write() as session:
        cofre.accounts.revoke_key(session, SYSTEM, prefix)
    bodies.append(client.get("/api/v1/models", headers=good))
    assert [r.status_code for r in bodies] == [200, 404, 401, 403, 401, 401]
    for response in bodies[1:]:
        _assert_problem(response, response.status_code)
    for text in [r.get_data(as_text=True) for r in bodies] + [logs.text]:
        assert secret not in text and secret.split("_")[-1] not in text
        assert wrong_secret not in text


def test_a_5xx_domain_error_is_logged_without_secrets(
    client: FlaskClient,
    cofre: Container,
    api_key: Callable[..., dict[str, str]],
    logs: pytest.LogCaptureFixture,
) -> None:
    headers = api_key("admin")
    secret = headers["Authorization"].removeprefix("Bearer ")
    publish(cofre, "iris")
    for path in cofre.settings.key_dir.glob("kek-*.key"):
        path.unlink()
    cofre.keyring._keks.clear()  # as a restarted worker would be
    response = client.post("/api/v1/keys/rotate-master", headers=headers)
    body = _assert_problem(response, 503)
    assert "is missing" in str(body["detail"])
    assert "request failed: KeyUnavailable" in logs.text
    assert secret not in logs.text


def test_redaction_of_log_lines() -> None:
    from server.logging import redact

    line = redact(
        "auth Bearer abc.def key cofre_0123abcd_" + "x" * 43 + " password=hunter2 "
        "postgresql+psycopg://cofre:pw@db/x"
    )
    assert "abc.def" not in line and "x" * 43 not in line and "hunter2" not in line
    assert ":pw@" not in line and "cofre_0123abcd_***" in line
