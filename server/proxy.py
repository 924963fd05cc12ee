"""Behind nginx: believe X-Forwarded-For/-Proto only from the configured proxies.

Werkzeug's ProxyFix does the rewriting; this wrapper applies it only when the
connection really comes from a trusted proxy, so a client that reaches
Gunicorn directly cannot choose its own address (login throttling counts per
client address) or scheme.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from werkzeug.middleware.proxy_fix import ProxyFix


class TrustedProxyFix:
    """WSGI middleware: ProxyFix(x_for=1, x_proto=1) for trusted peers, else nothing."""

    def __init__(self, app: Any, trusted: Iterable[str]) -> None:
        self.app = app
        self.fixed = ProxyFix(app, x_for=1, x_proto=1)
        self.trusted = frozenset(trusted)

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        if environ.get("REMOTE_ADDR") in self.trusted:
            return self.fixed(environ, start_response)
        return self.app(environ, start_response)


def parse_addresses(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]
