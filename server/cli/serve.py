"""`cofre serve`: the app under Gunicorn with the project's config module."""

from __future__ import annotations

import os
import sys

import click

from server.cli import CliState, pass_state


@click.command("serve")
@click.option("--bind", help="HOST:PORT or unix:PATH (default from settings: 127.0.0.1:8000).")
@click.option("--workers", type=click.IntRange(1, 64), help="Worker processes (default: settings).")
@pass_state
def serve(state: CliState, bind: str | None, workers: int | None) -> None:
    """Run the HTTP service under Gunicorn (replaces this process)."""
    settings = state.services.settings  # validates the configuration before exec
    argv = [
        sys.executable,
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
    os.execv(sys.executable, argv)  # noqa: S606 - fixed argv, no shell


commands = [serve]
