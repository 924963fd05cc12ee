"""`cofre demo`: publish demo models so a new user has something to call.

Where the appliance requires signed models, the demo signs its own: it makes a
key pair, trusts its public half as the signer `cofre-demo` (an audited admin
action, as running `cofre demo` needs the key directory) and forgets the private
half, so nothing else can ever be signed by it.
"""

from __future__ import annotations

import click
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from governance.errors import NotFound
from governance.provenance import signatures
from governance.registry.service import ModelCard, PublishRequest
from server.cli import CliState, pass_state
from server.demo_models import DEMO_MODELS, demo_artifact


@click.command("demo")
@pass_state
def demo(state: CliState) -> None:
    """Publish demo models (each with a production alias); skips ones already there."""
    cofre = state.services
    with cofre.read() as session:
        published = {m.name for m in cofre.registry.models(session, state.actor)}
    to_sign = cofre.settings.require_signed_models and any(
        m.name not in published for m in DEMO_MODELS
    )
    signer = _demo_signer(state) if to_sign else None
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
            artifact = demo_artifact(model)
            version = cofre.registry.publish(
                session,
                state.actor,
                PublishRequest(
                    name=model.name,
                    artifact=artifact,
                    card=card,
                    aliases=["production"],
                    signature=signatures.sign_bytes(artifact, signer) if signer else None,
                ),
            )
        click.echo(
            f"{model.name}: published version {version.version} as production "
            f"(runtime {version.runtime})"
        )


def _demo_signer(state: CliState) -> bytes:
    """A fresh private key (PEM) whose public half is trusted as `cofre-demo`."""
    key = ec.generate_private_key(ec.SECP256R1())
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    cofre = state.services
    with cofre.write() as session:
        name = f"cofre-demo-{signatures.fingerprint(public)[:8]}"
        cofre.signers.add(session, state.actor, name, public, "artifact")
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


commands = [demo]
