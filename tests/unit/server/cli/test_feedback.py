"""`cofre feedback import`: a good file is recorded whole; a bad one not at all, each bad
line named; the refusal is audited."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from click.testing import CliRunner
from sqlalchemy import func, select

from governance.audit.records import AuditRecord
from governance.clock import utcnow
from governance.monitoring.feedback import RECORDED
from governance.monitoring.records import FeedbackLabel
from server.cli import cli
from server.container import Container
from tests.support.models import cancer_pipeline
from tests.support.publishing import publish
from tests.support.scoring import score


def _file(tmp_path: Path, text: str) -> str:
    path = tmp_path / "labels.csv"
    path.write_text(text)
    return str(path)


def _stored(cofre: Container) -> int:
    with cofre.read() as session:
        return int(session.scalar(select(func.count()).select_from(FeedbackLabel)) or 0)


def _events(cofre: Container) -> list[AuditRecord]:
    with cofre.read() as session:
        stmt = select(AuditRecord).where(AuditRecord.kind == RECORDED).order_by(AuditRecord.seq)
        return list(session.scalars(stmt))


def test_a_good_file_is_recorded_with_corrections_and_groups(
    runner: CliRunner, cofre: Container, tmp_path: Path
) -> None:
    publish(cofre, "iris", aliases=["production"])
    first, second = score(cofre, ["ana", None]), score(cofre, [None])
    text = f"request_id,row,ground_truth,group\n{first},0,0,f\n{first},1,2,\n{second},0,1,m\n"
    done = runner.invoke(cli, ["feedback", "import", "iris", _file(tmp_path, text)])
    assert done.exit_code == 0, done.output
    assert "recorded 3 labels of 2 predictions of iris (0 corrections)" in done.output
    correction = f"request_id,row,ground_truth\n{first},1,1\n"
    again = runner.invoke(
        cli, ["feedback", "import", "iris", _file(tmp_path, correction), "--json"]
    )
    assert again.exit_code == 0, again.output
    [recorded] = json.loads(again.output)
    assert recorded["request_id"] == first and recorded["corrections"] == [1]
    now = utcnow()
    with cofre.read() as session:
        labels = cofre.feedback.labels(
            session, "iris", 1, now - timedelta(hours=1), now + timedelta(hours=1)
        )
    assert {ref: (label.ground_truth, label.group) for ref, label in labels.items()} == {
        (first, 0): (0, "f"),
        (first, 1): (1, None),
        (second, 0): (1, "m"),
    }
    events = _events(cofre)
    assert [len((e.details or {})["rows"]) for e in events] == [2, 1, 1]
    assert {e.endpoint for e in events} == {"cli"} and events[0].request_id == events[1].request_id


def test_a_bad_line_records_nothing_and_every_bad_line_is_named(
    runner: CliRunner, cofre: Container, tmp_path: Path
) -> None:
    publish(cofre, "iris", aliases=["production"])
    publish(cofre, "breast-cancer", cancer_pipeline(), aliases=["production"])
    good = score(cofre, [None, None])
    cancer = score(cofre, [None], name="breast-cancer", rows=[_cancer_row()])
    text = (
        "request_id,row,ground_truth\n"
        f"{good},0,0\n"  # line 2: good
        f"{good},5,0\n"  # line 3: row out of range
        f"{good},1,virginica\n"  # line 4: not a class
        f"{cancer},0,1\n"  # line 5: another model's prediction
        f"{'0' * 32},0,1\n"  # line 6: unknown request
        f"{good},x,1\n"  # line 7: not a row index
        f"{good},0,1\n"  # line 8: row 0 twice in the file
    )
    refused = runner.invoke(cli, ["feedback", "import", "iris", _file(tmp_path, text)])
    assert refused.exit_code == 1
    lines = refused.stderr.strip().splitlines()
    assert [line.split(":")[0] for line in lines[:-1]] == [
        "line 3",
        "line 4",
        "line 5",
        "line 6",
        "line 7",
        "line 8",
    ]
    assert "row 5 is out of range" in lines[0] and "not one of the classes" in lines[1]
    assert "no served prediction of iris" in lines[2] and "twice" in lines[5]
    assert lines[-1].startswith("Error: line 3:") and "nothing was recorded" in lines[-1]
    assert _stored(cofre) == 0
    [event] = _events(cofre)
    assert (event.outcome, event.model_name, event.endpoint) == ("rejected", "iris", "cli")
    assert (event.details or {})["labels"] == 7 and "virginica" not in json.dumps(event.details)


def test_a_bad_header_or_an_empty_file_is_refused(
    runner: CliRunner, cofre: Container, tmp_path: Path
) -> None:
    publish(cofre, "iris", aliases=["production"])
    for text, reason in (
        ("request_id,ground_truth\nabc,1\n", "missing column row"),
        ("request_id,row,ground_truth,label\n", "unknown column 'label'"),
        ("request_id,row,ground_truth\nabc,0,1,extra\n", "line 2: more cells"),
        ("request_id,row,ground_truth\n", "the file holds no labels"),
    ):
        refused = runner.invoke(cli, ["feedback", "import", "iris", _file(tmp_path, text)])
        assert refused.exit_code == 1 and reason in refused.output, refused.output
    latin = tmp_path / "latin.csv"
    latin.write_bytes("request_id,row,ground_truth,group\nabc,0,1,S\xe3o Paulo\n".encode("latin-1"))
    refused = runner.invoke(cli, ["feedback", "import", "iris", str(latin)])
    assert refused.exit_code == 1 and "is not UTF-8 text" in refused.output
    assert refused.exception is None or isinstance(refused.exception, SystemExit)
    assert _stored(cofre) == 0


def _cancer_row() -> dict[str, float]:
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer()
    return {str(n): float(v) for n, v in zip(data.feature_names, data.data[0], strict=True)}
