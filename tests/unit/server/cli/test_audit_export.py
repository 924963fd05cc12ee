"""`cofre audit export`: a request's or a subject's records, decrypted, and audited."""

from __future__ import annotations

import json

from click.testing import CliRunner
from flask.testing import FlaskClient
from sqlalchemy import func, select

from governance.accounts.actor import SYSTEM
from governance.audit.records import AuditRecord
from governance.registry.service import PublishRequest
from server.cli import cli
from server.container import Container
from tests.support.models import CARD, iris_classifier

ROW = {
    "sepal length (cm)": 6.1,
    "sepal width (cm)": 2.8,
    "petal length (cm)": 4.7,
    "petal width (cm)": 1.2,
}


def test_export_by_request_and_by_subject(
    cofre: Container, client: FlaskClient, runner: CliRunner, api_key: object
) -> None:
    with cofre.write() as session:
        cofre.registry.publish(
            session,
            SYSTEM,
            PublishRequest(
                name="iris", artifact=iris_classifier(), card=CARD, aliases=["production"]
            ),
        )
    key = api_key("predictor")  # type: ignore[operator]
    answer = client.post(
        "/api/v1/models/iris/predict",
        json={"instances": [ROW, ROW], "subject_ids": ["maria", "rui"]},
        headers=key,
    ).json
    by_request = runner.invoke(cli, ["audit", "export", "--request", answer["request_id"]])
    assert by_request.exit_code == 0, by_request.output
    record = json.loads(by_request.output)["records"][0]
    assert record["model_version"] == 1 and record["artifact_sha256"] == answer["sha256"]
    assert [r["data"]["input"] for r in record["rows"]] == [ROW, ROW]
    assert [r["data"]["output"] for r in record["rows"]] == answer["predictions"]
    by_subject = runner.invoke(cli, ["audit", "export", "--subject", "rui"])
    only_rui = json.loads(by_subject.output)["records"][0]
    assert only_rui["request_id"] == answer["request_id"]
    assert [r["row"] for r in only_rui["rows"]] == [1]  # maria's row stays out
    as_csv = runner.invoke(cli, ["audit", "export", "--subject", "rui", "--format", "csv"])
    assert as_csv.exit_code == 0 and as_csv.output.startswith("seq,")
    with cofre.read() as session:
        exports = session.scalar(
            select(func.count())
            .select_from(AuditRecord)
            .where(AuditRecord.kind == "audit.exported")
        )
    assert exports == 3
    both = runner.invoke(cli, ["audit", "export", "--subject", "x", "--request", "y"])
    assert both.exit_code == 2 and "exactly one" in both.output
    missing = runner.invoke(cli, ["audit", "export", "--request", "nope"])
    assert missing.exit_code == 1 and missing.output == "Error: no audit record for request nope\n"
