"""The backup manifest: what a backup holds and what state it captured.

It is the last member of the archive's tar stream (so the archive is written
in one pass); verify and restore compare every member they read against it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from importlib import metadata
from typing import Any

from governance.errors import IntegrityError

FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"


@dataclass(frozen=True)
class Member:
    name: str
    sha256: str
    size: int


@dataclass
class Manifest:
    """Format version, cofre version, members with hashes, and the captured audit head."""

    id: str
    created_at: str
    dialect: str  # sqlite | postgresql
    schema_revision: str
    audit_seq: int
    audit_head_hash: str
    members: list[Member] = field(default_factory=list)
    # Whether the chain verified when the backup was taken (checked from the last
    # checkpoint), up to which record, and where it broke if it did not.
    audit_chain_ok: bool = True
    audit_chain_verified_to: int | None = None
    audit_chain_problem: str | None = None
    format_version: int = FORMAT_VERSION
    cofre_version: str = field(default_factory=lambda: cofre_version())

    def to_bytes(self) -> bytes:
        return json.dumps(asdict(self), indent=2, sort_keys=True).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> Manifest:
        try:
            raw: dict[str, Any] = json.loads(data)
            members = [Member(**m) for m in raw.pop("members")]
            manifest = cls(members=members, **raw)
        except (ValueError, TypeError, KeyError):
            raise IntegrityError("the backup manifest is unreadable") from None
        if manifest.format_version > FORMAT_VERSION:
            raise IntegrityError(
                f"backup format {manifest.format_version} is newer than this cofre reads"
            )
        return manifest

    def member(self, name: str) -> Member | None:
        return next((m for m in self.members if m.name == name), None)

    def database_member(self) -> Member:
        found = next((m for m in self.members if m.name.startswith("database/")), None)
        if found is None:
            raise IntegrityError("the backup holds no database")
        return found

    def summary(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "created_at": self.created_at,
            "format_version": self.format_version,
            "cofre_version": self.cofre_version,
            "dialect": self.dialect,
            "schema_revision": self.schema_revision,
            "audit_seq": self.audit_seq,
            "audit_head_hash": self.audit_head_hash,
            "audit_chain_ok": self.audit_chain_ok,
            "audit_chain_verified_to": self.audit_chain_verified_to,
            "audit_chain_problem": self.audit_chain_problem,
            "members": len(self.members),
            "bytes": sum(m.size for m in self.members),
        }


def cofre_version() -> str:
    try:
        return metadata.version("cofre")
    except metadata.PackageNotFoundError:
        return "unknown"


def compare(manifest: Manifest, seen: dict[str, Member]) -> list[str]:
    """Problems between what the manifest promises and what was read (empty when equal)."""
    problems: list[str] = []
    promised = {m.name: m for m in manifest.members}
    for name in sorted(set(promised) - set(seen)):
        problems.append(f"{name}: missing from the archive")
    for name in sorted(set(seen) - set(promised)):
        problems.append(f"{name}: in the archive but not in the manifest")
    for name in sorted(set(seen) & set(promised)):
        if seen[name] != promised[name]:
            problems.append(f"{name}: SHA-256 or size differs from the manifest")
    return problems
