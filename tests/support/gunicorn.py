"""Running the appliance under real Gunicorn for functional tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cofre_env(settings: Mapping[str, Any]) -> dict[str, str]:
    """The process environment that gives `cofre` these settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("COFRE_")}
    return env | {
        f"COFRE_{k.upper()}": str(v).lower() if isinstance(v, bool) else str(v)
        for k, v in settings.items()
    }


@contextmanager
def served(
    settings: Mapping[str, Any], workdir: Path, workers: int = 3, ready: str = "/readyz"
) -> Iterator[str]:
    """`cofre serve` on a free port; yields the base URL once `ready` answers 200 (pass
    "/healthz" for an appliance expected not to be ready), stops the server after.

    Run from `workdir` (not the repository) so that an installed copy of cofre is
    what serves, as in production.
    """
    port = free_port()
    log_path = workdir / "gunicorn.log"
    command = [
        str(Path(sys.executable).with_name("cofre")),
        "serve",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(workers),
    ]
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            command, cwd=workdir, env=cofre_env(settings), stdout=log, stderr=subprocess.STDOUT
        )
        try:
            url = f"http://127.0.0.1:{port}"
            wait_until_ready(url, server, log_path, ready=ready)
            yield url
        finally:
            stop(server, log_path)


# Gunicorn gives workers graceful_timeout (30 s, server/gunicorn_conf.py) to finish
# before it kills them; a wait of exactly that raced it on a loaded machine.
STOP_SECONDS = 60


def stop(server: subprocess.Popen[bytes], log_path: Path) -> None:
    """SIGTERM and wait for the master; one that outlives its own graceful timeout
    is killed (never left running into the next test) and named with its log."""
    server.terminate()
    try:
        server.wait(timeout=STOP_SECONDS)
    except subprocess.TimeoutExpired as late:
        server.kill()
        server.wait(timeout=30)
        tail = log_path.read_text(errors="replace")[-2000:]
        message = f"cofre serve did not stop {STOP_SECONDS} s after SIGTERM: {tail}"
        raise AssertionError(message) from late


def wait_until_ready(
    url: str,
    server: subprocess.Popen[bytes],
    log_path: Path,
    seconds: float = 60,
    ready: str = "/readyz",
) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"cofre serve exited: {log_path.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(url + ready, timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"cofre serve not ready in time: {log_path.read_text()[-2000:]}")
