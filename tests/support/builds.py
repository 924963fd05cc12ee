"""Cached builds for the deployment tests (Ansible, containers): a Debian root made
with debootstrap and a wheelhouse of cofre's pinned dependencies.

Both live under /var/cache/cofre-test (COFRE_TEST_CACHE), are built once per input
(package list, lock file) and are only unpacked or linked by later runs.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("COFRE_TEST_CACHE", "/var/cache/cofre-test"))
SUITE = "bookworm"


def require_root_and_tools(test: str, why_root: str, tools: Sequence[str]) -> None:
    """Skip `test` when this machine cannot run it (not root, a tool missing); under
    CI (CI=true) that is a failure instead, so a deployment test never silently
    stops running."""
    problem = None
    if os.geteuid() != 0:
        problem = f"needs root ({why_root})"
    else:
        missing = [tool for tool in tools if shutil.which(tool) is None]
        if missing:
            problem = f"missing tools {missing}: run scripts/system-deps.sh"
    if problem:
        if os.environ.get("CI"):
            pytest.fail(f"{test} {problem}")
        pytest.skip(problem)


def run(argv: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    """Run a command, failing with its output when it fails."""
    result = subprocess.run(argv, capture_output=True, text=True, check=False, **kwargs)  # type: ignore[call-overload]
    if result.returncode != 0:
        output = f"{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
        raise AssertionError(f"{argv[:6]} exited {result.returncode}\n{output}")
    return result


def debian_root(kind: str, include: Sequence[str], download: Sequence[str] = ()) -> Path:
    """A tarball of a minimal Debian with `include` installed and `download`'s .deb
    files in apt's cache (installed later without network), built once per list."""
    key = hashlib.sha256(" ".join([SUITE, *include, "|", *download]).encode()).hexdigest()
    tarball = CACHE / f"{kind}-{SUITE}-{key[:12]}.tar"
    if tarball.exists():
        return tarball
    CACHE.mkdir(parents=True, exist_ok=True)
    build = CACHE / f"build-{os.getpid()}"
    shutil.rmtree(build, ignore_errors=True)
    try:
        included = [f"--include={','.join(include)}"] if include else []
        run(["debootstrap", "--variant=minbase", *included, SUITE, str(build)])
        # Like any image: packages do not start daemons while they install.
        policy = build / "usr/sbin/policy-rc.d"
        policy.write_text("#!/bin/sh\nexit 101\n")
        policy.chmod(0o755)
        if download:
            shutil.copy("/etc/resolv.conf", build / "etc/resolv.conf")
            run(["chroot", str(build), "apt-get", "update", "-qq"])
            # With recommends, as the playbook's apt tasks install them.
            run(
                [
                    "chroot",
                    str(build),
                    "apt-get",
                    "install",
                    "-y",
                    "-qq",
                    "--download-only",
                    *download,
                ]
            )
            (build / "etc/resolv.conf").unlink()
        partial = _partial(tarball)
        run(["tar", "-C", str(build), "-cf", str(partial), "."])
        partial.rename(tarball)  # a file: replaces one another process finished first
        _prune(tarball)
    finally:
        shutil.rmtree(build, ignore_errors=True)
    return tarball


def wheelhouse(into: Path, version: str | None = None, extra: dict[str, str] | None = None) -> Path:
    """cofre's wheel built from this tree, beside cached wheels of its dependencies.

    `version` replaces the project's version and `extra` adds files (path: text) to
    the copy that is built: an upgrade is a newer wheel, maybe with a migration.
    """
    into.mkdir(parents=True)
    source = into.parent / "source"
    shutil.copytree(
        REPO,
        source,
        ignore=shutil.ignore_patterns(
            ".git", ".venv", "var", "dist", "build", "*.egg-info", "__pycache__", "tests", "bench"
        ),
    )
    if version:
        pyproject = source / "pyproject.toml"
        text = pyproject.read_text()
        pyproject.write_text(
            re.sub(r'(?m)^version = ".*"$', f'version = "{version}"', text, count=1)
        )
    for path, text in (extra or {}).items():
        (source / path).write_text(text)
    python = sys.executable
    run(
        [
            python,
            "-m",
            "build",
            "--wheel",
            "--no-isolation",
            "--skip-dependency-check",
            "--outdir",
            str(into),
            str(source),
        ]
    )
    wheel = next(into.glob("cofre-*.whl"))
    constraints = REPO / "constraints.txt"
    key = hashlib.sha256(
        constraints.read_bytes() + (REPO / "pyproject.toml").read_bytes()
    ).hexdigest()
    deps = CACHE / f"wheels-{key[:12]}"
    if not deps.exists():
        partial = _partial(deps)
        shutil.rmtree(partial, ignore_errors=True)
        run(
            [
                python,
                "-m",
                "pip",
                "download",
                "--quiet",
                "--only-binary=:all:",
                "-c",
                str(constraints),
                "-d",
                str(partial),
                str(wheel),
            ]
        )
        (partial / wheel.name).unlink()
        try:
            partial.rename(deps)
        except OSError:  # another process's download got there first: use that one
            shutil.rmtree(partial, ignore_errors=True)
        _prune(deps)
    for dependency in deps.glob("*.whl"):
        os.link(dependency, into / dependency.name)
    return into


def _partial(final: Path) -> Path:
    """Where one process builds `final` before renaming it into place: its own name,
    so that test processes running side by side never write into each other's."""
    return final.with_name(f"{final.name}.partial-{os.getpid()}")


def _prune(keep: Path) -> None:
    """Drop older cache entries of the same kind (the lock or package list moved on)."""
    kind = keep.name.rsplit("-", 1)[0]
    for old in keep.parent.glob(f"{kind}-*"):
        if old != keep and ".partial" not in old.name:
            if old.is_dir():
                shutil.rmtree(old, ignore_errors=True)
            else:
                old.unlink(missing_ok=True)
