"""The image of container/Containerfile, built and run for real with podman: a
non-root user, a read-only root, the data directory as a volume, the keys mounted
read-only from outside and never in the image, `cofre serve` answering audited
predictions, and a health check that podman runs."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.container.conftest import Podman
from tests.support.builds import run

pytestmark = [pytest.mark.container, pytest.mark.timeout(1200)]
USER = 10001
IRIS_ROW = {
    "sepal length (cm)": 5.1,
    "sepal width (cm)": 3.5,
    "petal length (cm)": 1.4,
    "petal width (cm)": 0.2,
}


def test_the_image_runs_as_its_own_user_with_nothing_secret_inside(
    podman: Podman, image: str
) -> None:
    inspected = json.loads(podman("image", "inspect", image).stdout)[0]
    config = inspected["Config"]
    assert config["User"] == f"{USER}:{USER}"
    assert config["Entrypoint"] == ["/opt/cofre/bin/cofre"]
    assert config["Cmd"] == ["serve"]
    assert "/var/lib/cofre" in config["Volumes"]
    assert "/healthz" in " ".join(inspected["Healthcheck"]["Test"])
    # As root in the container, so that no directory is too private to search.
    inside = ("run", "--rm", "--no-healthcheck", "--network", "none", "--user", "0")
    listing = podman(
        *inside,
        "--entrypoint",
        "/bin/sh",
        image,
        "-c",
        "ls -A /etc/cofre/keys; find / -xdev \\( -name 'kek*' -o -name 'pseudonym.key' \\) -print",
    )
    assert listing.stdout.strip() == ""


@dataclass(frozen=True)
class Running:
    podman: Podman
    name: str
    netns: str
    volumes: tuple[str, ...]
    predictor: str

    def curl(self, *args: str) -> subprocess.CompletedProcess[str]:
        argv = ["ip", "netns", "exec", self.netns, "curl", "-sS", "--max-time", "10", *args]
        return subprocess.run(argv, capture_output=True, text=True, check=False)


def _private_dir(path: Path) -> str:
    path.mkdir(mode=0o700)
    os.chown(path, USER, USER)
    return str(path)


@pytest.fixture(scope="module")
def running(
    podman: Podman, image: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Running]:
    """`cofre init` and `cofre demo` in one-off containers, then the service detached
    in a network namespace of the test's own, answering on its port 8000."""
    base = tmp_path_factory.mktemp("appliance")
    keys, data = _private_dir(base / "keys"), _private_dir(base / "data")
    writable_keys = ("-v", f"{keys}:/etc/cofre/keys", "-v", f"{data}:/var/lib/cofre")
    volumes = ("-v", f"{keys}:/etc/cofre/keys:ro", "-v", f"{data}:/var/lib/cofre")
    once = ("run", "--rm", "--no-healthcheck", "--read-only", "--network", "none")
    made = podman(*once, *writable_keys, image, "init").stdout
    assert "generated admin password" in made
    podman(*once, *volumes, image, "demo")
    created = podman(
        *once, *volumes, image, "keys", "create", "--name", "svc", "--role", "predictor", "--json"
    )
    netns = f"cofre-ctr-{os.getpid()}"
    run(["ip", "netns", "add", netns])
    try:
        run(["ip", "-n", netns, "link", "set", "lo", "up"])
        name = f"cofre-{os.getpid()}"
        podman(
            "run",
            "--detach",
            "--name",
            name,
            "--read-only",
            # podman runs the check when asked (below): its timer needs systemd.
            "--health-interval",
            "disable",
            "--network",
            f"ns:/run/netns/{netns}",
            *volumes,
            image,
        )
        box = Running(podman, name, netns, volumes, json.loads(created.stdout)["secret"])
        _wait_until_ready(box)
        yield box
    finally:
        podman("rm", "--force", "--time", "5", f"cofre-{os.getpid()}", check=False)
        subprocess.run(["ip", "netns", "del", netns], check=False)


def _wait_until_ready(box: Running) -> None:
    deadline = time.monotonic() + 120
    while box.curl("-f", "-o", "/dev/null", "http://127.0.0.1:8000/readyz").returncode:
        if time.monotonic() > deadline:
            logs = box.podman("logs", box.name, check=False)
            raise AssertionError(
                f"the container was not ready: {(logs.stdout + logs.stderr)[-3000:]}"
            )
        time.sleep(0.5)


def test_the_container_answers_audited_predictions(running: Running) -> None:
    answer = running.curl(
        "-w",
        "\n%{http_code}",
        "-H",
        f"Authorization: Bearer {running.predictor}",
        "-H",
        "Content-Type: application/json",
        "--data",
        json.dumps({"instances": [IRIS_ROW]}),
        "http://127.0.0.1:8000/api/v1/models/iris/predict",
    )
    body, _, status = answer.stdout.rpartition("\n")
    assert status == "200", answer.stdout + answer.stderr
    request_id = json.loads(body)["request_id"]
    verified = running.podman("exec", running.name, "cofre", "audit", "verify", "--json")
    assert json.loads(verified.stdout)["ok"] is True
    exported = running.podman(
        "exec", running.name, "cofre", "audit", "export", "--request", request_id
    )
    assert request_id in exported.stdout


def test_the_service_runs_as_its_user_on_a_read_only_root(running: Running) -> None:
    assert running.podman("exec", running.name, "id", "-u").stdout.strip() == str(USER)
    write = running.podman("exec", running.name, "touch", "/opt/cofre/planted", check=False)
    assert write.returncode != 0
    assert "Read-only file system" in write.stderr
    # The key directory is read-only too, and `cofre init` still passes over it.
    again = running.podman("exec", running.name, "cofre", "init")
    assert "Already initialised" in again.stdout


def test_podman_runs_the_health_check_and_finds_the_container_healthy(running: Running) -> None:
    check = running.podman("healthcheck", "run", running.name, check=False)
    assert check.returncode == 0, check.stdout + check.stderr
    state = json.loads(running.podman("inspect", running.name).stdout)[0]["State"]
    assert state["Health"]["Status"] == "healthy"
