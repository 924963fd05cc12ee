"""Free disk space and the database's size: what /readyz, the gauges and the `storage`
job read, and the `disk` alert that fires before a file system fills and resolves
when space is back (issue 16, infrastructure)."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

from flask.testing import FlaskClient
from sqlalchemy import select

from governance.audit.records import AuditRecord
from governance.monitoring.alerts import DISK
from governance.monitoring.records import Alert, AlertDelivery
from governance.operations.storage import Storage, StoragePolicy, human_bytes, space_of
from server.container import Container
from server.jobs import storage_work
from tests.support.readiness import readyz

NEVER_LOW = StoragePolicy(min_free_percent=0, min_free_bytes=0)
# No file system here has 99.99 % free: every directory is judged low.
ALWAYS_LOW = StoragePolicy(min_free_percent=99.99, min_free_bytes=0)


def test_a_directory_not_made_yet_is_measured_on_the_file_system_that_will_hold_it(
    tmp_path: Path,
) -> None:
    space = space_of("backups", tmp_path / "not" / "made" / "yet")
    usage = shutil.disk_usage(tmp_path)
    assert space.total_bytes == usage.total
    assert abs(space.free_bytes - usage.free) < 64 * 1024**2  # other writers move it a little
    assert 0 < space.free_percent < 100


def test_directories_on_one_file_system_make_one_low_disk_naming_them_all(
    tmp_path: Path, cofre: Container
) -> None:
    directories = {"home": tmp_path / "a", "artifacts": tmp_path / "b"}
    storage = Storage(directories, cofre.engine, ALWAYS_LOW)
    [disk] = storage.low_disks()
    assert disk.directories == ("home", "artifacts") and disk.key == "disk-home+artifacts"
    assert Storage(directories, cofre.engine, NEVER_LOW).low_disks() == []


def test_the_byte_floor_alone_judges_a_disk_low(tmp_path: Path, cofre: Container) -> None:
    free = space_of("home", tmp_path).free_bytes
    bytes_only = StoragePolicy(min_free_percent=0, min_free_bytes=free * 2)
    assert len(Storage({"home": tmp_path}, cofre.engine, bytes_only).low_disks()) == 1


def test_the_database_size_is_read_on_sqlite_and_postgresql(cofre: Container) -> None:
    size = cofre.storage.database_bytes()
    assert size is not None and size > 100 * 1024  # the migrated schema, at least


def _directories(cofre: Container) -> set[str]:
    """Every directory the appliance writes; artifacts only when they are files (on
    PostgreSQL they live in the database, whose size is reported beside)."""
    files = cofre.settings.artifact_store == "files"
    return {"home", "backups"} | ({"artifacts"} if files else set())


def test_a_low_disk_fires_one_audited_alert_to_the_webhook_and_resolves_when_space_is_back(
    cofre: Container,
) -> None:
    cofre.alerts.webhook = True
    cofre.storage.policy = ALWAYS_LOW
    first, again = storage_work(cofre), storage_work(cofre)
    assert "alert 1 firing" in first and "alert" not in again  # fired once, not per run
    with cofre.read() as session:
        [alert] = session.scalars(select(Alert).where(Alert.kind == DISK)).all()
        assert alert.state == "firing" and alert.model_name == ""
        assert set(alert.evidence["directories"]) == _directories(cofre)
        assert alert.evidence["free_bytes"] > 0 and "free" in alert.evidence["reason"]
        [delivery] = session.scalars(select(AlertDelivery)).all()
        assert delivery.payload["rule"]["kind"] == DISK

    cofre.storage.policy = NEVER_LOW
    assert "alert 1 resolved" in storage_work(cofre)
    with cofre.read() as session:
        assert session.get(Alert, 1).state == "resolved"  # type: ignore[union-attr]
        kinds = session.scalars(
            select(AuditRecord.kind).where(AuditRecord.kind.like("alert.%"))
        ).all()
        audited = session.scalars(
            select(AuditRecord).where(AuditRecord.kind == "alert.firing")
        ).one()
    assert kinds == ["alert.firing", "alert.resolved"]
    assert audited.model_name is None and audited.details["breaching"]


def test_readiness_reports_free_space_and_the_database_and_says_when_it_is_low(
    client: FlaskClient, cofre: Container
) -> None:
    check = readyz(client, cofre).get_json()["checks"]["storage"]
    assert check["ok"] is True and check["advisory"] is True
    assert all(d in check["detail"] for d in _directories(cofre)) and "database " in check["detail"]
    cofre.storage.policy = ALWAYS_LOW
    ready = readyz(client, cofre)
    check = ready.get_json()["checks"]["storage"]
    assert check["ok"] is False and check["detail"].startswith("low on disk space: home")
    assert ready.status_code == 200  # advisory: the node still serves while space lasts


def test_the_gauges_show_each_directory_and_the_database(
    client: FlaskClient, cofre: Container, api_key: Callable[..., dict[str, str]]
) -> None:
    body = client.get("/metrics", headers=api_key("metrics")).get_data(as_text=True)
    for directory in _directories(cofre):
        assert f'cofre_disk_free_bytes{{directory="{directory}"}}' in body
        assert f'cofre_disk_size_bytes{{directory="{directory}"}}' in body
    [size] = [line for line in body.splitlines() if line.startswith("cofre_database_size_bytes")]
    assert float(size.split()[-1]) > 100 * 1024


def test_human_bytes() -> None:
    assert [human_bytes(n) for n in (512, 1536, 3 * 1024**3)] == ["512 B", "1.5 KiB", "3.0 GiB"]
