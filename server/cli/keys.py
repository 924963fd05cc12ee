"""`cofre keys`: API keys (create, list, revoke) and master-key rotation."""

from __future__ import annotations

import click

from governance.accounts.roles import Role
from governance.operations.rotation import rotate_master_key
from server import representations as rep
from server.cli import CliState, emit_json, pass_state


@click.group("keys")
def keys() -> None:
    """Manage API keys and the master key."""


@keys.command("create")
@click.option("--name", required=True)
@click.option("--role", required=True, type=click.Choice([r.value for r in Role]))
@click.option("--model", "models", multiple=True, help="Limit the key to this model (repeatable).")
@click.option("--labels-only", is_flag=True, help="Never return class probabilities to this key.")
@click.option("--json", "as_json", is_flag=True)
@pass_state
def create(
    state: CliState, name: str, role: str, models: tuple[str, ...], labels_only: bool, as_json: bool
) -> None:
    """Create an API key; its secret is printed once."""
    cofre = state.services
    with cofre.write() as session:
        created = cofre.accounts.create_key(
            session, state.actor, name, role, list(models) or None, labels_only
        )
    if as_json:
        emit_json(
            {
                "id": created.key.id,
                "prefix": created.key.prefix,
                "secret": created.secret,
                "role": created.key.role,
            }
        )
        return
    click.echo(f"created key {created.key.id} ({created.key.prefix}, {created.key.role})")
    click.echo(f"secret (shown once): {created.secret}")


@keys.command("list")
@click.option("--json", "as_json", is_flag=True)
@pass_state
def list_keys(state: CliState, as_json: bool) -> None:
    """List API keys (never their secrets)."""
    cofre = state.services
    with cofre.read() as session:
        rows = [rep.key_summary(k) for k in cofre.accounts.keys(session)]
    if as_json:
        emit_json(rows)
        return
    for row in rows:
        status = "revoked" if row["revoked_at"] else "active"
        scope = ",".join(row["models"]) if row["models"] else "all models"
        click.echo(
            f"{row['id']:>4} {row['prefix']} {row['name']:<20} {row['role']:<10} "
            f"{status:<8} {scope}"
        )


@keys.command("revoke")
@click.argument("key_ref")
@pass_state
def revoke(state: CliState, key_ref: str) -> None:
    """Revoke the key with this id or prefix."""
    cofre = state.services
    with cofre.write() as session:
        key = cofre.accounts.revoke_key(session, state.actor, key_ref)
    click.echo(f"revoked key {key.id} ({key.prefix})")


@keys.command("rotate-master")
@pass_state
def rotate_master(state: CliState) -> None:
    """Create a new master key and re-wrap every data key under it."""
    cofre = state.services
    with cofre.write() as session, click.progressbar(length=0, label="re-wrapping") as bar:
        result = rotate_master_key(
            session, cofre.keyring, cofre.audit, state.actor, progress=bar.update
        )
    click.echo(
        f"master key rotated: {result.old_kek} -> {result.new_kek}; "
        f"{result.rewrapped} data keys re-wrapped"
    )
    click.echo(
        f"the old key file kek-{result.old_kek}.key is no longer needed; "
        "destroy it once backups no longer depend on it"
    )


commands = [keys]
