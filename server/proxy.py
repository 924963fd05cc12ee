"""Behind nginx: believe X-Forwarded-For/-Proto only from the configured proxies.

Werkzeug's ProxyFix does the rewriting; this wrapper applies it only when the
connection really comes from a trusted proxy, so a client that reaches
Gunicorn directly cannot choose its own address (login throttling counts per
client address) or scheme. Proxies are addresses or networks (10.0.0.0/8: the
ingress controllers of a Kubernetes cluster, whose pod addresses change), as
Gunicorn's own `forwarded_allow_ips` takes them.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Any

from werkzeug.middleware.proxy_fix import ProxyFix

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class TrustedProxyFix:
    """WSGI middleware: ProxyFix(x_for=1, x_proto=1) for trusted peers, else nothing."""

    def __init__(self, app: Any, trusted: Iterable[Network]) -> None:
        self.app = app
        self.fixed = ProxyFix(app, x_for=1, x_proto=1)
        self.trusted = tuple(trusted)

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        if self._is_trusted(environ.get("REMOTE_ADDR")):
            return self.fixed(environ, start_response)
        return self.app(environ, start_response)

    def _is_trusted(self, peer: str | None) -> bool:
        try:
            address = ipaddress.ip_address(peer or "")
        except ValueError:  # a unix socket's peer has no address
            return False
        return any(address in network for network in self.trusted)


def parse_addresses(text: str) -> list[Network]:
    """Comma-separated addresses or networks; ValueError names the one that is neither."""
    networks: list[Network] = []
    for part in filter(None, (piece.strip() for piece in text.split(","))):
        try:
            networks.append(ipaddress.ip_network(part, strict=False))
        except ValueError:
            raise ValueError(f"{part!r} is not an address or a network") from None
    return networks
