"""Which variant answers a request: a pure function of the rollout and the request.

Canary and A/B split by a hash of the rollout id and a routing key, so the same key
always lands on the same side for the whole rollout and another rollout reshuffles.
The key is the pseudonym of the request's subject (a keyed HMAC: the clear id never
enters the hash) when its rows carry one, else the request id. A request about
several people is routed by its first subject.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

CHAMPION = "champion"
CANDIDATE = "candidate"
# why a variant answered
BY_SUBJECT = "subject-hash"
BY_REQUEST = "request-hash"
SHADOW = "shadow"  # the champion answers, the candidate scores alongside
SWITCHED = "blue-green"
WARMING = "warming"  # blue-green: this worker has not loaded the candidate yet
FALLBACK = "candidate-failed"  # the candidate failed; the champion answered instead


@dataclass(frozen=True)
class Plan:
    """A running rollout, as every worker holds it: plain values, no ORM session."""

    id: int
    model: str
    champion: int
    candidate: int
    strategy: str  # canary | ab | shadow | blue-green
    percent: float
    sticky: str  # subject | request


@dataclass(frozen=True)
class Routed:
    """What an answer says about its rollout: which variant answered and why."""

    rollout: int
    variant: str
    reason: str
    candidate_error: str | None = None

    def as_dict(self) -> dict[str, object]:
        out: dict[str, object] = {
            "rollout": self.rollout,
            "variant": self.variant,
            "reason": self.reason,
        }
        if self.candidate_error:
            out["candidate_error"] = self.candidate_error
        return out


def share(rollout_id: int, key: str) -> float:
    """A uniform number in [0, 1) fixed by the rollout and the key."""
    digest = hashlib.sha256(f"cofre-rollout\x00{rollout_id}\x00{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def choose(plan: Plan, request_id: str, pseudonyms: Sequence[str | None]) -> tuple[str, str]:
    """(variant, reason) for a request; `pseudonyms` of its rows' subjects."""
    if plan.strategy == "shadow":
        return CHAMPION, SHADOW
    if plan.strategy == "blue-green":
        return CANDIDATE, SWITCHED
    subject = next((p for p in pseudonyms if p), None) if plan.sticky == "subject" else None
    key, reason = (subject, BY_SUBJECT) if subject else (request_id, BY_REQUEST)
    return (CANDIDATE if share(plan.id, key) * 100 < plan.percent else CHAMPION), reason
