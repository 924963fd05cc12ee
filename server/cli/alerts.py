"""`cofre alerts`: firing and resolved alerts with their evidence, and each model's rules."""

from __future__ import annotations

from dataclasses import asdict

import click

from governance.monitoring.alerts import STATES
from governance.monitoring.rules import KINDS, make_rule
from server import representations as rep
from server.cli import CliState, emit_json, pass_state


@click.group("alerts")
def alerts() -> None:
    """Alerts raised on the monitoring rollups, and the rules that raise them."""


@alerts.command("list")
@click.option("--model", help="Only this model's alerts.")
@click.option("--state", "shown", type=click.Choice(STATES), help="Only firing or resolved ones.")
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@pass_state
def list_alerts(
    state: CliState, model: str | None, shown: str | None, limit: int, as_json: bool
) -> None:
    """Alerts, newest first, with the rollup figures that fired (and resolved) them."""
    cofre = state.services
    with cofre.read() as session:
        found = cofre.alerts.listing(session, state.actor, shown, model, limit)
        outbox = cofre.alerts.deliveries(session, [a.id for a in found])
        rows = [rep.alert(a, outbox[a.id]) for a in found]
    if as_json:
        emit_json(rows)
        return
    for row in rows:
        breaching = ", ".join(row["evidence"].get("breaching", [])) or "-"
        resolved = f"  resolved {row['resolved_at']}" if row["resolved_at"] else ""
        click.echo(
            f"{row['id']:>5}  {row['state']:<8} {row['model']} v{row['version']}  "
            f"{row['rule']['description']}  breaching: {breaching}  "
            f"fired {row['fired_at']}{resolved}"
        )


@alerts.group("rules")
def rules() -> None:
    """Each model's alert rules (the configured defaults until its publisher edits them)."""


@rules.command("list")
@click.argument("model")
@click.option("--json", "as_json", is_flag=True)
@pass_state
def list_rules(state: CliState, model: str, as_json: bool) -> None:
    """The rules MODEL follows now."""
    cofre = state.services
    with cofre.read() as session:
        found = [r.as_dict() for r in cofre.alerts.rules(session, state.actor, model)]
    if as_json:
        emit_json(found)
        return
    for rule in found:
        click.echo(f"{rule['ref']:>10}  {rule['source']:<6} {rule['description']}")


@rules.command("add")
@click.argument("model")
@click.option("--kind", required=True, type=click.Choice(sorted(KINDS)))
@click.option(
    "--method",
    help="drift: psi, ks, chi2 or wasserstein; performance: the metric (accuracy, f1, "
    "roc_auc, mae, ...); not needed for missing and error_rate.",
)
@click.option(
    "--threshold",
    required=True,
    type=float,
    help="Fires above it (below it for performance scores such as accuracy).",
)
@click.option(
    "--windows",
    type=click.IntRange(1, 50),
    default=1,
    show_default=True,
    help="Consecutive windows the condition must hold in.",
)
@click.option("--feature", help="Only this feature (drift, missing); default any feature.")
@click.option("--json", "as_json", is_flag=True)
@pass_state
def add_rule(
    state: CliState,
    model: str,
    kind: str,
    method: str | None,
    threshold: float,
    windows: int,
    feature: str | None,
    as_json: bool,
) -> None:
    """Add a rule to MODEL (its first edit copies the defaults into its own rules)."""
    rule = make_rule(kind, method, threshold, windows, feature)
    cofre = state.services
    with cofre.write() as session:
        added = cofre.alerts.add_rule(session, state.actor, model, rule)
    if as_json:
        emit_json(added.as_dict())
        return
    click.echo(f"rule {added.ref} added to {model}: {added.describe()}")


@rules.command("remove")
@click.argument("model")
@click.argument("rule")
@pass_state
def remove_rule(state: CliState, model: str, rule: str) -> None:
    """Remove RULE (its id, or default-N) from MODEL."""
    cofre = state.services
    with cofre.write() as session:
        removed = cofre.alerts.remove_rule(session, state.actor, model, rule)
    click.echo(f"rule {rule} removed from {model}: {removed.describe()}")


@alerts.command("extraction")
@click.option("--json", "as_json", is_flag=True)
@pass_state
def extraction(state: CliState, as_json: bool) -> None:
    """Judge every API key's recent traffic for sweeps of the input space now, as the
    `extraction` job does: fire and resolve extraction alerts, and print each key's
    figures (the keys with enough rows in the window)."""
    cofre = state.services
    detector = cofre.extraction
    with cofre.read() as session:  # opening the rows is the long part
        findings = detector.scan(session)
    with cofre.write() as session:
        transitions = detector.judge(session, findings, state.actor)  # audited as the operator
    rows = [rep.extraction_finding(f) for f in findings]
    if as_json:
        emit_json({"findings": rows, "alerts": [asdict(t) for t in transitions]})
        return
    if not rows:
        click.echo("no API key sent enough rows in the window to judge")
    for row in rows:
        verdict = "SWEEP" if row["signals"] else "ok   "
        click.echo(f"{verdict} {row['model']} v{row['version']}  {row['reason']}")
    for t in transitions:
        click.echo(f"alert {t.alert_id} {t.state}: {t.model_name} v{t.model_version}")


commands = [alerts]
