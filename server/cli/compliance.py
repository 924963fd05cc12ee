"""`cofre compliance`: the record of processing activities."""

from __future__ import annotations

import click

from server.cli import CliState, pass_state
from server.compliance import ropa as build_ropa
from server.exports import ROPA_FORMATS, ropa_file


@click.group("compliance")
def compliance() -> None:
    """What the controller shows a regulator."""


@compliance.command("ropa")
@click.option("--format", "fmt", type=click.Choice(ROPA_FORMATS), default="md", show_default=True)
@pass_state
def ropa(state: CliState, fmt: str) -> None:
    """The record of processing activities (GDPR Art. 30, LGPD Art. 37)."""
    cofre = state.services
    with cofre.read() as session:
        document = build_ropa(cofre, session)
    click.echo(ropa_file(document, fmt).body, nl=False)


commands = [compliance]
