"""`cofre serve` runs real Gunicorn with server/gunicorn_conf.py; health and readiness
answer; files in the working directory named like cofre's modules are not imported,
no per-user control socket is made, SIGTERM stops it at once, and the log holds no
library warning per request."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.gunicorn import free_port

pytestmark = pytest.mark.functional
COFRE = str(Path(sys.executable).with_name("cofre"))


def _get(url: str, token: str | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def _poll(url: str, deadline: float, server: subprocess.Popen[bytes]) -> tuple[int, bytes]:
    while True:
        assert server.poll() is None, "cofre serve exited early"
        try:
            status, body = _get(url)
            if status == 200 or time.monotonic() > deadline:
                return status, body
        except (urllib.error.URLError, ConnectionError):
            if time.monotonic() > deadline:
                raise
        time.sleep(0.1)


@pytest.fixture
def environment(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COFRE_")}
    env.pop("XDG_RUNTIME_DIR", None)
    env |= {
        "HOME": str(tmp_path / "user"),  # where Gunicorn's default control socket goes
        "COFRE_HOME": str(tmp_path / "home"),
        "COFRE_KEY_DIR": str(tmp_path / "keys"),
        "COFRE_LOG_JSON": "false",
    }
    password = tmp_path / "pw"
    password.write_text("a long enough password")
    for command in (["init", "--admin-password-file", str(password)], ["demo"]):
        subprocess.run([COFRE, *command], env=env, cwd=tmp_path, check=True, capture_output=True)
    return env


@dataclass
class Served:
    base: str
    process: subprocess.Popen[bytes]
    log: Path
    secret: str
    scraper: str  # a metrics key: /metrics and /readyz's details
    predictor: str
    environment: dict[str, str]


IRIS_ROW = {
    "sepal length (cm)": 5.1,
    "sepal width (cm)": 3.5,
    "petal length (cm)": 1.4,
    "petal width (cm)": 0.2,
}


def _post(url: str, body: bytes, token: str) -> int:
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    with urllib.request.urlopen(request, timeout=10) as answer:
        return int(answer.status)


@pytest.fixture
def served(environment: dict[str, str], tmp_path: Path) -> Iterator[Served]:
    created = subprocess.run(
        [COFRE, "keys", "create", "--name", "probe", "--role", "publisher", "--json"],
        env=environment,
        check=True,
        capture_output=True,
        text=True,
    )
    scraper = subprocess.run(
        [COFRE, "keys", "create", "--name", "prometheus", "--role", "metrics", "--json"],
        env=environment,
        check=True,
        capture_output=True,
        text=True,
    )
    predictor = subprocess.run(
        [COFRE, "keys", "create", "--name", "svc", "--role", "predictor", "--json"],
        env=environment,
        check=True,
        capture_output=True,
        text=True,
    )
    for shadow in ("server.py", "governance.py", "backups.py", "wsgi.py", "json.py"):
        # Hardening item 21: `python -m gunicorn` imported these from the working
        # directory in place of cofre's own modules.
        (tmp_path / shadow).write_text("raise SystemExit('imported from the working directory')\n")
    port = free_port()
    log = tmp_path / "serve.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [COFRE, "serve", "--bind", f"127.0.0.1:{port}", "--workers", "2"],
            env=environment,
            cwd=tmp_path,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        yield Served(
            f"http://127.0.0.1:{port}",
            process,
            log,
            json.loads(created.stdout)["secret"],
            json.loads(scraper.stdout)["secret"],
            json.loads(predictor.stdout)["secret"],
            environment,
        )
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def test_cofre_serve_runs_gunicorn_with_two_workers(served: Served) -> None:
    deadline = time.monotonic() + 60
    status, body = _poll(f"{served.base}/healthz", deadline, served.process)
    assert (status, json.loads(body)) == (200, {"status": "ok"})
    status, body = _poll(f"{served.base}/readyz", deadline, served.process)
    assert (status, json.loads(body)) == (200, {"status": "ready"})
    status, body = _get(f"{served.base}/readyz", served.scraper)
    assert status == 200, body
    assert json.loads(body)["checks"]["models"]["detail"] == "3 aliased versions loadable"

    status, body = _get(f"{served.base}/api/v1/models", served.secret)
    assert status == 200
    assert {m["name"] for m in json.loads(body)["models"]} >= {"iris", "breast-cancer"}
    wrong = served.secret[:-4] + ("AAAA" if not served.secret.endswith("AAAA") else "BBBB")
    assert _get(f"{served.base}/api/v1/models", wrong)[0] == 401

    assert not (Path(served.environment["HOME"]) / ".gunicorn" / "gunicorn.ctl").exists()
    for _ in range(20):  # the forest's predictions: no warning per request in the log
        body = json.dumps({"instances": [IRIS_ROW]}).encode()
        assert _post(f"{served.base}/api/v1/models/iris/predict", body, served.predictor) == 200

    stopping = time.monotonic()
    served.process.send_signal(signal.SIGTERM)
    assert served.process.wait(timeout=30) == 0
    assert time.monotonic() - stopping < 5, "the master took long to exit on SIGTERM"
    output = served.log.read_text()
    assert "Warning" not in output and "warnings.warn" not in output
    assert "gunicorn" in output.lower()
    assert len(re.findall(r"Booting worker with pid", output)) == 2
    assert "X-Request-ID" not in output  # the access log names the request id, not headers
    assert re.search(r'"GET /healthz HTTP/1.1" 200 .* rid=[0-9a-f]{32}', output)
    assert served.secret not in output and wrong not in output
    assert served.secret.split("_")[-1] not in output
