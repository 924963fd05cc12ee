"""`make test` runs the suite against the installed wheel, not the source tree."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import governance
import server


@pytest.mark.skipif(not os.environ.get("COFRE_TEST_INSTALLED"), reason="only under `make test`")
def test_packages_come_from_the_installed_wheel() -> None:
    for package in (server, governance):
        assert "site-packages" in Path(package.__file__ or "").parts


@pytest.mark.skipif(not os.environ.get("COFRE_TEST_INSTALLED"), reason="only under `make test`")
def test_wheel_carries_migrations() -> None:
    from governance.migrations import HERE

    assert list((HERE / "versions").glob("0001_*.py"))


def test_the_wheel_builds_without_deprecation_warnings(tmp_path: Path) -> None:
    """`make demo` builds this wheel first: a newcomer's first screen is not setuptools'
    complaints (the licence was once a TOML table, sixty lines of them)."""
    repo = Path(__file__).resolve().parents[1]
    source = tmp_path / "source"
    shutil.copytree(
        repo,
        source,
        ignore=shutil.ignore_patterns(".git", ".venv", "var", "dist", "build", "*.egg-info"),
    )
    build = subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", "dist", "."],
        cwd=source,
        capture_output=True,
        text=True,
        check=False,
    )
    assert build.returncode == 0, build.stderr[-2000:]
    output = build.stdout + build.stderr
    assert "deprecated" not in output.lower()
    assert "WARNING" not in output
