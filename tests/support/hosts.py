"""A Debian host on this machine for the deployment tests: a root entered with chroot,
in a network namespace of its own, so that its servers bind the namespace's own
addresses and every one of its processes is found (and stopped) by the namespace."""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from tests.support.builds import run

# How the tests log in to their own hosts: keys only, no host-key prompts or records.
SSH_OPTIONS = [
    "-o",
    "BatchMode=yes",
    "-o",
    "StrictHostKeyChecking=no",
    "-o",
    "UserKnownHostsFile=/dev/null",
    "-o",
    "LogLevel=ERROR",
]


@dataclass
class Target:
    """A host: its root directory and its network namespace."""

    root: Path
    netns: str

    def in_netns(self, argv: list[str]) -> list[str]:
        return ["ip", "netns", "exec", self.netns, *argv]

    def chroot(self, argv: list[str], user: str | None = None) -> list[str]:
        spec = [f"--userspec={user}:{user}"] if user else []
        return self.in_netns(["chroot", *spec, str(self.root), *argv])

    def stop_everything(self) -> None:
        """Stop every process in the namespace: INT (the fast shutdown of PostgreSQL,
        nginx and Gunicorn alike), then KILL."""
        for sig in (signal.SIGINT, signal.SIGKILL):
            pids = self._pids()
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)
            deadline = time.monotonic() + 10
            while self._pids() and time.monotonic() < deadline:
                time.sleep(0.2)

    def _pids(self) -> list[int]:
        out = subprocess.run(
            ["ip", "netns", "pids", self.netns], capture_output=True, text=True, check=False
        ).stdout
        return [int(pid) for pid in out.split()]


def mount_host_filesystems(root: Path) -> list[Path]:
    """/proc, /dev (with its own shm and pts) and /run inside a host's root."""
    mounts = [
        (["-t", "proc", "proc"], root / "proc"),
        (["--bind", "/dev"], root / "dev"),
        (["-t", "tmpfs", "-o", "mode=1777", "shm"], root / "dev/shm"),
        (["-t", "devpts", "-o", "newinstance,ptmxmode=0666", "devpts"], root / "dev/pts"),
        (["-t", "tmpfs", "-o", "mode=0755", "run"], root / "run"),
    ]
    done: list[Path] = []
    for args, point in mounts:
        point.mkdir(parents=True, exist_ok=True)
        run(["mount", *args, str(point)])
        done.append(point)
    return done


def unit_settings(root: Path, name: str) -> dict[str, str]:
    """Key=value lines of a unit file's [Service] section (Environment collected)."""
    values: dict[str, str] = {}
    section = ""
    for line in (root / "etc/systemd/system" / name).read_text().splitlines():
        line = line.strip()
        if line.startswith("["):
            section = line
        elif section == "[Service]" and "=" in line and not line.startswith("#"):
            key, value = line.split("=", 1)
            repeated = key == "Environment" and key in values
            values[key] = f"{values[key]} {value}" if repeated else value
    return values


def start_unit(host: Target, name: str, logs: Path) -> subprocess.Popen[bytes]:
    """A deployed systemd unit's service started as systemd would (no systemd as PID 1
    here): its command line, user, group, working directory and environment, in the
    host's root and namespace; its output in `logs`/NAME.log."""
    unit = unit_settings(host.root, name)
    command = [
        "/usr/bin/env",
        "-i",
        f"--chdir={unit['WorkingDirectory']}",
        "PATH=/usr/bin:/bin",
        *shlex.split(unit.get("Environment", "")),
        *shlex.split(unit["ExecStart"]),
    ]
    argv = host.in_netns(
        ["chroot", f"--userspec={unit['User']}:{unit['Group']}", str(host.root), *command]
    )
    with (logs / f"{name}.log").open("ab") as log:
        return subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, umask=0o077)
