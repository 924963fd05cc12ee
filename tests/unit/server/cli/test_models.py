"""`cofre models`: publish, list, show, alias, rollback, history, with --json."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import pytest
from click.testing import CliRunner

from server.cli import cli
from tests.support.models import iris_classifier, iris_classifier_v2, unnamed_regressor

CARD = ["--purpose", "score flowers", "--legal-basis", "legitimate interest"]


def _file(tmp_path: Path, name: str, data: bytes) -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def _ok(runner: CliRunner, *args: str) -> str:
    result = runner.invoke(cli, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_publish_list_show(runner: CliRunner, tmp_path: Path) -> None:
    v1 = _file(tmp_path, "v1.skops", iris_classifier())
    v2 = _file(tmp_path, "v2.skops", iris_classifier_v2())
    out = _ok(runner, "models", "publish", v1, "--name", "iris", *CARD, "--alias", "production")
    assert out.startswith("published iris version 1 sha256=")
    published = json.loads(
        _ok(runner, "models", "publish", v2, "--name", "iris", *CARD, "--owner", "ds", "--json")
    )
    assert published["version"] == 2 and published["card"]["owner"] == "ds"
    listed = json.loads(_ok(runner, "models", "list", "--json"))
    assert [(m["name"], m["latest_version"], m["aliases"]) for m in listed] == [
        ("iris", 2, {"production": 1})
    ]
    assert "iris" in _ok(runner, "models", "list")
    whole = json.loads(_ok(runner, "models", "show", "iris", "--json"))
    assert [v["version"] for v in whole["versions"]] == [1, 2]
    by_alias = json.loads(_ok(runner, "models", "show", "iris@production", "--json"))
    assert by_alias["version"] == 1 and by_alias["aliases"] == ["production"]
    by_number = json.loads(_ok(runner, "models", "show", "iris:2", "--json"))
    assert by_number["version"] == 2
    text = _ok(runner, "models", "show", "iris:1")
    assert "purpose: score flowers" in text and "sepal length (cm)" in text


def test_publish_with_declared_features(runner: CliRunner, tmp_path: Path) -> None:
    artifact = _file(tmp_path, "r.skops", unnamed_regressor())
    features = [{"name": n, "dtype": "float64"} for n in ("a", "b", "c")]
    declared = _file(tmp_path, "features.json", json.dumps(features).encode())
    out = _ok(
        runner,
        "models",
        "publish",
        artifact,
        "--name",
        "r",
        *CARD,
        "--features",
        declared,
        "--json",
    )
    assert json.loads(out)["features"] == features


def test_publish_keeps_the_training_datas_digest_and_the_source_commit(
    runner: CliRunner, tmp_path: Path
) -> None:
    import hashlib

    artifact = _file(tmp_path, "v.skops", iris_classifier())
    training = _file(tmp_path, "train.csv", b"a,b\n1,2\n" * 1000)
    made = ["--training-data", training, "--source-commit", "9FCEB02"]
    out = _ok(runner, "models", "publish", artifact, "--name", "iris", *CARD, *made, "--json")
    origin = json.loads(out)["origin"]
    assert origin["source"] == "file" and origin["reference"] == "v.skops"
    assert origin["training_data_sha256"] == hashlib.sha256(Path(training).read_bytes()).hexdigest()
    assert origin["source_commit"] == "9fceb02"
    shown = _ok(runner, "models", "show", "iris:1")
    assert "trained by source commit 9fceb02" in shown and origin["training_data_sha256"] in shown
    refused = runner.invoke(
        cli, ["models", "publish", artifact, "--name", "iris", *CARD, "--source-commit", "main"]
    )
    assert refused.exit_code == 2 and "7 to 64 hex digits" in refused.output
    plain = _ok(runner, "models", "publish", artifact, "--name", "bare", *CARD, "--json")
    assert json.loads(plain)["origin"] is None


def test_alias_rollback_and_history(runner: CliRunner, tmp_path: Path) -> None:
    artifact = _file(tmp_path, "v.skops", iris_classifier())
    for _ in range(3):
        _ok(runner, "models", "publish", artifact, "--name", "iris", *CARD, "--allow-duplicate")
    for version in ("1", "2", "3"):
        assert _ok(runner, "models", "alias", "iris", version, "production").strip() == (
            f"iris@production -> version {version}"
        )
    assert "rolled back to version 2" in _ok(runner, "models", "rollback", "iris", "production")
    assert "rolled back to version 1" in _ok(runner, "models", "rollback", "iris", "production")
    exhausted = runner.invoke(cli, ["models", "rollback", "iris", "production"])
    assert exhausted.exit_code == 1
    assert exhausted.output.splitlines() == [
        "Error: alias 'production' of 'iris' has no earlier target to roll back to"
    ]
    history = json.loads(_ok(runner, "models", "history", "iris", "--json"))
    assert [h["to_version"] for h in history] == [1, 2, 3, 2, 1]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--purpose", "", "--legal-basis", "x"], "the model card is incomplete"),
        (["--legal-basis", "x"], "Missing option '--purpose'"),
    ],
)
def test_the_card_is_required(
    runner: CliRunner, tmp_path: Path, args: list[str], message: str
) -> None:
    artifact = _file(tmp_path, "v.skops", iris_classifier())
    result = runner.invoke(cli, ["models", "publish", artifact, "--name", "iris", *args])
    assert result.exit_code != 0
    assert message in result.output


def test_a_malicious_pickle_is_refused_in_one_line(runner: CliRunner, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return (os.system, (f"touch {marker}",))

    artifact = _file(tmp_path, "model.pkl", pickle.dumps(Exploit()))
    result = runner.invoke(cli, ["models", "publish", artifact, "--name", "iris", *CARD])
    assert result.exit_code == 1
    assert len(result.output.strip().splitlines()) == 1
    assert "pickle" in result.output and "skops" in result.output
    assert not marker.exists()


def test_unknown_models_are_one_line_errors(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["models", "show", "nope@production"])
    assert result.exit_code == 1
    assert result.output == "Error: no model named 'nope'\n"


@pytest.mark.parametrize(
    ("database_url", "message"),
    [
        ("postgresql+psycopg://cofre:pw-7f3a@127.0.0.1:1/cofre", "Error: database: connection"),
        (None, "Error: database: no such table: models; run `cofre init`"),
    ],
)
def test_database_problems_are_one_line(
    tmp_path: Path, database_url: str | None, message: str
) -> None:
    env = {"COFRE_HOME": str(tmp_path)}
    if database_url:
        env["COFRE_DATABASE_URL"] = database_url
    result = CliRunner(env=env).invoke(cli, ["models", "list"])
    assert result.exit_code == 1
    assert len(result.output.splitlines()) == 1
    assert result.output.startswith(message)
    assert "pw-7f3a" not in result.output


def test_republishing_the_same_file_is_refused_unless_allowed(
    runner: CliRunner, tmp_path: Path
) -> None:
    """Issue 14.19."""
    v1 = _file(tmp_path, "v1.skops", iris_classifier())
    _ok(runner, "models", "publish", v1, "--name", "iris", *CARD)
    again = runner.invoke(cli, ["models", "publish", v1, "--name", "iris", *CARD])
    assert again.exit_code == 1 and "version 1" in again.output
    assert "Traceback" not in again.output and len(again.output.strip().splitlines()) == 1
    out = _ok(runner, "models", "publish", v1, "--name", "iris", *CARD, "--allow-duplicate")
    assert out.startswith("published iris version 2")
