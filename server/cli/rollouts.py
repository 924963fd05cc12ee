"""`cofre rollouts`: start, status, promote and abort a model's staged rollout."""

from __future__ import annotations

from typing import Any

import click

from governance.rollouts.reports import describe
from governance.rollouts.service import STICKY, STRATEGIES, RolloutRequest
from server.cli import CliState, emit_json, pass_state
from server.cli.params import ID


@click.group("rollouts")
def rollouts() -> None:
    """Staged rollouts: canary, A/B, shadow, blue-green."""


@rollouts.command("start")
@click.argument("name")
@click.option("--candidate", type=ID, required=True, help="The version to roll out.")
@click.option("--strategy", type=click.Choice(STRATEGIES), required=True)
@click.option("--percent", type=float, help="canary/ab: share of traffic to the candidate.")
@click.option("--sticky", type=click.Choice(STICKY), default="subject", show_default=True)
@click.option("--guardrail", "guardrails", multiple=True, help="METRIC<LIMIT, e.g. error_rate<0.05")
@click.option("--min-requests", type=ID, default=50, show_default=True)
@click.option("--alpha", type=float, default=0.05, show_default=True)
@click.option("--power", type=float, default=0.8, show_default=True)
@click.option("--horizon", type=ID, default=1000, show_default=True, help="ab: rows per variant.")
@click.option(
    "--looks",
    type=click.IntRange(1, 20),
    default=5,
    show_default=True,
    help="ab: interim analyses.",
)
@click.option("--json", "as_json", is_flag=True)
@pass_state
def start(state: CliState, name: str, as_json: bool, **options: Any) -> None:
    """Start a rollout of model NAME's candidate version against production."""
    request = RolloutRequest(name=name, guardrails=tuple(options.pop("guardrails")), **options)
    cofre = state.services
    with cofre.write() as session:
        body = describe(cofre.rollouts.start(session, state.actor, request))
    if as_json:
        emit_json(body)
        return
    click.echo(
        f"rollout {body['id']} of {name}: {body['strategy']} version {body['candidate']} "
        f"against {body['champion']} ({body['percent']:g} %)"
    )


@rollouts.command("status")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True)
@pass_state
def status(state: CliState, name: str, as_json: bool) -> None:
    """Show model NAME's running (else latest) rollout with its figures."""
    cofre = state.services
    with cofre.read() as session:
        body = cofre.rollout_reports.status(session, name)
    if as_json:
        emit_json(body)
        return
    _print_status(body)


def _print_status(body: dict[str, Any]) -> None:
    click.echo(
        f"rollout {body['id']} of {body['model']}: {body['status']} {body['strategy']} "
        f"candidate {body['candidate']} vs champion {body['champion']} ({body['percent']:g} %)"
    )
    if body["end_reason"]:
        click.echo(f"  ended by {body['ended_by']}: {body['end_reason']}")
    for variant, figures in body["variants"].items():
        click.echo(
            f"  {variant:<9} v{figures['version']} requests={figures['requests']} "
            f"errors={figures['errors']} p50={_ms(figures['p50_ms'])} p99={_ms(figures['p99_ms'])} "
            f"agreement={_share(figures['agreement'])} dropped={figures['shadow_dropped']}"
        )
    comparison = body["comparison"]
    for variant in ("champion", "candidate"):
        metric = comparison[variant]
        click.echo(
            f"  {variant:<9} {metric['metric']}={_share(metric['value'])} "
            f"n={metric['n']} ci={metric['ci']}"
        )
    test = comparison["test"]
    click.echo(
        f"  test {test['test']} p={test['p_value']} still needed={comparison['still_needed']}"
    )
    if "decision" in comparison:
        click.echo(f"  decision: {comparison['decision'] or 'not yet'}")


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:g}ms"


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


@rollouts.command("promote")
@click.argument("name")
@pass_state
def promote(state: CliState, name: str) -> None:
    """Point NAME's production at the candidate and end the rollout."""
    cofre = state.services
    with cofre.write() as session:
        moved = cofre.promotions.promote_rollout(session, state.actor, name)
        pending = moved.pending.id if moved.pending else None
    if pending is not None:
        click.echo(f"promotion request {pending} awaits another person's approval")
        return
    click.echo(f"{name}@production -> version {moved.version}; rollout promoted")


@rollouts.command("abort")
@click.argument("name")
@click.option("--reason", required=True)
@pass_state
def abort(state: CliState, name: str, reason: str) -> None:
    """Send all of NAME's traffic back to the champion and end the rollout."""
    cofre = state.services
    with cofre.write() as session:
        rollout = cofre.rollouts.abort(session, state.actor, name, reason)
    click.echo(
        f"rollout {rollout.id} of {name} aborted; "
        f"production stays version {rollout.champion_version}"
    )


commands = [rollouts]
