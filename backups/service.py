"""Backup use cases: run, verify, restore, drill, prune; each one an audit event.

A backup is the database snapshot, the encrypted artifacts as they are on disk
(their data keys stay wrapped in the database; with artifact_store = "database"
the artifacts are rows of the snapshot itself), the signed audit checkpoints
and a manifest, streamed into one encrypted archive. Key files are never read
into it: KEKs and every other secret stay in the key directory, which a restored
appliance is configured to use; so the audit MAC key travels as the other keys do,
and the restored chain's MACs (governance/audit/macs.py) verify and take new appends.

A backup signs a checkpoint only over a chain that verifies; when it does not,
the backup is still written (it may be all there is) and its manifest says the
chain was broken and where. A restore (and the restore drill) destroys again
every data key the erasure journal names, so erasures made after the backup
was taken stay in force (governance/subjects/journal.py).
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import secrets
import shutil
import tarfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, Any

from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from backups import snapshot
from backups.archive import ArchiveReader, ArchiveWriter, file_sha256
from backups.catalog import BackupEntry, Catalog, new_id
from backups.manifest import MANIFEST_NAME, Manifest, Member, compare
from backups.retention import Candidate, Policy, to_keep
from governance.accounts.actor import Actor
from governance.audit.checkpoints import ChainBroken, ChainState, Checkpoints
from governance.audit.service import AuditEvent, AuditLog
from governance.clock import isoformat, utcnow
from governance.crypto.keyring import KeyRing
from governance.db import make_engine, make_session_factory, read_session, write_transaction
from governance.errors import CofreError, Conflict, IntegrityError, NotFound
from governance.migrations import current_revision
from governance.operations.transactions import Transactions
from governance.registry.artifacts import ArtifactFiles, ArtifactStore, ArtifactTable
from governance.registry.records import ModelVersion
from governance.registry.retirement import is_shredded
from governance.registry.service import Registry
from governance.subjects.journal import ErasureJournal
from governance.subjects.shredding import shred

BACKUP_KEY = "backup.key"
CHECKPOINTS_MEMBER = "audit/checkpoints.json"
_MEMBER_NAME = re.compile(
    r"^(database/cofre\.(sqlite|pgdump)|artifacts/[A-Za-z0-9][A-Za-z0-9._-]*|"
    r"audit/checkpoints\.json|manifest\.json)$"
)


Progress = Callable[[int], None]


class DrillFailed(CofreError):
    """The restore drill could not bring a backup back to a working state."""


@dataclass(frozen=True)
class BackupConfig:
    database_url: str
    artifact_dir: Path
    artifact_store: str  # "files" (archived from artifact_dir) or "database" (in the snapshot)
    backup_dir: Path
    mirror_dir: Path | None
    policy: Policy


@dataclass(frozen=True)
class RestoreReport:
    backup_id: str
    home: Path
    database_url: str
    models_loaded: int
    audit_seq: int
    audit_head_hash: str
    seconds: float
    recorded_in_live_log: bool = True
    erasures_reapplied: int = 0

    def as_dict(self) -> dict[str, Any]:
        out = dict(self.__dict__)
        out["home"] = str(self.home)
        out["database_url"] = _mask(self.database_url)
        return out


class Backups:
    """Backup use cases over the live appliance's database, artifacts and keys."""

    def __init__(
        self, config: BackupConfig, keyring: KeyRing, audit: AuditLog, tx: Transactions
    ) -> None:
        self.config = config
        self.keyring = keyring
        self.audit = audit
        self.tx = tx
        self.catalog = Catalog(config.backup_dir)
        self.checkpoints = Checkpoints(audit, tx)
        self.erasures = ErasureJournal(keyring.key_dir)

    # -- run --------------------------------------------------------------------------
    def run(self, actor: Actor, progress: Progress | None = None) -> BackupEntry:
        """Write, verify and (if configured) mirror a new backup; `progress` gets the
        number of bytes archived as they go (for a progress bar)."""
        self.catalog.ensure()
        self.catalog.clean_leftovers()
        backup_id = new_id(utcnow())
        try:
            chain = self._checkpoint()  # the backup carries a signed head, if it verifies
            manifest, size, sha = self._write(backup_id, progress, chain)
            self.verify(backup_id, actor)
            mirror = self._mirror(backup_id, sha)
        except Exception as exc:
            self._event(actor, "backup.failed", {"id": backup_id, "error": _reason(exc)}, "failed")
            raise
        details = {"id": backup_id, "size": size, "sha256": sha, "mirror": mirror}
        details["audit_chain_ok"] = manifest.audit_chain_ok
        self._event(actor, "backup.created", details | _head(manifest))
        if mirror.startswith("failed"):
            raise IntegrityError(f"backup {backup_id} written, but the mirror copy {mirror}")
        return self.catalog.get(backup_id)

    def _checkpoint(self) -> ChainState:
        try:
            return self.checkpoints.sign_verified()[1]
        except ChainBroken:
            with self.tx.read() as session:
                return self.checkpoints.state(session)

    def _write(
        self, backup_id: str, progress: Progress | None, chain: ChainState
    ) -> tuple[Manifest, int, str]:
        staging = self.catalog.staging(backup_id)
        try:
            copy = snapshot.take(self.config.database_url, staging)
            created = isoformat(utcnow())
            header = {"id": backup_id, "created_at": created, "format_version": 1}
            writer = ArchiveWriter(self.catalog.archive_path(backup_id), self._key(), header)
            try:
                manifest = self._fill(writer, copy, backup_id, created, progress, chain)
                size, sha = writer.commit()
            except BaseException:
                writer.abort()
                raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        self.catalog.update_state(
            backup_id, created_at=created, manifest=manifest.summary(), archive_sha256=sha
        )
        return manifest, size, sha

    def _fill(
        self,
        writer: ArchiveWriter,
        copy: snapshot.DatabaseCopy,
        backup_id: str,
        created: str,
        progress: Progress | None,
        chain: ChainState,
    ) -> Manifest:
        manifest = Manifest(
            id=backup_id,
            created_at=created,
            dialect=copy.dialect,
            schema_revision=copy.schema_revision,
            audit_seq=copy.audit_seq,
            audit_head_hash=copy.audit_head_hash,
            audit_chain_ok=chain.ok,
            audit_chain_verified_to=chain.seq if chain.ok else None,
            audit_chain_problem=None if chain.ok else f"record {chain.bad_seq}: {chain.reason}",
        )
        with tarfile.open(fileobj=writer, mode="w|", format=tarfile.PAX_FORMAT) as tar:  # type: ignore[call-overload]
            manifest.members.append(_add_file(tar, copy.member, copy.path, progress))
            # Files already exist before their version is committed, so every version
            # in the snapshot finds its (immutable) artifact here.
            for path in self._artifact_files():
                member = _add_file(tar, f"artifacts/{path.name}", path, progress)
                manifest.members.append(member)
            checkpoints = _json_bytes(copy.checkpoints)
            manifest.members.append(_add_bytes(tar, CHECKPOINTS_MEMBER, checkpoints))
            _add_bytes(tar, MANIFEST_NAME, manifest.to_bytes())
        return manifest

    def _mirror(self, backup_id: str, sha: str) -> str:
        if self.config.mirror_dir is None:
            return "none"
        try:
            copied = Catalog(self.config.mirror_dir).copy_in(
                self.catalog.archive_path(backup_id), backup_id
            )
            ok = file_sha256(copied) == sha
        except OSError as exc:
            outcome = f"failed: {type(exc).__name__}: {exc.strerror or exc}"
        else:
            outcome = "ok" if ok else "failed: the copy's SHA-256 differs"
        self.catalog.update_state(backup_id, mirror={"at": isoformat(utcnow()), "outcome": outcome})
        return outcome

    def estimate_bytes(self) -> int:
        """Roughly what a backup will archive (the database file, or 0 for PostgreSQL,
        plus the artifacts): the length of a progress bar."""
        total = sum(p.stat().st_size for p in self._artifact_files())
        if snapshot.dialect_of(self.config.database_url) == "sqlite":
            database = snapshot.sqlite_path(self.config.database_url)
            total += database.stat().st_size if database.exists() else 0
        return total

    def _artifact_files(self) -> list[Path]:
        if self.config.artifact_store == "database":
            return []  # rows of the database snapshot
        directory = self.config.artifact_dir
        return [directory / name for name in ArtifactFiles(directory).names()]

    # -- listing ------------------------------------------------------------------------
    def entries(self) -> list[BackupEntry]:
        return self.catalog.entries()

    # -- verify ---------------------------------------------------------------------------
    def verify(self, backup_id: str, actor: Actor) -> Manifest:
        """Decrypt every chunk and check every member against the manifest."""
        try:
            with self.catalog.locked(exclusive=False):
                manifest = self._read(self.catalog.get(backup_id).path, _discard)
        except CofreError as exc:
            self._mark(backup_id, "verification", False, exc.detail)
            self._event(actor, "backup.verified", {"id": backup_id, "error": exc.detail}, "failed")
            raise
        self._mark(backup_id, "verification", True, f"{len(manifest.members)} members intact")
        self._event(actor, "backup.verified", {"id": backup_id} | _head(manifest))
        return manifest

    def _read(self, path: Path, sink: Callable[[str, IO[bytes]], Member]) -> Manifest:
        seen: dict[str, Member] = {}
        manifest_bytes: bytes | None = None
        with ArchiveReader(path, self._key()) as reader:
            try:
                with tarfile.open(fileobj=reader, mode="r|") as tar:  # type: ignore[call-overload]
                    for info in tar:
                        stream = _member_stream(tar, info)
                        if info.name == MANIFEST_NAME:
                            manifest_bytes = stream.read()
                        else:
                            seen[info.name] = sink(info.name, stream)
            except tarfile.TarError:
                raise IntegrityError(
                    f"{path.name}: the archive's content is not readable"
                ) from None
            reader.drain()
            header_id = reader.header.get("id")
        if manifest_bytes is None:
            raise IntegrityError(f"{path.name}: the archive has no manifest")
        manifest = Manifest.from_bytes(manifest_bytes)
        problems = compare(manifest, seen)
        if manifest.id != header_id:
            problems.insert(0, "the manifest belongs to another backup")
        if problems:
            raise IntegrityError(f"{path.name}: " + "; ".join(problems[:5]))
        return manifest

    # -- restore -----------------------------------------------------------------------------
    def restore(
        self, backup_id: str, into: Path, actor: Actor, database_url: str | None = None
    ) -> RestoreReport:
        """Restore into an empty directory (and an empty database for PostgreSQL),
        then prove it: every model version loads and the audit chain verifies.

        The restored log records the restore; so does this appliance's log when it is
        still reachable (after a disaster it may be the very thing that was lost)."""
        report = self._restore(backup_id, into, actor, database_url)
        details = {"id": backup_id, "into": str(report.home), "audit_seq": report.audit_seq}
        try:
            self._event(actor, "backup.restored", details)
        except Exception:  # the restored appliance is proven; the live log is a bonus
            return replace(report, recorded_in_live_log=False)
        return report

    def _restore(
        self, backup_id: str, into: Path, actor: Actor, database_url: str | None
    ) -> RestoreReport:
        started = time.monotonic()
        entry = self.catalog.get(backup_id)
        home = _empty_home(into)
        work = home / ".restore-work"
        work.mkdir(mode=0o700)
        try:
            with self.catalog.locked(exclusive=False):
                manifest = self._read(self.catalog.get(entry.id).path, _extract_to(work))
            url = snapshot.restore_database(
                manifest.dialect, work / manifest.database_member().name, home, database_url
            )
            (work / "artifacts").mkdir(exist_ok=True, mode=0o700)
            (work / "artifacts").rename(home / "artifacts")
        finally:
            shutil.rmtree(work, ignore_errors=True)
        store = _restored_store(manifest)
        _write_config(home, url, self.keyring.key_dir, store)
        reapplied = self._reapply_erasures(url)
        loaded = self._prove(url, home / "artifacts", store, manifest)
        details = {"id": backup_id, "erasures_reapplied": reapplied} | _head(manifest)
        self._append_to(url, AuditEvent(kind="backup.restored", actor=actor, details=details))
        return RestoreReport(
            backup_id,
            home,
            url,
            loaded,
            manifest.audit_seq,
            manifest.audit_head_hash,
            time.monotonic() - started,
            erasures_reapplied=reapplied,
        )

    def _reapply_erasures(self, url: str) -> int:
        """Destroy again, in the restored database, every key an erasure destroyed."""
        key_ids = self.erasures.key_ids()
        if not key_ids:
            return 0
        engine = make_engine(url)
        try:
            with write_transaction(make_session_factory(engine)) as session:
                return shred(session, key_ids, "erasure")
        finally:
            engine.dispose()

    def _prove(self, url: str, artifact_dir: Path, store: str, manifest: Manifest) -> int:
        """The restored appliance works: schema as backed up, models (and their compiled
        forms) load, chain verifies."""
        engine = make_engine(url)
        try:
            revision = current_revision(engine)
            if revision != manifest.schema_revision:
                raise IntegrityError(
                    f"restored schema is {revision}, the backup says {manifest.schema_revision}"
                )
            audit = AuditLog(self.keyring)
            place = ArtifactTable(engine) if store == "database" else ArtifactFiles(artifact_dir)
            registry = Registry(ArtifactStore(place, self.keyring), audit)
            with read_session(make_session_factory(engine)) as session:
                # A retired version whose key was shredded can never load: not counted.
                versions = [v for v in session.scalars(select(ModelVersion)) if not is_shredded(v)]
                for version in versions:
                    registry.load_estimator(version)
                    if version.runtime == "onnx":  # its compiled model opens and checks too
                        registry.load_compiled(version)
                report = audit.verify(session)
                head = audit.head(session)
        finally:
            engine.dispose()
        if not report.ok:
            raise IntegrityError(f"restored audit chain fails at {report.bad_seq}: {report.reason}")
        if head != (manifest.audit_seq, manifest.audit_head_hash):
            raise IntegrityError(
                f"restored audit head is at {head[0]}, the backup's at {manifest.audit_seq}"
            )
        return len(versions)

    def _append_to(self, url: str, event: AuditEvent) -> None:
        engine = make_engine(url)
        try:
            with write_transaction(make_session_factory(engine)) as session:
                self.audit.append(session, event)
        finally:
            engine.dispose()

    # -- drill ----------------------------------------------------------------------------------
    def drill(self, actor: Actor) -> RestoreReport:
        """Restore the newest backup into a scratch place, prove it, throw it away."""
        with self.catalog.locked(exclusive=False):  # pruning waits until the drill is done
            entries = self.catalog.entries()
            if not entries:
                raise NotFound("there is no backup to drill")
            return self._drill(entries[0], actor)

    def _drill(self, entry: BackupEntry, actor: Actor) -> RestoreReport:
        scratch = self.config.backup_dir / f".drill-{secrets.token_hex(4)}"
        scratch_db = _ScratchDatabase(self.config.database_url)
        started = time.monotonic()
        try:
            report = self._restore(entry.id, scratch / "home", actor, scratch_db.create())
        except CofreError as exc:
            seconds = time.monotonic() - started
            self._drill_done(actor, entry.id, False, exc.detail, seconds)
            raise DrillFailed(f"restore drill of {entry.id} failed: {exc.detail}") from None
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
            scratch_db.drop()
        detail = (
            f"{report.models_loaded} model versions loaded, audit verified to {report.audit_seq}"
        )
        self._drill_done(actor, entry.id, True, detail, report.seconds)
        return report

    def _drill_done(
        self, actor: Actor, backup_id: str, ok: bool, detail: str, seconds: float
    ) -> None:
        self.catalog.update_state(
            backup_id,
            drill={
                "at": isoformat(utcnow()),
                "ok": ok,
                "detail": detail,
                "seconds": round(seconds, 3),
            },
        )
        self._event(
            actor,
            "backup.drill",
            {"id": backup_id, "detail": detail, "duration_ms": int(seconds * 1000)},
            "ok" if ok else "failed",
        )

    # -- prune ----------------------------------------------------------------------------------
    def prune(self, actor: Actor, dry_run: bool = False) -> list[str]:
        """Delete what retention does not keep (here and in the mirror); return the ids."""
        with self.catalog.locked(exclusive=not dry_run):
            entries = self.catalog.entries()
            candidates = [Candidate(e.id, e.created_at, e.verified, e.drilled) for e in entries]
            keep = to_keep(candidates, self.config.policy)
            doomed = [e.id for e in entries if e.id not in keep]
            if dry_run:
                return doomed
            mirror = Catalog(self.config.mirror_dir) if self.config.mirror_dir else None
            for backup_id in doomed:
                self.catalog.remove(backup_id)
                if mirror is not None:
                    mirror.remove(backup_id)
        self._event(actor, "backup.pruned", {"removed": doomed, "kept": sorted(keep)})
        return doomed

    # -- helpers --------------------------------------------------------------------------------
    def _key(self) -> bytes:
        return self.keyring.secret(BACKUP_KEY)

    def _mark(self, backup_id: str, what: str, ok: bool, detail: str) -> None:
        self.catalog.update_state(
            backup_id, **{what: {"at": isoformat(utcnow()), "ok": ok, "detail": detail}}
        )

    def _event(self, actor: Actor, kind: str, details: dict[str, Any], outcome: str = "ok") -> None:
        with self.tx.write() as session:
            self.audit.append(
                session, AuditEvent(kind=kind, actor=actor, outcome=outcome, details=details)
            )


class _ScratchDatabase:
    """For a PostgreSQL drill: an empty database beside the live one, dropped afterwards.
    (The database role needs CREATEDB; without it the drill fails and says so.)"""

    def __init__(self, live_url: str) -> None:
        self.live_url = live_url
        self.url: str | None = None

    def create(self) -> str | None:
        if snapshot.dialect_of(self.live_url) == "sqlite":
            return None
        name = f"{make_url(self.live_url).database}_drill_{secrets.token_hex(4)}"
        self._admin(f'CREATE DATABASE "{name}"')
        self.url = make_url(self.live_url).set(database=name).render_as_string(hide_password=False)
        return self.url

    def drop(self) -> None:
        if self.url is not None:
            name = make_url(self.url).database
            self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            self.url = None

    def _admin(self, statement: str) -> None:
        engine = create_engine(self.live_url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as conn:
                conn.execute(text(statement))
        finally:
            engine.dispose()


class _HashingReader:
    """Hashes what tarfile reads from a file, so each member is read once."""

    def __init__(self, handle: IO[bytes], progress: Progress | None) -> None:
        self.handle = handle
        self.progress = progress
        self.digest = hashlib.sha256()
        self.size = 0

    def read(self, size: int = -1) -> bytes:
        data = self.handle.read(size)
        self.digest.update(data)
        self.size += len(data)
        if self.progress is not None:
            self.progress(len(data))
        return data


def _add_file(tar: tarfile.TarFile, name: str, path: Path, progress: Progress | None) -> Member:
    info = _info(name, path.stat().st_size)
    with path.open("rb") as handle:
        hashing = _HashingReader(handle, progress)
        tar.addfile(info, hashing)
    if hashing.size != info.size:
        raise IntegrityError(f"{name} changed size while it was being backed up")
    return Member(name, hashing.digest.hexdigest(), info.size)


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> Member:
    tar.addfile(_info(name, len(data)), io.BytesIO(data))
    return Member(name, hashlib.sha256(data).hexdigest(), len(data))


def _info(name: str, size: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = size, 0o600, int(time.time())
    return info


def _json_bytes(value: Any) -> bytes:
    return json.dumps(value, indent=2, sort_keys=True).encode()


def _member_stream(tar: tarfile.TarFile, info: tarfile.TarInfo) -> IO[bytes]:
    if not info.isfile() or not _MEMBER_NAME.match(info.name):
        raise IntegrityError(f"the archive holds an unexpected member {info.name[:80]!r}")
    stream = tar.extractfile(info)
    if stream is None:
        raise IntegrityError(f"{info.name}: unreadable member")
    return stream


def _copy_hashing(stream: IO[bytes], out: IO[bytes] | None, name: str) -> Member:
    digest, size = hashlib.sha256(), 0
    for block in iter(lambda: stream.read(1024 * 1024), b""):
        digest.update(block)
        size += len(block)
        if out is not None:
            out.write(block)
    return Member(name, digest.hexdigest(), size)


def _discard(name: str, stream: IO[bytes]) -> Member:
    return _copy_hashing(stream, None, name)


def _extract_to(root: Path) -> Callable[[str, IO[bytes]], Member]:
    def sink(name: str, stream: IO[bytes]) -> Member:
        target = root / name  # names were checked against _MEMBER_NAME: no escape
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with target.open("xb") as out:
            member = _copy_hashing(stream, out, name)
        target.chmod(0o600)
        return member

    return sink


def _empty_home(into: Path) -> Path:
    home = into.expanduser().resolve()
    if home.exists() and any(home.iterdir()):
        raise Conflict(f"{home} is not empty; restore only into a new or empty directory")
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    return home


def _restored_store(manifest: Manifest) -> str:
    """Where the restored appliance finds its artifacts: the files the archive holds,
    or (a PostgreSQL backup holding none) the snapshot's own artifact rows."""
    has_files = any(m.name.startswith("artifacts/") for m in manifest.members)
    return "database" if manifest.dialect == "postgresql" and not has_files else "files"


def _write_config(home: Path, url: str, key_dir: Path, artifact_store: str) -> None:
    """A config file for the restored appliance: COFRE_CONFIG=<home>/cofre.toml."""
    lines = [
        "# Written by `cofre backup restore`; start the restored appliance with",
        f"# COFRE_CONFIG={home / 'cofre.toml'}",
        f'home = "{home}"',
        f'database_url = "{url}"',
        f'key_dir = "{key_dir}"',
        f'artifact_store = "{artifact_store}"',
    ]
    path = home / "cofre.toml"
    path.write_text("\n".join(lines) + "\n")
    path.chmod(0o600)


def _head(manifest: Manifest) -> dict[str, Any]:
    return {"audit_seq": manifest.audit_seq, "audit_head_hash": manifest.audit_head_hash}


def _reason(exc: Exception) -> str:
    return exc.detail if isinstance(exc, CofreError) else f"{type(exc).__name__}: {exc}"[:300]


def _mask(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)
