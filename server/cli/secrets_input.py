"""Reading secrets for the CLI from files or a prompt, never from arguments."""

from __future__ import annotations

from pathlib import Path

import click


def read_password_file(path: Path) -> str:
    try:
        password = path.read_text(encoding="utf-8").rstrip("\r\n")
    except OSError as exc:
        raise click.ClickException(f"cannot read the password file: {exc.strerror}") from None
    if not password:
        raise click.ClickException("the password file is empty")
    return password


def password_from(path: Path | None) -> str:
    """From --password-file, else an interactive prompt (hidden, confirmed)."""
    if path is not None:
        return read_password_file(path)
    value: str = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    return value
