"""`cofre retrain`: register retraining plans, run them now, read their runs."""

from __future__ import annotations

from pathlib import Path

import click

from governance.monitoring.rules import TRIGGER_KINDS
from governance.retraining.evaluation import METRICS
from governance.retraining.service import PlanRequest
from server import representations as rep
from server.cli import CliState, emit_json, pass_state
from server.cli.params import ID
from server.jobs import RETRAIN_PREFIX, parse_cron, retrain_work, run_recorded


@click.group("retrain")
def retrain() -> None:
    """Gated retraining of models on fresh data."""


@retrain.command("create")
@click.argument("model")
@click.option("--source", help="CSV or Parquet file, relative to the retraining data directory.")
@click.option("--query", help="A SELECT against retraining_database_url (instead of --source).")
@click.option("--target", required=True, help="The label column.")
@click.option("--schedule", required=True, help="Cron expression (UTC), e.g. '0 3 * * 1'.")
@click.option("--metric", required=True, type=click.Choice(sorted(METRICS)))
@click.option("--min-improvement", type=float, default=0.01, show_default=True)
@click.option("--holdout", type=float, default=0.25, show_default=True)
@click.option(
    "--profile-data",
    type=click.Path(path_type=Path),
    help="The champion's training data (under the data directory): the quality baseline. "
    "Without it, the first data read becomes the baseline.",
)
@click.option(
    "--on-alert",
    type=click.Choice(TRIGGER_KINDS),
    help="Also run when an alert of this kind fires for MODEL (it still never promotes).",
)
@click.option("--json", "as_json", is_flag=True)
@pass_state
def create(
    state: CliState,
    model: str,
    source: str | None,
    query: str | None,
    target: str,
    schedule: str,
    metric: str,
    min_improvement: float,
    holdout: float,
    profile_data: Path | None,
    on_alert: str | None,
    as_json: bool,
) -> None:
    """Register a retraining plan for MODEL."""
    if (source is None) == (query is None):
        raise click.UsageError("give exactly one of --source or --query")
    parse_cron(schedule)
    request = PlanRequest(
        model_name=model,
        source_kind="file" if source else "sql",
        source=source or query or "",
        target=target,
        schedule=schedule,
        metric=metric,
        min_improvement=min_improvement,
        holdout=holdout,
        profile_source=str(profile_data) if profile_data else None,
        on_alert=on_alert,
    )
    plan = state.services.retraining.create_plan(state.actor, request)
    if as_json:
        emit_json(rep.retraining_plan(plan))
        return
    click.echo(f"plan {plan.id} registered for {model}: {metric}, schedule {plan.schedule}")


@retrain.command("update")
@click.argument("plan_id", type=int)
@click.option(
    "--on-alert",
    required=True,
    type=click.Choice([*TRIGGER_KINDS, "none"]),
    help="Run also when an alert of this kind fires for the plan's model; none: schedule only.",
)
@click.option("--json", "as_json", is_flag=True)
@pass_state
def update(state: CliState, plan_id: int, on_alert: str, as_json: bool) -> None:
    """Change what, besides its schedule, runs plan PLAN_ID."""
    chosen = None if on_alert == "none" else on_alert
    plan = state.services.retraining.set_on_alert(state.actor, plan_id, chosen)
    if as_json:
        emit_json(rep.retraining_plan(plan))
        return
    click.echo(
        f"plan {plan.id} runs on its schedule" + (f" and on {chosen} alerts" if chosen else "")
    )


@retrain.command("plans")
@click.option("--json", "as_json", is_flag=True)
@pass_state
def plans(state: CliState, as_json: bool) -> None:
    """List retraining plans."""
    cofre = state.services
    with cofre.read() as session:
        rows = [rep.retraining_plan(p) for p in cofre.retraining.plans(session, state.actor)]
    if as_json:
        emit_json(rows)
        return
    for row in rows:
        click.echo(
            f"{row['id']:>4}  {row['model']:<24} {row['metric']:<8} "
            f"+{row['min_improvement']}  {row['schedule']}  {row['source_kind']}:{row['source']}"
            + (f"  on {row['on_alert']} alerts" if row["on_alert"] else "")
        )


@retrain.command("run")
@click.argument("plan_id", type=ID)
@click.option("--json", "as_json", is_flag=True)
@pass_state
def run(state: CliState, plan_id: int, as_json: bool) -> None:
    """Run plan PLAN_ID now (recorded in the job history like a scheduled run)."""
    cofre = state.services
    with cofre.read() as session:
        cofre.retraining.plan(session, plan_id, state.actor)  # NotFound before anything is recorded
    end = run_recorded(state.app, f"{RETRAIN_PREFIX}{plan_id}", retrain_work(plan_id))
    with cofre.read() as session:
        latest = cofre.retraining.runs(session, state.actor, plan_id, limit=1)
    if as_json and latest:
        emit_json(rep.retraining_run(latest[0]))
    elif not as_json:
        click.echo(end.message)
    if end.outcome != "ok":
        raise SystemExit(1)


@retrain.command("runs")
@click.option("--plan", "plan_id", type=ID, help="Only runs of this plan.")
@click.option("--limit", type=click.IntRange(1, 500), default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@pass_state
def runs(state: CliState, plan_id: int | None, limit: int, as_json: bool) -> None:
    """Recent retraining runs: source, data hash, rows, metrics, decision."""
    cofre = state.services
    with cofre.read() as session:
        rows = [
            rep.retraining_run(r)
            for r in cofre.retraining.runs(session, state.actor, plan_id, limit)
        ]
    if as_json:
        emit_json(rows)
        return
    for row in rows:
        click.echo(
            f"{row['id']:>4} plan={row['plan']} {row['decision']:<10} rows={row['rows']} "
            f"sha256={(row['data_sha256'] or '-')[:12]} champion={row['champion_metric']} "
            f"candidate={row['candidate_metric']}  {row['reason']}"
        )


commands = [retrain]
