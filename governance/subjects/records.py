"""ORM classes of subject rights: legal holds and reviews of contested decisions.

Neither table holds a clear subject id: a hold names the subject's pseudonym,
and a review's free text (the contest's reason, the decision's reason and any
corrected output) is sealed under the data key of the prediction row it is
about, so erasing the subject, or the row's retention running out, erases it too.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from governance.db import Base, UTCDateTime


class SubjectHold(Base):
    """A legal hold on a subject: while it is not released, neither erasure nor
    retention destroys the subject's data keys."""

    __tablename__ = "subject_holds"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    pseudonym: Mapped[str] = mapped_column(String(64), index=True)
    reason: Mapped[str] = mapped_column(Text)
    placed_by: Mapped[str] = mapped_column(String(64))
    placed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    released_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    released_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class DecisionReview(Base):
    """A person's contest of one automated decision (one row of one prediction).

    The original audit record is never changed: the opening and the outcome are
    appended to the chain (`opened_seq`, `decided_seq`) and point at it
    (`prediction_seq`); this row is the working state for listing and deciding.
    """

    __tablename__ = "decision_reviews"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[str] = mapped_column(String(64), index=True)
    row: Mapped[int] = mapped_column(Integer)
    prediction_seq: Mapped[int] = mapped_column(BigInteger)
    model_name: Mapped[str] = mapped_column(String(128), index=True)
    model_version: Mapped[int] = mapped_column(Integer)
    artifact_sha256: Mapped[str] = mapped_column(String(64))
    pseudonym: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    key_id: Mapped[str] = mapped_column(String(32), index=True)
    status: Mapped[str] = mapped_column(String(16), index=True)  # open | decided
    opened_by: Mapped[str] = mapped_column(String(64))
    opened_by_id: Mapped[str] = mapped_column(String(96))  # "<actor type>:<actor id>"
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    opened_sealed: Mapped[bytes] = mapped_column(LargeBinary)
    opened_seq: Mapped[int] = mapped_column(BigInteger)
    decided_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    decided_by_id: Mapped[str | None] = mapped_column(String(96), nullable=True)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    outcome: Mapped[str | None] = mapped_column(String(16), nullable=True)
    decided_sealed: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    decided_seq: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
