"""`cofre models publish --note/--requirements`, `show`, `diff` and `verify`: what each
version records, its changelog, and the load refusal of a version trained under
another scikit-learn minor version until it is verified under the running one."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import sklearn
from click.testing import CliRunner
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from governance.audit.records import AuditRecord
from governance.registry.records import ModelVersion, VersionFacts
from server.cli import cli
from server.container import Container
from tests.support.models import iris_classifier, iris_classifier_v2
from tests.support.readiness import readyz

CARD = ["--purpose", "score flowers", "--legal-basis", "legitimate interest"]
RUNNING_MINOR = ".".join(sklearn.__version__.split(".")[:2])


def _file(tmp_path: Path, name: str, data: bytes) -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def _ok(runner: CliRunner, *args: str) -> str:
    result = runner.invoke(cli, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def _publish_two(runner: CliRunner, tmp_path: Path) -> dict[str, object]:
    v1 = _file(tmp_path, "v1.skops", iris_classifier())
    v2 = _file(tmp_path, "v2.skops", iris_classifier_v2())
    data2 = _file(tmp_path, "train2.csv", b"a,b\n1,2\n3,4\n")
    frozen = _file(tmp_path, "req.txt", b"# pip freeze\nnumpy==2.1.0\nScikit_Learn==0.1\n-e .\n")
    _ok(runner, "models", "publish", v1, "--name", "iris", *CARD, "--alias", "production")
    _ok(runner, "models", "publish", v1, "--name", "iris", *CARD, "--allow-duplicate")
    made = ["--training-data", data2, "--requirements", frozen, "--note", "stronger C"]
    out = _ok(runner, "models", "publish", v2, "--name", "iris", *CARD, *made, "--json")
    published: dict[str, object] = json.loads(out)
    return published


def test_a_version_records_its_parameters_libraries_note_and_changelog(
    runner: CliRunner, tmp_path: Path
) -> None:
    published = _publish_two(runner, tmp_path)
    params = published["params"]
    assert isinstance(params, dict) and params["C"] == 0.1 and params["max_iter"] == 500
    # The skops file's own scikit-learn wins over the requirements file's.
    libraries = published["libraries"]
    assert isinstance(libraries, dict) and set(libraries) == {"numpy", "scikit-learn", "skops"}
    assert (libraries["numpy"], libraries["scikit-learn"]) == ("2.1.0", sklearn.__version__)
    assert published["note"] == "stronger C"
    changelog = published["changelog"]
    assert isinstance(changelog, dict)
    # Against production's target (version 1), not the latest (version 2).
    assert (changelog["from_version"], changelog["to_version"]) == (1, 3)
    assert changelog["params_changed"] == [{"name": "C", "from": 1.0, "to": 0.1}]
    assert changelog["features_added"] == [] and changelog["features_removed"] == []
    assert changelog["training_data_changed"] is None  # version 1 has no digest
    shown = _ok(runner, "models", "show", "iris:3")
    assert "parameter C: 1.0 -> 0.1" in shown and "note: stronger C" in shown
    assert f"scikit-learn {sklearn.__version__}" in shown and "numpy 2.1.0" in shown
    assert "changes: first version" in _ok(runner, "models", "show", "iris:1")


def test_diff_compares_any_two_versions(runner: CliRunner, tmp_path: Path) -> None:
    _publish_two(runner, tmp_path)
    data = _file(tmp_path, "train3.csv", b"a,b\n5,6\n")
    v1 = _file(tmp_path, "v1.skops", iris_classifier())
    again = ["--training-data", data, "--allow-duplicate"]
    _ok(runner, "models", "publish", v1, "--name", "iris", *CARD, *again)
    diff = json.loads(_ok(runner, "models", "diff", "iris", "3", "4", "--json"))
    assert diff["params_changed"] == [{"name": "C", "from": 0.1, "to": 1.0}]
    assert diff["training_data_changed"] is True and diff["note"] == ""
    same = json.loads(_ok(runner, "models", "diff", "iris", "1", "2", "--json"))
    assert same["params_changed"] == [] and same["note"] == ""
    text = _ok(runner, "models", "diff", "iris", "1", "3")
    assert text.splitlines()[0] == "changes from version 1 to 3:"
    assert "  parameter C: 1.0 -> 0.1" in text and "  note: stronger C" in text
    assert "  features: unchanged" in text
    missing = runner.invoke(cli, ["models", "diff", "iris", "1", "9"])
    assert missing.exit_code == 1
    assert missing.output.splitlines() == ["Error: model 'iris' has no version 9"]


def test_an_unpinned_requirement_is_refused_in_one_line(runner: CliRunner, tmp_path: Path) -> None:
    v1 = _file(tmp_path, "v1.skops", iris_classifier())
    loose = _file(tmp_path, "req.txt", b"numpy==2.1.0\npandas>=2\n")
    result = runner.invoke(
        cli, ["models", "publish", v1, "--name", "iris", *CARD, "--requirements", loose]
    )
    assert result.exit_code == 1
    assert result.output.splitlines() == [
        "Error: requirements line 2 is not NAME==VERSION: 'pandas>=2'"
    ]


def test_a_note_too_long_is_refused(runner: CliRunner, tmp_path: Path) -> None:
    v1 = _file(tmp_path, "v1.skops", iris_classifier())
    result = runner.invoke(
        cli, ["models", "publish", v1, "--name", "iris", *CARD, "--note", "x" * 4001]
    )
    assert result.exit_code == 1 and result.output.splitlines() == ["Error: the note is too long"]
    listed = json.loads(_ok(runner, "models", "list", "--json"))
    assert listed == []  # nothing was published


def _trained_elsewhere(cofre: Container, version: int = 1) -> None:
    """As if the version had been trained under another scikit-learn minor version."""
    with cofre.write() as session:
        record = session.scalars(select(ModelVersion).where(ModelVersion.version == version)).one()
        record.sklearn_version = "0.24.2"


def test_a_version_of_another_sklearn_minor_is_refused_until_verified(
    runner: CliRunner,
    tmp_path: Path,
    cofre: Container,
    client: FlaskClient,
    api_key: Callable[..., dict[str, str]],
) -> None:
    v1 = _file(tmp_path, "v1.skops", iris_classifier())
    _ok(runner, "models", "publish", v1, "--name", "iris", *CARD, "--alias", "production")
    _trained_elsewhere(cofre)
    headers = api_key("predictor")
    body = {"instances": [{"sepal length (cm)": 5.1, "sepal width (cm)": 3.5,
                           "petal length (cm)": 1.4, "petal width (cm)": 0.2}]}  # fmt: skip
    refused = client.post("/api/v1/models/iris/predict", json=body, headers=headers)
    assert refused.status_code == 409
    problem = refused.get_json()
    assert problem["type"] == "urn:cofre:problem:unverified-version"
    assert "trained with scikit-learn 0.24.2" in problem["detail"]
    assert "cofre models verify iris:1" in problem["detail"]
    assert "\n" not in problem["detail"]
    ready = readyz(client, cofre)
    assert ready.status_code == 503  # production's target cannot load here
    listed = ready.get_json()["checks"]["sklearn_versions"]
    assert listed["ok"] is False and "iris:1 (trained with 0.24.2)" in listed["detail"]
    assert "REFUSED AT LOAD" in _ok(runner, "models", "show", "iris:1")
    before = json.loads(_ok(runner, "models", "show", "iris:1", "--json"))
    assert before["load_refusal"] == problem["detail"] and before["verifications"] == []

    out = _ok(runner, "models", "verify", "iris:1")
    assert out.startswith(f"iris version 1 verified under scikit-learn {sklearn.__version__}")
    assert "trained with 0.24.2" in out
    served = client.post("/api/v1/models/iris/predict", json=body, headers=headers)
    assert served.status_code == 200, served.get_json()
    ready = readyz(client, cofre).get_json()
    assert ready["status"] == "ready" and ready["checks"]["sklearn_versions"]["ok"] is True
    shown = json.loads(_ok(runner, "models", "show", "iris:1", "--json"))
    assert shown["load_refusal"] is None
    assert [v["sklearn_version"] for v in shown["verifications"]] == [sklearn.__version__]
    with cofre.read() as session:
        kinds = session.scalars(
            select(AuditRecord.kind).where(AuditRecord.kind == "model.verified")
        ).all()
    assert kinds == ["model.verified"]
    _ok(runner, "audit", "verify")  # the new events' details hash like any other


def _facts_of(session: Session) -> VersionFacts:
    facts = session.scalars(select(ModelVersion)).one().facts
    assert facts is not None
    return facts


def test_verify_compares_outputs_with_the_answers_at_publish(
    runner: CliRunner, tmp_path: Path, cofre: Container
) -> None:
    v1 = _file(tmp_path, "v1.skops", iris_classifier())
    _ok(runner, "models", "publish", v1, "--name", "iris", *CARD, "--runtime", "sklearn")
    _trained_elsewhere(cofre)
    checked = json.loads(_ok(runner, "models", "verify", "iris:1", "--json"))
    comparison = checked["comparison"]
    assert checked["passed"] is True and checked["trained_with"] == "0.24.2"
    assert comparison["against"] == "sample" and comparison["rows"] == 100
    assert comparison["label_mismatches"] == 0 and comparison["max_proba_diff"] <= 1e-5
    with cofre.write() as session:  # as if this scikit-learn answered one row otherwise
        facts = _facts_of(session)
        sample = dict(facts.sample or {})
        first = sample["outputs"][0]
        sample["outputs"] = [(first + 1) % 3, *sample["outputs"][1:]]
        sample["proba"] = None
        facts.sample = sample
    failed = runner.invoke(cli, ["models", "verify", "iris:1"])
    assert failed.exit_code == 1
    assert failed.output.rstrip().endswith("1 of 100 labels differ from those at publish")


def test_without_a_sample_verify_compares_with_the_proven_onnx_model(
    runner: CliRunner, tmp_path: Path, cofre: Container
) -> None:
    v1 = _file(tmp_path, "v1.skops", iris_classifier())
    published = json.loads(
        _ok(runner, "models", "publish", v1, "--name", "iris", *CARD, "--runtime", "onnx", "--json")
    )
    assert published["runtime"] == "onnx"
    _trained_elsewhere(cofre)
    with cofre.write() as session:  # as if published before samples were kept
        _facts_of(session).sample = None
    checked = json.loads(_ok(runner, "models", "verify", "iris:1", "--json"))
    assert checked["passed"] is True and checked["comparison"]["against"] == "onnx"
    assert checked["comparison"]["label_mismatches"] == 0 and checked["comparison"]["rows"] > 0
    out = _ok(runner, "models", "verify", "iris:1")
    assert "outputs equal to its proven ONNX model's on" in out


def test_a_failed_verification_is_audited_and_lets_nothing_load(
    runner: CliRunner, tmp_path: Path, cofre: Container
) -> None:
    v1 = _file(tmp_path, "v1.skops", iris_classifier())
    _ok(runner, "models", "publish", v1, "--name", "iris", *CARD)
    _trained_elsewhere(cofre)
    with cofre.write() as session:  # as if the estimator now answered other classes
        session.scalars(select(ModelVersion)).one().classes = [0, 1]
    result = runner.invoke(cli, ["models", "verify", "iris:1"])
    assert result.exit_code == 1
    assert result.output.splitlines() == [
        f"Error: iris version 1 failed verification under scikit-learn {sklearn.__version__}: "
        "its classes are now [0, 1, 2], recorded [0, 1]"
    ]
    with cofre.read() as session:
        record = session.scalars(select(ModelVersion)).one()
        assert record.verifications == []
        kinds = session.scalars(
            select(AuditRecord.kind).where(AuditRecord.kind.like("model.verif%"))
        ).all()
    assert kinds == ["model.verification_failed"]


def test_verify_refuses_a_bad_reference_in_one_line(runner: CliRunner) -> None:
    for ref, message in (("iris", "give NAME:VERSION"), ("iris:1", "no model named 'iris'")):
        result = runner.invoke(cli, ["models", "verify", ref])
        assert result.exit_code in (1, 2) and message in result.output
        assert "Traceback" not in result.output
