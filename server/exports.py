"""Export files: their names, MIME types and JSON/CSV/Markdown rendering, for the API,
the admin pages and the CLI alike.

Governance returns what is disclosed (governance/audit/disclosures.py, the
subject export, the record of processing); this module alone decides how it
looks as a file. CSV cells that a spreadsheet would run as a formula are
prefixed with a quote: exported text is data.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from governance.audit.disclosures import Disclosed
from governance.compliance.ropa import RecordOfProcessing
from governance.errors import FieldError, InvalidInput
from governance.subjects.export import SubjectExport

FORMATS = ("json", "csv")
MIME = {"json": "application/json", "csv": "text/csv", "md": "text/markdown"}
AUDIT_CSV_COLUMNS = (
    "seq",
    "at",
    "request_id",
    "kind",
    "outcome",
    "status",
    "actor_type",
    "actor_id",
    "endpoint",
    "model_name",
    "model_version",
    "artifact_sha256",
    "purpose",
    "row",
    "subject",
    "data",
)
SUBJECT_CSV_COLUMNS = (
    "request_id",
    "row",
    "seq",
    "at",
    "model",
    "version",
    "sha256",
    "purpose",
    "legal_basis",
    "endpoint",
    "erased",
    "input",
    "output",
    "probabilities",
)
ROPA_FORMATS = ("json", "md")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class ExportFile:
    name: str
    mimetype: str
    body: str
    count: int

    def disposition(self) -> str:
        return f'attachment; filename="{self.name}"'


def check_format(fmt: str, formats: tuple[str, ...] = FORMATS) -> str:
    if fmt not in formats:
        choices = ", ".join(formats)
        raise InvalidInput(
            f"export format must be one of {choices}", [FieldError("format", f"one of {choices}")]
        )
    return fmt


# -- audit records ----------------------------------------------------------------------
def audit_file(disclosed: Disclosed, fmt: str) -> ExportFile:
    """Audit records as JSON ({"records": [...]}) or CSV (one line per personal row)."""
    check_format(fmt)
    body = _json({"records": disclosed.items}) if fmt == "json" else _audit_csv(disclosed.items)
    name = f"cofre-audit-{'subject' if disclosed.subject else 'records'}.{fmt}"
    return ExportFile(name, MIME[fmt], body, disclosed.count)


def _audit_csv(items: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(AUDIT_CSV_COLUMNS)
    for item in items:
        for row in item["rows"] or [{"row": "", "subject": "", "data": ""}]:
            line = item | row
            line["data"] = json.dumps(row["data"], ensure_ascii=False) if row["data"] else ""
            writer.writerow([_cell(line.get(column)) for column in AUDIT_CSV_COLUMNS])
    return out.getvalue()


# -- a subject's export -----------------------------------------------------------------
def subject_file(export: SubjectExport, fmt: str) -> ExportFile:
    """JSON: the whole document (portable, LGPD Art. 18 V / GDPR Art. 20). CSV: one line
    per decision row, with what the row sources hold about it as JSON cells."""
    check_format(fmt)
    name = f"cofre-subject-{export.pseudonym[:12]}.{fmt}"
    if fmt == "json":
        body = _json(export.document())
    else:
        extra = sorted({k for d in export.decisions for k in d} - set(SUBJECT_CSV_COLUMNS))
        body = _csv((*SUBJECT_CSV_COLUMNS, *extra), export.decisions)
    return ExportFile(name, MIME[fmt], body, len(export.decisions))


# -- the record of processing -------------------------------------------------------------
def ropa_file(ropa: RecordOfProcessing, fmt: str) -> ExportFile:
    check_format(fmt, ROPA_FORMATS)
    body = _json(ropa.document()) if fmt == "json" else ropa_markdown(ropa)
    return ExportFile(f"cofre-ropa.{fmt}", MIME[fmt], body, len(ropa.activities))


def ropa_markdown(ropa: RecordOfProcessing) -> str:
    controller = ropa.controller
    lines = [
        "# Record of processing activities",
        "",
        f"Generated {ropa.generated_at} (GDPR Art. 30, LGPD Art. 37).",
        "",
        f"Controller: {controller['name'] or 'not configured (controller_name)'}"
        + (f", contact {controller['contact']}" if controller["contact"] else ""),
        "",
    ]
    for activity in ropa.activities:
        lines += [
            f"## {activity['model']} (version {activity['version']}, {activity['serving']})",
            "",
            f"- Purpose: {activity['purpose']}",
            f"- Legal basis: {activity['legal_basis']}",
            f"- Decision mode: {activity['decision_mode']}",
            f"- Data categories: {', '.join(activity['data_categories'])}",
            f"- Recipients: {activity['recipients']}",
            f"- Retention: {activity['retention_days']} days",
            f"- Owner: {activity['owner'] or '-'}",
            "",
        ]
    lines += ["## Security measures", ""]
    lines += [
        f"- {name.replace('_', ' ').capitalize()}: {text}" for name, text in ropa.security.items()
    ]
    return "\n".join(lines) + "\n"


# -- compiled models -----------------------------------------------------------------------
def manifest_path(model_file: Path) -> Path:
    """The manifest travels beside the model: `model.onnx` -> `model.onnx.manifest.json`."""
    return model_file.with_name(model_file.name + ".manifest.json")


def manifest_json(manifest: dict[str, Any]) -> bytes:
    return (_json(manifest) + "\n").encode()


# -- shared ------------------------------------------------------------------------------
def _json(document: Any) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False, default=str)


def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def _csv(columns: tuple[str, ...], lines: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(columns)
    for line in lines:
        writer.writerow([_cell(_flat(line.get(column))) for column in columns])
    return out.getvalue()


def _flat(value: Any) -> Any:
    return json.dumps(value, ensure_ascii=False) if isinstance(value, dict | list) else value
