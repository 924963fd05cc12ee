"""Structured logs with secrets redacted before any handler sees them."""

from __future__ import annotations

import json
import logging
import re
import sys
from typing import Any

# API key secrets, bearer tokens, and password-ish key=value pairs.
_REDACTIONS = (
    (re.compile(r"(cofre_[a-z0-9]{8}_)[A-Za-z0-9_-]+"), r"\1***"),
    (re.compile(r"(?i)(bearer\s+)[^\s\"']+"), r"\1***"),
    (re.compile(r"(?i)((?:password|secret|token)[\"']?\s*[:=]\s*[\"']?)[^\s\"',}]+"), r"\1***"),
    (re.compile(r"(postgresql\+psycopg://[^:/@\s]+:)[^@\s]+@"), r"\1***@"),
)


def redact(text: str) -> str:
    for pattern, replacement in _REDACTIONS:
        text = pattern.sub(replacement, text)
    return text


class RedactingFilter(logging.Filter):
    """Renders the message once, redacted, so no argument can carry a secret out."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage())
        record.args = None
        # Formatters cache the rendered traceback in exc_text and reuse it; render it
        # here, redacted, or an exception message holding a secret reaches the log.
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in ("request_id", "actor", "model"):
            if hasattr(record, name):
                entry[name] = getattr(record, name)
        if record.exc_info or record.exc_text:
            entry["exception"] = redact(
                record.exc_text or self.formatException(record.exc_info)  # type: ignore[arg-type]
            )
        return json.dumps(entry, ensure_ascii=False)


def configure(level: str, as_json: bool) -> None:
    """Install one redacting stderr handler on the `cofre` logger (idempotent)."""
    logger = logging.getLogger("cofre")
    logger.setLevel(level.upper())
    if any(getattr(h, "_cofre", False) for h in logger.handlers):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler._cofre = True  # type: ignore[attr-defined]
    handler.addFilter(RedactingFilter())
    handler.setFormatter(
        JsonFormatter()
        if as_json
        else logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s")
    )
    logger.addHandler(handler)
    logger.propagate = False
