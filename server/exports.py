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
from typing import Any

from governance.audit.disclosures import Disclosed
from governance.errors import FieldError, InvalidInput

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
