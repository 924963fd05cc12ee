"""First-time and repeated set-up of an appliance (what `cofre init` does)."""

from __future__ import annotations

import os
import secrets

from governance.accounts.actor import Actor
from governance.audit import macs
from governance.errors import IntegrityError
from governance.migrations import is_applied, upgrade
from governance.registry.artifacts import ArtifactFiles
from server.container import Container


def initialise(
    container: Container, actor: Actor, admin_username: str, admin_password: str | None
) -> tuple[list[str], str | None]:
    """Create what is missing; return (changes made, generated admin password or None)."""
    settings = container.settings
    changes: list[str] = []
    directories = [settings.home, settings.backup_dir]
    if settings.artifact_store == "files":
        directories.append(settings.artifact_dir)
    for directory in directories:
        if not directory.exists():
            directory.mkdir(parents=True, mode=0o700)
            changes.append(f"created {directory}")
    changes += [f"created key {name}" for name in container.keyring.ensure()]
    adopt = not is_applied(container.engine, macs.REVISION)
    before, after = upgrade(container.engine)
    if before != after:
        changes.append(f"migrated the database from {before or 'empty'} to {after}")
    _restrict_sqlite_file(container)
    changes += _move_artifact_files_into_the_database(container)
    if adopt:
        changes += _adopt_audit_head(container, actor)
    generated = None
    with container.write() as session:
        if not container.accounts.users(session):
            generated = None if admin_password else secrets.token_urlsafe(18)
            container.accounts.create_user(
                session, actor, admin_username, "admin", admin_password or generated or ""
            )
            changes.append(f"created admin user {admin_username!r}")
    return changes, generated


def _adopt_audit_head(container: Container, actor: Actor) -> list[str]:
    """In the run that adds audit MACs, and only then, seal the head of the log found
    (see governance/audit/macs.py): a later run never vouches for a head again."""
    with container.write() as session:
        seq = container.audit.adopt_head(session, actor)
    if not seq:
        return []
    return [f"sealed the audit head at record {seq} (the records before it predate audit MACs)"]


def _move_artifact_files_into_the_database(container: Container) -> list[str]:
    """With artifact_store = "database", artifacts an earlier release (or the files
    store) left on disk go into the table, byte for byte; each file is removed only
    once its row reads back the same. Sealed as they are, they need no key for it."""
    settings = container.settings
    if settings.artifact_store != "database" or not settings.artifact_dir.is_dir():
        return []
    files, table = ArtifactFiles(settings.artifact_dir), container.artifact_place
    moved = 0
    for name in list(files.names()):
        sealed = files.read(name)
        if sealed is None:
            continue
        stored = table.read(name)
        if stored is None:
            table.write(name, sealed)
            stored = table.read(name)
        if stored != sealed:
            where = f"{files.directory} and the database"
            raise IntegrityError(f"artifact {name} differs between {where}")
        files.remove(name)
        moved += 1
    return [f"moved {moved} artifact files into the database"] if moved else []


def _restrict_sqlite_file(container: Container) -> None:
    url = container.settings.database_url
    if url.startswith("sqlite:///"):
        path = url.removeprefix("sqlite:///")
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(path + suffix):
                os.chmod(path + suffix, 0o600)
