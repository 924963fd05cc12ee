"""`cofre models deprecate|retire|lifecycle` and what `models show` says of a version on
its way out: the sunset, the callers, the retirement, the shredding (fake clock)."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from click.testing import CliRunner

from governance.clock import utcnow
from server.cli import cli
from server.container import Container
from tests.support import clock
from tests.support.models import iris_classifier_v2
from tests.support.publishing import publish
from tests.support.scoring import score


def _run(runner: CliRunner, *args: str) -> tuple[int, str]:
    result = runner.invoke(cli, list(args))
    return result.exit_code, result.output


def test_deprecate_retire_and_show_until_the_artifact_is_shredded(
    runner: CliRunner, cofre: Container, monkeypatch: pytest.MonkeyPatch
) -> None:
    publish(cofre, aliases=["production"])
    publish(cofre, artifact=iris_classifier_v2())
    fake = clock.install(monkeypatch, utcnow() + timedelta(seconds=1))  # after the publishes
    past = (utcnow() - timedelta(days=1)).date().isoformat()
    code, out = _run(runner, "models", "deprecate", "iris:2", "--sunset", past, "--reason", "x")
    assert code != 0 and "must be in the future" in out
    code, out = _run(runner, "models", "deprecate", "iris:2", "--sunset", "soon", "--reason", "x")
    assert code != 0 and "not a date" in out
    sunset = (utcnow() + timedelta(days=30)).date().isoformat()
    code, out = _run(
        runner, "models", "deprecate", "iris:2", "--sunset", sunset, "--reason", "drifted"
    )
    assert code == 0 and "iris:2 deprecated; it answers until" in out, out
    fake.advance(seconds=1)
    score(cofre, ["a"], version=2)
    code, out = _run(runner, "models", "show", "iris:2")
    assert f"sunset {sunset}T00:00:00+00:00: drifted" in out, out
    assert "successor: version 1" in out and "caller system: 1 requests" in out
    code, out = _run(runner, "models", "alias", "iris", "2", "staging")
    assert code != 0 and "deprecated; alias 'staging' cannot move onto it" in out
    code, out = _run(runner, "models", "retire", "iris:1")
    assert code != 0 and "target of production" in out
    code, out = _run(runner, "models", "retire", "iris:2")
    assert code == 0 and "iris:2 retired; artifact kept until" in out, out
    code, out = _run(runner, "models", "show", "iris:2")
    assert "retired on" in out and "artifact kept (encrypted) until" in out
    fake.advance(days=366)
    code, out = _run(runner, "subjects", "retention")
    assert code == 0 and "iris:2: retired, its artifact key shredded" in out, out
    code, out = _run(runner, "models", "show", "iris:2")
    assert "artifact shredded on" in out, out
    code, out = _run(runner, "models", "show", "iris")
    assert "v2  shredded  by " in out.splitlines()[-1], out
    steps = json.loads(_run(runner, "models", "lifecycle", "iris", "--json")[1])["history"]
    assert [s["action"] for s in steps if s["version"] == 2] == [
        "published",
        "deprecated",
        "retired",
        "shredded",
    ]
