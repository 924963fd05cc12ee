"""The native body: `{"instances": [...]}` or `{"dataframe_split": {...}}`, with
optional `subject_ids` (one per row) and `purpose`; and the native answer.

Keys cofre does not know are refused by name (a typo such as `subject_id` must
never let a record be stored without the subject its caller meant).
"""

from __future__ import annotations

from typing import Any

from governance.clock import isoformat
from governance.errors import FieldError, InvalidInput, MalformedInput
from governance.registry.retirement import Ending
from server.inference.codecs import strict_json
from server.inference.predictor import Decoded, PredictionResult
from server.inference.table import Table

ENVELOPES = ("instances", "dataframe_split")
CONTEXT = ("subject_ids", "purpose")


def decode(body: bytes, explain: str | None = None) -> Decoded:
    data = strict_json.loads(body)
    if not isinstance(data, dict):
        raise MalformedInput("the body must be a JSON object")
    refuse_unknown_keys(data, ENVELOPES + CONTEXT, "body")
    formats = [key for key in ENVELOPES if key in data]
    if len(formats) != 1:
        raise MalformedInput("give exactly one of 'instances' or 'dataframe_split'")
    if formats[0] == "instances":
        table = rows_table(data["instances"], "instances")
    else:
        table = split_table(data["dataframe_split"])
    return Decoded(
        table=table,
        subject_ids=optional_list(data, "subject_ids"),
        purpose=data.get("purpose"),
        explain=_flag(explain, "explain"),
    )


def encode(result: PredictionResult) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "request_id": result.request_id,
        "name": result.name,
        "version": result.version,
        "sha256": result.sha256,
        "runtime": result.runtime,
        "predictions": result.predictions,
    }
    if result.probabilities is not None:
        answer["classes"] = result.classes
        answer["probabilities"] = result.probabilities
    if result.explanations is not None:
        answer["explanations"] = result.explanations
    if result.routed is not None:
        answer["rollout"] = result.routed.as_dict()
    if result.ending is not None and result.ending.deprecated_at is not None:
        answer["deprecated"] = deprecated(result.ending)
    return answer


def deprecated(ending: Ending) -> dict[str, Any]:
    """The native body's word that the version answering is deprecated."""
    return {
        "since": isoformat(ending.deprecated_at) if ending.deprecated_at else None,
        "sunset": isoformat(ending.sunset_at) if ending.sunset_at else None,
        "reason": ending.reason,
        "successor": ending.successor,
    }


def _flag(text: str | None, name: str) -> bool:
    if text is None or text.lower() in ("false", "0"):
        return False
    if text.lower() in ("true", "1"):
        return True
    raise InvalidInput(f"{name} must be true or false", [FieldError(name, "true or false")])


# -- shared with the MLflow body ---------------------------------------------------------
def refuse_unknown_keys(data: dict[str, Any], known: tuple[str, ...], where: str) -> None:
    unknown = [key for key in data if key not in known]
    if unknown:
        raise MalformedInput(
            f"unknown key {unknown[0][:64]!r} in the {where}",
            [
                FieldError(key[:64], f"unknown key; expected one of {', '.join(known)}")
                for key in unknown[:20]
            ],
        )


def rows_table(rows: Any, name: str) -> Table:
    if not isinstance(rows, list):
        raise MalformedInput(f"'{name}' must be a list of rows")
    return Table(rows)


def split_table(split: Any) -> Table:
    """pandas' `split` orientation: {"columns": [...], "data": [[...], ...]}.

    Column names may be integers: `DataFrame.to_json(orient="split")` of a frame
    without names writes 0, 1, ...; they then name the schema's features in
    order (`f0, f1, ...` for estimators fitted without names).
    """
    if (
        not isinstance(split, dict)
        or not isinstance(split.get("columns"), list)
        or not isinstance(split.get("data"), list)
    ):
        raise MalformedInput("'dataframe_split' needs 'columns' and 'data' lists")
    refuse_unknown_keys(split, ("columns", "data", "index"), "dataframe_split")
    columns = split["columns"]
    if all(type(c) is int for c in columns) and columns == list(range(len(columns))):
        return Table(split["data"])  # positional, in the schema's order
    if not all(isinstance(c, str) for c in columns) or len(set(columns)) != len(columns):
        raise MalformedInput("'dataframe_split.columns' must be distinct strings")
    return Table(split["data"], columns)


def optional_list(data: dict[str, Any], name: str) -> list[Any] | None:
    value = data.get(name)
    if value is not None and not isinstance(value, list):
        raise InvalidInput(f"{name} must be a list", [FieldError(name, "must be a list")])
    return value
