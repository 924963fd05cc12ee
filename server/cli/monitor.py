"""`cofre monitor NAME`: compute and store a model's monitoring report now, as the
scheduled `monitoring` job does, and print it."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import click

from governance.monitoring.records import OUTPUT
from governance.monitoring.windows import parse_length
from server.cli import CliState, emit_json, pass_state
from server.jobs import evaluate_alerts


@click.command("monitor")
@click.argument("name")
@click.option("--version", type=click.IntRange(min=1), help="Only this version.")
@click.option(
    "--window",
    default=None,
    help="Window length, e.g. 1h, 24h or 7d (default: the monitoring_window setting).",
)
@click.option("--json", "as_json", is_flag=True)
@pass_state
def monitor(
    state: CliState, name: str, version: int | None, window: str | None, as_json: bool
) -> None:
    """Drift, data quality, performance and traffic of model NAME over the window ending
    at the next step (every version served in it, unless --version); stored as the
    job stores it."""
    cofre = state.services
    length = parse_length(window) if window else cofre.monitoring_window
    with cofre.read() as session:  # results are written in short transactions
        reports = cofre.monitoring.run(session, name, version, length)
    # The rules are judged on what was just stored, exactly as the monitoring job does.
    versions = [(r["model"], r["version"]) for r in reports]
    transitions = evaluate_alerts(cofre, versions, state.actor)  # audited as the operator
    if as_json:
        emit_json({"reports": reports, "alerts": [asdict(t) for t in transitions]})
        return
    for report in reports:
        _print(report)
    for t in transitions:
        click.echo(f"alert {t.alert_id} {t.state}: {t.model_name} v{t.model_version} {t.rule}")


def _print(report: dict[str, Any]) -> None:
    window = report["window"]
    profile = report["profile"]
    click.echo(
        f"{report['model']} version {report['version']}: {window['start']} to {window['end']} "
        f"({window['length']})"
    )
    if profile is None:
        click.echo("  no profile yet: drift waits for reference data or enough served rows")
    else:
        click.echo(f"  profile: {profile['source']} ({profile['rows']} rows)")
    drift = report["drift"]
    for feature in report["drifting"] + sorted(set(drift) - set(report["drifting"])):
        figures = drift[feature]
        test = figures.get("test") or "-"
        p_value = figures.get("p_value")
        label = "(output)" if feature == OUTPUT else feature
        click.echo(
            f"  {'DRIFT' if figures.get('drifting') else 'ok   '} {label:<28} "
            f"psi={_num(figures.get('psi'))} {test} p={_num(p_value)} "
            f"wasserstein={_num(figures.get('wasserstein'))}"
        )
    perf = report["performance"]
    if perf:
        shown = " ".join(f"{k}={_num(v)}" for k, v in perf.items() if k != "labelled_rows")
        click.echo(f"  performance on {perf.get('labelled_rows', 0)} labelled rows: {shown}")
    traffic = report["traffic"]
    click.echo(
        f"  traffic: {int(traffic.get('requests') or 0)} requests, "
        f"{int(traffic.get('rows') or 0)} rows, {int(traffic.get('errors') or 0)} errors"
    )


def _num(value: Any) -> str:
    return "-" if value is None else f"{value:.4g}"


commands = [monitor]
