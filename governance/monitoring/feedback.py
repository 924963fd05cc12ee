"""Ground truth for served predictions: labels recorded, corrected and read back.

A label says what the truth was for one row of one earlier prediction (and,
optionally, which group the row's person belongs to, for fairness figures). It
is personal data about the row's person, so it is sealed under the data key of
the row it labels (governance/subjects/sealing.py): erasing the subject, or the
row's retention running out, makes it unreadable together with the row, and
readers skip it from then on.

Each row has at most one label: a second one is a correction, a new record that
supersedes the first (never an overwrite); readers take the newest. Every
accepted labelling of a request is one "feedback.recorded" audit event in the
same transaction, naming the request, rows, model, version and pseudonyms and
the SHA-256 of each sealed label, never a label in clear. A classifier's label
must be one of the classes of the version that answered; a regressor's, a
finite number. Refusals of the API are audited at the edge (server/errors.py);
a refused import is audited here, since no edge does it for the command line.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from governance.accounts.actor import Actor
from governance.audit.records import AuditDataKey, AuditRecord
from governance.audit.service import AuditEvent, AuditLog, row_key_ids
from governance.clock import isoformat, utcnow
from governance.errors import (
    Conflict,
    FieldError,
    IntegrityError,
    InvalidInput,
    NotFound,
)
from governance.monitoring.records import FeedbackLabel
from governance.operations.transactions import Transactions
from governance.registry.records import ModelVersion
from governance.registry.service import Registry
from governance.subjects.caller import Caller
from governance.subjects.export import RowRef
from governance.subjects.sealing import RowSealer

RECORDED = "feedback.recorded"
MAX_GROUP = 64
MAX_ERRORS = 50  # field errors reported for one refusal; the count says how many more
_CHUNK = 500  # ids per IN (...), well under every driver's bound-parameter limit


@dataclass(frozen=True)
class Label:
    """The newest readable label of one prediction row."""

    ground_truth: Any
    group: str | None
    recorded_at: datetime


@dataclass(frozen=True)
class GivenLabel:
    """One label as a caller gives it, unchecked; `source` says where it came from
    ("rows[2]", "ground_truth[0]", "line 7") for the error that names it."""

    row: Any
    ground_truth: Any
    group: Any = None
    source: str = ""


@dataclass(frozen=True)
class Submission:
    """Labels for rows of one prediction. `every_row`: given as one label per row in
    row order, so their number must be the prediction's row count."""

    request_id: str
    labels: tuple[GivenLabel, ...]
    every_row: bool = False


@dataclass(frozen=True)
class Recorded:
    """What one labelling of one prediction recorded."""

    request_id: str
    model_name: str
    model_version: int
    rows: list[int]
    corrections: list[int]
    recorded_at: datetime
    seq: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "request_id": self.request_id,
            "model": self.model_name,
            "version": self.model_version,
            "recorded": len(self.rows),
            "rows": self.rows,
            "corrections": self.corrections,
            "recorded_at": isoformat(self.recorded_at),
            "seq": self.seq,
        }


@dataclass(frozen=True)
class _Target:
    """The prediction being labelled, with what checking and sealing need."""

    record: AuditRecord
    version: ModelVersion
    keys: list[str]
    subjects: list[str | None]

    @property
    def request_id(self) -> str:
        return self.record.request_id


@dataclass(frozen=True)
class _Checked:
    row: int
    ground_truth: Any
    group: str | None


class _Refused(Exception):
    def __init__(self, message: str, erased: bool = False) -> None:
        super().__init__(message)
        self.message, self.erased = message, erased


class Feedback:
    """Recording and reading ground truth; sessions come from the caller, except for
    an import, which commits its refusal before raising it (see module doc)."""

    def __init__(
        self, audit: AuditLog, registry: Registry, sealer: RowSealer, tx: Transactions
    ) -> None:
        self.audit = audit
        self.registry = registry
        self.sealer = sealer
        self.tx = tx

    # -- recording ------------------------------------------------------------------------
    def record(self, session: Session, caller: Caller, submission: Submission) -> Recorded:
        """Check and record one submission (404, 409 or 422 when it is refused)."""
        target = self._targets(session, caller.actor, [submission.request_id]).get(
            submission.request_id
        )
        if target is None:
            raise NotFound(f"no served prediction with request id {submission.request_id[:64]}")
        keys = self._keys(session, target.keys)
        checked, problems = self._checked(target, submission, keys)
        if any(p.erased for _, p in problems):
            raise Conflict("a labelled row was erased; it can no longer be labelled")
        _raise_for(problems, "the feedback was refused")
        return self._write(session, caller, [(target, checked)], keys)[0]

    def import_labels(
        self, caller: Caller, model_name: str, submissions: Sequence[Submission]
    ) -> list[Recorded]:
        """Record labels of many predictions of one model, all or nothing; each label's
        `source` names its line, and a refusal lists the bad lines it found."""
        with self.tx.write() as session:
            try:
                return self._import(session, caller, model_name, submissions)
            except InvalidInput as exc:
                refusal = exc
                labels = sum(len(s.labels) for s in submissions)
                details = {"refused": exc.detail[:500], "labels": labels, "import": True}
                self.audit.append(
                    session,
                    AuditEvent(
                        kind=RECORDED,
                        actor=caller.actor,
                        outcome="rejected",
                        endpoint=caller.endpoint,
                        request_id=caller.request_id,
                        model_name=model_name,
                        details=details,
                    ),
                )
        raise refusal

    def _import(
        self, session: Session, caller: Caller, model_name: str, submissions: Sequence[Submission]
    ) -> list[Recorded]:
        grouped: dict[str, list[GivenLabel]] = {}
        for submission in submissions:
            grouped.setdefault(submission.request_id, []).extend(submission.labels)
        if not grouped:
            raise InvalidInput("the file holds no labels", [FieldError("file", "no label lines")])
        targets = self._targets(session, caller.actor, list(grouped))
        keys = self._keys(session, [k for t in targets.values() for k in t.keys])
        batch: list[tuple[_Target, list[_Checked]]] = []
        problems: list[tuple[str, _Refused]] = []
        for request_id, given in grouped.items():
            target = targets.get(request_id)
            if target is None or target.record.model_name != model_name:
                refused = _Refused(f"no served prediction of {model_name} with this request id")
                problems += [(label.source, refused) for label in given]
                continue
            checked, found = self._checked(target, Submission(request_id, tuple(given)), keys)
            problems += found
            batch.append((target, checked))
        given_in_order = [label for submission in submissions for label in submission.labels]
        order = {label.source: i for i, label in enumerate(given_in_order)}
        problems.sort(key=lambda problem: order.get(problem[0], 0))  # in the file's order
        _raise_for(problems, "nothing was recorded")
        return self._write(session, caller, batch, keys)

    def _checked(
        self, target: _Target, submission: Submission, keys: dict[str, bytes | None]
    ) -> tuple[list[_Checked], list[tuple[str, _Refused]]]:
        rows = len(target.keys)
        if submission.every_row and len(submission.labels) != rows:
            raise InvalidInput(
                f"ground_truth has {len(submission.labels)} labels; the prediction has {rows} rows",
                [FieldError("ground_truth", f"one label per row: {rows}")],
            )
        checked: list[_Checked] = []
        problems: list[tuple[str, _Refused]] = []
        seen: set[int] = set()
        for given in submission.labels:
            try:
                label = _check(target, given, seen)
                if keys.get(target.keys[label.row]) is None:
                    raise _Refused(f"row {label.row} was erased", erased=True)
            except _Refused as refused:
                problems.append((given.source, refused))
                continue
            seen.add(label.row)
            checked.append(label)
        return checked, problems

    def _write(
        self,
        session: Session,
        caller: Caller,
        batch: list[tuple[_Target, list[_Checked]]],
        keys: dict[str, bytes | None],
    ) -> list[Recorded]:
        now = utcnow()
        newest = self._newest(session, [(t.request_id, c.row) for t, cs in batch for c in cs])
        sealed = [[self._seal(t, c, keys) for c in cs] for t, cs in batch]
        events = [
            _event(caller, t, cs, blobs, newest)
            for (t, cs), blobs in zip(batch, sealed, strict=True)
        ]
        records = self.audit.append_many(session, events)
        rows: list[dict[str, Any]] = []
        for (target, checked), blobs, event in zip(batch, sealed, records, strict=True):
            rows += _label_rows(caller.actor, target, checked, blobs, event.seq, now, newest)
        for start in range(0, len(rows), 1000):
            session.execute(insert(FeedbackLabel), rows[start : start + 1000])
        return [
            Recorded(
                t.request_id,
                t.record.model_name or "",
                t.record.model_version or 0,
                [c.row for c in cs],
                [c.row for c in cs if (t.request_id, c.row) in newest],
                now,
                event.seq,
            )
            for (t, cs), event in zip(batch, records, strict=True)
        ]

    def _seal(self, target: _Target, label: _Checked, keys: dict[str, bytes | None]) -> bytes:
        key_id = target.keys[label.row]
        key = keys[key_id]
        if key is None:  # checked before; a key cannot vanish inside the transaction
            raise Conflict("a labelled row was erased; it can no longer be labelled")
        document = {"ground_truth": label.ground_truth, "group": label.group}
        return self.sealer.seal_with(key, key_id, _context(target.request_id, label.row), document)

    # -- reading --------------------------------------------------------------------------
    def labels(
        self, session: Session, model_name: str, version: int, since: datetime, until: datetime
    ) -> dict[tuple[str, int], Label]:
        """The newest readable label of every row of this version served in
        [since, until), by (request id, row): one query, each data key unwrapped
        once; rows whose key is destroyed (erased, past retention) are left out."""
        stmt = (
            select(
                FeedbackLabel.request_id,
                FeedbackLabel.row,
                FeedbackLabel.key_id,
                FeedbackLabel.sealed,
                FeedbackLabel.recorded_at,
                AuditDataKey.kek_id,
                AuditDataKey.wrapped,
            )
            .join(AuditDataKey, AuditDataKey.id == FeedbackLabel.key_id)
            .where(
                FeedbackLabel.model_name == model_name,
                FeedbackLabel.model_version == version,
                FeedbackLabel.served_at >= since,
                FeedbackLabel.served_at < until,
                AuditDataKey.wrapped.is_not(None),
            )
            .order_by(FeedbackLabel.recorded_seq.desc())
            .execution_options(yield_per=2000)
        )
        found: dict[tuple[str, int], Label] = {}
        seen: set[tuple[str, int]] = set()
        keys: dict[str, bytes | None] = {}
        for line in session.execute(stmt):
            ref = (line.request_id, line.row)
            if ref in seen:
                continue  # an older label of a row already read: superseded
            seen.add(ref)
            if line.key_id not in keys:
                keys[line.key_id] = self.sealer.unwrap(line.key_id, line.kek_id, line.wrapped)
            document = self._open(keys[line.key_id], line.key_id, ref, line.sealed)
            if document is not None:
                found[ref] = Label(document["ground_truth"], document["group"], line.recorded_at)
        return found

    def for_rows(
        self, session: Session, rows: Iterable[tuple[str, int]]
    ) -> dict[tuple[str, int], list[dict[str, Any]]]:
        """Every label of these rows, oldest first, the newest marked `current`; an
        unreadable one as {"erased": true, ...} (for a subject's export)."""
        wanted = set(rows)
        request_ids = sorted({request_id for request_id, _ in wanted})
        found: dict[tuple[str, int], list[dict[str, Any]]] = {}
        keys: dict[str, bytes | None] = {}
        for start in range(0, len(request_ids), _CHUNK):
            stmt = (
                select(FeedbackLabel, AuditDataKey.kek_id, AuditDataKey.wrapped)
                .outerjoin(AuditDataKey, AuditDataKey.id == FeedbackLabel.key_id)
                .where(FeedbackLabel.request_id.in_(request_ids[start : start + _CHUNK]))
                .order_by(FeedbackLabel.recorded_seq)
            )
            for label, kek_id, wrapped in session.execute(stmt):
                ref = (label.request_id, label.row)
                if ref not in wanted:
                    continue
                if label.key_id not in keys:
                    keys[label.key_id] = self.sealer.unwrap(label.key_id, kek_id, wrapped)
                document = self._open(keys[label.key_id], label.key_id, ref, label.sealed)
                found.setdefault(ref, []).append(_export_item(label, document))
        for items in found.values():
            items[-1]["current"] = True
        return found

    def _open(
        self, key: bytes | None, key_id: str, ref: tuple[str, int], sealed: bytes
    ) -> dict[str, Any] | None:
        """The label's document, or None when it cannot be read (erased or damaged)."""
        if key is None:
            return None
        try:
            return self.sealer.open_with(key, key_id, _context(*ref), sealed)
        except IntegrityError:
            return None

    # -- lookups --------------------------------------------------------------------------
    def _targets(
        self, session: Session, actor: Actor, request_ids: list[str]
    ) -> dict[str, _Target]:
        """The served prediction of each request id the actor may see (the first, should a
        client have reused an id); others are simply missing: a key limited to other
        models learns nothing about them."""
        records: dict[str, AuditRecord] = {}
        for start in range(0, len(request_ids), _CHUNK):
            stmt = select(AuditRecord).where(
                AuditRecord.request_id.in_([r[:64] for r in request_ids[start : start + _CHUNK]]),
                AuditRecord.kind == "prediction",
                AuditRecord.outcome == "ok",
                AuditRecord.payload.is_not(None),
            )
            for record in session.scalars(stmt.order_by(AuditRecord.seq)):
                records.setdefault(record.request_id, record)
        versions: dict[tuple[str, int], ModelVersion] = {}
        targets: dict[str, _Target] = {}
        for request_id, record in records.items():
            name, number = record.model_name, record.model_version
            if name is None or number is None or not actor.may_use_model(name):
                continue
            if (name, number) not in versions:
                versions[(name, number)] = self.registry.resolve(session, name, version=number)
            keys = row_key_ids(record)
            subjects = list(record.subjects or [None] * len(keys))
            targets[request_id] = _Target(record, versions[(name, number)], keys, subjects)
        return targets

    def _keys(self, session: Session, key_ids: Iterable[str]) -> dict[str, bytes | None]:
        """Each data key unwrapped once (None: destroyed)."""
        wanted = sorted(set(key_ids))
        keys: dict[str, bytes | None] = dict.fromkeys(wanted)
        for start in range(0, len(wanted), _CHUNK):
            stmt = select(AuditDataKey.id, AuditDataKey.kek_id, AuditDataKey.wrapped).where(
                AuditDataKey.id.in_(wanted[start : start + _CHUNK])
            )
            for key_id, kek_id, wrapped in session.execute(stmt):
                keys[key_id] = self.sealer.unwrap(key_id, kek_id, wrapped)
        return keys

    def _newest(self, session: Session, refs: list[tuple[str, int]]) -> dict[tuple[str, int], int]:
        """The id of the newest label of each of these rows that has one."""
        wanted = set(refs)
        request_ids = sorted({request_id for request_id, _ in wanted})
        newest: dict[tuple[str, int], int] = {}
        for start in range(0, len(request_ids), _CHUNK):
            stmt = (
                select(FeedbackLabel.request_id, FeedbackLabel.row, FeedbackLabel.id)
                .where(FeedbackLabel.request_id.in_(request_ids[start : start + _CHUNK]))
                .order_by(FeedbackLabel.recorded_seq)
            )
            for request_id, row, label_id in session.execute(stmt):
                if (request_id, row) in wanted:
                    newest[(request_id, row)] = label_id
        return newest


class FeedbackSource:
    """A subject's export: the labels of their rows (governance.subjects.export.RowSource)."""

    name = "feedback"

    def __init__(self, feedback: Feedback) -> None:
        self.feedback = feedback

    def collect(self, session: Session, rows: Sequence[RowRef]) -> dict[tuple[str, int], list[Any]]:
        found = self.feedback.for_rows(session, [(r.request_id, r.row) for r in rows])
        return dict(found)


# -- checks -------------------------------------------------------------------------------
def _check(target: _Target, given: GivenLabel, seen: set[int]) -> _Checked:
    rows = len(target.keys)
    row = given.row
    if isinstance(row, bool) or not isinstance(row, int):
        raise _Refused("row must be a row index (an integer)")
    if not 0 <= row < rows:
        raise _Refused(f"row {row} is out of range: the prediction has rows 0 to {rows - 1}")
    if row in seen:
        raise _Refused(f"row {row} is labelled twice")
    return _Checked(row, _ground_truth(target.version, given.ground_truth), _group(given.group))


def _ground_truth(version: ModelVersion, value: Any) -> Any:
    """The label as the version knows it: one of its classes (a class's text form is
    accepted, as a CSV file gives it), or for a regressor a finite number."""
    if version.classes is not None:
        for known in version.classes:
            if _same_class(value, known):
                return known
        shown = ", ".join(str(c) for c in version.classes[:20])
        more = ", ..." if len(version.classes) > 20 else ""
        raise _Refused(f"the label is not one of the classes of the version ({shown}{more})")
    number = _number(value)
    if number is None:
        raise _Refused("the label must be a finite number (the model is a regressor)")
    return number


def _same_class(value: Any, known: Any) -> bool:
    if isinstance(value, str) and not isinstance(known, str):
        return _text_names(value.strip(), known)
    if isinstance(value, bool) or isinstance(known, bool):
        return type(value) is type(known) and value == known
    if isinstance(value, int | float) and isinstance(known, int | float):
        return value == known
    return isinstance(value, str) and value == known


def _text_names(text: str, known: Any) -> bool:
    """Whether a label given as text (a CSV cell) names this non-text class: "1" and
    "1.0" name the class 1.0 of a target read as floats, "true" names True."""
    if isinstance(known, bool):
        return text.lower() == str(known).lower()
    if text == str(known):
        return True
    try:
        return isinstance(known, int | float) and float(text) == known
    except ValueError:
        return False


def _number(value: Any) -> float | int | None:
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _group(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not 0 < len(value) <= MAX_GROUP:
        raise _Refused(f"group must be a string of 1 to {MAX_GROUP} characters")
    return value


def _raise_for(problems: list[tuple[str, _Refused]], summary: str) -> None:
    if not problems:
        return
    errors = [FieldError(source, refused.message) for source, refused in problems[:MAX_ERRORS]]
    first_source, first = problems[0]
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    raise InvalidInput(f"{first_source}: {first.message}{more}; {summary}", errors)


# -- records ------------------------------------------------------------------------------
def _context(request_id: str, row: int) -> str:
    return f"feedback:{request_id}:{row}"


def _event(
    caller: Caller,
    target: _Target,
    checked: list[_Checked],
    sealed: list[bytes],
    newest: dict[tuple[str, int], int],
) -> AuditEvent:
    record = target.record
    pseudonyms = [target.subjects[c.row] for c in checked]
    details: dict[str, Any] = {
        "request_id": record.request_id,
        "prediction_seq": record.seq,
        "rows": [c.row for c in checked],
        "pseudonyms": pseudonyms,
        "corrections": [c.row for c in checked if (record.request_id, c.row) in newest],
        "sealed_sha256": [hashlib.sha256(blob).hexdigest() for blob in sealed],
    }
    people = set(pseudonyms)
    if len(people) == 1 and None not in people:
        details["pseudonym"] = pseudonyms[0]  # so the subject's own events list it
    return AuditEvent(
        kind=RECORDED,
        actor=caller.actor,
        endpoint=caller.endpoint,
        request_id=caller.request_id,
        model_name=record.model_name,
        model_version=record.model_version,
        artifact_sha256=record.artifact_sha256,
        details=details,
    )


def _label_rows(
    actor: Actor,
    target: _Target,
    checked: list[_Checked],
    sealed: list[bytes],
    seq: int,
    now: datetime,
    newest: dict[tuple[str, int], int],
) -> list[dict[str, Any]]:
    record = target.record
    served_at = datetime.fromisoformat(record.at.replace("Z", "+00:00"))
    return [
        {
            "request_id": record.request_id,
            "row": label.row,
            "prediction_seq": record.seq,
            "model_name": record.model_name or "",
            "model_version": record.model_version or 0,
            "served_at": served_at,
            "pseudonym": target.subjects[label.row],
            "key_id": target.keys[label.row],
            "sealed": blob,
            "recorded_at": now,
            "recorded_seq": seq,
            "recorded_by": actor.name[:64],
            "supersedes": newest.get((record.request_id, label.row)),
        }
        for label, blob in zip(checked, sealed, strict=True)
    ]


def _export_item(label: FeedbackLabel, document: dict[str, Any] | None) -> dict[str, Any]:
    item: dict[str, Any] = {
        "recorded_at": isoformat(label.recorded_at),
        "recorded_by": label.recorded_by,
        "current": False,
    }
    if document is None:
        return item | {"erased": True, "ground_truth": None, "group": None}
    return item | {"erased": False} | document
