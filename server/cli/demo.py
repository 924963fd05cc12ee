"""`cofre demo`: publish demo models so a new user has something to call."""

from __future__ import annotations

import click

from governance.errors import NotFound
from governance.registry.service import ModelCard, PublishRequest
from server.cli import CliState, pass_state
from server.demo_models import DEMO_MODELS, demo_artifact


@click.command("demo")
@pass_state
def demo(state: CliState) -> None:
    """Publish demo models (each with a production alias); skips ones already there."""
    cofre = state.services
    for model in DEMO_MODELS:
        with cofre.write() as session:
            try:
                cofre.registry.model(session, model.name)
                click.echo(f"{model.name}: already published")
                continue
            except NotFound:
                pass
            card = ModelCard(
                purpose=model.purpose,
                legal_basis="Not applicable: demo data only",
                description=model.description,
                decision_mode="human-reviewed",
                owner="cofre demo",
            )
            version = cofre.registry.publish(
                session,
                state.actor,
                PublishRequest(
                    name=model.name,
                    artifact=demo_artifact(model),
                    card=card,
                    aliases=["production"],
                ),
            )
        click.echo(
            f"{model.name}: published version {version.version} as production "
            f"(runtime {version.runtime})"
        )


commands = [demo]
