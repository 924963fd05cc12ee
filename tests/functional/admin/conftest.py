"""A seeded appliance under real Gunicorn and Debian's headless Chromium (Playwright).

The browser is Debian's /usr/bin/chromium driven through `executable_path`:
Playwright's own browser download is never used. Without that binary the tests
are skipped, except under CI, where that is a failure.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from governance.accounts.actor import SYSTEM
from governance.accounts.service import key_actor
from governance.audit.service import AuditEvent, PersonalRow
from governance.monitoring.profiles import ReferenceData
from governance.registry.service import PublishRequest
from server import create_app
from server.container import Container
from server.setup import initialise
from tests.conftest import services_of
from tests.support import monitoring
from tests.support.gunicorn import cofre_env, free_port, stop, wait_until_ready
from tests.support.models import CARD, iris_classifier, iris_classifier_v2
from tests.support.scoring import score

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ROOT = Path(__file__).resolve().parents[3]
ARTIFACTS = ROOT / "test-artifacts" / "admin"
PASSWORD = "browser tests password"
HOSTILE = "<script>alert(1)</script>"
SUBJECT = "patient-42"


@dataclass
class Appliance:
    url: str
    container: Container
    database: Path
    predictor_secret: str
    requests: dict[str, str] = field(default_factory=dict)  # label -> request id
    sha256: str = ""


def _seed(container: Container) -> Appliance:
    with container.write() as session:
        for role in ("auditor", "publisher"):
            container.accounts.create_user(session, SYSTEM, role, role, PASSWORD)
        key = container.accounts.create_key(session, SYSTEM, "svc", "predictor")
        for artifact in (iris_classifier(), iris_classifier_v2()):
            container.registry.publish(
                session, SYSTEM, PublishRequest(name="iris", artifact=artifact, card=CARD)
            )
        container.registry.set_alias(session, SYSTEM, "iris", 1, "production")
        container.registry.publish(
            session, SYSTEM, PublishRequest(name="hostile", artifact=iris_classifier(), card=CARD)
        )
        # The registry now refuses such a name; the pages must escape it all the same.
        container.registry.model(session, "hostile").name = HOSTILE
    seeded = Appliance("", container, Path(), key.secret)
    seeded.sha256 = _predictions(container, key_actor(key.key))
    _monitored(container)
    with container.read() as session:  # the traffic page reads what this job counts
        container.monitoring.run_due(session, container.monitoring_window)
    return seeded


def _monitored(container: Container) -> None:
    """Model `risk`, published with reference data, and traffic with x2 shifted."""
    request = PublishRequest(
        name="risk",
        artifact=monitoring.classifier(),
        card=CARD,
        aliases=["production"],
        reference=ReferenceData(monitoring.reference_csv(), "csv"),
    )
    with container.write() as session:
        container.registry.publish(session, SYSTEM, request)
    rows = monitoring.normal_frame(200, seed=3, shift={"x2": 2.0}).to_dict("records")
    for start in (0, 100):
        score(container, [None] * 100, name="risk", rows=rows[start : start + 100])


def _predictions(container: Container, caller: Any) -> str:
    """Prediction audit records shaped as the prediction core writes them."""
    with container.write() as session:
        version = container.registry.resolve(session, "iris", version=1)
        rows = [
            ("req-single", [(SUBJECT, 51)], "ok"),
            ("req-batch", [("patient-7", 63), (SUBJECT, 49)], "ok"),
            ("req-failed", [], "error"),
        ]
        for request_id, people, outcome in rows:
            container.audit.append(
                session,
                AuditEvent(
                    kind="prediction",
                    actor=caller,
                    outcome=outcome,
                    status=200 if outcome == "ok" else 500,
                    endpoint="native",
                    request_id=request_id,
                    model_name="iris",
                    model_version=1,
                    artifact_sha256=version.sha256,
                    purpose="triage",
                    details={"rows": len(people), "latency_ms": 12, "path": "/predict"},
                    rows=[
                        PersonalRow(s, {"inputs": {"petal_mm": mm}, "outputs": {"label": 0}})
                        for s, mm in people
                    ]
                    or None,
                ),
            )
        return version.sha256


@pytest.fixture(scope="module")
def appliance(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Appliance]:
    base = tmp_path_factory.mktemp("admin-browser")
    database = base / "home" / "cofre.db"
    settings = {
        "home": str(base / "home"),
        "database_url": f"sqlite:///{database}",
        "key_dir": str(base / "keys"),
        "testing": True,
        "log_json": False,
    }
    flask_app = create_app(settings)
    container = services_of(flask_app)
    initialise(container, SYSTEM, "admin", PASSWORD)
    seeded = _seed(container)
    port = free_port()
    env = cofre_env(settings | {"bind": f"127.0.0.1:{port}", "workers": 2})
    log_path = base / "gunicorn.log"
    log = log_path.open("wb")
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "python:server.gunicorn_conf", "wsgi:app"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        seeded.url, seeded.database = f"http://127.0.0.1:{port}", database
        wait_until_ready(seeded.url, server, log_path, seconds=30)
        yield seeded
    finally:
        stop(server, log_path)
        log.close()
        container.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail("Debian's chromium is required under CI (scripts/system-deps.sh)")
        pytest.skip("no /usr/bin/chromium; run scripts/system-deps.sh")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def context(browser: Any, appliance: Appliance) -> Iterator[Any]:
    """A fresh browser profile (no cookies) per test."""
    ctx = browser.new_context(base_url=appliance.url, viewport={"width": 1366, "height": 900})
    ctx.set_default_timeout(10_000)
    yield ctx
    ctx.close()


def screenshot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def sign_in(page: Any, username: str, password: str = PASSWORD) -> None:
    page.goto("/admin/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url("**/admin/")
