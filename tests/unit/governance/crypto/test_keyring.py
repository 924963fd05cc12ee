"""The key ring on disk: private modes, refusal of exposed keys, wrap/unwrap with context."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest

from governance.crypto.envelope import new_data_key, open_sealed, seal
from governance.crypto.keyring import KeyRing, WrappedKey
from governance.errors import IntegrityError, KeyUnavailable, NotInitialised


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def ring(tmp_path: Path) -> KeyRing:
    keyring = KeyRing(tmp_path / "keys")
    keyring.ensure()
    return keyring


def test_ensure_creates_a_private_directory_and_files(tmp_path: Path) -> None:
    old_umask = os.umask(0o022)  # a permissive umask must not leak into key files
    try:
        keyring = KeyRing(tmp_path / "keys")
        created = keyring.ensure()
    finally:
        os.umask(old_umask)
    assert {"pseudonym.key", "audit-signing.key", "audit-mac.key", "session.key"} <= set(created)
    assert _mode(keyring.key_dir) == 0o700
    files = list(keyring.key_dir.iterdir())
    assert any(p.name.startswith("kek-") for p in files)
    assert all(_mode(p) == 0o600 for p in files), {p.name: oct(_mode(p)) for p in files}
    assert len(keyring.kek(keyring.current_kek_id())) == 32


def test_ensure_is_idempotent_and_tightens_the_directory(ring: KeyRing) -> None:
    before = {p.name: p.read_bytes() for p in ring.key_dir.iterdir()}
    os.chmod(ring.key_dir, 0o755)  # noqa: S103 - the point of the test
    assert ring.ensure() == []
    assert _mode(ring.key_dir) == 0o700
    assert {p.name: p.read_bytes() for p in ring.key_dir.iterdir()} == before


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660])
def test_a_key_file_readable_by_others_is_refused(ring: KeyRing, mode: int) -> None:
    kek_id = ring.current_kek_id()
    os.chmod(ring.key_dir / f"kek-{kek_id}.key", mode)
    with pytest.raises(KeyUnavailable, match="readable by group or others"):
        KeyRing(ring.key_dir).kek(kek_id)
    os.chmod(ring.key_dir / "pseudonym.key", mode)
    with pytest.raises(KeyUnavailable, match="chmod 600"):
        ring.secret("pseudonym.key")


def test_a_missing_key_file_is_named(ring: KeyRing) -> None:
    (ring.key_dir / "pseudonym.key").unlink()
    with pytest.raises(KeyUnavailable, match=r"pseudonym\.key is missing"):
        ring.secret("pseudonym.key")


def test_no_key_directory_means_not_initialised(tmp_path: Path) -> None:
    with pytest.raises(NotInitialised, match="cofre init"):
        KeyRing(tmp_path / "nowhere").current_kek_id()


def test_wrap_and_unwrap(ring: KeyRing) -> None:
    data_key = new_data_key()
    wrapped = ring.wrap(data_key, "artifact:iris:1:abc")
    assert wrapped.kek_id == ring.current_kek_id()
    assert data_key not in wrapped.blob
    assert ring.unwrap(wrapped, "artifact:iris:1:abc") == data_key
    assert ring.wrap(data_key, "artifact:iris:1:abc").blob != wrapped.blob  # fresh nonce


def test_a_wrapped_key_is_bound_to_its_context(ring: KeyRing) -> None:
    wrapped = ring.wrap(new_data_key(), "artifact:iris:1:abc")
    with pytest.raises(IntegrityError, match="artifact:iris:2:abc"):
        ring.unwrap(wrapped, "artifact:iris:2:abc")


def test_a_tampered_wrapped_key_is_refused(ring: KeyRing) -> None:
    wrapped = ring.wrap(new_data_key(), "ctx")
    flipped = bytearray(wrapped.blob)
    flipped[-1] ^= 1
    with pytest.raises(IntegrityError):
        ring.unwrap(WrappedKey(wrapped.kek_id, bytes(flipped)), "ctx")


def test_another_key_ring_cannot_unwrap(ring: KeyRing, tmp_path: Path) -> None:
    wrapped = ring.wrap(new_data_key(), "ctx")
    other = KeyRing(tmp_path / "other")
    other.ensure()
    (other.key_dir / f"kek-{wrapped.kek_id}.key").write_bytes(os.urandom(32))
    os.chmod(other.key_dir / f"kek-{wrapped.kek_id}.key", 0o600)
    with pytest.raises(IntegrityError, match="does not open"):
        other.unwrap(wrapped, "ctx")


def test_rotation_keeps_old_keys_readable_until_deleted(ring: KeyRing) -> None:
    data_key = new_data_key()
    wrapped = ring.wrap(data_key, "ctx")
    old, new = ring.rotate_master()
    assert old == wrapped.kek_id and new != old
    assert ring.current_kek_id() == new
    assert KeyRing(ring.key_dir).current_kek_id() == new  # another process sees it
    assert ring.wrap(data_key, "ctx").kek_id == new
    assert ring.unwrap(wrapped, "ctx") == data_key
    assert _mode(ring.key_dir / f"kek-{new}.key") == 0o600
    assert _mode(ring.key_dir / "kek.current") == 0o600
    (ring.key_dir / f"kek-{old}.key").unlink()
    with pytest.raises(KeyUnavailable, match=f"kek-{old}.key is missing"):
        KeyRing(ring.key_dir).unwrap(wrapped, "ctx")


def test_envelopes_bind_their_associated_data() -> None:
    key = new_data_key()
    sealed = seal(key, b"plaintext bytes", b"model a v1")
    assert b"plaintext bytes" not in sealed
    assert open_sealed(key, sealed, b"model a v1", "thing") == b"plaintext bytes"
    with pytest.raises(IntegrityError, match="thing: failed authentication"):
        open_sealed(key, sealed, b"model a v2", "thing")
    with pytest.raises(IntegrityError, match="not a cofre envelope"):
        open_sealed(key, b"garbage", b"model a v1", "thing")


@pytest.mark.skipif(os.geteuid() != 0, reason="a read-only bind mount needs root")
def test_ensure_passes_on_a_complete_key_directory_mounted_read_only(
    ring: KeyRing, tmp_path: Path
) -> None:
    """A container gets its keys as a read-only mount and still runs `cofre init`."""
    os.chmod(ring.key_dir, 0o755)  # noqa: S103 - as a secret volume may show it
    mounted = tmp_path / "mounted"
    mounted.mkdir()
    subprocess.run(["mount", "--bind", str(ring.key_dir), str(mounted)], check=True)
    try:
        subprocess.run(["mount", "-o", "remount,ro,bind", str(mounted)], check=True)
        assert KeyRing(mounted).ensure() == []
    finally:
        subprocess.run(["umount", str(mounted)], check=True)
