"""Appending to, reading and verifying the audit log.

Appends are gapless under concurrency: every appender locks the single
`audit_head` row (SELECT ... FOR UPDATE on PostgreSQL; on SQLite the write
transaction is BEGIN IMMEDIATE, which is the same exclusion), so the lock is
held only for one insert and one update. An append is part of the caller's
transaction: the action and its record commit together or not at all.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import secrets
import threading
import uuid
from collections.abc import Callable, Iterable, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from typing import Any, cast

from sqlalchemy import ScalarResult, Table, bindparam, func, insert, select, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session

from governance.accounts.actor import Actor
from governance.audit.chain import (
    GENESIS,
    CanonicalTemplate,
    canonical_bytes,
    fields_of,
    plain_bytes,
    read_plain,
    record_hash,
)
from governance.audit.keyscopes import KeyScope, scope_at
from governance.audit.macs import ADOPTED_KIND, HeadMacs
from governance.audit.records import AuditCheckpoint, AuditDataKey, AuditHead, AuditRecord
from governance.audit.scope import may_read, visible_to
from governance.clock import isoformat, utcnow
from governance.crypto import signing
from governance.crypto.envelope import new_data_key, open_sealed, seal
from governance.crypto.keyring import KeyRing, WrappedKey
from governance.db import after_commit, undo_on_rollback
from governance.errors import AuditUnavailable, KeyUnavailable, NotFound, PermissionDenied

log = logging.getLogger("cofre.audit")

CHECKPOINT_FORMAT = "cofre-checkpoint-1"
# The scope of the keys sealing rows about no one in particular (pseudonyms are hex).
ANONYMOUS_SCOPE = "-"

# The hot path's statements, built once: on the tables (plain Core, not the ORM's
# bulk-insert machinery), and reused, so SQLAlchemy neither rebuilds them nor
# recomputes their cache keys for every prediction.
_HEAD = select(AuditHead.seq, AuditHead.hash, AuditHead.mac).where(AuditHead.id == 1)
_HEAD_FOR_UPDATE = _HEAD.with_for_update()
_INSERT_RECORDS = insert(cast(Table, AuditRecord.__table__))
_MOVE_HEAD = (
    update(cast(Table, AuditHead.__table__))
    .where(AuditHead.__table__.c.id == 1)
    .values(seq=bindparam("new_seq"), hash=bindparam("new_hash"), mac=bindparam("new_mac"))
)
_INSERT_DATA_KEY = insert(cast(Table, AuditDataKey.__table__))
_DATA_KEYS = cast(Table, AuditDataKey.__table__).c
_INSERT_SCOPED_KEY_PG = (
    postgresql.insert(cast(Table, AuditDataKey.__table__))
    .on_conflict_do_nothing(index_elements=["scope"])
    .returning(_DATA_KEYS.id)
)
_LIVE_KEYS = select(_DATA_KEYS.id, _DATA_KEYS.scope, _DATA_KEYS.kek_id, _DATA_KEYS.wrapped).where(
    _DATA_KEYS.scope.in_(bindparam("scopes", expanding=True))
)


@dataclass(frozen=True)
class PersonalRow:
    """One row of personal data: what the model saw and answered about one subject."""

    subject_id: str | None
    data: dict[str, Any]


@dataclass
class AuditEvent:
    """What happened, before it becomes a chained record."""

    kind: str
    actor: Actor
    outcome: str = "ok"
    status: int = 0
    endpoint: str = "cli"
    request_id: str | None = None
    model_name: str | None = None
    model_version: int | None = None
    artifact_sha256: str | None = None
    purpose: str | None = None
    details: dict[str, Any] | None = None
    rows: Sequence[PersonalRow] | None = None


@dataclass(frozen=True)
class PreparedRecord:
    """An event made ready for the chain: its columns (personal data sealed, texts cut
    to size) and its canonical form, all but what the chain itself gives it."""

    values: dict[str, Any]
    template: CanonicalTemplate


@dataclass
class VerifyReport:
    ok: bool
    checked: int = 0
    first_seq: int | None = None
    last_seq: int | None = None
    bad_seq: int | None = None
    reason: str | None = None
    checkpoint_seq: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items()}


@dataclass
class _Verifier:
    expected_seq: int = 1
    prev_hash: str = GENESIS
    checked: int = 0
    hashes: dict[int, str] = field(default_factory=dict)
    # The newest record vouched for by a MAC (or by the checkpoint the walk starts at).
    vouched_through: int = 0


# session.info: the day keys this transaction found or made, not yet shared.
_PENDING_DAY_KEYS = "cofre_pending_day_keys"


class AuditLog:
    """The log's use cases; takes the key ring, sessions come from the caller."""

    def __init__(self, keyring: KeyRing) -> None:
        self.keyring = keyring
        self.macs = HeadMacs(keyring)
        self._signing_public: str | None = None
        self._pseudonym_secret: bytes | None = None
        self._day_keys: dict[str, tuple[str, bytes]] = {}
        self._day_keys_lock = threading.Lock()

    # -- personal data ----------------------------------------------------------
    def pseudonym(self, subject_id: str) -> str:
        """Keyed HMAC of a subject id: stable for search, useless without the key."""
        return hmac.new(
            self._pseudonym_key(), subject_id.encode("utf-8"), hashlib.sha256
        ).hexdigest()

    def _pseudonym_key(self) -> bytes:
        # Read once per process: every row about a subject needs it, and it never
        # changes (a new pseudonym key would orphan every record's subjects).
        if self._pseudonym_secret is None:
            self._pseudonym_secret = self.keyring.secret("pseudonym.key")
        return self._pseudonym_secret

    def _encrypt_rows(
        self,
        session: Session | None,
        request_id: str,
        rows: Sequence[PersonalRow],
        scope: KeyScope,
        day_key: tuple[str, bytes] | None = None,
    ) -> tuple[list[str | None] | None, list[dict[str, Any]]]:
        """(pseudonyms, payload). Rows about nobody in particular share the day's key
        of the model version (`day_key` when the caller found it in memory); when every
        row is such a row they are sealed together, once, as one block (a 100-row
        request is one seal, not a hundred)."""
        pseudonyms = [self.pseudonym(r.subject_id) if r.subject_id else None for r in rows]
        if not any(pseudonyms):
            key_id, key = day_key or self._anonymous_key(_in_transaction(session), scope)
            return pseudonyms, [self._sealed_block(request_id, rows, key_id, key)]
        session = _in_transaction(session)
        keys = self._subject_keys(session, {p for p in pseudonyms if p}, scope)
        payload = []
        for index, (row, pseudonym) in enumerate(zip(rows, pseudonyms, strict=True)):
            key_id, key = keys[pseudonym] if pseudonym else self._anonymous_key(session, scope)
            # Plain JSON, not the canonical form: inputs hold floats, and only the
            # ciphertext enters the chain hash.
            plain = plain_bytes(row.data)
            sealed = seal(key, plain, _row_aad(request_id, index, key_id))
            payload.append({"k": key_id, "c": base64.b64encode(sealed).decode("ascii")})
        return pseudonyms, payload

    @staticmethod
    def _sealed_block(
        request_id: str, rows: Sequence[PersonalRow], key_id: str, key: bytes
    ) -> dict[str, Any]:
        plain = plain_bytes([r.data for r in rows])
        sealed = seal(key, plain, _block_aad(request_id, len(rows), key_id))
        return {"k": key_id, "c": base64.b64encode(sealed).decode("ascii"), "rows": len(rows)}

    def _known_day_key(self, scope: KeyScope) -> tuple[str, bytes] | None:
        """The version's committed key of the day for rows about no one, if this
        process knows it already."""
        with self._day_keys_lock:
            return self._day_keys.get(scope.digest(ANONYMOUS_SCOPE))

    def _anonymous_key(self, session: Session, scope: KeyScope) -> tuple[str, bytes]:
        """The model version's key of the day for rows without a subject, kept in
        memory once known: no statement per request. Never erased (it is nobody's),
        it is shredded by retention once its day is past, like a subject's.

        A key this transaction made is shared with other threads only once it has
        committed: a request thread sealing rows under a key whose transaction then
        rolled back would leave rows no key opens."""
        digest = scope.digest(ANONYMOUS_SCOPE)
        pending: dict[str, tuple[str, bytes]] = session.info.setdefault(_PENDING_DAY_KEYS, {})
        with self._day_keys_lock:
            cached = pending.get(digest) or self._day_keys.get(digest)
        if cached is not None:
            return cached
        found = session.execute(_LIVE_KEYS, {"scopes": [digest]}).first()
        key = (found.id, self._unwrap(found)) if found else self._new_key(session, None, scope)
        pending[digest] = key
        after_commit(session, lambda: self._remember_day_key(digest, key))
        undo_on_rollback(session, pending.clear)
        return key

    def _remember_day_key(self, digest: str, key: tuple[str, bytes]) -> None:
        with self._day_keys_lock:
            if len(self._day_keys) > 4096:  # yesterday's scopes: never asked for again
                self._day_keys.clear()
            self._day_keys[digest] = key

    def _subject_keys(
        self, session: Session, pseudonyms: set[str], scope: KeyScope
    ) -> dict[str, tuple[str, bytes]]:
        """The live key of each subject in this scope (one query), new ones where missing."""
        digests = {scope.digest(p): p for p in pseudonyms}
        found: dict[str, tuple[str, bytes]] = {}
        if digests:
            for row in session.execute(_LIVE_KEYS, {"scopes": sorted(digests)}):
                found[digests[row.scope]] = (row.id, self._unwrap(row))
        for pseudonym in sorted(pseudonyms - set(found)):
            found[pseudonym] = self._new_key(session, pseudonym, scope)
        return found

    def _new_key(
        self, session: Session, pseudonym: str | None, scope: KeyScope
    ) -> tuple[str, bytes]:
        key_id = secrets.token_hex(16)
        key = new_data_key()
        wrapped = self.keyring.wrap(key, data_key_context(key_id))
        values = {
            "id": key_id,
            "pseudonym": pseudonym,
            "kek_id": wrapped.kek_id,
            "wrapped": wrapped.blob,
            "created_at": utcnow(),
            "scope": scope.digest(pseudonym or ANONYMOUS_SCOPE),
            "model_name": scope.model_name,
            "model_version": scope.model_version,
            "window_end": scope.window_end,
        }
        # Core, not the unit of work: this runs for every prediction.
        connection = session.connection()
        if connection.dialect.name != "postgresql":
            connection.execute(_INSERT_DATA_KEY, values)
            return key_id, key
        # Another process may open the same scope at the same moment: its key wins
        # (ON CONFLICT waits for it to commit) and this row is sealed under it. Whether
        # ours went in is told by RETURNING: an INSERT's rowcount is -1 through psycopg
        # here, which once sealed rows under a key that was never stored.
        if connection.execute(_INSERT_SCOPED_KEY_PG, values).first() is not None:
            return key_id, key
        winner = connection.execute(_LIVE_KEYS, {"scopes": [values["scope"]]}).one()
        return winner.id, self._unwrap(winner)

    def _unwrap(self, row: Any) -> bytes:
        if row.wrapped is None or row.kek_id is None:
            raise KeyUnavailable("the data key was destroyed (subject erased)")
        return self.keyring.unwrap(WrappedKey(row.kek_id, row.wrapped), data_key_context(row.id))

    def decrypt_payload(self, session: Session, record: AuditRecord) -> list[dict[str, Any]]:
        """The personal data of a record, one dict per row; erased rows come back as
        {"erased": true}. The one way to read a record's rows, whatever their sealing."""
        return self.opener(session).rows(record.request_id, record.seq, record.payload)

    def opener(self, session: Session) -> RowOpener:
        """Opens many records' rows, unwrapping each data key once (bulk reads)."""
        return RowOpener(self, session)

    # -- appending ---------------------------------------------------------------
    def append(self, session: Session, event: AuditEvent) -> AuditRecord:
        """Add `event` at the head of the chain inside the caller's transaction."""
        return self.append_many(session, [event])[0]

    def append_many(self, session: Session, events: Sequence[AuditEvent]) -> list[AuditRecord]:
        """Chain several events in order with one head lock and one insert (group commit).

        The returned records are not attached to the session."""
        values = self.chain(session, events)
        return [AuditRecord(**v) for v in values]

    def prepare(self, event: AuditEvent) -> PreparedRecord | None:
        """The work of appending `event` that needs neither the database nor the chain's
        lock, done by the caller's thread before it queues the event: sealing its rows
        (when their key is known in memory), cutting texts, the canonical form. None
        when its rows need a key only the database holds (subjects, a day's first row):
        `chain` then prepares it inside the transaction. The event must not change
        once prepared: its details are inserted as they are then but hashed as they
        were."""
        if event.rows is None:
            return self._prepared(None, event)
        if any(row.subject_id for row in event.rows):
            return None
        scope = scope_at(utcnow(), event.model_name, event.model_version)
        day_key = self._known_day_key(scope)
        return None if day_key is None else self._prepared(None, event, scope, day_key)

    def chain(
        self, session: Session, items: Sequence[AuditEvent | PreparedRecord]
    ) -> list[dict[str, Any]]:
        """Append `items` at the head in order; the column values of each new record.

        Only the chaining itself runs under the head lock (on SQLite, the database's
        write lock, which every worker waits for): what `prepare` did not do already
        is done first. Rows go in through Core statements rather than the ORM's unit
        of work: this is every prediction's hot path."""
        prepared = [
            item if isinstance(item, PreparedRecord) else self._prepared(session, item)
            for item in items
        ]
        connection = session.connection()
        seq, prev_hash, head_mac = connection.execute(_HEAD_FOR_UPDATE).one()
        self._refuse_unsealed_head(seq, prev_hash, head_mac)
        rows = []
        for record in prepared:
            seq += 1
            at = isoformat(utcnow())
            digest = record.template.hash(seq=seq, at=at, prev_hash=prev_hash)
            rows.append(
                record.values
                | {"seq": seq, "at": at, "prev_hash": prev_hash, "hash": digest, "mac": None}
            )
            prev_hash = digest
        # One MAC per batch, on its newest record (governance/audit/macs.py).
        mac = rows[-1]["mac"] = self.macs.of(seq, prev_hash)
        connection.execute(_INSERT_RECORDS, rows)
        connection.execute(_MOVE_HEAD, {"new_seq": seq, "new_hash": prev_hash, "new_mac": mac})
        return rows

    def _refuse_unsealed_head(self, seq: int, head_hash: str, mac: str | None) -> None:
        """Chaining onto a head this appliance did not seal would vouch for what is under
        it (a forged append): fail closed instead (see governance/audit/macs.py)."""
        if self.macs.valid(seq, head_hash, mac):
            return
        log.error("the audit head (record %d) has no valid MAC; nothing was appended", seq)
        raise AuditUnavailable(
            f"the audit head (record {seq}) is not sealed by this appliance: the log was "
            "changed outside it, so nothing more is chained onto it; run `cofre audit verify`"
        )

    def adopt_head(self, session: Session, actor: Actor) -> int | None:
        """Seal the head of a log written before MACs existed, once: only while no MAC
        exists anywhere (`cofre init` calls it in the run that adds the columns).
        Returns the adopted head's seq, or None when there was nothing to adopt."""
        connection = session.connection()
        seq, head_hash, mac = connection.execute(_HEAD_FOR_UPDATE).one()
        sealed = select(AuditRecord.seq).where(AuditRecord.mac.is_not(None)).limit(1)
        if mac is not None or session.scalar(sealed) is not None:
            return None
        mac = self.macs.of(seq, head_hash)
        connection.execute(_MOVE_HEAD, {"new_seq": seq, "new_hash": head_hash, "new_mac": mac})
        if seq:  # a new appliance's empty log has no history to speak for
            self.append(session, AuditEvent(ADOPTED_KIND, actor, details={"head_seq": seq}))
        return int(seq)

    def _prepared(
        self,
        session: Session | None,
        event: AuditEvent,
        scope: KeyScope | None = None,
        day_key: tuple[str, bytes] | None = None,
    ) -> PreparedRecord:
        """The record's columns, personal data encrypted, and its canonical template;
        seq, time and hashes come with the chain. Without a session (`prepare`), rows
        about no one are sealed under `day_key`, found in memory."""
        request_id = _bounded(event.request_id, 64) or uuid.uuid4().hex
        subjects, payload = (None, None)
        if event.rows is not None:
            scope = scope or scope_at(utcnow(), event.model_name, event.model_version)
            subjects, payload = self._encrypt_rows(session, request_id, event.rows, scope, day_key)
        # Every text is cut to its column's size here, before the database sees it:
        # a refused call naming a 10,000-character model is still recorded, and a
        # value the database would refuse cannot fail the batch it shares.
        values = {
            "request_id": request_id,
            "kind": _bounded(event.kind, 48),
            "outcome": _bounded(event.outcome, 16),
            "status": event.status,
            "actor_type": _bounded(event.actor.type, 16),
            "actor_id": _bounded(event.actor.id, 64),
            "actor_role": _bounded(event.actor.role, 16),
            "endpoint": _bounded(event.endpoint, 128),
            "model_name": _bounded(event.model_name, 128),
            "model_version": event.model_version,
            "artifact_sha256": _bounded(event.artifact_sha256, 64),
            "purpose": _bounded(event.purpose, 256),
            "subjects": subjects,
            "payload": payload,
            "details": event.details,
        }
        return PreparedRecord(values, CanonicalTemplate(values))

    # -- reading -------------------------------------------------------------------
    def by_request(self, session: Session, actor: Actor, request_id: str) -> list[AuditRecord]:
        """The records of one request; PermissionDenied when `actor` may read none."""
        stmt = (
            select(AuditRecord)
            .where(AuditRecord.request_id == request_id)
            .order_by(AuditRecord.seq)
        )
        records = list(session.scalars(stmt))
        if not records:
            raise NotFound(f"no audit record for request {request_id}")
        readable = [r for r in records if may_read(actor, r)]
        if not readable:
            raise PermissionDenied("this caller is limited to other models")
        return readable

    def by_subject(self, session: Session, actor: Actor, subject_id: str) -> list[AuditRecord]:
        """Records whose subjects include this person (matched through the pseudonym),
        among those `actor` may read."""
        pseudonym = self.pseudonym(subject_id)
        candidates = session.scalars(
            select(AuditRecord)
            .where(AuditRecord.subjects.is_not(None), *visible_to(actor))
            .order_by(AuditRecord.seq)
        )
        return [r for r in candidates if pseudonym in (r.subjects or [])]

    def head(self, session: Session) -> tuple[int, str]:
        seq, head_hash, _ = self.head_row(session)
        return seq, head_hash

    def head_row(self, session: Session) -> tuple[int, str, str | None]:
        head = session.execute(_HEAD).first()
        if head is None:
            raise NotFound("the audit log has no head row; run `cofre init`")
        return int(head.seq), str(head.hash), head.mac

    def count(self, session: Session) -> int:
        return int(session.scalar(select(func.count()).select_from(AuditRecord)) or 0)

    # -- verification --------------------------------------------------------------
    def verify(
        self,
        session: Session,
        checkpoint: dict[str, Any] | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> VerifyReport:
        """Recompute the chain from the first record; stop at the first bad one.

        Besides every link and hash: every MAC met and the head's (a forged append),
        every checkpoint stored in the database and `checkpoint`, an exported one (a
        checkpoint past the log's end is a truncation; one whose record differs, a
        rewrite)."""
        state = _Verifier()
        if checkpoint and not self.checkpoint_signature_ok(checkpoint):
            return VerifyReport(ok=False, reason="the checkpoint's signature is not valid")
        stored = [self.export_checkpoint(c) for c in self._stored_checkpoints(session)]
        wanted = {int(c["seq"]) for c in [*stored, *([checkpoint] if checkpoint else [])]}
        # Closed explicitly: on PostgreSQL this is a server-side cursor, and stopping
        # at the first bad record must not leave it open.
        with closing(self._records_in_order(session)) as records:
            bad = self._walk(state, records, wanted, progress)
        if bad is not None:
            record, problem = bad
            return VerifyReport(
                ok=False,
                checked=state.checked,
                first_seq=1,
                last_seq=state.expected_seq - 1,
                bad_seq=record.seq,
                reason=problem,
            )
        if progress:
            progress(state.checked % 1000)
        return self._finish_verify(session, state, stored, checkpoint)

    def _finish_verify(
        self,
        session: Session,
        state: _Verifier,
        stored: list[dict[str, Any]],
        checkpoint: dict[str, Any] | None,
    ) -> VerifyReport:
        last = state.expected_seq - 1
        report = VerifyReport(
            ok=True, checked=state.checked, first_seq=1 if last else None, last_seq=last or None
        )
        if checkpoint:
            report.checkpoint_seq = int(checkpoint["seq"])
        problem = self.head_problem(session, state) or _stored_checkpoint_problem(
            state, stored, self.checkpoint_signature_ok
        )
        if problem is None and checkpoint:
            problem = _check_checkpoint(state, checkpoint)
        if problem:
            report.ok, (report.bad_seq, report.reason) = False, problem
        return report

    def head_problem(
        self, session: Session, state: _Verifier, head: tuple[int, str, str | None] | None = None
    ) -> tuple[int, str] | None:
        """(first bad seq, why) when the head row (`head`, else read now) is not where the
        walk ended, or its MAC is not this appliance's; None when it is and sealed."""
        last = state.expected_seq - 1
        head_seq, head_hash, head_mac = head or self.head_row(session)
        if (head_seq, head_hash) != (last, state.prev_hash):
            return last + 1, (
                f"the log ends at {last} but its head says {head_seq}: "
                "records were deleted from the tail or the head was edited"
            )
        if self.macs.valid(head_seq, head_hash, head_mac):
            return None
        if state.vouched_through < last:
            first = state.vouched_through + 1
            return first, (
                f"records {first}..{last} were appended without this appliance's MAC key "
                "(forged), or the head was moved"
            )
        return last, "the head's MAC is not this appliance's (the head row was edited)"

    def _stored_checkpoints(self, session: Session) -> list[AuditCheckpoint]:
        return list(session.scalars(select(AuditCheckpoint).order_by(AuditCheckpoint.id)))

    def _records_in_order(self, session: Session) -> ScalarResult[AuditRecord]:
        stmt = select(AuditRecord).order_by(AuditRecord.seq).execution_options(yield_per=2000)
        return session.scalars(stmt)

    def _walk(
        self,
        state: _Verifier,
        records: Iterable[AuditRecord],
        wanted: set[int],
        progress: Callable[[int], None] | None,
    ) -> tuple[AuditRecord, str] | None:
        """Advance `state` record by record; the first bad record and why, or None."""
        for record in records:
            problem = _check_link(state, record) or self._check_mac(state, record)
            if problem:
                return record, problem
            if record.seq in wanted:
                state.hashes[record.seq] = record.hash
            state.checked += 1
            state.expected_seq += 1
            state.prev_hash = record.hash
            if progress and state.checked % 1000 == 0:
                progress(1000)
        return None

    def _check_mac(self, state: _Verifier, record: AuditRecord) -> str | None:
        if record.mac is None:  # inside a batch, or written before MACs existed
            return None
        if not self.macs.valid(record.seq, record.hash, record.mac):
            return "its MAC is not this appliance's (the record was forged or rewritten)"
        state.vouched_through = record.seq
        return None

    # -- checkpoints ---------------------------------------------------------------
    def _public_key(self) -> str:
        # Read once: verify checks every stored checkpoint, and the key never changes.
        if self._signing_public is None:
            self._signing_public = signing.public_key(
                self.keyring.secret("audit-signing.key")
            ).hex()
        return self._signing_public

    def sign_checkpoint(
        self, session: Session, head: tuple[int, str] | None = None
    ) -> AuditCheckpoint:
        """Sign the current head (or `head`, a verified earlier one) and keep the signature."""
        seq, head_hash = head or self.head(session)
        private = self.keyring.secret("audit-signing.key")
        at = isoformat(utcnow())
        message = _checkpoint_message(seq, head_hash, at)
        checkpoint = AuditCheckpoint(
            seq=seq,
            hash=head_hash,
            at=at,
            public_key=signing.public_key(private).hex(),
            signature=base64.b64encode(signing.sign(private, message)).decode("ascii"),
        )
        session.add(checkpoint)
        session.flush()
        return checkpoint

    def latest_checkpoint(self, session: Session) -> AuditCheckpoint | None:
        stmt = select(AuditCheckpoint).order_by(AuditCheckpoint.id.desc()).limit(1)
        return session.scalars(stmt).first()

    @staticmethod
    def export_checkpoint(checkpoint: AuditCheckpoint) -> dict[str, Any]:
        return {
            "format": CHECKPOINT_FORMAT,
            "seq": checkpoint.seq,
            "hash": checkpoint.hash,
            "at": checkpoint.at,
            "public_key": checkpoint.public_key,
            "signature": checkpoint.signature,
        }

    def checkpoint_signature_ok(self, checkpoint: dict[str, Any]) -> bool:
        """Valid signature by *this appliance's* signing key (not just any key)."""
        try:
            ours = self._public_key()
            if checkpoint.get("format") != CHECKPOINT_FORMAT or checkpoint["public_key"] != ours:
                return False
            message = _checkpoint_message(
                int(checkpoint["seq"]), checkpoint["hash"], checkpoint["at"]
            )
            return signing.is_valid(
                bytes.fromhex(ours), base64.b64decode(checkpoint["signature"]), message
            )
        except (KeyError, ValueError, TypeError):
            return False


class RowOpener:
    """Opens the rows of many records, as `AuditLog.decrypt_payload` does for one: each
    data key is read and unwrapped once, the keys of a batch of records in one
    query. Monitoring reads every prediction of a window this way. Keys are kept
    for the opener's life only (one job run, one request)."""

    def __init__(self, audit: AuditLog, session: Session) -> None:
        self._audit = audit
        self._session = session
        self._keys: dict[str, bytes | None] = {}

    def rows(
        self, request_id: str, seq: int, payload: list[dict[str, Any]] | None
    ) -> list[dict[str, Any]]:
        """One record's rows; erased rows come back as {"erased": true}."""
        rows: list[dict[str, Any]] = []
        for entry in payload or []:
            key = self._key(entry["k"])
            if key is None:
                rows.extend({"erased": True} for _ in range(int(entry.get("rows", 1))))
                continue
            rows.extend(_open_entry(request_id, seq, entry, len(rows), key))
        return rows

    def prefetch(self, payloads: Iterable[list[dict[str, Any]] | None]) -> None:
        """Read the data keys of these payloads that are not known yet, in one query."""
        wanted = {e["k"] for p in payloads for e in p or []} - set(self._keys)
        if not wanted:
            return
        # Plain rows, not ORM objects: a window may hold thousands of subjects' keys.
        stmt = select(_DATA_KEYS.id, _DATA_KEYS.kek_id, _DATA_KEYS.wrapped)
        for key_row in self._session.execute(stmt.where(_DATA_KEYS.id.in_(wanted))):
            self._keys[key_row.id] = self._unwrapped(key_row)
        for missing in wanted - set(self._keys):
            self._keys[missing] = None

    def _key(self, key_id: str) -> bytes | None:
        if key_id not in self._keys:
            self._keys[key_id] = self._unwrapped(self._session.get(AuditDataKey, key_id))
        return self._keys[key_id]

    def _unwrapped(self, key_row: Any) -> bytes | None:
        if key_row is None or key_row.wrapped is None:
            return None  # destroyed: the subject was erased or the rows outlived retention
        return self._audit._unwrap(key_row)


def _open_entry(
    request_id: str, seq: int, entry: dict[str, Any], index: int, key: bytes
) -> list[dict[str, Any]]:
    """The rows of one payload entry: a block of rows, or the row at `index`."""
    sealed = base64.b64decode(entry["c"])
    if "rows" in entry:
        aad = _block_aad(request_id, int(entry["rows"]), entry["k"])
        opened = open_sealed(key, sealed, aad, f"audit record {seq} rows")
        block: list[dict[str, Any]] = read_plain(opened)
        return block
    aad = _row_aad(request_id, index, entry["k"])
    return [read_plain(open_sealed(key, sealed, aad, f"audit record {seq} row {index}"))]


def _check_link(state: _Verifier, record: AuditRecord) -> str | None:
    if record.seq != state.expected_seq:
        return (
            f"sequence gap: expected record {state.expected_seq}, found {record.seq} "
            "(a record was deleted or inserted)"
        )
    if record.prev_hash != state.prev_hash:
        return "its prev_hash does not match the record before it (reordered, inserted or deleted)"
    try:
        recomputed = record_hash(fields_of(record))
    except (TypeError, ValueError):
        return "its content cannot be serialised canonically (edited)"
    if recomputed != record.hash:
        return "its hash does not match its content (the record was edited)"
    return None


def _check_checkpoint(
    state: _Verifier, checkpoint: dict[str, Any], which: str = "the checkpoint"
) -> tuple[int, str] | None:
    seq, last = int(checkpoint["seq"]), state.expected_seq - 1
    if seq > last:
        return last + 1, f"{which} vouches for record {seq} but the log ends at {last} (truncated)"
    if seq and state.hashes.get(seq) != checkpoint["hash"]:
        return seq, f"record {seq} differs from {which} (the history was rewritten)"
    return None


def _stored_checkpoint_problem(
    state: _Verifier, stored: list[dict[str, Any]], signature_ok: Callable[[dict[str, Any]], bool]
) -> tuple[int, str] | None:
    for checkpoint in stored:
        which = f"the signed checkpoint stored at record {checkpoint['seq']}"
        if not signature_ok(checkpoint):
            return int(checkpoint["seq"]), f"{which}: its signature is not this appliance's"
        problem = _check_checkpoint(state, checkpoint, which)
        if problem:
            return problem
    return None


def _checkpoint_message(seq: int, head_hash: str, at: str) -> bytes:
    return canonical_bytes({"format": CHECKPOINT_FORMAT, "seq": seq, "hash": head_hash, "at": at})


def _in_transaction(session: Session | None) -> Session:
    """The session keys are looked up in; rows needing one cannot be sealed without."""
    if session is None:
        raise ValueError("these rows need their keys from the database: chain them in a session")
    return session


def _bounded(text: str | None, limit: int) -> str | None:
    return text if text is None or len(text) <= limit else text[:limit]


def row_key_ids(record: AuditRecord) -> list[str]:
    """The data key id sealing each row of a record, in row order."""
    return [e["k"] for e in record.payload or [] for _ in range(int(e.get("rows", 1)))]


def _block_aad(request_id: str, rows: int, key_id: str) -> bytes:
    return f"cofre-audit-rows\x00{request_id}\x00{rows}\x00{key_id}".encode()


def _row_aad(request_id: str, index: int, key_id: str) -> bytes:
    return f"cofre-audit-row\x00{request_id}\x00{index}\x00{key_id}".encode()


def data_key_context(key_id: str) -> str:
    return f"audit-data-key:{key_id}"
