"""`cofre init`: data directory, keys, schema and a first admin; idempotent."""

from __future__ import annotations

from pathlib import Path

import click

from server.cli import CliState, pass_state
from server.cli.secrets_input import read_password_file
from server.setup import initialise


@click.command("init")
@click.option("--admin-username", default="admin", show_default=True)
@click.option(
    "--admin-password-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="File holding the first admin's password (else one is generated).",
)
@pass_state
def init(state: CliState, admin_username: str, admin_password_file: Path | None) -> None:
    """Create the data directory, keys, database schema and first admin."""
    password = read_password_file(admin_password_file) if admin_password_file else None
    changes, generated = initialise(state.services, state.actor, admin_username, password)
    if not changes:
        click.echo("Already initialised: nothing changed.")
    for line in changes:
        click.echo(line)
    if generated:
        click.echo(f"generated admin password (shown once, store it now): {generated}")


commands = [init]
