"""Backups end to end on SQLite and PostgreSQL: run, verify, restore, drill, prune,
and the promise that no key material ever enters a backup."""

from __future__ import annotations

import base64
import io
import tarfile
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from backups.archive import ArchiveReader
from backups.service import BACKUP_KEY
from governance.accounts.actor import SYSTEM
from governance.audit.records import AuditRecord
from governance.errors import Conflict, IntegrityError
from governance.registry.service import PublishRequest
from server.container import Container
from tests.support.databases import empty_databases
from tests.support.models import CARD, cancer_pipeline, iris_classifier


def publish(
    cofre: Container,
    name: str,
    artifact: bytes | None = None,
    aliases: tuple[str, ...] | list[str] = (),
) -> None:
    request = PublishRequest(
        name, artifact or iris_classifier(), CARD, aliases=list(aliases), allow_duplicate=True
    )
    with cofre.write() as session:
        cofre.registry.publish(session, SYSTEM, request)


@pytest.fixture
def populated(cofre: Container) -> Container:
    publish(cofre, "iris", aliases=["production"])
    publish(cofre, "iris")
    publish(cofre, "cancer", cancer_pipeline(), aliases=["production"])
    return cofre


def _kinds(cofre: Container) -> list[str]:
    with cofre.read() as session:
        return [r.kind for r in session.scalars(select(AuditRecord).order_by(AuditRecord.seq))]


def _scratch_url(database_url: str, request: pytest.FixtureRequest) -> str | None:
    """None for SQLite (a file in the target directory), else another empty database."""
    if database_url.startswith("sqlite"):
        return None
    server: str = request.getfixturevalue("postgres_server")
    factory = request.node.stash.setdefault(_DATABASES, None)
    if factory is None:
        context = empty_databases(server)
        factory = context.__enter__()
        request.addfinalizer(lambda: context.__exit__(None, None, None))
    return factory()


_DATABASES = pytest.StashKey[Any]()


def test_backup_restores_to_a_working_appliance(
    populated: Container, tmp_path: Path, database_url: str, request: pytest.FixtureRequest
) -> None:
    entry = populated.backups.run(SYSTEM)
    assert entry.verified and entry.path.name.endswith(".cofre-backup")
    with populated.read() as session:
        head = populated.audit.head(session)
    manifest = entry.state["manifest"]
    if populated.settings.artifact_store == "files":
        assert manifest["members"] == 8  # database, 3 artifacts, 3 compiled models, checkpoints
    else:  # the artifacts are rows of the database snapshot
        assert manifest["members"] == 2
    assert manifest["audit_seq"] <= head[0]
    report = populated.backups.restore(
        entry.id, tmp_path / "restored", SYSTEM, _scratch_url(database_url, request)
    )
    assert report.models_loaded == 3  # every artifact came back, whichever the place
    assert report.audit_seq == manifest["audit_seq"]
    config = (tmp_path / "restored" / "cofre.toml").read_text()
    assert f'artifact_store = "{populated.settings.artifact_store}"' in config
    assert report.recorded_in_live_log
    assert {"backup.created", "backup.verified", "backup.restored"} <= set(_kinds(populated))


def test_no_key_material_in_the_backup_even_decrypted(populated: Container) -> None:
    entry = populated.backups.run(SYSTEM)
    raw = entry.path.read_bytes()
    with ArchiveReader(entry.path, populated.keyring.secret(BACKUP_KEY)) as reader:
        plain = reader.read()
        reader.drain()
    members = _members(plain)
    assert any(name.startswith("database/") for name in members)
    blobs = [raw, plain, *members.values()]
    # Every secret file (kek.current only names the current KEK; its id is in the DB).
    key_files = sorted(populated.settings.key_dir.glob("*.key"))
    names = {p.name for p in key_files}
    assert names >= {
        "backup.key",
        "pseudonym.key",
        "audit-signing.key",
        "audit-mac.key",
        "session.key",
    }
    assert any(n.startswith("kek-") for n in names)
    for key_file in key_files:
        for form in _encodings(key_file.read_bytes()):
            for blob in blobs:
                assert form not in blob, f"material of {key_file.name} found in the backup"


def _members(plain: bytes) -> dict[str, bytes]:
    out = {}
    with tarfile.open(fileobj=io.BytesIO(plain), mode="r:") as tar:
        for info in tar:
            stream = tar.extractfile(info)
            out[info.name] = stream.read() if stream else b""
    return out


def _encodings(material: bytes) -> list[bytes]:
    assert len(material) >= 32
    return [
        material,
        material.hex().encode(),
        base64.b64encode(material),
        base64.urlsafe_b64encode(material),
    ]


def test_a_tampered_backup_fails_verification_and_is_recorded(populated: Container) -> None:
    entry = populated.backups.run(SYSTEM)
    data = bytearray(entry.path.read_bytes())
    data[len(data) // 2] ^= 0x01
    entry.path.write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match="failed authentication"):
        populated.backups.verify(entry.id, SYSTEM)
    assert not populated.backups.catalog.get(entry.id).verified
    with populated.read() as session:
        last = session.scalars(select(AuditRecord).order_by(AuditRecord.seq.desc())).first()
        assert last is not None and (last.kind, last.outcome) == ("backup.verified", "failed")


def test_restore_refuses_a_non_empty_target(populated: Container, tmp_path: Path) -> None:
    entry = populated.backups.run(SYSTEM)
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "something").write_text("x")
    with pytest.raises(Conflict):
        populated.backups.restore(entry.id, tmp_path / "busy", SYSTEM)


def test_drill_records_result_and_duration(populated: Container) -> None:
    entry = populated.backups.run(SYSTEM)
    report = populated.backups.drill(SYSTEM)
    assert report.backup_id == entry.id and report.models_loaded == 3
    drill = populated.backups.catalog.get(entry.id).state["drill"]
    assert drill["ok"] is True and drill["seconds"] > 0
    assert "backup.drill" in _kinds(populated)
    leftovers = [p.name for p in populated.settings.backup_dir.iterdir() if p.name.startswith(".")]
    assert leftovers == [".catalog.lock"]  # no scratch restore is left behind


def test_prune_never_deletes_the_newest_verified(
    populated: Container, overrides: dict[str, Any]
) -> None:
    first = populated.backups.run(SYSTEM)
    second = populated.backups.run(SYSTEM)
    populated.backups.catalog.update_state(second.id, verification={"ok": False})
    removed = populated.backups.prune(SYSTEM)  # default policy: one per day
    ids = {e.id for e in populated.backups.entries()}
    # The newest of the day (second) stays, and so does the newest *verified* (first).
    assert removed == [] and ids == {first.id, second.id}
    third = populated.backups.run(SYSTEM)
    assert set(populated.backups.prune(SYSTEM)) == {first.id, second.id}
    assert {e.id for e in populated.backups.entries()} == {third.id}
    assert "backup.pruned" in _kinds(populated)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_mirror_gets_a_verified_copy_and_is_pruned_too(
    overrides: dict[str, Any], tmp_path: Path
) -> None:
    from governance.accounts.actor import SYSTEM as actor
    from server import create_app
    from server.extension import EXTENSION
    from server.setup import initialise

    overrides["backup_mirror_dir"] = str(tmp_path / "mirror")
    app = create_app(overrides)
    cofre: Container = app.extensions[EXTENSION]
    initialise(cofre, actor, "admin", "a long enough password")
    first = cofre.backups.run(actor)
    assert first.state["mirror"]["outcome"] == "ok"
    mirrored = tmp_path / "mirror" / first.path.name
    assert mirrored.read_bytes() == first.path.read_bytes()
    cofre.backups.run(actor)
    cofre.backups.prune(actor)
    assert not mirrored.exists()
    cofre.close()


def test_prune_keeps_the_newest_drilled_backup(populated: Container) -> None:
    """Issue 14.16, end to end: the drilled backup is not the newest of its day."""
    drilled = populated.backups.run(SYSTEM)
    populated.backups.drill(SYSTEM)
    newer = populated.backups.run(SYSTEM)
    assert populated.backups.prune(SYSTEM) == []  # default policy: one per day
    assert {e.id for e in populated.backups.entries()} == {drilled.id, newer.id}
