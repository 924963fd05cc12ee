"""`cofre users` and `cofre keys`: create, list (--json), set-role, disable, revoke."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner
from flask.testing import FlaskClient

from server.cli import cli


def _ok(runner: CliRunner, *args: str) -> str:
    result = runner.invoke(cli, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_users_create_list_disable(runner: CliRunner, tmp_path: Path) -> None:
    password = tmp_path / "pw"
    password.write_text("a long enough password\n")
    out = _ok(
        runner, "users", "create", "ana", "--role", "auditor", "--password-file", str(password)
    )
    assert out.strip() == "created user 'ana' (auditor)"
    users = json.loads(_ok(runner, "users", "list", "--json"))
    assert [(u["username"], u["role"], u["disabled"]) for u in users] == [
        ("admin", "admin", False),
        ("ana", "auditor", False),
    ]
    assert _ok(runner, "users", "set-role", "ana", "publisher").strip() == (
        "user 'ana' now has role publisher"
    )
    last = runner.invoke(cli, ["users", "set-role", "admin", "auditor"])
    assert last.exit_code == 1
    assert last.output == "Error: the last active admin cannot lose the admin role\n"
    _ok(runner, "users", "disable", "ana")
    assert "ana" in _ok(runner, "users", "list") and "(disabled)" in _ok(runner, "users", "list")
    again = runner.invoke(
        cli, ["users", "create", "ana", "--role", "auditor", "--password-file", str(password)]
    )
    assert again.exit_code == 1 and again.output == "Error: user 'ana' exists already\n"


def test_users_create_prompts_for_the_password(runner: CliRunner) -> None:
    result = runner.invoke(
        cli, ["users", "create", "bo", "--role", "publisher"], input="long password 1\n" * 2
    )
    assert result.exit_code == 0, result.output
    assert "long password 1" not in result.output


def test_keys_create_list_revoke(runner: CliRunner, client: FlaskClient) -> None:
    created = json.loads(
        _ok(
            runner,
            "keys",
            "create",
            "--name",
            "svc",
            "--role",
            "predictor",
            "--model",
            "iris",
            "--json",
        )
    )
    assert set(created) == {"id", "prefix", "secret", "role"}
    assert created["role"] == "predictor"
    secret = created["secret"]
    listed = _ok(runner, "keys", "list", "--json")
    assert secret not in listed
    assert json.loads(listed)[0]["models"] == ["iris"]
    text = _ok(runner, "keys", "create", "--name", "pub", "--role", "publisher")
    assert "secret (shown once): cofre_" in text
    pub_secret = text.rsplit(" ", 1)[1].strip()
    headers = {"Authorization": f"Bearer {pub_secret}"}
    assert client.get("/api/v1/models", headers=headers).status_code == 200
    _ok(runner, "keys", "revoke", pub_secret.split("_")[1])
    assert client.get("/api/v1/models", headers=headers).status_code == 401
    assert "revoked" in _ok(runner, "keys", "list")
    unknown = runner.invoke(cli, ["keys", "revoke", "9999"])
    assert unknown.exit_code == 1 and unknown.output == "Error: no API key '9999'\n"
