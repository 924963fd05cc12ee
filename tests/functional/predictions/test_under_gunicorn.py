"""The prediction doors under real Gunicorn with several worker processes:
answers equal the estimator's, every answer has exactly one audit record, the
chain verifies (and stops verifying after tampering), metrics add up across
workers, alias moves reach running workers, and an unwritable audit log means
nothing is served."""

from __future__ import annotations

import json
import sqlite3
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import pytest
import skops.io as sio
from click.testing import CliRunner
from sklearn.datasets import load_iris
from sqlalchemy import func, select, text

from governance.accounts.actor import SYSTEM
from governance.audit.records import AuditRecord
from governance.registry.service import PublishRequest
from server import create_app
from server.cli import cli
from server.container import Container
from server.setup import initialise
from tests.conftest import services_of
from tests.support.gunicorn import cofre_env, served
from tests.support.models import CARD, iris_classifier, iris_classifier_v2

pytestmark = pytest.mark.functional
FEATURES, _ = load_iris(return_X_y=True, as_frame=True)
ROWS = FEATURES.iloc[::15]  # 10 rows across the three classes


@dataclass
class Appliance:
    url: str
    cofre: Container
    settings: dict[str, Any]
    predictor: dict[str, str]
    admin: dict[str, str]


def _bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


@pytest.fixture
def appliance(tmp_path: Path, database_url: str) -> Iterator[Appliance]:
    settings = {
        "home": str(tmp_path / "home"),
        "key_dir": str(tmp_path / "keys"),
        "database_url": database_url,
        "alias_refresh_seconds": 1,
        "db_lock_timeout_ms": 1500,
        "log_json": False,
    }
    flask_app = create_app(settings)
    cofre = services_of(flask_app)
    initialise(cofre, SYSTEM, "admin", "functional tests password")
    with cofre.write() as session:
        for artifact, aliases in (
            (iris_classifier(), ["production"]),
            (iris_classifier_v2(), ["staging"]),
        ):
            cofre.registry.publish(
                session,
                SYSTEM,
                PublishRequest(name="iris", artifact=artifact, card=CARD, aliases=aliases),
            )
        predictor = cofre.accounts.create_key(session, SYSTEM, "svc", "predictor").secret
        admin = cofre.accounts.create_key(session, SYSTEM, "ops", "admin").secret
    try:
        with served(settings, tmp_path, workers=3) as url:
            yield Appliance(url, cofre, settings, _bearer(predictor), _bearer(admin))
    finally:
        cofre.close()


def _call(
    url: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
    raw: bytes | None = None,
    method: str | None = None,
) -> tuple[int, Any]:
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    request = urllib.request.Request(
        url,
        data=data,
        headers={"Content-Type": "application/json", **(headers or {})},
        method=method,
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            payload = answer.read()
            return answer.status, json.loads(payload) if payload[:1] in b"{[" else payload
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def _prediction_records(cofre: Container, outcome: str | None = None) -> int:
    stmt = select(func.count()).select_from(AuditRecord).where(AuditRecord.kind == "prediction")
    if outcome:
        stmt = stmt.where(AuditRecord.outcome == outcome)
    with cofre.read() as session:
        return int(session.scalar(stmt) or 0)


def _verify(appliance: Appliance) -> tuple[int, str]:
    result = CliRunner(env=cofre_env(appliance.settings)).invoke(cli, ["audit", "verify"])
    return result.exit_code, result.output


def _native(appliance: Appliance, _: int) -> tuple[int, Any]:
    return _call(
        f"{appliance.url}/api/v1/models/iris/predict",
        {"instances": ROWS.to_dict(orient="records")},
        appliance.predictor,
    )


def _mlflow(appliance: Appliance, _: int) -> tuple[int, Any]:
    split = json.loads(ROWS.to_json(orient="split", index=False))
    return _call(
        f"{appliance.url}/api/v1/models/iris/invocations",
        {"dataframe_split": split},
        appliance.predictor,
    )


def _triton(appliance: Appliance) -> list[list[int]]:
    """The real V2 client, binary tensors both ways, with and without a version."""
    import tritonclient.http as triton

    client = triton.InferenceServerClient(appliance.url.removeprefix("http://"))
    assert client.is_server_live() and client.is_server_ready()
    assert not client.is_model_ready("iris")  # no key, no answer
    assert client.is_model_ready("iris", headers=appliance.predictor)
    metadata = client.get_model_metadata("iris", headers=appliance.predictor)
    assert [i["name"] for i in metadata["inputs"]] == list(FEATURES.columns)
    answers = []
    for version in ("", "2"):
        inputs = []
        for column in FEATURES.columns:
            tensor = triton.InferInput(column, [len(ROWS)], "FP64")
            tensor.set_data_from_numpy(ROWS[column].to_numpy(dtype=np.float64))
            inputs.append(tensor)
        result = client.infer(
            "iris",
            inputs,
            model_version=version,
            headers=appliance.predictor,
            outputs=[triton.InferRequestedOutput("predict")],
        )
        answers.append(result.as_numpy("predict").tolist())
    client.close()
    return answers


def test_three_protocols_agree_with_the_estimator_and_are_all_audited(appliance: Appliance) -> None:
    with ThreadPoolExecutor(max_workers=8) as pool:
        native = list(pool.map(lambda i: _native(appliance, i), range(40)))
        mlflow = list(pool.map(lambda i: _mlflow(appliance, i), range(40)))
    triton_v1, triton_v2 = _triton(appliance)
    v1 = sio.loads(iris_classifier(), trusted=sio.get_untrusted_types(data=iris_classifier()))
    v2 = sio.loads(iris_classifier_v2(), trusted=sio.get_untrusted_types(data=iris_classifier_v2()))
    expected = v1.predict(ROWS).tolist()
    assert {s for s, _ in native + mlflow} == {200}
    assert all(body["predictions"] == expected and body["version"] == 1 for _, body in native)
    assert all(body == {"predictions": expected} for _, body in mlflow)
    assert triton_v1 == expected and triton_v2 == v2.predict(ROWS).tolist()
    # 80 HTTP answers + 2 tritonclient inferences: one record each, none more.
    assert _prediction_records(appliance.cofre, "ok") == 82
    code, output = _verify(appliance)
    assert code == 0, output
    with appliance.cofre.engine.begin() as connection:
        connection.execute(
            text(
                "UPDATE audit_records SET status = 201 WHERE seq = "
                "(SELECT MIN(seq) FROM audit_records WHERE kind = 'prediction')"
            )
        )
    code, output = _verify(appliance)
    assert code == 1 and "edited" in output


def test_metrics_add_up_across_workers(appliance: Appliance) -> None:
    for index in range(12):
        assert _native(appliance, index)[0] == 200
    assert (
        _call(
            f"{appliance.url}/api/v1/models/iris/predict",
            {"instances": [{"x": 1}]},
            appliance.predictor,
        )[0]
        == 422
    )
    status, text_body = _call(f"{appliance.url}/metrics", headers=appliance.admin)
    assert status == 200
    samples = _samples(text_body.decode())
    ok = samples[
        ("cofre_predictions_total", 'model="iris",outcome="ok",protocol="native",version="1"')
    ]
    assert ok == 12
    assert samples[
        ("cofre_prediction_rows_total", 'model="iris",protocol="native",version="1"')
    ] == 12 * len(ROWS)
    assert _call(f"{appliance.url}/metrics", headers=appliance.predictor)[0] == 403


def _samples(exposition: str) -> dict[tuple[str, str], float]:
    found = {}
    for line in exposition.splitlines():
        if line.startswith("#") or "{" not in line:
            continue
        name, rest = line.split("{", 1)
        labels, value = rest.rsplit("} ", 1)
        found[(name, ",".join(sorted(labels.split(","))))] = float(value)
    return found


def test_alias_move_reaches_running_workers_within_seconds(appliance: Appliance) -> None:
    assert _native(appliance, 0)[1]["version"] == 1
    with appliance.cofre.write() as session:
        appliance.cofre.registry.set_alias(session, SYSTEM, "iris", 2, "production")
    deadline = time.monotonic() + 10
    seen: set[int] = set()
    while time.monotonic() < deadline:
        versions = {_native(appliance, i)[1]["version"] for i in range(6)}  # several workers
        if versions == {2}:
            break
        seen |= versions
        time.sleep(0.2)
    assert versions == {2}, f"still serving {versions} after 10 s"


@contextmanager
def _database_unavailable(appliance: Appliance) -> Iterator[None]:
    """SQLite: another process holds the write lock. PostgreSQL: the database refuses
    connections and the workers' connections are cut."""
    url = appliance.settings["database_url"]
    if url.startswith("sqlite"):
        locker = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
        locker.execute("BEGIN EXCLUSIVE")
        try:
            yield
        finally:
            locker.execute("ROLLBACK")
            locker.close()
        return
    server, _, name = url.replace("postgresql+psycopg://", "postgresql://").rpartition("/")
    with psycopg.connect(f"{server}/postgres", autocommit=True) as admin:
        admin.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS false')
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            (name,),
        )
        try:
            yield
        finally:
            admin.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS true')


def test_no_unaudited_answer_escapes_when_the_database_goes_away(appliance: Appliance) -> None:
    answers = [_native(appliance, i) for i in range(3)]
    with _database_unavailable(appliance):
        down = [_native(appliance, i) for i in range(6)]
    answers += [_native(appliance, i) for i in range(3)]
    assert {status for status, _ in down} == {503}
    assert all("predictions" not in body for _, body in down)
    # Whichever step met the database first (the key, the version, the writer), the
    # client is told its prediction could not be audited (on PostgreSQL it was told
    # database-unavailable before).
    assert {body["type"] for _, body in down} == {"urn:cofre:problem:audit-unavailable"}
    assert [status for status, _ in answers] == [200] * 6
    # Every answer that carried predictions has its record; the refused ones did not
    # leave a success record behind.
    assert _prediction_records(appliance.cofre, "ok") == 6
    assert _verify(appliance)[0] == 0


def _chunked_post(url: str, chunks: list[bytes], headers: dict[str, str]) -> tuple[int, Any]:
    import http.client
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        connection.request(
            "POST",
            parts.path,
            body=iter(chunks),
            headers={"Content-Type": "application/json", **headers},
            encode_chunked=True,
        )
        answer = connection.getresponse()
        return answer.status, json.loads(answer.read() or b"null")
    finally:
        connection.close()


def test_a_chunked_body_over_the_limit_is_413_not_cut_and_scored(appliance: Appliance) -> None:
    """Hardening item 12: a chunked body over 1 MiB was cut at the limit and its first
    941 of 1,000 rows scored and audited (200)."""
    row = json.dumps(ROWS.iloc[0].to_dict()).encode()
    rows = [row] * 9000  # about 1.3 MiB: over COFRE_MAX_BODY_BYTES (1 MiB)
    body = b'{"instances": [' + b",".join(rows) + b"]}"
    chunks = [body[i : i + 65536] for i in range(0, len(body), 65536)]
    before = _prediction_records(appliance.cofre, "ok")
    status, answer = _chunked_post(
        f"{appliance.url}/api/v1/models/iris/predict", chunks, appliance.predictor
    )
    assert status == 413 and answer["status"] == 413
    assert _prediction_records(appliance.cofre, "ok") == before
    small = b'{"instances": [' + row + b"]}"
    status, answer = _chunked_post(
        f"{appliance.url}/api/v1/models/iris/predict", [small[:10], small[10:]], appliance.predictor
    )
    assert status == 200 and len(answer["predictions"]) == 1


def test_a_revoked_key_is_refused_by_every_worker_at_once(appliance: Appliance) -> None:
    """Workers cache verified keys (no database read per request); a revocation must
    still reach every worker before its next request, whichever door revoked it."""
    native = f"{appliance.url}/api/v1/models/iris/predict"
    body = {"instances": ROWS.iloc[:1].to_dict(orient="records")}
    with appliance.cofre.write() as session:
        by_cli = appliance.cofre.accounts.create_key(session, SYSTEM, "cli", "predictor")
        by_api = appliance.cofre.accounts.create_key(session, SYSTEM, "api", "predictor")
    for created in (by_cli, by_api):
        warm = _many(native, body, _bearer(created.secret), 60)  # every worker caches it
        assert warm == [200] * 60
    revoked = CliRunner(env=cofre_env(appliance.settings)).invoke(
        cli, ["keys", "revoke", by_cli.key.prefix]
    )
    assert revoked.exit_code == 0, revoked.output
    assert _many(native, body, _bearer(by_cli.secret), 60) == [401] * 60
    status, _ = _call(
        f"{appliance.url}/api/v1/keys/{by_api.key.prefix}", headers=appliance.admin, method="DELETE"
    )
    assert status == 200
    assert _many(native, body, _bearer(by_api.secret), 60) == [401] * 60
    assert _many(native, body, appliance.predictor, 12) == [200] * 12  # others still served


def _many(url: str, body: Any, headers: dict[str, str], count: int) -> list[int]:
    with ThreadPoolExecutor(max_workers=6) as pool:
        return list(pool.map(lambda _: _call(url, body, headers)[0], range(count)))
