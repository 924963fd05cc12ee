"""site.yml applied twice to a fresh Debian host, then the appliance used through nginx.

The target (see conftest.py) has no running systemd, so the playbook runs with
cofre_service_start=false: it writes and enables the units but does not start them.
The test then checks the units with `systemd-analyze verify` and starts the services
with exactly the command lines, users, environment and working directories the
units hold. PostgreSQL and nginx are started by the playbook itself (through their
init scripts, which the service module falls back to without systemd).
"""

from __future__ import annotations

import json
import re
import secrets
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.ansible.conftest import ansible_env, playbook_command
from tests.support.hosts import Target, start_unit, unit_settings

pytestmark = [pytest.mark.ansible, pytest.mark.timeout(1500)]

ANSIBLE_DIR = Path(__file__).resolve().parents[2] / "ansible"
HOST = "cofre-target"
RECAP = re.compile(
    rf"^{HOST}\s*:\s*ok=(?P<ok>\d+)\s+changed=(?P<changed>\d+)\s+unreachable=(?P<unreachable>\d+)"
    r"\s+failed=(?P<failed>\d+)",
    re.MULTILINE,
)
IRIS_ROW = {
    "sepal length (cm)": 5.1,
    "sepal width (cm)": 3.5,
    "petal length (cm)": 1.4,
    "petal width (cm)": 0.2,
}


@dataclass
class Deployment:
    target: Target
    secrets: dict[str, str]
    runs: list[subprocess.CompletedProcess[str]]
    durations: list[float]
    logs: Path
    argv: list[str]
    env: dict[str, str]
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def playbook(self, *extra: str) -> subprocess.CompletedProcess[str]:
        """Apply site.yml (more ansible-playbook arguments may follow)."""
        result = subprocess.run(
            [*self.argv, *extra], cwd=ANSIBLE_DIR, env=self.env, capture_output=True, text=True
        )
        assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
        return result


def _inventory(
    base: Path, key: Path, wheels: Path, secret_values: dict[str, str]
) -> tuple[Path, Path, Path]:
    """The single-node example's group_vars, a vault of fresh secrets, this host."""
    inventory = base / "inventory"
    shutil.copytree(ANSIBLE_DIR / "inventories/single-node/group_vars", inventory / "group_vars")
    for example in inventory.glob("group_vars/*/*.example"):
        example.unlink()
    hosts = {
        "all": {
            "children": {
                group: {"hosts": {HOST: None}}
                for group in ("cofre_database", "cofre_app", "cofre_proxy")
            },
            "vars": {
                "ansible_host": "127.0.0.1",
                "ansible_user": "root",
                "ansible_ssh_private_key_file": str(key),
                "ansible_ssh_common_args": "-o StrictHostKeyChecking=no "
                "-o UserKnownHostsFile=/dev/null -o LogLevel=ERROR",
                "ansible_python_interpreter": "/usr/bin/python3",
            },
        }
    }
    (inventory / "hosts.yml").write_text(yaml.safe_dump(hosts))
    vault = inventory / "group_vars/all/vault.yml"
    vault.write_text(yaml.safe_dump(secret_values))
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
                # No systemd as PID 1 here; units are started by the test (see above).
                "cofre_service_start": False,
                # The target's apt lists and .deb files are cached; it has no network.
                "cofre_apt_update_cache": False,
                "cofre_postgresql_apt_update_cache": False,
                "cofre_nginx_apt_update_cache": False,
                "cofre_nginx_server_name": HOST,
            }
        )
    )
    return inventory, password_file, overrides


def _tool(name: str) -> str:
    """An Ansible command from the environment running the tests."""
    return str(Path(sys.executable).parent / name)


def run(argv: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """Run a command, failing with its output when it fails."""
    result = subprocess.run(argv, capture_output=True, text=True, check=False, **kwargs)
    assert result.returncode == 0, (argv[:6], result.stdout[-4000:], result.stderr[-4000:])
    return result


@pytest.fixture(scope="module")
def deployment(
    target: Target, ssh_key: Path, wheels: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployment]:
    base = tmp_path_factory.mktemp("deploy")
    secret_values = {
        "vault_cofre_admin_password": secrets.token_urlsafe(18),
        "vault_cofre_db_app_password": secrets.token_urlsafe(18),
        "vault_cofre_db_owner_password": secrets.token_urlsafe(18),
    }
    inventory, password_file, overrides = _inventory(base, ssh_key, wheels, secret_values)
    argv = target.in_netns([*playbook_command(inventory, password_file, overrides), "-v"])
    env = ansible_env(base)
    logs = base / "logs"
    logs.mkdir()
    deployed = Deployment(target, secret_values, [], [], logs, argv, env)
    for _ in range(2):
        started = time.monotonic()
        deployed.runs.append(deployed.playbook())
        deployed.durations.append(time.monotonic() - started)
    yield deployed


def _recap(result: subprocess.CompletedProcess[str]) -> dict[str, int]:
    match = RECAP.search(result.stdout)
    assert match, result.stdout[-2000:]
    return {name: int(value) for name, value in match.groupdict().items()}


def test_first_run_changes_and_second_run_changes_nothing(deployment: Deployment) -> None:
    first, second = (_recap(result) for result in deployment.runs)
    print(f"playbook runs took {deployment.durations[0]:.0f}s and {deployment.durations[1]:.0f}s")
    assert first["changed"] > 10 and first["failed"] == 0
    assert second == {**second, "changed": 0, "failed": 0, "unreachable": 0}, deployment.runs[
        1
    ].stdout[-6000:]


def test_no_secret_appears_in_the_playbook_output(deployment: Deployment) -> None:
    for result in deployment.runs:
        for name, value in deployment.secrets.items():
            assert value not in result.stdout + result.stderr, f"{name} leaked"


def _owner_and_mode(root: Path, inside: str) -> tuple[str, int]:
    info = (root / inside.lstrip("/")).stat()
    users = {
        int(fields[2]): fields[0]
        for fields in (line.split(":") for line in (root / "etc/passwd").read_text().splitlines())
    }
    return users.get(info.st_uid, str(info.st_uid)), info.st_mode & 0o7777


def test_keys_config_and_tls_key_are_private(deployment: Deployment) -> None:
    root = deployment.target.root
    keys = root / "etc/cofre/keys"
    assert _owner_and_mode(root, "/etc/cofre/keys") == ("cofre", 0o700)
    files = sorted(keys.iterdir())
    assert {path.name for path in files} >= {"kek.current", "pseudonym.key", "audit-signing.key"}
    for path in files:
        assert _owner_and_mode(root, f"/etc/cofre/keys/{path.name}") == ("cofre", 0o600), path
    assert _owner_and_mode(root, "/etc/cofre/cofre.toml") == ("cofre", 0o600)
    assert _owner_and_mode(root, "/etc/cofre") == ("root", 0o750)
    assert _owner_and_mode(root, "/var/lib/cofre") == ("cofre", 0o700)
    assert _owner_and_mode(root, "/etc/nginx/cofre-tls/key.pem") == ("root", 0o600)
    # The key directory is not inside the data directory (backups never hold it).
    assert not (root / "var/lib/cofre/keys").exists()


def test_rendered_units_verify(deployment: Deployment) -> None:
    root = deployment.target.root
    for unit in ("cofre-web.service", "cofre-scheduler.service"):
        assert (root / "etc/systemd/system/multi-user.target.wants" / unit).is_symlink(), (
            f"{unit} not enabled"
        )
    result = subprocess.run(
        deployment.target.chroot(
            [
                "systemd-analyze",
                "verify",
                "/etc/systemd/system/cofre-web.service",
                "/etc/systemd/system/cofre-scheduler.service",
            ]
        ),
        capture_output=True,
        text=True,
        check=False,
    )
    # Exit 0 and not a word: no unknown key, bad path or missing binary in either unit.
    assert result.returncode == 0, result.stdout + result.stderr
    assert "cofre" not in result.stdout + result.stderr, result.stdout + result.stderr


# -- the appliance, started as its units say, used through nginx -----------------------


def _unit(root: Path, name: str) -> dict[str, str]:
    return unit_settings(root, name)


def _start_unit(deployment: Deployment, name: str) -> subprocess.Popen[bytes]:
    return start_unit(deployment.target, name, deployment.logs)


def _cofre(deployment: Deployment, *args: str) -> subprocess.CompletedProcess[str]:
    """`cofre ARGS` on the target as the service user, with the web unit's settings."""
    unit = _unit(deployment.target.root, "cofre-web.service")
    command = [
        "/usr/bin/env",
        "-i",
        "PATH=/usr/bin:/bin",
        *shlex.split(unit.get("Environment", "")),
        "/opt/cofre/venv/bin/cofre",
        *args,
    ]
    return subprocess.run(
        deployment.target.chroot(command, user="cofre"),
        capture_output=True,
        text=True,
        check=False,
    )


def _https(
    deployment: Deployment, path: str, body: dict[str, object] | None = None, key: str = ""
) -> tuple[int, str]:
    """A request through nginx over TLS, checked against the deployed certificate."""
    cert = deployment.target.root / "etc/nginx/cofre-tls/cert.pem"
    argv = [
        "curl",
        "-sS",
        "--max-time",
        "30",
        "--cacert",
        str(cert),
        "--resolve",
        f"{HOST}:443:127.0.0.1",
        "-w",
        "\n%{http_code}",
        f"https://{HOST}{path}",
    ]
    if key:
        argv += ["-H", f"Authorization: Bearer {key}"]
    if body is not None:
        payload = deployment.logs / "request.json"
        payload.write_text(json.dumps(body))
        argv += ["-H", "Content-Type: application/json", "--data-binary", f"@{payload}"]
    result = run(deployment.target.in_netns(argv))
    text, _, status = result.stdout.rpartition("\n")
    return int(status), text


@pytest.fixture(scope="module")
def serving(deployment: Deployment) -> Iterator[Deployment]:
    """cofre-web (and the scheduler, where `cofre scheduler` exists) running."""
    demo = _cofre(deployment, "demo")
    assert demo.returncode == 0, demo.stdout + demo.stderr
    units = ["cofre-web.service"]
    if _cofre(deployment, "scheduler", "--help").returncode == 0:
        units.append("cofre-scheduler.service")
    try:
        for unit in units:
            _start(deployment, unit)
        yield deployment
    finally:
        for unit in list(deployment.processes):
            _stop(deployment, unit)


def _start(deployment: Deployment, unit: str) -> None:
    deployment.processes[unit] = _start_unit(deployment, unit)
    if unit == "cofre-web.service":
        deadline = time.monotonic() + 60
        while _https(deployment, "/readyz")[0] != 200 and time.monotonic() < deadline:
            time.sleep(0.5)


def _stop(deployment: Deployment, unit: str) -> None:
    process = deployment.processes.pop(unit)
    process.send_signal(signal.SIGINT)  # Gunicorn's quick shutdown
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def test_readyz_answers_through_nginx_over_tls(serving: Deployment) -> None:
    status, text = _https(serving, "/readyz")
    assert status == 200, text + (serving.logs / "cofre-web.service.log").read_text()[-3000:]
    status, _ = _https(serving, "/healthz")
    assert status == 200


def test_http_redirects_to_https(serving: Deployment) -> None:
    result = run(
        serving.target.in_netns(
            [
                "curl",
                "-sS",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code} %{redirect_url}",
                "--resolve",
                f"{HOST}:80:127.0.0.1",
                f"http://{HOST}/readyz",
            ]
        )
    )
    assert result.stdout == f"301 https://{HOST}/readyz"


def test_prediction_through_nginx_is_audited_and_the_chain_verifies(serving: Deployment) -> None:
    created = _cofre(serving, "keys", "create", "--name", "e2e", "--role", "predictor", "--json")
    assert created.returncode == 0, created.stderr
    key = json.loads(created.stdout)["secret"]
    status, text = _https(
        serving, "/api/v1/models/iris/predict", {"instances": [IRIS_ROW]}, key=key
    )
    assert status == 200, text + (serving.logs / "cofre-web.service.log").read_text()[-3000:]
    answer = json.loads(text)
    assert answer["name"] == "iris" and len(answer["predictions"]) == 1
    rows = _psql(
        serving,
        "SELECT kind || ' ' || outcome || ' ' || model_name FROM audit_records "
        f"WHERE request_id = '{answer['request_id']}'",
    )
    assert rows == ["prediction ok iris"]
    verified = _cofre(serving, "audit", "verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr


def test_a_body_over_the_limit_is_refused(serving: Deployment) -> None:
    status, _ = _https(serving, "/api/v1/models/iris/predict", {"pad": "x" * 3_000_000})
    assert status == 413


def _psql(deployment: Deployment, sql: str) -> list[str]:
    result = run(
        deployment.target.chroot(["psql", "-X", "-d", "cofre", "-tAc", sql], user="postgres")
    )
    return result.stdout.splitlines()


def test_the_app_role_cannot_change_or_delete_audit_records(deployment: Deployment) -> None:
    password = deployment.secrets["vault_cofre_db_app_password"]
    for sql in (
        "UPDATE audit_records SET status = 0",
        "DELETE FROM audit_records",
        "TRUNCATE audit_records",
        "DELETE FROM audit_head",
        "CREATE TABLE intruder (id int)",
    ):
        result = subprocess.run(
            deployment.target.chroot(
                [
                    "/usr/bin/env",
                    f"PGPASSWORD={password}",
                    "psql",
                    "-X",
                    "-v",
                    "ON_ERROR_STOP=1",
                    "host=127.0.0.1 dbname=cofre user=cofre_app",
                    "-c",
                    sql,
                ]
            ),
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode != 0 and "permission denied" in result.stderr, (sql, result)
    assert _psql(deployment, "SELECT count(*) > 0 FROM audit_records") == ["t"]


UPGRADE_MIGRATION = '''"""Test-only revision on a branch of its own: the upgrade must apply it."""

import sqlalchemy as sa
from alembic import op

revision = "9900_upgrade_check"
down_revision = "0001"
branch_labels = ("upgradecheck",)
depends_on = None


def upgrade() -> None:
    op.create_table("upgrade_check", sa.Column("id", sa.Integer(), primary_key=True))


def downgrade() -> None:
    op.drop_table("upgrade_check")
'''
AUDIT_FINGERPRINT = (
    "SELECT count(*) || ' ' || coalesce(md5(string_agg(hash, ',' ORDER BY seq)), '-') "
    "FROM audit_records WHERE seq <= {last}"
)


def test_upgrade_to_a_newer_wheel_migrates_and_keeps_every_record(
    serving: Deployment, build_wheelhouse: Any, tmp_path: Path
) -> None:
    """Runs last: it replaces the deployed version."""
    last = int(_psql(serving, "SELECT max(seq) FROM audit_records")[0])
    before = _psql(serving, AUDIT_FINGERPRINT.format(last=last))
    migration = "governance/migrations/versions/9900_upgrade_check.py"
    wheels = build_wheelhouse(tmp_path / "wheels", "99.0.0", {migration: UPGRADE_MIGRATION})
    result = serving.playbook("-e", f"cofre_wheelhouse={wheels}")
    assert _recap(result)["changed"] > 0
    shown = run(serving.target.chroot(["/opt/cofre/venv/bin/pip", "show", "cofre"]))
    assert "Version: 99.0.0" in shown.stdout
    assert "9900_upgrade_check" in _psql(serving, "SELECT version_num FROM alembic_version")
    granted = "SELECT has_table_privilege('cofre_app', 'public.upgrade_check', 'INSERT')"
    assert _psql(serving, granted) == ["t"]
    assert _psql(serving, AUDIT_FINGERPRINT.format(last=last)) == before
    # What the units' restart handler does under systemd.
    _stop(serving, "cofre-web.service")
    _start(serving, "cofre-web.service")
    status, text = _https(serving, "/readyz")
    assert status == 200, text
    verified = _cofre(serving, "audit", "verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr
