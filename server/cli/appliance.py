"""`cofre appliance`: this appliance's own identity, for other appliances to trust."""

from __future__ import annotations

import click

from governance.provenance import appliance as identity
from server.cli import CliState, pass_state


@click.group("appliance")
def appliance() -> None:
    """This appliance's identity (bundles between environments)."""


@appliance.command("key")
@pass_state
def key(state: CliState) -> None:
    """Print this appliance's public keys (PEM): signing, then encryption.

    On another appliance, `cofre signers add --appliance NAME FILE` trusts its
    bundles, and `cofre models export ... --to FILE` seals artifacts to it.
    """
    click.echo(identity.public_keys(state.services.keyring), nl=False)


commands = [appliance]
