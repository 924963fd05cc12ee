"""Query budgets under real Gunicorn with two workers: a rate of 20/s holds across both
workers together (not 20 per worker), its refusals are 429 with Retry-After and in the
audit log; a day's rows run out; probabilities are rounded per key; and a limit changed
with `cofre keys limit` reaches workers that hold the key cached."""

from __future__ import annotations

import json
import math
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from click.testing import CliRunner
from sklearn.datasets import load_iris
from sqlalchemy import func, select

from governance.accounts.actor import SYSTEM
from governance.audit.records import AuditRecord
from server.cli import cli
from tests.functional.predictions.conftest import Appliance
from tests.support.gunicorn import cofre_env

pytestmark = pytest.mark.functional
IRIS, _ = load_iris(return_X_y=True, as_frame=True)
BODY = json.dumps({"instances": IRIS.iloc[[0, 60, 120]].to_dict(orient="records")}).encode()
BURST = 60


def _key(appliance: Appliance, **limits: Any) -> tuple[str, dict[str, str]]:
    """A new predictor key: its prefix and the headers that carry it."""
    with appliance.cofre.write() as session:
        created = appliance.cofre.accounts.create_key(
            session, SYSTEM, "client", "predictor", **limits
        )
    return created.key.prefix, {"Authorization": f"Bearer {created.secret}"}


def _post(appliance: Appliance, headers: dict[str, str]) -> tuple[int, dict[str, Any], Any]:
    request = urllib.request.Request(
        f"{appliance.url}/api/v1/models/iris/predict",
        data=BODY,
        headers=headers | {"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, dict(answer.headers), json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), json.loads(error.read())


def _burst_within_one_second(
    appliance: Appliance, headers: dict[str, str]
) -> tuple[list[tuple[int, dict[str, Any], Any]], set[str]]:
    """BURST calls from 12 threads, started just after a second turns and all answered
    before the next (a burst that straddles two seconds meets two windows: tried
    again); its answers, and the request ids of every refusal of every try."""
    refused: set[str] = set()
    with ThreadPoolExecutor(max_workers=12) as pool:
        for _ in range(5):
            time.sleep(1.02 - time.time() % 1)  # just past a whole second
            started = time.time()
            answers = list(pool.map(lambda _: _post(appliance, headers), range(BURST)))
            refused |= {body["request_id"] for status, _, body in answers if status == 429}
            if math.floor(time.time()) == math.floor(started):
                return answers, refused
    pytest.skip("this machine could not answer 60 calls within one second")


def test_a_rate_of_20_per_second_holds_across_both_workers(appliance: Appliance) -> None:
    _, headers = _key(appliance, rate=20)
    _post(appliance, headers)  # both workers: load the model before the clock matters
    answers, refused_ids = _burst_within_one_second(appliance, headers)
    statuses = [status for status, _, _ in answers]
    assert statuses.count(200) == 20 and statuses.count(429) == BURST - 20
    for status, answer_headers, body in answers:
        if status == 429:
            assert answer_headers["Retry-After"] == "1"
            assert body["type"] == "urn:cofre:problem:rate-limited"
    with appliance.cofre.read() as session:
        audited = set(
            session.scalars(
                select(AuditRecord.request_id).where(
                    AuditRecord.kind == "prediction", AuditRecord.status == 429
                )
            )
        )
    assert audited == refused_ids


def test_rows_run_out_rounding_is_per_key_and_a_new_limit_reaches_cached_workers(
    appliance: Appliance,
) -> None:
    """One server for three checks: starting Gunicorn is most of a functional test's time."""
    _, daily = _key(appliance, rows_per_day=7)
    assert [_post(appliance, daily)[0] for _ in range(2)] == [200, 200]
    status, answer_headers, body = _post(appliance, daily)
    assert status == 429 and body["type"] == "urn:cofre:problem:rows-budget-spent"
    assert 1 <= int(answer_headers["Retry-After"]) <= 86_400
    prefix, coarse = _key(appliance, precision=1)
    _, full = _key(appliance)
    for _ in range(6):  # several calls: each worker caches both keys
        rounded = _post(appliance, coarse)[2]["probabilities"]
        precise = _post(appliance, full)[2]["probabilities"]
    assert rounded == [[round(p, 1) for p in row] for row in precise] != precise
    runner = CliRunner(env=cofre_env(appliance.settings))
    changed = runner.invoke(cli, ["keys", "limit", prefix, "--precision", "full"])
    assert changed.exit_code == 0, changed.output
    assert "full precision" in changed.output
    for _ in range(6):
        assert _post(appliance, coarse)[2]["probabilities"] == precise
    with appliance.cofre.read() as session:
        limited = session.scalar(
            select(func.count()).select_from(AuditRecord).where(AuditRecord.kind == "key.limited")
        )
    assert limited == 1
