"""`cofre models`: publish, compile, export, list, show, alias (promote) and roll back."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from governance.files import write_atomically
from governance.identifiers import MAX_ID, parse_id
from governance.monitoring.profiles import ReferenceData, reference_format
from governance.registry.compiled import RUNTIMES
from governance.registry.service import DECISION_MODES, ModelCard, PublishRequest
from governance.rollouts.approvals import SelfApproval
from governance.rollouts.approvals import as_dict as promotion_as_dict
from server import exports
from server import representations as rep
from server.cli import CliState, emit_json, pass_state
from server.cli.params import ID

_REF = re.compile(r"^(?P<name>.+?)(?:@(?P<alias>[a-z][a-z0-9_-]*)|:(?P<version>[0-9]+))?$")
_VERSION_REF = re.compile(r"^(?P<name>.+):(?P<version>[0-9]+)$")
EXPORT_FORMATS = ("onnx",)
_RUNTIME_HELP = (
    "Who answers: 'auto' serves from ONNX Runtime once proven equal to the estimator, "
    "'onnx' requires that (or fails), 'sklearn' never compiles."
)


@click.group("models")
def models() -> None:
    """Manage the model registry."""


@models.command("publish")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--name", required=True)
@click.option("--purpose", required=True, help="Why the model exists (model card).")
@click.option("--legal-basis", required=True, help="LGPD/GDPR legal basis for the processing.")
@click.option("--description", default="")
@click.option(
    "--decision-mode",
    type=click.Choice(DECISION_MODES),
    default="human-reviewed",
    show_default=True,
)
@click.option("--owner", default="")
@click.option(
    "--retention-days",
    type=ID,
    help="Days personal data in its audit rows is kept (default: the appliance's setting).",
)
@click.option("--recipients", default="", help="Who receives its decisions (model card).")
@click.option(
    "--features",
    "features_file",
    type=click.Path(exists=True, path_type=Path),
    help="JSON list of {name, dtype} declaring the input schema.",
)
@click.option("--allow-missing", is_flag=True, help="Accept NaN/null inputs for this version.")
@click.option(
    "--allow-duplicate",
    is_flag=True,
    help="Publish even when a version of this model has the very same file.",
)
@click.option("--alias", "aliases", multiple=True, help="Point this alias at the new version.")
@click.option(
    "--reference-data",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="CSV or Parquet of the features (and optionally the target) the version "
    "learnt from: the baseline of drift (default: its first served rows).",
)
@click.option(
    "--reference-target",
    help="The reference data's target column (default: a column named 'target').",
)
@click.option(
    "--runtime", type=click.Choice(RUNTIMES), default="auto", show_default=True, help=_RUNTIME_HELP
)
@click.option("--json", "as_json", is_flag=True)
@pass_state
def publish(
    state: CliState,
    file: Path,
    name: str,
    purpose: str,
    legal_basis: str,
    description: str,
    decision_mode: str,
    owner: str,
    retention_days: int | None,
    recipients: str,
    features_file: Path | None,
    allow_missing: bool,
    allow_duplicate: bool,
    aliases: tuple[str, ...],
    reference_data: Path | None,
    reference_target: str | None,
    runtime: str,
    as_json: bool,
) -> None:
    """Publish a skops FILE as the next version of model NAME."""
    card = ModelCard(
        purpose=purpose,
        legal_basis=legal_basis,
        description=description,
        decision_mode=decision_mode,
        owner=owner,
        retention_days=retention_days,
        recipients=recipients,
    )
    request = PublishRequest(
        name=name,
        artifact=file.read_bytes(),
        card=card,
        features=_features(features_file),
        allow_missing=allow_missing,
        aliases=list(aliases),
        reference=_reference(reference_data, reference_target),
        runtime=runtime,
        allow_duplicate=allow_duplicate,
    )
    cofre = state.services
    cofre.promotions.check_publish_aliases(request.aliases)
    prepared = cofre.registry.prepare(state.actor, request)  # slow: before the write lock
    with cofre.write() as session:
        version = cofre.registry.publish(session, state.actor, prepared)
        detail = rep.version_detail(version)
    if as_json:
        emit_json(detail)
        return
    click.echo(
        f"published {name} version {detail['version']} sha256={detail['sha256']} "
        f"{_runtime_line(detail)}"
    )


def _runtime_line(detail: dict[str, Any]) -> str:
    compilation = detail["compilation"]
    if detail["runtime"] == "onnx":
        return "runtime=onnx (proven equal)"
    return f"runtime=sklearn ({compilation['reason']})"


@models.command("compile")
@click.argument("name")
@click.argument("version", type=ID)
@click.option(
    "--runtime", type=click.Choice(RUNTIMES), default="auto", show_default=True, help=_RUNTIME_HELP
)
@click.option("--json", "as_json", is_flag=True)
@pass_state
def compile_version(state: CliState, name: str, version: int, runtime: str, as_json: bool) -> None:
    """Compile VERSION of model NAME to ONNX and serve it from there once proven equal."""
    cofre = state.services
    with cofre.read() as session:  # the slow part, before the write lock
        attempt = cofre.registry.prepare_compile(session, state.actor, name, version, runtime)
    with cofre.write() as session:
        compiled = cofre.registry.compile(session, state.actor, name, version, runtime, attempt)
        detail = rep.version_detail(compiled)
    if as_json:
        emit_json(detail)
        return
    click.echo(f"{name} version {version} {_runtime_line(detail)}")


@models.command("export")
@click.argument("ref")
@click.option(
    "--format", "fmt", type=click.Choice(EXPORT_FORMATS), default="onnx", show_default=True
)
@click.option(
    "--out", required=True, type=click.Path(dir_okay=False, path_type=Path), help="File to write."
)
@pass_state
def export(state: CliState, ref: str, fmt: str, out: Path) -> None:
    """Write NAME:VERSION's proven ONNX model to --out, its manifest beside it."""
    match = _VERSION_REF.match(ref)
    version = parse_id(match["version"]) if match else None
    if match is None or version is None:
        raise click.BadParameter(f"give NAME:VERSION, VERSION 1 to {MAX_ID}", param_hint="REF")
    cofre = state.services
    manifest_path = exports.manifest_path(out)
    with cofre.write() as session:  # the export's audit event commits only once written
        exported = cofre.registry.export_compiled(session, state.actor, match["name"], version)
        # Private (0600) like every file cofre writes: a model is its owner's to share.
        write_atomically(out, exported.model)
        write_atomically(manifest_path, exports.manifest_json(exported.manifest))
    sha = exported.manifest["onnx"]["sha256"]
    click.echo(f"wrote {out} ({fmt}, sha256={sha}) and {manifest_path}")


def _reference(path: Path | None, target: str | None) -> ReferenceData | None:
    if path is None:
        return None
    return ReferenceData(path.read_bytes(), reference_format(path.name), target)


def _features(path: Path | None) -> list[dict[str, str]] | None:
    if path is None:
        return None
    try:
        value = json.loads(path.read_text())
    except ValueError:
        raise click.ClickException(f"{path} is not valid JSON") from None
    if not isinstance(value, list):
        raise click.ClickException(f"{path} must hold a JSON list of {{name, dtype}}")
    return value


@models.command("list")
@click.option("--json", "as_json", is_flag=True)
@pass_state
def list_models(state: CliState, as_json: bool) -> None:
    """List models with their latest version and aliases."""
    cofre = state.services
    with cofre.read() as session:
        rows = [rep.model_summary(m) for m in cofre.registry.models(session, state.actor)]
    if as_json:
        emit_json(rows)
        return
    for row in rows:
        aliases = " ".join(f"{a}={v}" for a, v in row["aliases"].items())
        click.echo(f"{row['name']:<32} latest={row['latest_version']} {aliases}")


@models.command("show")
@click.argument("ref")
@click.option("--json", "as_json", is_flag=True)
@pass_state
def show(state: CliState, ref: str, as_json: bool) -> None:
    """Show NAME (all versions), NAME@ALIAS or NAME:VERSION."""
    match = _REF.match(ref)
    assert match is not None  # the pattern accepts any non-empty text
    cofre = state.services
    with cofre.read() as session:
        data = _show_data(state, session, match.groupdict())
    if as_json:
        emit_json(data)
    else:
        _print_show(data)


def _show_data(state: CliState, session: Any, parts: dict[str, str | None]) -> dict[str, Any]:
    registry = state.services.registry
    if parts["alias"] is None and parts["version"] is None:
        return rep.model_detail(registry.model(session, parts["name"] or ""))
    version = parse_id(parts["version"]) if parts["version"] else None
    if parts["version"] and version is None:
        raise click.BadParameter(f"a version is a whole number from 1 to {MAX_ID}")
    return rep.version_detail(
        registry.resolve(session, parts["name"] or "", alias=parts["alias"], version=version)
    )


def _print_show(data: dict[str, Any]) -> None:
    for version in data.get("versions", [data]):
        card = version["card"]
        click.echo(
            f"{version['name']} version {version['version']} "
            f"aliases={','.join(version['aliases']) or '-'}"
        )
        click.echo(f"  sha256 {version['sha256']}  sklearn {version['sklearn_version']}")
        click.echo(f"  estimator {version['estimator']}  proba={version['has_proba']}")
        click.echo(f"  {_runtime_line(version)}")
        proof = version["compilation"].get("proof")
        if proof:
            click.echo(
                f"  proof: {proof['rows']} {proof['sample']} rows, "
                f"{proof['label_mismatches']} label mismatches, "
                f"max probability diff {proof['max_proba_diff']}, "
                f"max relative diff {proof['max_relative_diff']} "
                f"(onnxruntime {proof['onnxruntime']}, skl2onnx {proof['skl2onnx']})"
            )
        click.echo(f"  published by {version['published_by']} at {version['published_at']}")
        click.echo(
            f"  purpose: {card['purpose']}  legal basis: {card['legal_basis']}  "
            f"decision: {card['decision_mode']}  retention: {card['retention_days']} days"
        )
        click.echo(f"  features: {', '.join(f['name'] for f in version['features'])}")


@models.command("alias")
@click.argument("name")
@click.argument("version", type=ID)
@click.argument("alias")
@pass_state
def alias(state: CliState, name: str, version: int, alias: str) -> None:
    """Point ALIAS of model NAME at VERSION (promote)."""
    cofre = state.services
    with cofre.write() as session:
        moved = cofre.promotions.set_alias(session, state.actor, name, version, alias)
        pending = moved.pending.id if moved.pending else None
    if pending is not None:
        click.echo(f"promotion request {pending} awaits another person's approval")
        return
    click.echo(f"{name}@{alias} -> version {version}")


@models.command("rollback")
@click.argument("name")
@click.argument("alias")
@pass_state
def rollback(state: CliState, name: str, alias: str) -> None:
    """Move ALIAS of model NAME back to its previous target."""
    cofre = state.services
    with cofre.write() as session:
        moved = cofre.registry.rollback(session, state.actor, name, alias)
    click.echo(f"{name}@{alias} rolled back to version {moved.version}")


@models.command("history")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True)
@pass_state
def history(state: CliState, name: str, as_json: bool) -> None:
    """Show every alias move of model NAME."""
    cofre = state.services
    with cofre.read() as session:
        rows = [rep.alias_move(h) for h in cofre.registry.alias_history(session, name)]
        requests = [promotion_as_dict(r) for r in cofre.promotions.history(session, name)]
    if as_json:
        emit_json({"moves": rows, "promotion_requests": requests} if requests else rows)
        return
    for row in rows:
        click.echo(
            f"{row['at']} {row['alias']}: {row['from_version']} -> {row['to_version']} "
            f"({row['action']} by {row['actor']})"
        )
    for request in requests:
        click.echo(_request_line(request))


def _request_line(request: dict[str, Any]) -> str:
    decided = (
        f", {request['status']} by {request['decided_by']} at {request['decided_at']}"
        if request["decided_by"]
        else ""
    )
    reason = f" ({request['reason']})" if request["reason"] else ""
    return (
        f"request {request['id']}: {request['model']}@{request['alias']} -> version "
        f"{request['version']} asked by {request['requested_by']} at "
        f"{request['requested_at']}{decided}{reason} [{request['status']}]"
    )


@models.command("approvals")
@click.option("--json", "as_json", is_flag=True)
@pass_state
def approvals(state: CliState, as_json: bool) -> None:
    """List promotions of production waiting for approval."""
    cofre = state.services
    with cofre.read() as session:
        pending = [promotion_as_dict(r) for r in cofre.promotions.pending(session)]
    if as_json:
        emit_json(pending)
        return
    for request in pending:
        click.echo(_request_line(request))


@models.command("approve")
@click.argument("request_id", type=ID)
@pass_state
def approve(state: CliState, request_id: int) -> None:
    """Approve promotion request REQUEST_ID (not your own)."""
    cofre = state.services
    with _refusal_recorded(state, request_id), cofre.write() as session:
        request = cofre.promotions.approve(session, state.actor, request_id)
        line = f"{request.model_name}@{request.alias} -> version {request.version} (approved)"
    click.echo(line)


@models.command("reject")
@click.argument("request_id", type=ID)
@click.option("--reason", required=True)
@pass_state
def reject(state: CliState, request_id: int, reason: str) -> None:
    """Reject promotion request REQUEST_ID (not your own)."""
    cofre = state.services
    with _refusal_recorded(state, request_id), cofre.write() as session:
        cofre.promotions.reject(session, state.actor, request_id, reason)
    click.echo(f"promotion request {request_id} rejected")


@contextmanager
def _refusal_recorded(state: CliState, request_id: int) -> Iterator[None]:
    """A refused self-approval is audited (the CLI has no edge that does it)."""
    try:
        yield
    except SelfApproval:
        with state.services.write() as session:
            state.services.promotions.record_refusal(session, state.actor, request_id)
        raise


commands = [models]
