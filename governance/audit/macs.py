"""The audit MACs: a keyed HMAC-SHA256 over each committed batch head, so that only
the appliance can extend, or move the head of, its audit chain.

The chain's hashes are public arithmetic: anyone who can write the database can
append a record with a correct hash and move the head onto it. A MAC needs
`audit-mac.key`, which lives in the key directory with the other keys (never in
the database, never in a backup). It is HMAC-SHA256 over the canonical
{"format": "cofre-audit-mac-1", "seq": s, "hash": h} of the newest record of each
committed batch, stored on that record (`audit_records.mac`, null on the others)
and on the head row (`audit_head.mac`). Rules:
  * an append checks the head's MAC before chaining onto it, and refuses
    (AuditUnavailable, nothing served) when it does not open: a legitimate batch
    is never sealed on top of a forged record, so a record's MAC vouches for
    every record before it as well as for its own batch;
  * `cofre audit verify` checks every MAC it meets and that the head carries one;
    records after the newest MAC'd record, under a head without a valid MAC, were
    appended without the key (a forged append), and that is the record it names.
Logs written before MACs existed: migration 0310 adds the columns empty, and the
`cofre init` that applies it seals the head it finds, once (`adopt_head`, recorded
as an `audit.macs_adopted` event). The records up to that head are vouched for by
that adoption MAC and by the checkpoints signed before it; init never adopts again,
so MACs stripped later stay detected (appends refuse, verify fails).
What a MAC cannot tell: a database rolled back as a whole to an earlier state of
its own (tail deleted, head moved onto an older MAC'd record). Signed checkpoints
do: verify checks every stored checkpoint (one past the log's end is a
truncation), and an exported one kept elsewhere survives their deletion too.
"""

from __future__ import annotations

import hashlib
import hmac

from governance.audit.chain import canonical_bytes
from governance.crypto.keyring import KeyRing

MAC_FORMAT = "cofre-audit-mac-1"
MAC_KEY = "audit-mac.key"
ADOPTED_KIND = "audit.macs_adopted"
REVISION = "0310_audit_seals"  # the migration that adds the MAC columns


class HeadMacs:
    """Computes and checks head MACs; the key is read once per process."""

    def __init__(self, keyring: KeyRing) -> None:
        self.keyring = keyring
        self._key: bytes | None = None

    def of(self, seq: int, head_hash: str) -> str:
        """The MAC of the head (seq, hash), lowercase hex."""
        message = canonical_bytes({"format": MAC_FORMAT, "seq": seq, "hash": head_hash})
        return hmac.new(self._secret(), message, hashlib.sha256).hexdigest()

    def valid(self, seq: int, head_hash: str, mac: str | None) -> bool:
        return mac is not None and hmac.compare_digest(mac, self.of(seq, head_hash))

    def _secret(self) -> bytes:
        # The key never changes (a new one would orphan every MAC already written).
        if self._key is None:
            self._key = self.keyring.secret(MAC_KEY)
        return self._key
