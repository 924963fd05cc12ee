"""Hostile and malformed bodies on every door: a clear 4xx, never a 500, and the
audit record says exactly what the client got (hardening issue, items 9, 11, 12).

Every case here answered 500 (or a wrong 200) before the prediction core took
over decoding; each is named after the issue's item.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from governance.accounts.actor import SYSTEM
from governance.audit.records import AuditRecord
from server.container import Container

ROW = {
    "sepal length (cm)": 5.1,
    "sepal width (cm)": 3.5,
    "petal length (cm)": 1.4,
    "petal width (cm)": 0.2,
}
NATIVE = "/api/v1/models/iris/predict"
MLFLOW = "/api/v1/models/iris/invocations"
V2 = "/v2/models/iris/infer"
JSON = {"Content-Type": "application/json"}


def _v2_inputs(**tensor: Any) -> dict[str, Any]:
    base = {"name": "input-0", "datatype": "FP64", "shape": [1, 4], "data": list(ROW.values())}
    return {"inputs": [base | tensor]}


def _record(cofre: Container, request_id: str) -> AuditRecord:
    with cofre.read() as session:
        stmt = select(AuditRecord).where(AuditRecord.request_id == request_id)
        return session.scalars(stmt).one()


DEEP_ARRAYS = '{"instances": ' + "[" * 100_000 + "]" * 100_000 + "}"
DEEP_OBJECTS = '{"instances": [' + '{"a":' * 5_000 + "1" + "}" * 5_000 + "]}"


@pytest.mark.parametrize("url", [NATIVE, MLFLOW, V2])
@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (DEEP_ARRAYS, "nests deeper"),
        (DEEP_OBJECTS, "nests deeper"),
        ('{"instances": [{"sepal length (cm)": 1' + "0" * 400 + "}]}", "more than 40 digits"),
        ('{"instances": [], "instances": []}', "duplicated key"),
    ],
)
def test_item_11_12_json_that_crashed_or_slipped_through_is_a_400(
    client: FlaskClient,
    predictor: dict[str, str],
    cofre: Container,
    url: str,
    body: str,
    reason: str,
) -> None:
    answer = client.post(url, data=body, headers=predictor | JSON)
    assert answer.status_code == 400, answer.json
    assert reason in answer.json["detail"]
    record = _record(cofre, answer.json["request_id"])
    assert (record.kind, record.outcome, record.status) == ("prediction", "rejected", 400)


def test_item_11_management_routes_read_json_strictly_too(
    client: FlaskClient, models: Container, api_key: Any
) -> None:
    url = "/api/v1/models/iris/aliases/production"
    deep = client.put(url, data=DEEP_ARRAYS, headers=api_key("admin") | JSON)
    twice = client.put(url, data='{"version": 1, "version": 2}', headers=api_key("admin") | JSON)
    assert (deep.status_code, twice.status_code) == (400, 400)
    assert "duplicated key 'version'" in twice.json["detail"]


@pytest.mark.parametrize(
    ("url", "body", "headers"),
    [
        (NATIVE + "?version=%C2%B2", {"instances": [ROW]}, {}),
        (NATIVE + "?version=%D9%A3", {"instances": [ROW]}, {}),
        (NATIVE + "?version=" + "9" * 23, {"instances": [ROW]}, {}),
        ("/v2/models/iris/versions/%C2%B2/infer", _v2_inputs(), {}),
        (V2, _v2_inputs(), {"Inference-Header-Content-Length": "²"}),
        (V2, _v2_inputs(datatype="INT64", data=[2**63, 1, 1, 1]), {}),
        (V2, _v2_inputs(datatype="UINT8", data=[-1, 1, 1, 1]), {}),
        (V2, _v2_inputs(shape=[4294967296, 4294967296], data=[]), {}),
        (V2, _v2_inputs(parameters=[1]), {}),
        (V2, _v2_inputs() | {"outputs": [{"name": "predict", "parameters": [1]}]}, {}),
        (V2, _v2_inputs() | {"parameters": [1]}, {}),
        (V2, _v2_inputs(data=[[[1.0, 2.0, 3.0, 4.0]]]), {}),
    ],
)
def test_item_11_bad_values_get_a_4xx_never_a_500(
    client: FlaskClient,
    predictor: dict[str, str],
    cofre: Container,
    url: str,
    body: dict[str, Any],
    headers: dict[str, str],
) -> None:
    answer = client.post(url, data=json.dumps(body), headers=predictor | JSON | headers)
    assert 400 <= answer.status_code < 500, answer.json
    assert _record(cofre, answer.json["request_id"]).status == answer.status_code


def test_item_9_an_unknown_v2_output_is_refused_before_scoring_and_recorded_so(
    client: FlaskClient, predictor: dict[str, str], cofre: Container
) -> None:
    body = _v2_inputs() | {"outputs": [{"name": "nonsense"}]}
    answer = client.post(V2, json=body, headers=predictor)
    assert answer.status_code == 400 and "unknown output" in answer.json["error"]
    record = _record(cofre, answer.json["request_id"])
    assert (record.outcome, record.status, record.payload) == ("rejected", 400, None)


def test_a_labels_only_key_asking_v2_for_probabilities_is_refused(
    client: FlaskClient, models: Container, api_key: Any
) -> None:
    body = _v2_inputs() | {"outputs": [{"name": "predict_proba"}]}
    answer = client.post(V2, json=body, headers=api_key("predictor", labels_only=True))
    assert answer.status_code == 403


@pytest.mark.parametrize(
    ("url", "body", "key"),
    [
        (NATIVE, {"instances": [ROW], "subject_id": ["ana"]}, "subject_id"),
        (MLFLOW, {"instances": [ROW], "subject_ids": ["ana"]}, "subject_ids"),
        (MLFLOW, {"instances": [ROW], "params": {"subject_id": ["ana"]}}, "subject_id"),
        (V2, _v2_inputs() | {"parameters": {"subject_id": ["ana"]}}, "subject_id"),
        (V2, _v2_inputs() | {"subjects": ["ana"]}, "subjects"),
    ],
)
def test_a_key_cofre_does_not_know_is_a_400_naming_it(
    client: FlaskClient, predictor: dict[str, str], url: str, body: dict[str, Any], key: str
) -> None:
    answer = client.post(url, json=body, headers=predictor)
    assert answer.status_code == 400, answer.json
    assert repr(key) in answer.json["detail"]


def test_every_door_carries_subject_ids(
    client: FlaskClient, predictor: dict[str, str], cofre: Container
) -> None:
    native = client.post(
        NATIVE, json={"instances": [ROW], "subject_ids": ["ana"]}, headers=predictor
    )
    mlflow = client.post(
        MLFLOW, json={"instances": [ROW], "params": {"subject_ids": ["ana"]}}, headers=predictor
    )
    v2 = client.post(
        V2, json=_v2_inputs() | {"parameters": {"subject_ids": ["ana"]}}, headers=predictor
    )
    assert [r.status_code for r in (native, mlflow, v2)] == [200, 200, 200]
    with cofre.read() as session:
        found = cofre.audit.by_subject(session, SYSTEM, "ana")
    assert sorted(r.endpoint for r in found) == ["mlflow", "native", "v2"]


def test_mlflow_accepts_integer_columns_of_a_frame_without_names(
    client: FlaskClient, predictor: dict[str, str]
) -> None:
    """`pd.DataFrame(array).to_json(orient="split")` names the columns 0, 1, ..."""
    split = {"columns": [0, 1, 2, 3], "index": [0], "data": [list(ROW.values())]}
    answer = client.post(MLFLOW, json={"dataframe_split": split}, headers=predictor)
    assert answer.status_code == 200, answer.json
    assert answer.json == {"predictions": [0]}
