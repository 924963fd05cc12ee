"""The record of processing for the API, the page and the CLI: the database's part
comes from governance, the facts outside it (backups, the master key) from here."""

from __future__ import annotations

from sqlalchemy.orm import Session

from governance.compliance.ropa import Facts, RecordOfProcessing, record_of_processing
from server.container import Container


def ropa(container: Container, session: Session) -> RecordOfProcessing:
    verified = [e for e in container.backups.entries() if e.verified]
    backup = f"{verified[0].id} at {verified[0].created_at.isoformat()}" if verified else None
    facts = Facts(
        controller_name=container.settings.controller_name,
        controller_contact=container.settings.controller_contact,
        master_key_id=container.keyring.current_kek_id(),
        last_verified_backup=backup,
    )
    return record_of_processing(session, container.audit, facts)
