"""A `cofre backup run` killed mid-write leaves no archive that looks complete, and the
next backup works."""

from __future__ import annotations

import json
import os
import signal
import time

import pytest

from backups.archive import ArchiveReader
from governance.accounts.actor import SYSTEM
from governance.errors import IntegrityError
from tests.functional.scheduler.conftest import Appliance

pytestmark = pytest.mark.functional
BIG = 192 * 1024 * 1024  # enough encrypted bytes that the write takes a visible while


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_killed_backup_leaves_no_complete_looking_archive(appliance: Appliance) -> None:
    # A large (sparse) file among the artifacts makes the archive big and the write slow.
    with (appliance.home / "artifacts" / "big.cofre").open("wb") as handle:
        handle.truncate(BIG)
    backups = appliance.home / "backups"
    process = appliance.start("backup", "run", log="backup.log")
    partial = _wait_for_partial(backups, process.pid)
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    assert partial.stat().st_size < BIG  # really killed mid-write
    assert [p.name for p in backups.glob("*.cofre-backup")] == []
    assert json.loads(appliance.cofre("backup", "list", "--json").stdout) == []
    key = (appliance.root / "keys" / "backup.key").read_bytes()
    with (
        pytest.raises(IntegrityError, match=r"incomplete|failed authentication"),
        ArchiveReader(partial, key) as reader,
    ):
        while reader.read(1024 * 1024):
            pass
        reader.drain()
    os.unlink(appliance.home / "artifacts" / "big.cofre")
    with appliance.services() as cofre:  # the next backup is not disturbed by the leftover
        made = cofre.backups.run(SYSTEM)
        assert made.verified
        assert [e.id for e in cofre.backups.entries()] == [made.id]


def _wait_for_partial(directory: os.PathLike[str], pid: int) -> os.PathLike[str]:
    from pathlib import Path

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        found = [p for p in Path(directory).glob("*.partial") if p.stat().st_size > 4 << 20]
        if found:
            return found[0]
        time.sleep(0.005)
    raise AssertionError(f"backup process {pid} never started writing")
