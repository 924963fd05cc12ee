"""Working off the alert outbox: POSTing transitions to the webhook, with retries.

The outbox carries alert transitions and, in the same rows, a model's lifecycle events
(published, promoted, rolled back, deprecated, retired: `lifecycle_row`), so both go
out with one loop, one backoff and one signature.

Run by the scheduler process only (never a Gunicorn worker, never in a
prediction's path). Each due row is claimed in a short transaction, posted with
no transaction open, and its attempt recorded; a failed attempt is retried after
an exponential backoff until the configured number of attempts, then the row is
marked failed. The body is JSON; with a secret configured it is signed, HMAC-SHA256
over the exact bytes sent, in `X-Cofre-Signature: sha256=<hex>`. The secret and
the URL's credentials never reach a log line or a recorded error.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from governance.clock import isoformat, utcnow
from governance.monitoring.records import AlertDelivery
from governance.operations.transactions import Transactions

log = logging.getLogger("cofre.alerts")
SIGNATURE_HEADER = "X-Cofre-Signature"
DELIVERY_HEADER = "X-Cofre-Delivery"
PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"
BATCH = 100


@dataclass(frozen=True)
class Webhook:
    url: str
    secret: bytes | None = None
    timeout_seconds: float = 5.0


@dataclass(frozen=True)
class Backoff:
    """Attempt n (1-based) that failed waits base x 2^(n-1), at most `cap_seconds`."""

    attempts: int = 8
    base_seconds: float = 30.0
    cap_seconds: float = 3600.0

    def delay(self, attempt: int) -> timedelta:
        return timedelta(seconds=min(self.base_seconds * 2 ** (attempt - 1), self.cap_seconds))


@dataclass
class DeliveryReport:
    delivered: int = 0
    retrying: int = 0
    failed: int = 0

    def summary(self) -> str:
        return f"{self.delivered} delivered, {self.retrying} to retry, {self.failed} given up"


def outbox_row(
    transition: str,
    channel: str,
    payload: dict[str, Any],
    alert_id: int | None = None,
    plan_id: int | None = None,
) -> AlertDelivery:
    """A pending outbox row, due now: an alert's transition, or (no alert) a lifecycle event."""
    now = utcnow()
    return AlertDelivery(
        alert_id=alert_id,
        transition=transition,
        channel=channel,
        plan_id=plan_id,
        payload=payload,
        status=PENDING,
        attempts=0,
        created_at=now,
        next_attempt_at=now,
        last_error="",
        history=[],
    )


def lifecycle_row(event: str, details: dict[str, Any]) -> AlertDelivery:
    """The webhook row of one model lifecycle event (`event`: published, promoted,
    rolled_back, deprecated, retired); its payload says `"type": "lifecycle"` so a
    receiver tells it from an alert's."""
    payload = {"type": "lifecycle", "event": event, "at": isoformat(utcnow())} | details
    return outbox_row(event, "webhook", payload)


class DeliveryFailed(Exception):
    """One attempt did not get a 2xx; the message is safe to record."""


Post = Callable[[Webhook, bytes, dict[str, str]], int]


class Deliveries:
    """The outbox's use cases: deliver due webhook rows; hand out and settle the others."""

    def __init__(
        self,
        tx: Transactions,
        webhook: Webhook | None,
        backoff: Backoff,
        post: Post | None = None,
    ) -> None:
        self.tx = tx
        self.webhook = webhook
        self.backoff = backoff
        self.post = post or post_json

    def deliver_webhooks(self) -> DeliveryReport:
        report = DeliveryReport()
        if self.webhook is None:
            return report
        with self.tx.read() as session:
            due = [(d.id, d.payload) for d in self.due(session, "webhook")]
        for delivery_id, payload in due:
            body = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
            outcome = self._attempt(self.webhook, delivery_id, body)
            with self.tx.write() as session:
                status = self.record(session, delivery_id, outcome)
            report.delivered += status == DELIVERED
            report.failed += status == FAILED
            report.retrying += status == PENDING
        return report

    def _attempt(self, webhook: Webhook, delivery_id: int, body: bytes) -> str | None:
        """None when the receiver took it, else why not."""
        headers = {"Content-Type": "application/json", DELIVERY_HEADER: str(delivery_id)}
        if webhook.secret:
            headers[SIGNATURE_HEADER] = signature(webhook.secret, body)
        try:
            self.post(webhook, body, headers)
        except DeliveryFailed as exc:
            return str(exc)
        return None

    def due(
        self, session: Session, channel: str, now: datetime | None = None
    ) -> list[AlertDelivery]:
        return list(
            session.scalars(
                select(AlertDelivery)
                .where(
                    AlertDelivery.channel == channel,
                    AlertDelivery.status == PENDING,
                    AlertDelivery.next_attempt_at <= (now or utcnow()),
                )
                .order_by(AlertDelivery.id)
                .limit(BATCH)
            )
        )

    def record(
        self, session: Session, delivery_id: int, problem: str | None, retry: bool = True
    ) -> str:
        """Record one attempt at `delivery_id`: delivered, to be retried, or given up."""
        row = session.get(AlertDelivery, delivery_id)
        if row is None:
            return FAILED
        now = utcnow()
        row.attempts += 1
        row.history = [
            *row.history,
            {"at": isoformat(now), "outcome": "ok" if problem is None else problem[:300]},
        ]
        if problem is None:
            row.status, row.finished_at = DELIVERED, now
        elif retry and row.attempts < self.backoff.attempts:
            row.next_attempt_at, row.last_error = now + self.backoff.delay(row.attempts), problem
        else:
            row.status, row.finished_at, row.last_error = FAILED, now, problem
        level = logging.INFO if problem is None else logging.WARNING
        log.log(
            level,
            "alert delivery %s (%s, alert %s): %s after attempt %s%s",
            row.id,
            row.channel,
            row.alert_id,
            row.status,
            row.attempts,
            f": {problem}" if problem else "",
        )
        return row.status


def signature(secret: bytes, body: bytes) -> str:
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect is a failed delivery: the alert goes to the configured URL or nowhere."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


# No proxy: the receiver is an internal endpoint; no redirects (see above).
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirects())


def post_json(webhook: Webhook, body: bytes, headers: dict[str, str]) -> int:
    """POST `body`; the status on 2xx, else DeliveryFailed with a reason free of secrets.

    Credentials in the URL (`https://user:password@host/...`) travel as HTTP Basic
    authentication, never in the request line; no reason recorded names the URL.
    """
    if not webhook.url.startswith(("http://", "https://")):
        raise DeliveryFailed("the webhook URL is not http(s)")
    url, headers = _without_credentials(webhook.url, headers)
    # The scheme is checked above (and by the settings), so no file: URL is opened.
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310
    try:
        with _OPENER.open(request, timeout=webhook.timeout_seconds) as response:
            status = int(response.status)
    except urllib.error.HTTPError as exc:
        raise DeliveryFailed(f"HTTP {exc.code}") from None
    except urllib.error.URLError as exc:
        raise DeliveryFailed(f"not delivered: {type(exc.reason).__name__}") from None
    except Exception as exc:  # a bad port, a reset, a TLS failure: the type, never the text
        raise DeliveryFailed(f"not delivered: {type(exc).__name__}") from None
    if not 200 <= status < 300:
        raise DeliveryFailed(f"HTTP {status}")
    return status


def _without_credentials(url: str, headers: dict[str, str]) -> tuple[str, dict[str, str]]:
    parts = urllib.parse.urlsplit(url)
    if parts.username is None:
        return url, headers
    host = parts.netloc.rpartition("@")[2]
    token = f"{urllib.parse.unquote(parts.username)}:{urllib.parse.unquote(parts.password or '')}"
    basic = "Basic " + base64.b64encode(token.encode()).decode()
    return urllib.parse.urlunsplit(parts._replace(netloc=host)), headers | {"Authorization": basic}
