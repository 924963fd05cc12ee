"""`cofre reviews`: contested automated decisions, listed, shown and decided."""

from __future__ import annotations

import json
from typing import Any

import click

from governance.subjects.caller import Caller
from governance.subjects.reviews import OUTCOMES, STATUSES
from server.cli import CliState, emit_json, pass_state
from server.cli.params import ID


@click.group("reviews")
def reviews() -> None:
    """Reviews of contested automated decisions (LGPD Art. 20, GDPR Art. 22)."""


@reviews.command("list")
@click.option("--status", type=click.Choice(STATUSES), help="Only reviews in this state.")
@click.option("--json", "as_json", is_flag=True)
@pass_state
def list_reviews(state: CliState, status: str | None, as_json: bool) -> None:
    """List reviews, newest first, with their age and due date."""
    cofre = state.services
    with cofre.read() as session:
        rows = [v.as_dict() for v in cofre.reviews.listing(session, state.actor, status)]
    if as_json:
        emit_json(rows)
        return
    for row in rows:
        late = " OVERDUE" if row["overdue"] else ""
        click.echo(
            f"{row['id']:>5}  {row['status']:<8} {row['model']}:{row['version']} "
            f"request {row['request_id']} row {row['row']}  age {row['age_days']} d  "
            f"due {row['due_at']}{late}"
        )


@reviews.command("show")
@click.argument("review_id", type=ID)
@click.option("--explain", is_flag=True, help="Also explain the decision with its version.")
@click.option("--json", "as_json", is_flag=True)
@pass_state
def show(state: CliState, review_id: int, explain: bool, as_json: bool) -> None:
    """Show review REVIEW_ID with its reasons (the reading is audited)."""
    cofre = state.services
    caller = Caller(state.actor, "cli")
    with cofre.write() as session:
        data = cofre.reviews.show(session, caller, review_id).as_dict()
        if explain and not data["erased"]:
            decision = cofre.decisions.locate(session, state.actor, data["request_id"], data["row"])
            data["explanation"] = cofre.decisions.explain(
                session, decision, state.actor, "cli", None
            ).as_dict()
    if as_json:
        emit_json(data)
        return
    _print(data)


def _print(data: dict[str, Any]) -> None:
    click.echo(
        f"review {data['id']} ({data['status']}): {data['model']} version {data['version']}, "
        f"request {data['request_id']} row {data['row']}"
    )
    click.echo(f"  opened by {data['opened_by']} at {data['opened_at']}, due {data['due_at']}")
    click.echo(f"  reason: {data['reason'] if not data['erased'] else '(erased)'}")
    if data["outcome"]:
        click.echo(f"  {data['outcome']} by {data['decided_by']}: {data['decision_reason']}")
    explanation = data.get("explanation")
    if explanation:
        space, output = explanation["output_space"], explanation["output"]
        click.echo(f"  {explanation['method']}; {space} = {output:.6g}")
        click.echo(f"  base value {explanation['base_value']:.6g} ({explanation['baseline']})")
        ranked = sorted(explanation["contributions"].items(), key=lambda kv: -abs(kv[1]))
        for name, value in ranked:
            click.echo(f"    {value:+.6g}  {name}")


@reviews.command("decide")
@click.argument("review_id", type=ID)
@click.option("--outcome", type=click.Choice(OUTCOMES), required=True)
@click.option("--reason", required=True, help="Why, for the person and the record.")
@click.option("--corrected-output", help="The decision that replaces it (JSON or text).")
@click.option("--json", "as_json", is_flag=True)
@pass_state
def decide(
    state: CliState,
    review_id: int,
    outcome: str,
    reason: str,
    corrected_output: str | None,
    as_json: bool,
) -> None:
    """Decide review REVIEW_ID (not by its opener nor the version's publisher)."""
    decided = state.services.reviews.decide(
        Caller(state.actor, "cli"), review_id, outcome, reason, _value(corrected_output)
    )
    if as_json:
        emit_json(decided.as_dict())
        return
    click.echo(f"review {review_id} decided: {outcome}")


def _value(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


commands = [reviews]
