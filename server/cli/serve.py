"""`cofre serve`: the app under Gunicorn with the project's config module.

Gunicorn is started so that no file where the operator happens to stand can take
the place of a module: `python -P` leaves the working directory off the import
path, and the process changes to the appliance's home first, because Gunicorn
itself puts its working directory at the head of the path (its `chdir` setting)
before it imports the config module. Every path setting is passed on resolved, so
a relative `COFRE_HOME` still means what it meant where the command was typed.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from server.cli import CliState, pass_state
from server.config import Settings


@click.command("serve")
@click.option("--bind", help="HOST:PORT or unix:PATH (default from settings: 127.0.0.1:8000).")
@click.option("--workers", type=click.IntRange(1, 64), help="Worker processes (default: settings).")
@pass_state
def serve(state: CliState, bind: str | None, workers: int | None) -> None:
    """Run the HTTP service under Gunicorn (replaces this process)."""
    settings = state.services.settings  # validates the configuration before exec
    argv = [
        sys.executable,
        "-P",
        "-m",
        "gunicorn",
        "--config",
        "python:server.gunicorn_conf",
        "--bind",
        bind or settings.bind,
        "--workers",
        str(workers or settings.workers),
        "wsgi:app",
    ]
    environment = os.environ | resolved_paths(settings)
    settings.home.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chdir(settings.home)
    os.execve(sys.executable, argv, environment)  # noqa: S606 - fixed argv, no shell


def resolved_paths(settings: Settings) -> dict[str, str]:
    """The path settings as absolute values, for a process started elsewhere."""
    paths = {
        "COFRE_HOME": settings.home,
        "COFRE_KEY_DIR": settings.key_dir,
        "COFRE_ARTIFACT_DIR": settings.artifact_dir,
        "COFRE_BACKUP_DIR": settings.backup_dir,
        "COFRE_METRICS_DIR": settings.metrics_dir,
        "COFRE_BACKUP_MIRROR_DIR": settings.backup_mirror_dir,
        "COFRE_RETRAINING_DATA_DIR": settings.retraining_data_dir,
    }
    out = {name: str(path) for name, path in paths.items() if path is not None}
    if os.environ.get("COFRE_CONFIG"):
        out["COFRE_CONFIG"] = str(Path(os.environ["COFRE_CONFIG"]).resolve())
    sqlite = "sqlite:///"
    if settings.database_url.startswith(sqlite):  # a server's URL names no local path
        database = Path(settings.database_url[len(sqlite) :]).resolve()
        out["COFRE_DATABASE_URL"] = sqlite + str(database)
    return out


commands = [serve]
