"""`cofre keys create --rate --rows-per-day --precision`, `cofre keys limit`, and the
limits `cofre keys list` shows; the defaults from config."""

from __future__ import annotations

import json
from typing import Any

import pytest
from click.testing import CliRunner

from server.cli import cli


@pytest.fixture
def overrides(overrides: dict[str, Any]) -> dict[str, Any]:
    return overrides | {"key_rate": "10/s", "key_precision": 4}


def _ok(runner: CliRunner, *args: str) -> str:
    result = runner.invoke(cli, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_keys_are_created_with_their_limits_or_the_defaults(runner: CliRunner) -> None:
    created = json.loads(
        _ok(
            runner,
            *("keys", "create", "--name", "partner", "--role", "predictor", "--json"),
            *("--rate", "50/s", "--rows-per-day", "100000", "--precision", "3"),
        )
    )
    _ok(runner, "keys", "create", "--name", "plain", "--role", "predictor")
    _ok(runner, *("keys", "create", "--name", "free", "--role", "predictor", "--rate", "none"))
    listed = {k["name"]: k for k in json.loads(_ok(runner, "keys", "list", "--json"))}
    assert (listed["partner"]["rate"], listed["partner"]["rows_per_day"]) == (50, 100_000)
    assert listed["partner"]["precision"] == 3 and listed["partner"]["id"] == created["id"]
    assert (listed["plain"]["rate"], listed["plain"]["precision"]) == (10, 4)
    assert listed["free"]["rate"] is None and listed["free"]["precision"] == 4
    text = _ok(runner, "keys", "list")
    assert "50/s, 100000 rows/day, 3 decimals" in text
    assert "unlimited, any rows, 4 decimals" in text


def test_keys_limit_changes_lifts_and_refuses_nonsense(runner: CliRunner) -> None:
    created = json.loads(
        _ok(runner, "keys", "create", "--name", "svc", "--role", "predictor", "--json")
    )
    prefix = created["prefix"]
    out = _ok(runner, "keys", "limit", prefix, "--rows-per-day", "500", "--precision", "full")
    assert out.strip() == f"key {created['id']} ({prefix}): 10/s, 500 rows/day, full precision"
    assert "unlimited, 500 rows/day" in _ok(runner, "keys", "limit", prefix, "--rate", "none")
    nothing = runner.invoke(cli, ["keys", "limit", prefix])
    assert nothing.exit_code == 2 and "give --rate" in nothing.output
    bad = runner.invoke(cli, ["keys", "limit", prefix, "--rate", "fast"])
    assert bad.exit_code == 2 and "rate must be a whole number" in bad.output
    too_fine = runner.invoke(cli, ["keys", "limit", prefix, "--precision", "16"])
    assert too_fine.exit_code == 2 and "0 to 15" in too_fine.output
    unknown = runner.invoke(cli, ["keys", "limit", "ffffffff", "--rate", "5"])
    assert unknown.exit_code == 1 and "no API key" in unknown.output
