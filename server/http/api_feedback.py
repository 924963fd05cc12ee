"""POST /api/v1/predictions/{request_id}/feedback: ground truth for an earlier prediction.

Two body forms (docs in server/http/openapi.py and the README):
  {"ground_truth": [label per row], "groups": [group or null per row]}  every row
  {"rows": [{"row": i, "ground_truth": label, "group": "..."}]}         some rows
`groups` and `group` are optional. A body of the wrong shape is a 400; labels that
do not fit the prediction (count, row, class) are a 422 from the service.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, g, jsonify
from flask.typing import ResponseReturnValue

from governance.errors import FieldError, InvalidInput, MalformedInput
from governance.monitoring.feedback import GivenLabel, Submission
from governance.subjects.caller import Caller
from server.extension import services
from server.http.bodies import json_object
from server.security.access import current_actor, requires

blueprint = Blueprint("api_feedback", __name__, url_prefix="/api/v1")
EVERY_ROW = {"ground_truth", "groups"}
SOME_ROWS = {"rows"}
ROW_FIELDS = {"row", "ground_truth", "group"}


@blueprint.post("/predictions/<request_id>/feedback")
@requires("feedback")
def record_feedback(request_id: str) -> ResponseReturnValue:
    """Ground truth for rows of an earlier prediction (a correction supersedes)."""
    submission = submission_of(request_id, json_object())
    cofre = services()
    caller = Caller(current_actor(), "api", g.request_id)
    with cofre.write() as session:
        recorded = cofre.feedback.record(session, caller, submission)
    return jsonify(recorded.as_dict()), 201


def submission_of(request_id: str, body: dict[str, Any]) -> Submission:
    """The body as a Submission, or a 400 naming what is wrong with its shape."""
    if "rows" in body and "ground_truth" in body:
        raise MalformedInput("send either ground_truth (every row) or rows (some rows), not both")
    if "rows" in body:
        _only(body, SOME_ROWS, "rows")
        return Submission(request_id, _some_rows(body["rows"]))
    if "ground_truth" in body:
        _only(body, EVERY_ROW, "ground_truth")
        return Submission(request_id, _every_row(body), every_row=True)
    raise MalformedInput(
        "the body needs ground_truth (a label per row) or rows (a list of labelled rows)"
    )


def _only(body: dict[str, Any], allowed: set[str], form: str) -> None:
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise MalformedInput(f"unknown field {unknown[0][:64]!r} beside {form}")


def _every_row(body: dict[str, Any]) -> tuple[GivenLabel, ...]:
    labels = _list(body["ground_truth"], "ground_truth")
    groups = body.get("groups")
    if groups is None:
        groups = [None] * len(labels)
    groups = _list(groups, "groups")
    if len(groups) != len(labels):
        raise InvalidInput(
            "groups needs one entry per label", [FieldError("groups", "one entry per label")]
        )
    return tuple(
        GivenLabel(i, label, group, f"ground_truth[{i}]")
        for i, (label, group) in enumerate(zip(labels, groups, strict=True))
    )


def _some_rows(rows: Any) -> tuple[GivenLabel, ...]:
    given = []
    for i, item in enumerate(_list(rows, "rows")):
        if not isinstance(item, dict):
            raise MalformedInput(f"rows[{i}] must be an object")
        unknown = sorted(set(item) - ROW_FIELDS)
        if unknown:
            raise MalformedInput(f"unknown field {unknown[0][:64]!r} in rows[{i}]")
        if "row" not in item or "ground_truth" not in item:
            raise MalformedInput(f"rows[{i}] needs row and ground_truth")
        given.append(GivenLabel(item["row"], item["ground_truth"], item.get("group"), f"rows[{i}]"))
    if not given:
        raise InvalidInput("rows is empty", [FieldError("rows", "at least one labelled row")])
    return tuple(given)


def _list(value: Any, name: str) -> list[Any]:
    if not isinstance(value, list):
        raise MalformedInput(f"{name} must be a list")
    return value
