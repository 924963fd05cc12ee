"""`cofre signers`: the keys this appliance trusts, for artifacts and for bundles."""

from __future__ import annotations

from pathlib import Path

import click

from server import representations as rep
from server.cli import CliState, emit_json, pass_state


@click.group("signers")
def signers() -> None:
    """Manage trusted signers (admin): whose signatures publish and import accept."""


@signers.command("add")
@click.argument("name")
@click.argument("public_key_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--appliance",
    is_flag=True,
    help="Trust another appliance's bundles (its `cofre appliance key` output).",
)
@pass_state
def add(state: CliState, name: str, public_key_file: Path, appliance: bool) -> None:
    """Trust the PEM public key in PUBLIC_KEY_FILE under NAME."""
    kind = "appliance" if appliance else "artifact"
    cofre = state.services
    with cofre.write() as session:
        signer = cofre.signers.add(session, state.actor, name, public_key_file.read_bytes(), kind)
        click.echo(f"trusted {kind} signer {signer.name} fingerprint={signer.fingerprint}")


@signers.command("list")
@click.option("--json", "as_json", is_flag=True)
@pass_state
def list_signers(state: CliState, as_json: bool) -> None:
    """List trusted signers."""
    cofre = state.services
    with cofre.read() as session:
        rows = [rep.signer_summary(s) for s in cofre.signers.all(session)]
    if as_json:
        emit_json(rows)
        return
    for row in rows:
        click.echo(f"{row['name']:<24} {row['kind']:<10} {row['fingerprint']} by {row['added_by']}")


@signers.command("remove")
@click.argument("name")
@pass_state
def remove(state: CliState, name: str) -> None:
    """Stop trusting signer NAME: versions it signed no longer load."""
    cofre = state.services
    with cofre.write() as session:
        cofre.signers.remove(session, state.actor, name)
    click.echo(f"removed signer {name}")


commands = [signers]
