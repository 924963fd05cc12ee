"""Signed models under real Gunicorn, on SQLite and PostgreSQL, with
COFRE_REQUIRE_SIGNED_MODELS on: a version signed with `cofre models sign` and
published with `cofre models publish --signature` serves; once its signer is removed
(`cofre signers remove`), the next start of the workers refuses to load it
(`integrity-failure`, before any byte is deserialised) and /readyz says why."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from governance.accounts.actor import SYSTEM
from server import create_app
from server.setup import initialise
from tests.conftest import services_of
from tests.support.gunicorn import cofre_env, served
from tests.support.models import iris_classifier
from tests.support.signing import signing_key_pair

pytestmark = pytest.mark.functional
ROW = {
    "sepal length (cm)": 5.1,
    "sepal width (cm)": 3.5,
    "petal length (cm)": 1.4,
    "petal width (cm)": 0.2,
}
CARD = ["--purpose", "score flowers", "--legal-basis", "legitimate interest"]


def _cofre(settings: dict[str, Any], *args: str) -> subprocess.CompletedProcess[str]:
    command = [str(Path(sys.executable).with_name("cofre")), *args]
    return subprocess.run(
        command, env=cofre_env(settings), capture_output=True, text=True, timeout=120
    )


def _get(url: str, headers: dict[str, str] | None = None, body: Any = None) -> tuple[int, Any]:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Content-Type": "application/json", **(headers or {})},
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as refused:
        return refused.code, json.loads(refused.read())


def test_a_removed_signer_stops_the_version_on_the_next_start(
    tmp_path: Path, database_url: str
) -> None:
    settings: dict[str, Any] = {
        "home": str(tmp_path / "home"),
        "key_dir": str(tmp_path / "keys"),
        "database_url": database_url,
        "log_json": False,
        "require_signed_models": True,
    }
    cofre = services_of(create_app(settings))
    initialise(cofre, SYSTEM, "admin", "functional tests password")
    with cofre.write() as session:
        secret = cofre.accounts.create_key(session, SYSTEM, "svc", "predictor").secret
        scraper = cofre.accounts.create_key(session, SYSTEM, "prom", "metrics").secret
    cofre.close()
    predictor = {"Authorization": f"Bearer {secret}"}
    private, public = signing_key_pair(tmp_path / "alice")
    artifact = tmp_path / "iris.skops"
    artifact.write_bytes(iris_classifier())
    assert _cofre({}, "models", "sign", str(artifact), "--key", str(private)).returncode == 0
    unsigned = _cofre(settings, "models", "publish", str(artifact), "--name", "iris", *CARD)
    assert unsigned.returncode != 0 and "requires signed models" in unsigned.stderr
    assert _cofre(settings, "signers", "add", "alice", str(public)).returncode == 0
    published = _cofre(
        settings,
        "models",
        "publish",
        str(artifact),
        "--name",
        "iris",
        *CARD,
        "--signature",
        str(tmp_path / "iris.skops.sig"),
        "--alias",
        "production",
    )
    assert published.returncode == 0, published.stderr

    predict = "/api/v1/models/iris/predict"
    with served(settings, tmp_path, workers=2) as url:
        status, answer = _get(url + predict, predictor, {"instances": [ROW]})
        assert status == 200 and answer["predictions"] == [0], answer

    removed = _cofre(settings, "signers", "remove", "alice")
    assert removed.returncode == 0, removed.stderr
    with served(settings, tmp_path, workers=2, ready="/healthz") as url:
        for _ in range(4):  # whichever worker answers refuses
            status, problem = _get(url + predict, predictor, {"instances": [ROW]})
            assert status == 500, problem
            assert problem["type"] == "urn:cofre:problem:integrity-failure"
            assert "signer 'alice' is no longer trusted" in problem["detail"]
        status, ready = _get(url + "/readyz", {"Authorization": f"Bearer {scraper}"})
        assert status == 503
        assert ready["checks"]["models"]["ok"] is False
        assert "no longer trusted" in ready["checks"]["models"]["detail"]
    verify = _cofre(settings, "audit", "verify")
    assert verify.returncode == 0, verify.stdout + verify.stderr
