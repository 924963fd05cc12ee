"""A real appliance on disk, driven through real `cofre` processes (init, scheduler, backup)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from governance.db import make_engine
from server import create_app
from server.container import Container
from server.extension import EXTENSION

COFRE = [sys.executable, "-c", "from server.cli import main; main()"]


class Appliance:
    """Environment and helpers for one appliance home used by subprocesses."""

    def __init__(self, root: Path, database_url: str, settings: dict[str, Any]) -> None:
        self.root = root
        self.home = root / "home"
        self.database_url = database_url
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("COFRE_")}
        self.env |= {
            "COFRE_HOME": str(self.home),
            "COFRE_KEY_DIR": str(root / "keys"),
            "COFRE_DATABASE_URL": database_url,
            "COFRE_LOG_JSON": "false",
        }
        self.env |= {f"COFRE_{k.upper()}": str(v) for k, v in settings.items()}
        self._processes: list[subprocess.Popen[bytes]] = []

    def cofre(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [*COFRE, *args], env=self.env, capture_output=True, text=True, timeout=120
        )
        if check and result.returncode != 0:
            raise AssertionError(f"cofre {' '.join(args)} failed: {result.stderr[-2000:]}")
        return result

    def start(self, *args: str, log: str) -> subprocess.Popen[bytes]:
        with (self.root / log).open("wb") as out:
            process = subprocess.Popen(
                [*COFRE, *args], env=self.env, stdout=out, stderr=subprocess.STDOUT
            )
        self._processes.append(process)
        return process

    def engine(self) -> Any:
        return make_engine(self.database_url)

    @contextmanager
    def services(self) -> Iterator[Container]:
        """The same appliance in this process, for fast set-up and checks."""
        settings = {
            k[len("COFRE_") :].lower(): v for k, v in self.env.items() if k.startswith("COFRE_")
        }
        app = create_app({k: _value(v) for k, v in settings.items()})
        container: Container = app.extensions[EXTENSION]
        try:
            yield container
        finally:
            container.close()

    def stop_all(self) -> None:
        for process in self._processes:
            if process.poll() is None:
                process.terminate()
        for process in self._processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


@pytest.fixture
def appliance_settings() -> dict[str, Any]:
    return {}


@pytest.fixture
def appliance(
    tmp_path: Path, database_url: str, appliance_settings: dict[str, Any]
) -> Iterator[Appliance]:
    made = Appliance(tmp_path, database_url, appliance_settings)
    password = tmp_path / "pw"
    password.write_text("a long enough admin password\n")
    made.cofre("init", "--admin-password-file", str(password))
    yield made
    made.stop_all()
