"""Deploy-model between two appliances (two homes, two servers), with signed models
required on both: publish and promote in "staging", export a bundle sealed to
"production", import it there, and production answers exactly as staging for the
same rows. A bundle changed anywhere (any byte) is refused and publishes nothing;
so is one from an appliance production does not trust."""

from __future__ import annotations

import getpass
import json
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from sklearn.datasets import load_breast_cancer

from governance.accounts.actor import SYSTEM
from server import create_app
from server.setup import initialise
from tests.conftest import services_of
from tests.support.gunicorn import cofre_env, served
from tests.support.models import cancer_pipeline
from tests.support.signing import signing_key_pair

pytestmark = pytest.mark.functional
CARD = ["--purpose", "screen biopsies", "--legal-basis", "vital interest"]


def _appliance(root: Path, database_url: str) -> tuple[dict[str, Any], str]:
    settings: dict[str, Any] = {
        "home": str(root / "home"),
        "key_dir": str(root / "keys"),
        "database_url": database_url,
        "log_json": False,
        "require_signed_models": True,
    }
    cofre = services_of(create_app(settings))
    initialise(cofre, SYSTEM, "admin", "functional tests password")
    with cofre.write() as session:
        secret = cofre.accounts.create_key(session, SYSTEM, "svc", "predictor").secret
    cofre.close()
    return settings, secret


def _cofre(settings: dict[str, Any], *args: str) -> subprocess.CompletedProcess[str]:
    command = [str(Path(sys.executable).with_name("cofre")), *args]
    done = subprocess.run(
        command, env=cofre_env(settings), capture_output=True, text=True, timeout=180
    )
    return done


def _ok(settings: dict[str, Any], *args: str) -> str:
    done = _cofre(settings, *args)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def _predict(url: str, secret: str, rows: list[dict[str, float]]) -> dict[str, Any]:
    request = urllib.request.Request(
        url + "/api/v1/models/cancer/predict",
        data=json.dumps({"instances": rows}).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {secret}"},
    )
    with urllib.request.urlopen(request, timeout=60) as answer:
        body: dict[str, Any] = json.loads(answer.read())
        return body


# Both databases in one run: staging on PostgreSQL, production on SQLite (twenty
# command starts and two servers make a run cost a minute and a half).
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_staging_to_production(tmp_path: Path, database_url: str) -> None:
    staging, staging_key = _appliance(tmp_path / "staging", database_url)
    # Production on its own SQLite database: two appliances share nothing but the file.
    production_db = f"sqlite:///{tmp_path / 'production' / 'home' / 'cofre.db'}"
    production, production_key = _appliance(tmp_path / "production", production_db)
    private, public = signing_key_pair(tmp_path / "alice")
    artifact = tmp_path / "cancer.skops"
    artifact.write_bytes(cancer_pipeline())
    _ok({}, "models", "sign", str(artifact), "--key", str(private))
    for appliance in (staging, production):  # both trust the data scientist
        _ok(appliance, "signers", "add", "alice", str(public))
    signature = str(tmp_path / "cancer.skops.sig")
    _ok(
        staging,
        "models",
        "publish",
        str(artifact),
        "--name",
        "cancer",
        *CARD,
        "--signature",
        signature,
    )
    _ok(staging, "models", "alias", "cancer", "1", "production")

    production_pub = tmp_path / "production.pub"
    production_pub.write_text(_ok(production, "appliance", "key"))
    staging_pub = tmp_path / "staging.pub"
    staging_pub.write_text(_ok(staging, "appliance", "key"))
    bundle = tmp_path / "cancer.cofre-bundle"
    _ok(
        staging,
        "models",
        "export",
        "cancer@production",
        "--out",
        str(bundle),
        "--to",
        str(production_pub),
    )
    assert artifact.read_bytes() not in bundle.read_bytes()  # sealed, not plain

    untrusted = _cofre(production, "models", "import", str(bundle))
    assert untrusted.returncode != 0 and "not signed by a trusted appliance" in untrusted.stderr
    _ok(production, "signers", "add", "--appliance", "staging", str(staging_pub))
    data = bundle.read_bytes()
    for position in (len(data) // 3, len(data) // 2, len(data) - 1, 3):
        tampered = tmp_path / f"tampered-{position}.cofre-bundle"
        tampered.write_bytes(data[:position] + bytes([data[position] ^ 1]) + data[position + 1 :])
        refused = _cofre(production, "models", "import", str(tampered))
        assert refused.returncode != 0, refused.stdout
        assert len(refused.stderr.strip().splitlines()) == 1
    assert json.loads(_ok(production, "models", "list", "--json")) == []  # nothing published

    imported = _ok(production, "models", "import", str(bundle))
    assert imported.strip() == "imported cancer version 1 from staging (there: cancer version 1)"
    _ok(production, "models", "alias", "cancer", "1", "production")
    shown = _ok(production, "models", "show", "cancer:1")
    assert f"imported from staging, version 1, approved there by {getpass.getuser()}" in shown
    assert "signed by alice" in shown
    assert "imported from staging" in _ok(production, "models", "history", "cancer")

    rows = load_breast_cancer(as_frame=True).data.iloc[::57].to_dict(orient="records")
    with served(staging, tmp_path / "staging", workers=1) as staging_url:
        expected = _predict(staging_url, staging_key, rows)
    with served(production, tmp_path / "production", workers=1) as production_url:
        answer = _predict(production_url, production_key, rows)
    assert answer["predictions"] == expected["predictions"]
    assert answer["probabilities"] == expected["probabilities"]
    assert answer["sha256"] == expected["sha256"]
