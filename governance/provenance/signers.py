"""The appliance's trusted signers: added, listed and removed by an admin, each audited.

A signer row is sealed with an HMAC under `provenance.key` (key directory), over
its name, kind and key: someone who can write the database but does not hold the
key directory cannot make a key of theirs trusted, nor swap a trusted one.
"""

from __future__ import annotations

import hashlib
import hmac

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError as DBIntegrityError
from sqlalchemy.orm import Session

from governance.accounts.actor import Actor
from governance.audit.service import AuditEvent, AuditLog
from governance.clock import utcnow
from governance.crypto.keyring import KeyRing
from governance.errors import Conflict, FieldError, IntegrityError, InvalidInput, NotFound
from governance.provenance import signatures
from governance.provenance.records import TrustedSigner

SEAL_KEY = "provenance.key"
KINDS = ("artifact", "appliance")


class Signers:
    """Use cases over the trusted-signer table."""

    def __init__(self, audit: AuditLog, keyring: KeyRing) -> None:
        self.audit = audit
        self.keyring = keyring

    def add(
        self, session: Session, actor: Actor, name: str, public_key_pem: bytes, kind: str
    ) -> TrustedSigner:
        _check_name(name)
        pem = _canonical_key(public_key_pem, kind)
        found = fingerprint_of(pem)
        signer = TrustedSigner(
            name=name,
            kind=kind,
            public_key=pem,
            fingerprint=found,
            added_by=actor.name,
            added_at=utcnow(),
            seal=self._seal(name, kind, pem),
        )
        session.add(signer)
        try:
            session.flush()
        except DBIntegrityError:
            raise Conflict(f"a signer named {name!r} exists already") from None
        self._event(session, actor, "signer.added", signer)
        return signer

    def all(self, session: Session, kind: str | None = None) -> list[TrustedSigner]:
        stmt = select(TrustedSigner).order_by(TrustedSigner.name)
        if kind is not None:
            stmt = stmt.where(TrustedSigner.kind == kind)
        return list(session.scalars(stmt))

    def remove(self, session: Session, actor: Actor, name: str) -> TrustedSigner:
        signer = self._named(session, name)
        if signer is None:
            raise NotFound(f"no trusted signer named {name!r}")
        session.delete(signer)
        session.flush()
        self._event(session, actor, "signer.removed", signer)
        return signer

    def trusted(self, session: Session, name: str, kind: str) -> TrustedSigner | None:
        """The signer `name` of `kind` whose seal holds; None when there is none.

        A row whose seal does not hold raises IntegrityError: it was written or
        changed without the key directory.
        """
        signer = self._named(session, name)
        if signer is None or signer.kind != kind:
            return None
        self.check_seal(signer)
        return signer

    def by_fingerprint(self, session: Session, fingerprint: str, kind: str) -> list[TrustedSigner]:
        stmt = select(TrustedSigner).where(
            TrustedSigner.fingerprint == fingerprint, TrustedSigner.kind == kind
        )
        found = list(session.scalars(stmt))
        for signer in found:
            self.check_seal(signer)
        return found

    def check_seal(self, signer: TrustedSigner) -> None:
        expected = self._seal(signer.name, signer.kind, signer.public_key)
        if not hmac.compare_digest(expected, signer.seal):
            raise IntegrityError(
                f"trusted signer {signer.name!r} fails its seal (changed outside cofre)"
            )

    def _named(self, session: Session, name: str) -> TrustedSigner | None:
        return session.scalars(select(TrustedSigner).where(TrustedSigner.name == name)).first()

    def _seal(self, name: str, kind: str, pem: str) -> bytes:
        message = "\x00".join(("cofre-trusted-signer", name, kind, pem)).encode()
        return hmac.new(self.keyring.secret(SEAL_KEY), message, hashlib.sha256).digest()

    def _event(self, session: Session, actor: Actor, kind: str, signer: TrustedSigner) -> None:
        details = {"signer": signer.name, "kind": signer.kind, "fingerprint": signer.fingerprint}
        self.audit.append(session, AuditEvent(kind=kind, actor=actor, details=details))


def fingerprint_of(pem: str) -> str:
    return signatures.fingerprint(pem.encode())


def _canonical_key(public_key_pem: bytes, kind: str) -> str:
    if kind not in KINDS:
        raise InvalidInput(f"a signer's kind is one of {', '.join(KINDS)}")
    if kind == "artifact":
        return signatures.check_signing_key(public_key_pem)
    from governance.provenance.appliance import check_appliance_key

    return check_appliance_key(public_key_pem)


def _check_name(name: str) -> None:
    if not name or len(name) > 128 or not name.replace("-", "").replace("_", "").isalnum():
        raise InvalidInput(
            "invalid signer name",
            [FieldError("name", "1-128 letters, digits, '-' or '_'")],
        )
