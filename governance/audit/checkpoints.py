"""Signing checkpoints only over a chain that verifies, checked from the last checkpoint.

A signed checkpoint vouches for a head: signing one over a broken chain would
launder the break. So `cofre audit checkpoint`, the checkpoint job, the API and
backups sign through `Checkpoints.sign_verified`, which refuses (ChainBroken)
when the chain does not verify.

Verifying from record 1 every 15 minutes grows without end, so the check
starts from the newest stored checkpoint: its signature must be this
appliance's, its record must still hash to what it signed, and every record
after it must link and hash correctly up to the head row, every MAC met must be this
appliance's, and so must the head's (governance/audit/macs.py): a forged append
is never signed. That is sound for
signing: the new checkpoint's hash commits, through record s, to the history
the earlier checkpoint vouched for, so an older record edited since is still
caught by a full `cofre audit verify` against either checkpoint. The head is
read first and the records up to it after, so records appended meanwhile (on
PostgreSQL, by other transactions) do not look like a truncated log.
"""

from __future__ import annotations

from contextlib import closing
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from governance.audit.chain import GENESIS, fields_of, record_hash
from governance.audit.records import AuditCheckpoint, AuditRecord
from governance.audit.service import AuditLog, _Verifier
from governance.errors import Conflict
from governance.operations.transactions import Transactions


class ChainBroken(Conflict):
    """The audit chain does not verify, so no checkpoint is signed over it."""


@dataclass(frozen=True)
class ChainState:
    """How far the chain verifies, checked from `from_seq` (0: from the first record)."""

    ok: bool
    seq: int
    hash: str
    checked: int
    from_seq: int
    bad_seq: int | None = None
    reason: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class Checkpoints:
    """Verifies the chain since the last checkpoint and signs only what verifies."""

    def __init__(self, audit: AuditLog, tx: Transactions) -> None:
        self.audit = audit
        self.tx = tx

    def state(self, session: Session) -> ChainState:
        head_seq, head_hash, head_mac = self.audit.head_row(session)
        start = self.audit.latest_checkpoint(session)
        problem = self._start_problem(session, start, head_seq)
        from_seq = start.seq if start is not None else 0
        if problem:
            return ChainState(False, from_seq, "", 0, from_seq, from_seq, problem)
        verifier = _Verifier(
            expected_seq=from_seq + 1,
            prev_hash=start.hash if start else GENESIS,
            vouched_through=from_seq,  # the signed checkpoint vouches for its record
        )
        stmt = (
            select(AuditRecord)
            .where(AuditRecord.seq > from_seq, AuditRecord.seq <= head_seq)
            .order_by(AuditRecord.seq)
            .execution_options(yield_per=2000)
        )
        # Closed explicitly: on PostgreSQL a server-side cursor, and the walk may stop early.
        with closing(session.scalars(stmt)) as records:
            bad = self.audit._walk(verifier, records, set(), None)
        last = verifier.expected_seq - 1
        if bad is not None:
            return ChainState(
                False, last, verifier.prev_hash, verifier.checked, from_seq, bad[0].seq, bad[1]
            )
        # Records appended meanwhile are past the head read first: check that head, not
        # today's (the walk stopped at it).
        at_head = self.audit.head_problem(session, verifier, head=(head_seq, head_hash, head_mac))
        if at_head is not None:
            bad_seq, reason = at_head
            return ChainState(
                False, last, verifier.prev_hash, verifier.checked, from_seq, bad_seq, reason
            )
        return ChainState(True, last, verifier.prev_hash, verifier.checked, from_seq)

    def _start_problem(
        self, session: Session, start: AuditCheckpoint | None, head_seq: int
    ) -> str | None:
        if start is None:
            return None
        if not self.audit.checkpoint_signature_ok(self.audit.export_checkpoint(start)):
            return "the newest stored checkpoint's signature is not this appliance's"
        if start.seq > head_seq:
            return f"the checkpoint vouches for record {start.seq} but the log ends at {head_seq}"
        if start.seq == 0:
            return (
                None if start.hash == GENESIS else "the checkpoint of the empty log is not genesis"
            )
        record = session.get(AuditRecord, start.seq)
        if (
            record is None
            or record.hash != start.hash
            or record_hash(fields_of(record)) != start.hash
        ):
            return (
                f"record {start.seq} differs from the signed checkpoint (the history was rewritten)"
            )
        return None

    def sign_verified(self) -> tuple[AuditCheckpoint, ChainState]:
        """Verify since the last checkpoint, then sign the head that verified."""
        with self.tx.read() as session:
            state = self.state(session)
        if not state.ok:
            raise ChainBroken(
                f"the audit chain does not verify at record {state.bad_seq}: {state.reason}; "
                "no checkpoint was signed"
            )
        with self.tx.write() as session:
            return self.audit.sign_checkpoint(session, head=(state.seq, state.hash)), state
