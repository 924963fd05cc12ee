"""`cofre users`: create, list and disable admin-page users."""

from __future__ import annotations

from pathlib import Path

import click

from governance.accounts.roles import Role
from server import representations as rep
from server.cli import CliState, emit_json, pass_state
from server.cli.secrets_input import password_from


@click.group("users")
def users() -> None:
    """Manage users of the admin pages."""


@users.command("create")
@click.argument("name")
@click.option("--role", required=True, type=click.Choice([r.value for r in Role]))
@click.option(
    "--password-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Read the password from this file (else prompt).",
)
@pass_state
def create(state: CliState, name: str, role: str, password_file: Path | None) -> None:
    """Create user NAME with ROLE."""
    password = password_from(password_file)
    cofre = state.services
    with cofre.write() as session:
        user = cofre.accounts.create_user(session, state.actor, name, role, password)
    click.echo(f"created user {user.username!r} ({user.role})")


@users.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_state
def list_users(state: CliState, as_json: bool) -> None:
    """List users."""
    cofre = state.services
    with cofre.read() as session:
        rows = [rep.user_summary(u) for u in cofre.accounts.users(session)]
    if as_json:
        emit_json(rows)
        return
    for row in rows:
        flag = " (disabled)" if row["disabled"] else ""
        click.echo(f"{row['username']:<24} {row['role']:<10}{flag}")


@users.command("disable")
@click.argument("name")
@pass_state
def disable(state: CliState, name: str) -> None:
    """Disable user NAME (kept for the audit trail, cannot log in)."""
    cofre = state.services
    with cofre.write() as session:
        cofre.accounts.disable_user(session, state.actor, name)
    click.echo(f"disabled user {name!r}")


@users.command("set-role")
@click.argument("name")
@click.argument("role")
@pass_state
def set_role(state: CliState, name: str, role: str) -> None:
    """Give user NAME another ROLE (effective at their next request)."""
    cofre = state.services
    with cofre.write() as session:
        user = cofre.accounts.set_role(session, state.actor, name, role)
        now = user.role
    click.echo(f"user {name!r} now has role {now}")


commands = [users]
