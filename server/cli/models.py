"""`cofre models`: publish, sign, compile, export, import, list, show, diff, verify, alias
(promote) and roll back."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from governance.files import sha256_of_file, write_atomically
from governance.identifiers import MAX_ID, parse_id
from governance.monitoring.profiles import ReferenceData, reference_format
from governance.provenance import mlflow_source, signatures
from governance.provenance.mlflow_source import MlflowModel
from governance.provenance.service import Origin
from governance.registry import lifecycle
from governance.registry.compiled import RUNTIMES
from governance.registry.retirement import parse_sunset
from governance.registry.service import DECISION_MODES, ModelCard, PublishRequest
from governance.rollouts.approvals import SelfApproval
from governance.rollouts.approvals import as_dict as promotion_as_dict
from server import exports
from server import representations as rep
from server.cli import CliState, emit_json, pass_state
from server.cli.params import ID

_COMMIT = re.compile(r"[0-9a-fA-F]{7,64}")
_REF = re.compile(r"^(?P<name>.+?)(?:@(?P<alias>[a-z][a-z0-9_-]*)|:(?P<version>[0-9]+))?$")
_VERSION_REF = re.compile(r"^(?P<name>.+):(?P<version>[0-9]+)$")
EXPORT_FORMATS = ("bundle", "onnx")
_RUNTIME_HELP = (
    "Who answers: 'auto' serves from ONNX Runtime once proven equal to the estimator, "
    "'onnx' requires that (or fails), 'sklearn' never compiles."
)


@click.group("models")
def models() -> None:
    """Manage the model registry."""


@models.command("publish")
@click.argument("file", required=False, type=click.Path(exists=True, path_type=Path))
@click.option(
    "--from-mlflow",
    "mlflow_uri",
    metavar="models:/NAME/VERSION",
    help="Fetch a registered model version from an MLflow tracking server instead of FILE.",
)
@click.option("--tracking-uri", help="The MLflow tracking server's URL (with --from-mlflow).")
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
    "--signature",
    "signature_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The file's detached signature (`cofre models sign`), checked against trusted signers.",
)
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
    "--training-data",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The file the model was trained on: its SHA-256 is kept with the version "
    "(the file itself is not).",
)
@click.option(
    "--source-commit",
    help="The commit of the code that trained it (default: the MLflow run's git commit).",
)
@click.option(
    "--requirements",
    "requirements_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The training environment's `pip freeze` (NAME==VERSION lines): the library "
    "versions kept with the version (the skops file's own scikit-learn and skops win).",
)
@click.option("--note", default="", help="What changed and why, kept with the changelog.")
@click.option(
    "--runtime", type=click.Choice(RUNTIMES), default="auto", show_default=True, help=_RUNTIME_HELP
)
@click.option("--json", "as_json", is_flag=True)
@pass_state
def publish(
    state: CliState,
    file: Path | None,
    mlflow_uri: str | None,
    tracking_uri: str | None,
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
    signature_file: Path | None,
    reference_data: Path | None,
    reference_target: str | None,
    training_data: Path | None,
    source_commit: str | None,
    requirements_file: Path | None,
    note: str,
    runtime: str,
    as_json: bool,
) -> None:
    """Publish a skops FILE, an MLflow model directory or (--from-mlflow) a registered
    MLflow model version as the next version of model NAME."""
    source = _source(file, mlflow_uri, tracking_uri)
    card = ModelCard(
        purpose=purpose,
        legal_basis=legal_basis,
        description=_described(description, source),
        decision_mode=decision_mode,
        owner=owner,
        retention_days=retention_days,
        recipients=recipients,
    )
    request = PublishRequest(
        name=name,
        artifact=source.artifact if isinstance(source, MlflowModel) else source,
        card=card,
        features=_features(features_file) or _mlflow_features(source),
        allow_missing=allow_missing,
        aliases=list(aliases),
        signature=signature_file.read_bytes() if signature_file else None,
        reference=_reference(reference_data, reference_target),
        runtime=runtime,
        allow_duplicate=allow_duplicate,
        origin=_origin(source, file, _sha256_of(training_data), _commit(source_commit)),
        requirements=_requirements(requirements_file),
        note=note,
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


def imported_from(origin: dict[str, Any]) -> str:
    """ "imported from staging, version 3, approved there by ..." for a bundled version."""
    approvers = origin.get("attestation", {}).get("approved_by") or []
    approved = f", approved there by {', '.join(approvers)}" if approvers else ""
    return (
        f"imported from {origin['imported_from']}, version {origin['exported_version']}{approved}"
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
    "--format",
    "fmt",
    type=click.Choice(EXPORT_FORMATS),
    default="bundle",
    show_default=True,
    help="bundle: a signed .cofre-bundle for another appliance; onnx: the proven ONNX model.",
)
@click.option(
    "--out", required=True, type=click.Path(dir_okay=False, path_type=Path), help="File to write."
)
@click.option(
    "--to",
    "recipient",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="bundle: seal the artifact to this appliance (its `cofre appliance key` output).",
)
@pass_state
def export(state: CliState, ref: str, fmt: str, out: Path, recipient: Path | None) -> None:
    """Write NAME[@ALIAS|:VERSION] as a signed bundle (default), or NAME:VERSION's proven
    ONNX model with its manifest beside it (--format onnx)."""
    if fmt == "bundle":
        _export_bundle(state, ref, out, recipient)
        return
    name, version = _version_ref(ref)
    cofre = state.services
    manifest_path = exports.manifest_path(out)
    with cofre.write() as session:  # the export's audit event commits only once written
        exported = cofre.registry.export_compiled(session, state.actor, name, version)
        # Private (0600) like every file cofre writes: a model is its owner's to share.
        write_atomically(out, exported.model)
        write_atomically(manifest_path, exports.manifest_json(exported.manifest))
    sha = exported.manifest["onnx"]["sha256"]
    click.echo(f"wrote {out} ({fmt}, sha256={sha}) and {manifest_path}")


def _version_ref(ref: str) -> tuple[str, int]:
    """NAME and VERSION of a NAME:VERSION reference, or a usage error."""
    match = _VERSION_REF.match(ref)
    version = parse_id(match["version"]) if match else None
    if match is None or version is None:
        raise click.BadParameter(f"give NAME:VERSION, VERSION 1 to {MAX_ID}", param_hint="REF")
    return match["name"], version


def _export_bundle(state: CliState, ref: str, out: Path, recipient: Path | None) -> None:
    match = _REF.match(ref)
    assert match is not None  # the pattern accepts any non-empty text
    parts = match.groupdict()
    version = parse_id(parts["version"]) if parts["version"] else None
    cofre = state.services
    with cofre.write() as session:  # the export's audit event commits only once written
        record = cofre.registry.resolve(
            session, parts["name"] or "", alias=parts["alias"], version=version
        )
        data = cofre.bundles.export(
            session, state.actor, record, recipient.read_bytes() if recipient else None
        )
        write_atomically(out, data)
        what = f"{record.model.name} version {record.version}"
    sealed = "sealed to the recipient appliance" if recipient else "artifact in plain skops"
    click.echo(f"wrote {out}: {what}, signed by this appliance, {sealed}")


@models.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--as", "as_name", help="Publish under this model name (default: the bundle's).")
@click.option("--json", "as_json", is_flag=True)
@pass_state
def import_bundle(state: CliState, file: Path, as_name: str | None, as_json: bool) -> None:
    """Verify a .cofre-bundle from a trusted appliance and publish it as a new version."""
    cofre = state.services
    with cofre.write() as session:
        version = cofre.bundles.import_(session, state.actor, file.read_bytes(), as_name)
        detail = rep.version_detail(version)
    if as_json:
        emit_json(detail)
        return
    origin = detail["origin"]
    click.echo(
        f"imported {detail['name']} version {detail['version']} from {origin['imported_from']} "
        f"(there: {origin['exported_name']} version {origin['exported_version']})"
    )


def _source(
    file: Path | None, mlflow_uri: str | None, tracking_uri: str | None
) -> bytes | MlflowModel:
    """The skops bytes of FILE, or the MLflow model FILE or --from-mlflow names."""
    if (file is None) == (mlflow_uri is None):
        raise click.UsageError("give FILE or --from-mlflow models:/NAME/VERSION, not both")
    if mlflow_uri is not None:
        if not tracking_uri:
            raise click.UsageError("--from-mlflow needs --tracking-uri URL")
        return mlflow_source.fetch(mlflow_uri, tracking_uri)
    assert file is not None
    if mlflow_source.is_model_directory(file):
        return mlflow_source.read_model_directory(file)
    if file.is_dir():
        raise click.UsageError(f"{file} is a directory without an MLmodel file")
    return file.read_bytes()


def _described(description: str, source: bytes | MlflowModel) -> str:
    """The card's description, with the MLflow run and its link where there is one."""
    if not isinstance(source, MlflowModel) or not source.run_id:
        return description
    told = f"From MLflow {source.source}, run {source.run_id}"
    told += f" ({source.link})" if source.link else ""
    return f"{description}\n{told}".strip()


def _mlflow_features(source: bytes | MlflowModel) -> list[dict[str, str]] | None:
    return source.features if isinstance(source, MlflowModel) else None


def _origin(
    source: bytes | MlflowModel,
    file: Path | None,
    training_data_sha256: str | None,
    source_commit: str | None,
) -> Origin | None:
    """Where the version comes from: the MLflow run, or a file with what is known of
    how it was made (nothing to record for a bare file)."""
    if isinstance(source, MlflowModel):
        return Origin(
            source="mlflow",
            reference=source.source,
            run_id=source.run_id,
            link=source.link,
            params=source.params,
            metrics=source.metrics,
            training_data_sha256=training_data_sha256,
            source_commit=source_commit or source.source_commit,
        )
    if training_data_sha256 is None and source_commit is None:
        return None
    return Origin(
        source="file",
        reference=file.name if file else "",
        training_data_sha256=training_data_sha256,
        source_commit=source_commit,
    )


def _requirements(path: Path | None) -> dict[str, str]:
    if path is None:
        return {}
    try:
        return lifecycle.parse_requirements(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise click.ClickException(f"{path} is not a text file") from None


def _sha256_of(path: Path | None) -> str | None:
    return None if path is None else sha256_of_file(path)


def _commit(text: str | None) -> str | None:
    """A git commit id (7 to 64 hex digits: abbreviated, SHA-1 or SHA-256)."""
    if text is None:
        return None
    if not _COMMIT.fullmatch(text.strip()):
        raise click.BadParameter(
            "a git commit id: 7 to 64 hex digits", param_hint="--source-commit"
        )
    return text.strip().lower()


@models.command("sign")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--key",
    "key_file",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="PEM EC private key (P-256, P-384 or P-521) of the signer.",
)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Default FILE.sig.")
def sign(file: Path, key_file: Path, out: Path | None) -> None:
    """Sign FILE offline (OpenSSF model-signing format); no appliance needed."""
    target = out or file.with_name(file.name + ".sig")
    signatures.sign_file(file, key_file, target)
    click.echo(f"signed {file.name} -> {target}")


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
        name = parts["name"] or ""
        detail = rep.model_detail(registry.model(session, name))
        steps = state.services.retirements.history(session, name)
        return detail | {"history": [rep.lifecycle_step(s) for s in steps]}
    version = parse_id(parts["version"]) if parts["version"] else None
    if parts["version"] and version is None:
        raise click.BadParameter(f"a version is a whole number from 1 to {MAX_ID}")
    record = registry.resolve(session, parts["name"] or "", alias=parts["alias"], version=version)
    detail = rep.version_detail(record)
    if record.retirement is not None:  # whom to warn: who still calls it
        callers = state.services.retirements.callers(session, record.model.name, record.version)
        detail["callers"] = [rep.key_caller(c) for c in callers]
    return detail


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
        signed = version.get("signature")
        click.echo(
            f"  signed by {signed['signer']} (key {signed['fingerprint'][:16]})"
            if signed
            else "  unsigned"
        )
        click.echo(
            f"  purpose: {card['purpose']}  legal basis: {card['legal_basis']}  "
            f"decision: {card['decision_mode']}  retention: {card['retention_days']} days"
        )
        click.echo(f"  features: {', '.join(f['name'] for f in version['features'])}")
        origin = version.get("origin")
        if origin and origin["source"] == "mlflow":
            click.echo(f"  from MLflow {origin['reference']} run {origin['run_id'] or '-'}")
        if origin and origin["source"] == "bundle":
            click.echo(f"  {imported_from(origin)}")
        if origin and origin.get("training_data_sha256"):
            click.echo(f"  trained on data with sha256 {origin['training_data_sha256']}")
        if origin and origin.get("source_commit"):
            click.echo(f"  trained by source commit {origin['source_commit']}")
        _print_made(version)
        _print_retirement(version)
    if data.get("history"):
        click.echo("history:")
    for step in data.get("history", []):
        click.echo(f"  {step['at']}  v{step['version']}  {step['action']}  by {step['actor']}")


def _print_retirement(version: dict[str, Any]) -> None:
    """The end-of-life lines of `models show`: deprecation, retirement, shredding."""
    ending = version.get("retirement")
    if not ending:
        return
    if ending["deprecated_at"]:
        click.echo(
            f"  deprecated on {ending['deprecated_at']} by {ending['deprecated_by']}, "
            f"sunset {ending['sunset']}: {ending['reason']}"
        )
    if ending["retired_at"]:
        shredded = (
            f"artifact shredded on {ending['shredded_at']}"
            if ending["shredded_at"]
            else f"artifact kept (encrypted) until {ending['shred_after']}"
        )
        click.echo(f"  retired on {ending['retired_at']} by {ending['retired_by']}, {shredded}")
    successor = ending["successor"]
    click.echo(f"  successor: version {successor}" if successor else "  successor: none")
    for caller in version.get("callers", []):
        who = f"{caller['name']} ({caller['prefix']})" if caller["prefix"] else caller["name"]
        click.echo(f"  caller {who}: {caller['requests']} requests, last {caller['last_seen']}")


def _print_made(version: dict[str, Any]) -> None:
    """The lifecycle lines of `models show`: how the version was made, what changed,
    where it was verified and whether it loads here."""
    if version["params"] is None:
        click.echo("  parameters, libraries and changelog: not recorded (published before)")
    else:
        libraries = ", ".join(f"{k} {v}" for k, v in version["libraries"].items())
        click.echo(f"  libraries: {libraries or '-'}")
        params = ", ".join(f"{k}={json.dumps(v)}" for k, v in version["params"].items())
        click.echo(f"  parameters: {params or '-'}")
        if version["note"]:
            click.echo(f"  note: {version['note']}")
        rows = version["reference_sample_rows"]
        click.echo(
            f"  reference sample: {rows} generated rows and its answers"
            if rows
            else "  reference sample: none (text or boolean features, or no answer on them)"
        )
        changes = version["changelog"]
        if changes is None:
            click.echo("  changes: first version")
        else:
            for line in changelog_lines(changes):
                click.echo(f"  {line}")
    for verified in version["verifications"]:
        click.echo(
            f"  verified under scikit-learn {verified['sklearn_version']} by "
            f"{verified['verified_by']} at {verified['verified_at']}"
        )
    if version["load_refusal"]:
        click.echo(f"  REFUSED AT LOAD: {version['load_refusal']}")


def changelog_lines(changes: dict[str, Any]) -> list[str]:
    """A changelog as text, one change a line (`models show` and `models diff`)."""
    lines = [f"changes from version {changes['from_version']} to {changes['to_version']}:"]
    params = changes["params_changed"]
    if params is None:
        lines.append("  parameters: not recorded for one of them (published before)")
    elif not params:
        lines.append("  parameters: unchanged")
    for param in params or []:
        lines.append(
            f"  parameter {param['name']}: {json.dumps(param['from'])} -> {json.dumps(param['to'])}"
        )
    added, removed = changes["features_added"], changes["features_removed"]
    if added:
        lines.append(f"  features added: {', '.join(added)}")
    if removed:
        lines.append(f"  features removed: {', '.join(removed)}")
    if not added and not removed:
        lines.append("  features: unchanged")
    lines.append(f"  training data: {_data_change(changes)}")
    if changes.get("note"):
        lines.append(f"  note: {changes['note']}")
    return lines


def _data_change(changes: dict[str, Any]) -> str:
    digests = changes["training_data_sha256"]
    if changes["training_data_changed"] is None:
        return "not known for one of them (publish with --training-data)"
    if changes["training_data_changed"]:
        return f"changed (sha256 {digests['from']} -> {digests['to']})"
    return f"unchanged (sha256 {digests['to']})"


@models.command("diff")
@click.argument("name")
@click.argument("a", type=ID)
@click.argument("b", type=ID)
@click.option("--json", "as_json", is_flag=True)
@pass_state
def diff(state: CliState, name: str, a: int, b: int, as_json: bool) -> None:
    """What changed from version A of model NAME to version B: hyper-parameters,
    features, training data, and B's note."""
    cofre = state.services
    with cofre.read() as session:
        changes = cofre.registry.diff(session, state.actor, name, a, b)
    if as_json:
        emit_json(changes)
        return
    for line in changelog_lines(changes):
        click.echo(line)


@models.command("verify")
@click.argument("ref")
@click.option("--json", "as_json", is_flag=True)
@pass_state
def verify(state: CliState, ref: str, as_json: bool) -> None:
    """Check NAME:VERSION again under the scikit-learn running here: the publish checks,
    and its answers on its reference sample against those it gave at publish (without
    a sample: against its proven ONNX model's). Passed, a version trained under
    another scikit-learn minor version may load again. Audited either way; exits 1
    when it fails."""
    name, version = _version_ref(ref)
    cofre = state.services
    with cofre.read() as session:  # loading and comparing is slow: before the write lock
        check = cofre.registry.check_version(session, state.actor, name, version)
    with cofre.write() as session:
        cofre.registry.record_verification(session, state.actor, check)
    if as_json:
        emit_json(rep.version_check(check))
    what = f"{name} version {version}"
    if not check.passed:
        raise click.ClickException(
            f"{what} failed verification under scikit-learn {check.sklearn_version}: "
            + "; ".join(check.problems)
        )
    if not as_json:
        click.echo(
            f"{what} verified under scikit-learn {check.sklearn_version} (trained with "
            f"{check.trained_with or 'unknown'}): {_compared(check.comparison)}"
        )


def _compared(comparison: dict[str, Any]) -> str:
    against = comparison.get("against")
    if against is None:
        return "publish checks passed; no reference sample or ONNX model to compare outputs with"
    what = "the answers it gave at publish" if against == "sample" else "its proven ONNX model's"
    return (
        f"publish checks passed; outputs equal to {what} on "
        f"{comparison['rows']} {comparison['sample']} rows"
    )


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


@models.command("deprecate")
@click.argument("ref")
@click.option(
    "--sunset",
    required=True,
    help="When it stops answering: a date (YYYY-MM-DD, midnight UTC) or an ISO time.",
)
@click.option("--reason", required=True, help="Why, told to its callers.")
@pass_state
def deprecate(state: CliState, ref: str, sunset: str, reason: str) -> None:
    """Deprecate NAME:VERSION: it serves until the sunset, its answers saying so."""
    name, version = _version_ref(ref)
    cofre = state.services
    with cofre.write() as session:
        row = cofre.retirements.deprecate(
            session, state.actor, name, version, parse_sunset(sunset), reason
        )
        when = row.sunset_at.isoformat() if row.sunset_at else "-"
    click.echo(f"{name}:{version} deprecated; it answers until {when}")


@models.command("retire")
@click.argument("ref")
@pass_state
def retire(state: CliState, ref: str) -> None:
    """Retire NAME:VERSION: out of serving at once (410); its encrypted artifact is kept
    until the card's retention has passed, then the retention job shreds its key."""
    name, version = _version_ref(ref)
    cofre = state.services
    with cofre.write() as session:
        cofre.retirements.retire(session, state.actor, name, version)
        record = cofre.registry.resolve(session, name, version=version)
        kept = rep.retirement_detail(record) or {}
    click.echo(f"{name}:{version} retired; artifact kept until {kept.get('shred_after')}")


@models.command("lifecycle")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True)
@pass_state
def lifecycle_history(state: CliState, name: str, as_json: bool) -> None:
    """Every step of model NAME's life: publishes, alias moves, deprecations, retirements."""
    cofre = state.services
    with cofre.read() as session:
        steps = [rep.lifecycle_step(s) for s in cofre.retirements.history(session, name)]
    if as_json:
        emit_json({"history": steps})
        return
    for step in steps:
        click.echo(f"{step['at']}  v{step['version']}  {step['action']}  by {step['actor']}")


@models.command("history")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True)
@pass_state
def history(state: CliState, name: str, as_json: bool) -> None:
    """Show every alias move of model NAME, and where imported versions came from."""
    cofre = state.services
    with cofre.read() as session:
        rows = [rep.alias_move(h) for h in cofre.registry.alias_history(session, name)]
        requests = [promotion_as_dict(r) for r in cofre.promotions.history(session, name)]
        versions = rep.model_detail(cofre.registry.model(session, name))["versions"]
    if as_json:
        emit_json({"moves": rows, "promotion_requests": requests} if requests else rows)
        return
    for version in versions:
        if version["origin"] and version["origin"]["source"] == "bundle":
            click.echo(
                f"{version['published_at']} version {version['version']}: "
                f"{imported_from(version['origin'])}"
            )
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
