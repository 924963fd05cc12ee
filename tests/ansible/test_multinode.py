"""The multi-node layout applied for real: ansible/inventories/multi-node as shipped
(one PostgreSQL host, two application hosts, one nginx host; tests/ansible/cluster.py
makes them), the playbook applied twice (the second run changes nothing on any
host), then predictions through nginx over TLS, answered by both application hosts
and landing in one audit chain that verifies.

Marker `multinode`; not part of `make test` (see README "How the playbook is
tested" for the command and how long it takes).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.ansible.cluster import HOSTS, Cluster, Host, cluster
from tests.ansible.conftest import (
    ansible_env,
    playbook_command,
    require_target_support,
    rootfs_tarball,
)
from tests.support.builds import REPO, run, wheelhouse
from tests.support.hosts import start_unit, unit_settings

pytestmark = [pytest.mark.multinode, pytest.mark.timeout(3600)]

ANSIBLE_DIR = REPO / "ansible"
EXAMPLE = ANSIBLE_DIR / "inventories/multi-node"
SERVER_NAME = "cofre.example.internal"
PROXY = HOSTS["proxy1.example.internal"]
IRIS_ROW = {
    "sepal length (cm)": 5.1,
    "sepal width (cm)": 3.5,
    "petal length (cm)": 1.4,
    "petal width (cm)": 0.2,
}


@dataclass
class Deployment:
    cluster: Cluster
    runs: list[subprocess.CompletedProcess[str]]
    logs: Path
    argv: list[str]
    env: dict[str, str]
    processes: dict[tuple[str, str], subprocess.Popen[bytes]] = field(default_factory=dict)

    def playbook(self) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            self.argv, cwd=ANSIBLE_DIR, env=self.env, capture_output=True, text=True
        )
        assert result.returncode == 0, result.stdout[-8000:] + result.stderr[-3000:]
        return result

    def app_hosts(self) -> list[Host]:
        return [self.cluster.host("app1"), self.cluster.host("app2")]


def _tool(name: str) -> str:
    return str(Path(sys.executable).parent / name)


def _inventory(base: Path, made: Cluster, wheels: Path) -> tuple[Path, Path, Path]:
    """The shipped multi-node inventory, logged in as root with the cluster's key, a
    vault of fresh secrets, and what this machine needs changed (no systemd as PID 1,
    no network for apt)."""
    inventory = base / "inventory"
    shutil.copytree(EXAMPLE, inventory)
    for example in inventory.glob("group_vars/*/*.example"):
        example.unlink()
    hosts = yaml.safe_load((inventory / "hosts.yml").read_text())
    hosts["all"]["vars"] = {
        "ansible_user": "root",
        "ansible_ssh_private_key_file": str(made.key),
        "ansible_ssh_common_args": "-o StrictHostKeyChecking=no "
        "-o UserKnownHostsFile=/dev/null -o LogLevel=ERROR",
        "ansible_python_interpreter": "/usr/bin/python3",
    }
    (inventory / "hosts.yml").write_text(yaml.safe_dump(hosts))
    vault = inventory / "group_vars/all/vault.yml"
    vault.write_text(
        yaml.safe_dump(
            {
                "vault_cofre_admin_password": secrets.token_urlsafe(18),
                "vault_cofre_db_app_password": secrets.token_urlsafe(18),
                "vault_cofre_db_owner_password": secrets.token_urlsafe(18),
            }
        )
    )
    password_file = base / "vault-password"
    password_file.write_text(secrets.token_urlsafe(24) + "\n")
    password_file.chmod(0o600)
    run(
        [_tool("ansible-vault"), "encrypt", "--vault-password-file", str(password_file), str(vault)]
    )
    overrides = base / "test-vars.yml"
    overrides.write_text(
        yaml.safe_dump(
            {
                "cofre_wheelhouse": str(wheels),
                "cofre_service_start": False,  # units are started by the test
                "cofre_apt_update_cache": False,
                "cofre_postgresql_apt_update_cache": False,
                "cofre_nginx_apt_update_cache": False,
                # Both application hosts run a scheduler: one acts, one stands by.
                "cofre_scheduler_enabled": True,
                # A backup every minute, so that a scheduler's takeover shows soon.
                "cofre_settings": {"trusted_proxies": PROXY, "backup_schedule": "* * * * *"},
            }
        )
    )
    return inventory, password_file, overrides


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    require_target_support()
    base = tmp_path_factory.mktemp("multinode")
    wheels = wheelhouse(base / "wheelhouse" / "wheels")
    with cluster(base / "hosts", rootfs_tarball()) as made:
        inventory, password_file, overrides = _inventory(base, made, wheels)
        argv = made.in_switch(playbook_command(inventory / "hosts.yml", password_file, overrides))
        env = ansible_env(base)
        logs = base / "logs"
        logs.mkdir()
        deployed = Deployment(made, [], logs, argv, env)
        for _ in range(2):
            deployed.runs.append(deployed.playbook())
        try:
            yield deployed
        finally:
            for key in list(deployed.processes):
                _stop(deployed, *key)


RECAP = re.compile(
    r"^(?P<host>\S+)\s*:\s*ok=(?P<ok>\d+)\s+changed=(?P<changed>\d+)\s+"
    r"unreachable=(?P<unreachable>\d+)\s+failed=(?P<failed>\d+)",
    re.MULTILINE,
)


def _recaps(result: subprocess.CompletedProcess[str]) -> dict[str, dict[str, int]]:
    found = {
        m["host"]: {k: int(v) for k, v in m.groupdict().items() if k != "host"}
        for m in RECAP.finditer(result.stdout)
    }
    assert set(found) == set(HOSTS), result.stdout[-3000:]
    return found


def test_the_playbook_applies_to_every_host_and_a_second_run_changes_nothing(
    deployment: Deployment,
) -> None:
    first, second = (_recaps(r) for r in deployment.runs)
    assert all(r["failed"] == 0 and r["unreachable"] == 0 for r in first.values())
    assert all(first[h]["changed"] > 0 for h in HOSTS)
    assert {h: r["changed"] for h, r in second.items()} == dict.fromkeys(HOSTS, 0), deployment.runs[
        1
    ].stdout[-6000:]


# -- running it -----------------------------------------------------------------------
def _logs(deployment: Deployment, host: Host) -> Path:
    directory = deployment.logs / host.name.split(".", 1)[0]
    directory.mkdir(exist_ok=True)
    return directory


def _start(deployment: Deployment, host: Host, unit: str) -> None:
    deployment.processes[(host.name, unit)] = start_unit(host, unit, _logs(deployment, host))


def _stop(deployment: Deployment, host_name: str, unit: str) -> None:
    process = deployment.processes.pop((host_name, unit))
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _cofre(deployment: Deployment, host: Host, *args: str) -> subprocess.CompletedProcess[str]:
    """`cofre ARGS` on an application host as the service user, with its settings."""
    unit = unit_settings(host.root, "cofre-web.service")
    command = [
        "/usr/bin/env",
        "-i",
        "PATH=/usr/bin:/bin",
        *unit.get("Environment", "").split(),
        "/opt/cofre/venv/bin/cofre",
        *args,
    ]
    return subprocess.run(
        host.chroot(command, user="cofre"), capture_output=True, text=True, check=False
    )


def https(
    deployment: Deployment, path: str, body: dict[str, object] | None = None, key: str = ""
) -> tuple[int, str]:
    """One request through nginx over TLS from the control host."""
    cert = deployment.cluster.host("proxy1").root / "etc/nginx/cofre-tls/cert.pem"
    argv = ["curl", "-sS", "--max-time", "30", "--cacert", str(cert)]
    argv += ["--resolve", f"{SERVER_NAME}:443:{PROXY}", "-w", "\n%{http_code}"]
    argv.append(f"https://{SERVER_NAME}{path}")
    if key:
        argv += ["-H", f"Authorization: Bearer {key}"]
    if body is not None:
        argv += ["-H", "Content-Type: application/json", "--data-binary", json.dumps(body)]
    result = subprocess.run(
        deployment.cluster.in_switch(argv), capture_output=True, text=True, check=False
    )
    text, _, status = result.stdout.rpartition("\n")
    return int(status or 0), text


@pytest.fixture(scope="module")
def serving(deployment: Deployment) -> Deployment:
    """cofre-web on both application hosts, the demo models published, nginx ready."""
    first = deployment.cluster.host("app1")
    demo = _cofre(deployment, first, "demo")
    assert demo.returncode == 0, demo.stdout + demo.stderr
    for host in deployment.app_hosts():
        _start(deployment, host, "cofre-web.service")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if all(_ready(deployment, h) for h in deployment.app_hosts()):
            return deployment
        time.sleep(0.5)
    raise AssertionError("the application hosts did not become ready")


def _ready(deployment: Deployment, host: Host) -> bool:
    """/readyz of the host's own bind, asked from the control host (as nginx would)."""
    probe = ["curl", "-sf", "-o", "/dev/null", f"http://{host.address}:8000/readyz"]
    return subprocess.run(deployment.cluster.in_switch(probe), check=False).returncode == 0


def _psql(deployment: Deployment, sql: str) -> list[str]:
    db = deployment.cluster.host("db1")
    result = run(db.chroot(["psql", "-X", "-d", "cofre", "-tAc", sql], user="postgres"))
    return [line for line in result.stdout.splitlines() if line]


def test_predictions_through_nginx_reach_both_app_hosts_and_one_chain_verifies(
    serving: Deployment,
) -> None:
    key = _key(serving, "e2e")
    request_ids = []
    for _ in range(20):
        status, text = https(serving, "/api/v1/models/iris/predict", {"instances": [IRIS_ROW]}, key)
        assert status == 200, text
        request_ids.append(json.loads(text)["request_id"])
    audited = _psql(
        serving,
        "SELECT request_id FROM audit_records WHERE kind = 'prediction' AND outcome = 'ok'",
    )
    assert sorted(audited) == sorted(request_ids)
    # nginx balanced: each application host's access log has answers of its own.
    for host in serving.app_hosts():
        log = (_logs(serving, host) / "cofre-web.service.log").read_text(errors="replace")
        assert "POST /api/v1/models/iris/predict" in log, host.name
    for host in serving.app_hosts():
        verified = _cofre(serving, host, "audit", "verify")
        assert verified.returncode == 0, verified.stdout + verified.stderr


# -- taken apart under load -------------------------------------------------------------
THREADS = 4
REPORTS = REPO / "test-artifacts" / "multinode"


@dataclass
class Load:
    """A load process in the control host's namespace and the answers it wrote down."""

    process: subprocess.Popen[bytes]
    out: Path
    stop_file: Path

    def stop(self) -> list[dict[str, Any]]:
        self.stop_file.touch()
        self.process.wait(timeout=60)
        return [json.loads(line) for line in self.out.read_text().splitlines() if line]


def _key(deployment: Deployment, name: str) -> str:
    first = deployment.cluster.host("app1")
    created = _cofre(
        deployment, first, "keys", "create", "--name", name, "--role", "predictor", "--json"
    )
    assert created.returncode == 0, created.stderr
    return str(json.loads(created.stdout)["secret"])


def _load(deployment: Deployment, key: str, name: str, seconds: float = 120) -> Load:
    work = deployment.logs / name
    work.mkdir()
    body = work / "body.json"
    body.write_text(json.dumps({"instances": [IRIS_ROW]}))
    cert = deployment.cluster.host("proxy1").root / "etc/nginx/cofre-tls/cert.pem"
    out, stop_file = work / "answers.jsonl", work / "stop"
    argv = [sys.executable, str(REPO / "tests/support/load.py"), "--address", PROXY]
    argv += ["--name", SERVER_NAME, "--cacert", str(cert), "--key", key, "--body", str(body)]
    argv += ["--out", str(out), "--stop", str(stop_file), "--threads", str(THREADS)]
    argv += ["--seconds", str(seconds)]
    process = subprocess.Popen(deployment.cluster.in_switch(argv))
    return Load(process, out, stop_file)


def _ok_records(deployment: Deployment, since: float) -> set[str]:
    """Request ids of the `ok` prediction records written since `since` (a time.time())."""
    moment = datetime.fromtimestamp(since - 1, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    rows = _psql(
        deployment,
        "SELECT request_id FROM audit_records WHERE kind = 'prediction' AND outcome = 'ok' "
        f"AND at >= '{moment}'",
    )
    return set(rows)


def _problem_types(answers: list[dict[str, Any]]) -> dict[str, int]:
    """How many refusals of each problem type (urn:cofre:problem:TYPE) the answers hold."""
    kinds: dict[str, int] = {}
    for answer in answers:
        if answer["status"] != 200:
            found = re.search(r"urn:cofre:problem:([a-z-]+)", answer.get("body", ""))
            kind = found.group(1) if found else f"status {answer['status']}"
            kinds[kind] = kinds.get(kind, 0) + 1
    return kinds


def _said(answer: dict[str, Any]) -> str:
    return f"{answer['status']} {answer.get('error', answer.get('body', ''))[:80]}"


def _report(name: str, figures: dict[str, Any]) -> None:
    REPORTS.mkdir(parents=True, exist_ok=True)
    (REPORTS / f"{name}.json").write_text(json.dumps(figures, indent=2))
    print(f"{name}: {json.dumps(figures)}")


def test_sigkill_of_one_app_host_loses_at_most_what_was_in_flight(serving: Deployment) -> None:
    app1 = serving.cluster.host("app1")
    key = _key(serving, "kill")
    started = time.time()
    load = _load(serving, key, "kill")
    time.sleep(5)
    killed_at = time.time()
    victims = app1.pids_matching("gunicorn")
    assert victims, "no Gunicorn process on app1"
    for pid in victims:
        os.kill(pid, signal.SIGKILL)
    serving.processes.pop((app1.name, "cofre-web.service")).wait(timeout=30)
    time.sleep(10)
    answers = load.stop()
    ok = {a["request_id"] for a in answers if a["status"] == 200}
    failed = [a for a in answers if a["status"] != 200]
    audited = _ok_records(serving, started)
    after_kill = [a for a in answers if a["sent"] > killed_at + 1]
    figures = {
        "requests": len(answers),
        "answered_200": len(ok),
        "errors_seen_by_clients": len(failed),
        "errors": sorted(
            {str(a.get("status")) + " " + a.get("error", a.get("body", ""))[:80] for a in failed}
        ),
        "ok_records": len(audited),
        "answers_without_record": len(ok - audited),
        "records_of_answers_never_sent": len(audited - ok),
        "requests_after_the_kill": len(after_kill),
        "errors_after_the_kill": sum(1 for a in after_kill if a["status"] != 200),
    }
    _report("sigkill-app1", figures)
    assert ok - audited == set(), "answers without an audit record"
    assert len(audited - ok) <= THREADS, "records of answers never sent beyond those in flight"
    # What clients lose: the requests in flight (at most one per connection) and any
    # that nginx had just written to an idle keep-alive connection of the dead host.
    # nginx never passes a POST that reached a host on to the next one (a prediction is
    # not served twice; ansible/roles/cofre_nginx), so those get 502 too. None later.
    assert all(a["status"] == 502 and a["sent"] < killed_at + 1 for a in failed), figures
    assert len(failed) <= 2 * THREADS, figures
    assert figures["requests_after_the_kill"] > 0 and figures["errors_after_the_kill"] == 0
    verified = _cofre(serving, serving.cluster.host("app2"), "audit", "verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    _start(serving, app1, "cofre-web.service")  # back for the tests after this one
    deadline = time.monotonic() + 120
    while not _ready(serving, app1):
        assert time.monotonic() < deadline, "app1 did not come back"
        time.sleep(0.5)


def test_a_postgresql_restart_under_load_answers_503_then_recovers_unaudited_nothing(
    serving: Deployment,
) -> None:
    db = serving.cluster.host("db1")
    key = _key(serving, "restart")
    started = time.time()
    load = _load(serving, key, "restart")
    time.sleep(5)
    run(db.chroot(["/etc/init.d/postgresql", "stop"]))
    stopped_at = time.time()  # the server is down once the script returns
    time.sleep(5)
    down_until = time.time()
    run(db.chroot(["/etc/init.d/postgresql", "start"]))
    started_again = time.time()
    time.sleep(20)
    answers = load.stop()
    ok = {a["request_id"] for a in answers if a["status"] == 200}
    audited = _ok_records(serving, started)
    during = [a for a in answers if stopped_at < a["sent"] and a["answered"] < down_until]
    after = [a for a in answers if a["sent"] > started_again]
    first_ok_after = min((a["answered"] for a in after if a["status"] == 200), default=None)
    statuses_during = sorted({a["status"] for a in during})
    kinds_while_down = _problem_types(during)
    figures = {
        "requests": len(answers),
        "answered_200": len(ok),
        "errors_seen_by_clients": sum(1 for a in answers if a["status"] != 200),
        "statuses_while_down": statuses_during,
        "requests_while_down": len(during),
        "problems_while_down": kinds_while_down,
        "ok_records": len(audited),
        "answers_without_record": len(ok - audited),
        "seconds_to_recover": None if first_ok_after is None else first_ok_after - started_again,
    }
    _report("postgresql-restart", figures)
    assert ok - audited == set(), "answers without an audit record"
    assert during and set(statuses_during) <= {503}, figures
    # Refused before anything was served, whichever step met the database first.
    assert set(kinds_while_down) == {"audit-unavailable"}, figures
    assert first_ok_after is not None and figures["seconds_to_recover"] < 15, figures
    verified = _cofre(serving, serving.cluster.host("app2"), "audit", "verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr


def _scheduler_log(deployment: Deployment, host: Host) -> str:
    path = _logs(deployment, host) / "cofre-scheduler.service.log"
    return path.read_text(errors="replace") if path.exists() else ""


def _holder(deployment: Deployment, hosts: list[Host]) -> Host | None:
    """The host whose running scheduler last said it holds the lock."""
    for host in hosts:
        log = _scheduler_log(deployment, host)
        if "holds the lock" in log.rsplit("standing by", 1)[-1]:
            return host
    return None


def _backups(deployment: Deployment) -> list[tuple[str, str, str]]:
    """(scheduled_for, runner, outcome) of every scheduled backup run."""
    rows = _psql(
        deployment,
        "SELECT scheduled_for || '|' || runner || '|' || outcome FROM job_runs "
        "WHERE job = 'backup' AND scheduled_for IS NOT NULL ORDER BY scheduled_for",
    )
    return [tuple(row.split("|")) for row in rows]  # type: ignore[misc]


def _wait(condition: Any, seconds: float, what: str) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(1)
    raise AssertionError(f"not within {seconds} s: {what}")


def test_the_standby_scheduler_takes_over_and_each_backup_runs_once(serving: Deployment) -> None:
    hosts = serving.app_hosts()
    pids = {}
    for host in hosts:
        _start(serving, host, "cofre-scheduler.service")
        # The hosts share this machine's host name; a runner is told apart by its pid
        # (`ip netns exec`, chroot, env and cofre all exec: the pid started is its own).
        pids[host.name] = str(serving.processes[(host.name, "cofre-scheduler.service")].pid)
    holder = _wait(lambda: _holder(serving, hosts), 60, "a scheduler holds the lock")
    standby = next(h for h in hosts if h is not holder)

    def backed_up_by(host: Host) -> bool:
        return any(r[1].endswith(":" + pids[host.name]) and r[2] == "ok" for r in _backups(serving))

    _wait(lambda: backed_up_by(holder), 150, "the holder's first backup")
    stopped_at = time.monotonic()
    _stop(serving, holder.name, "cofre-scheduler.service")
    _wait(lambda: "holds the lock" in _scheduler_log(serving, standby), 90, "the takeover")
    took_over = time.monotonic() - stopped_at
    _wait(lambda: backed_up_by(standby), 150, "the standby's first backup")
    runs = _backups(serving)
    firings = [r[0] for r in runs]
    runners = {pid: name for name, pid in pids.items()}
    figures = {
        "takeover_seconds": round(took_over, 1),
        "backups": len(runs),
        "by_runner": sorted({runners.get(r[1].rsplit(":", 1)[-1], r[1]) for r in runs}),
        "failed": [r for r in runs if r[2] != "ok"],
        "firings_run_twice": sorted({f for f in firings if firings.count(f) > 1}),
    }
    _report("scheduler-failover", figures)
    assert figures["firings_run_twice"] == [], figures
    assert figures["failed"] == [], figures
    assert len(figures["by_runner"]) == 2, figures
