"""`cofre keys`: API keys (create, list, limit, revoke) and master-key rotation."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from governance.accounts.budgets import UNSET, Limit
from governance.accounts.roles import Role
from governance.operations.rotation import rotate_master_key
from server import representations as rep
from server.cli import CliState, emit_json, pass_state
from server.cli.params import PRECISION, RATE, ROWS_PER_DAY


@click.group("keys")
def keys() -> None:
    """Manage API keys and the master key."""


def budget_options(command: Callable[..., None]) -> Callable[..., None]:
    """--rate, --rows-per-day and --precision, shared by `create` and `limit`."""
    for option in (
        click.option(
            "--precision",
            type=PRECISION,
            default=UNSET,
            help="Decimals of the probabilities the key receives, or 'full'.",
        ),
        click.option(
            "--rows-per-day",
            type=ROWS_PER_DAY,
            default=UNSET,
            help="Rows the key may score per UTC day, or 'none'.",
        ),
        click.option(
            "--rate",
            type=RATE,
            default=UNSET,
            help="Requests per second the key may make, e.g. 50/s, or 'none'.",
        ),
    ):
        command = option(command)
    return command


@keys.command("create")
@click.option("--name", required=True)
@click.option("--role", required=True, type=click.Choice([r.value for r in Role]))
@click.option("--model", "models", multiple=True, help="Limit the key to this model (repeatable).")
@click.option("--labels-only", is_flag=True, help="Never return class probabilities to this key.")
@click.option("--json", "as_json", is_flag=True)
@budget_options
@pass_state
def create(
    state: CliState,
    name: str,
    role: str,
    models: tuple[str, ...],
    labels_only: bool,
    as_json: bool,
    rate: Limit,
    rows_per_day: Limit,
    precision: Limit,
) -> None:
    """Create an API key; its secret is printed once. Limits not given are the
    configured defaults (key_rate, key_rows_per_day, key_precision)."""
    cofre = state.services
    with cofre.write() as session:
        created = cofre.accounts.create_key(
            session,
            state.actor,
            name,
            role,
            list(models) or None,
            labels_only,
            rate=rate,
            rows_per_day=rows_per_day,
            precision=precision,
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
            f"{status:<8} {_limits(row):<36} {scope}"
        )


def _limits(row: dict[str, Any]) -> str:
    """The key's budget and precision as `keys list` shows them."""
    rate = f"{row['rate']}/s" if row["rate"] is not None else "unlimited"
    rows = f"{row['rows_per_day']} rows/day" if row["rows_per_day"] is not None else "any rows"
    if row["labels_only"]:
        output = "labels only"
    elif row["precision"] is not None:
        output = f"{row['precision']} decimals"
    else:
        output = "full precision"
    return f"{rate}, {rows}, {output}"


@keys.command("limit")
@click.argument("key_ref")
@budget_options
@pass_state
def limit(
    state: CliState, key_ref: str, rate: Limit, rows_per_day: Limit, precision: Limit
) -> None:
    """Change the budget or precision of the key with this id or prefix ('none' lifts a
    limit). Every worker applies it from its next request."""
    if rate is UNSET and rows_per_day is UNSET and precision is UNSET:
        raise click.UsageError("give --rate, --rows-per-day or --precision")
    cofre = state.services
    with cofre.write() as session:
        key = cofre.accounts.limit_key(
            session, state.actor, key_ref, rate=rate, rows_per_day=rows_per_day, precision=precision
        )
        summary = rep.key_summary(key)
    click.echo(f"key {key.id} ({key.prefix}): {_limits(summary)}")


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
