"""`cofre backup` and `cofre jobs` from the command line: run, list, verify, restore, and
the restored appliance answering `cofre audit verify` and `/readyz`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from flask import Flask

from governance.accounts.actor import SYSTEM
from governance.registry.service import PublishRequest
from server import create_app
from server.cli import cli
from server.container import Container
from server.extension import EXTENSION
from tests.support.databases import empty_databases
from tests.support.models import CARD, iris_classifier
from tests.support.readiness import readyz


def test_backup_list_verify_restore(
    runner: CliRunner, cofre: Container, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    with cofre.write() as session:
        cofre.registry.publish(
            session, SYSTEM, PublishRequest("iris", iris_classifier(), CARD, aliases=["production"])
        )
    made = runner.invoke(cli, ["backup", "run", "--json"])
    assert made.exit_code == 0, made.output
    backup_id = json.loads(made.output)["id"]
    listed = json.loads(runner.invoke(cli, ["backup", "list", "--json"]).output)
    assert [b["id"] for b in listed] == [backup_id]
    checked = runner.invoke(cli, ["backup", "verify", backup_id])
    assert checked.exit_code == 0 and checked.output.startswith("OK: backup")
    target, extra = tmp_path / "restored", []
    if not cofre.settings.database_url.startswith("sqlite"):
        databases = empty_databases(request.getfixturevalue("postgres_server"))
        extra = ["--database-url", databases.__enter__()()]
        request.addfinalizer(lambda: databases.__exit__(None, None, None))
    restored = runner.invoke(cli, ["backup", "restore", backup_id, "--into", str(target), *extra])
    assert restored.exit_code == 0, restored.output
    assert "1 model versions load" in restored.output
    _restored_appliance_works(target / "cofre.toml")


def _restored_appliance_works(config: Path) -> None:
    restored = CliRunner(env={"COFRE_CONFIG": str(config)})
    verified = restored.invoke(cli, ["audit", "verify"])
    assert verified.exit_code == 0 and "OK: records 1.." in verified.output, verified.output
    app = create_app({"testing": True, "log_json": False} | _toml(config))
    body = readyz(app.test_client(), app.extensions[EXTENSION]).get_json()
    app.extensions[EXTENSION].close()
    assert body["status"] == "ready", body
    assert "1 aliased versions" in body["checks"]["models"]["detail"]


def _toml(config: Path) -> dict[str, str]:
    import tomllib

    return dict(tomllib.loads(config.read_text()))


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_unknown_backup_and_restore_usage_are_one_line_errors(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["backup", "verify", "20260101T000000Z-abcdef"])
    assert result.exit_code == 1 and result.output.startswith("Error: no backup")
    result = runner.invoke(cli, ["backup", "restore", "20260101T000000Z-abcdef"])
    assert result.exit_code == 2 and "--into" in result.output


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_jobs_run_records_and_lists(runner: CliRunner) -> None:
    ran = runner.invoke(cli, ["jobs", "run", "backup"])
    assert ran.exit_code == 0 and ran.output.startswith("job backup ok"), ran.output
    runs = json.loads(runner.invoke(cli, ["jobs", "list", "--json"]).output)
    assert [(r["job"], r["outcome"], r["scheduled_for"]) for r in runs] == [("backup", "ok", None)]
    drill = runner.invoke(cli, ["jobs", "run", "restore-drill"])
    assert drill.exit_code == 0, drill.output
    schedule = json.loads(runner.invoke(cli, ["jobs", "schedule", "--json"]).output)
    assert {row["job"]: row["last_outcome"] for row in schedule} == {
        "backup": "ok",
        "restore-drill": "ok",
        "audit-checkpoint": None,  # scheduled, not run yet
        "retention": None,
        "monitoring": None,
        "alert-retraining": None,
        "storage": None,
        "extraction": None,
    }
    assert runner.invoke(cli, ["jobs", "run", "nonsense"]).exit_code == 1


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_backups_and_drills_from_the_cli_count_as_job_runs(
    runner: CliRunner, app: Flask, cofre: Container
) -> None:
    """Issue 14.15: after three CLI backups /readyz and `jobs schedule` still said
    "no backup has run yet"."""
    failed = runner.invoke(cli, ["backup", "drill"])  # nothing to drill yet
    assert failed.exit_code != 0
    checks = readyz(app.test_client(), cofre).get_json()["checks"]["backups"]
    assert "last drill FAILED" in checks["detail"], checks
    for command in (["backup", "run"], ["backup", "drill"]):
        result = runner.invoke(cli, command)
        assert result.exit_code == 0, result.output
    checks = readyz(app.test_client(), cofre).get_json()["checks"]["backups"]
    assert checks["ok"] is True, checks
    assert "last backup ok" in checks["detail"] and "last drill ok" in checks["detail"]
    table = json.loads(runner.invoke(cli, ["jobs", "schedule", "--json"]).output)
    outcomes = {row["job"]: row["last_outcome"] for row in table}
    assert outcomes["backup"] == "ok" and outcomes["restore-drill"] == "ok"
