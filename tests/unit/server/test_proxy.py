"""X-Forwarded-For is believed from the configured proxies only."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask, request

from server.proxy import TrustedProxyFix, parse_addresses


def _seen(environ: dict[str, Any], trusted: str = "127.0.0.1, 10.0.0.7") -> tuple[str, str]:
    app = Flask("probe")

    @app.get("/")
    def probe() -> str:
        return f"{request.remote_addr} {request.scheme}"

    app.wsgi_app = TrustedProxyFix(app.wsgi_app, parse_addresses(trusted))  # type: ignore[method-assign]
    headers = {"X-Forwarded-For": "203.0.113.5", "X-Forwarded-Proto": "https"}
    answer = app.test_client().get("/", headers=headers, environ_base=environ)
    remote, scheme = answer.get_data(as_text=True).split()
    return remote, scheme


def test_trusted_proxy_headers_are_applied() -> None:
    assert _seen({"REMOTE_ADDR": "10.0.0.7"}) == ("203.0.113.5", "https")


def test_other_peers_cannot_choose_their_address() -> None:
    assert _seen({"REMOTE_ADDR": "192.0.2.9"}) == ("192.0.2.9", "http")


def test_a_trusted_network_covers_its_addresses_and_no_other() -> None:
    """Ingress controllers in a cluster change address: the operator names their network."""
    assert _seen({"REMOTE_ADDR": "10.42.7.19"}, "10.0.0.0/8") == ("203.0.113.5", "https")
    assert _seen({"REMOTE_ADDR": "11.0.0.1"}, "10.0.0.0/8") == ("11.0.0.1", "http")
    assert _seen({"REMOTE_ADDR": "fd00::5"}, "fd00::/8") == ("203.0.113.5", "https")


def test_a_proxy_that_is_no_address_is_a_configuration_error(tmp_path: Any) -> None:
    from server.config import ConfigError, load_settings

    with pytest.raises(ConfigError, match="'nginx-host' is not an address or a network"):
        load_settings({"home": str(tmp_path), "trusted_proxies": "127.0.0.1, nginx-host"})


def test_app_wraps_only_when_trusting_a_proxy(tmp_path: Any) -> None:
    from server import create_app

    assert isinstance(
        create_app({"home": str(tmp_path), "trust_proxy": True}).wsgi_app, TrustedProxyFix
    )
    assert not isinstance(create_app({"home": str(tmp_path)}).wsgi_app, TrustedProxyFix)
