"""The keys page shows each key's budget and precision and creates keys with them."""

from __future__ import annotations

from collections.abc import Callable

from flask.testing import FlaskClient

from server.container import Container


def test_the_keys_page_creates_and_shows_limits(
    client: FlaskClient, signed_in: Callable[[str], str], cofre: Container
) -> None:
    csrf = signed_in("admin")
    form = {"csrf_token": csrf, "name": "svc", "role": "predictor"}
    created = client.post("/admin/keys", data=form | {"rate": "5/s", "precision": "2"})
    assert created.status_code == 201, created.text
    assert "5/s,\n        any rows,\n        2 decimals" in created.text
    with cofre.read() as session:
        [key] = cofre.accounts.keys(session)
    assert (key.rate_per_second, key.rows_per_day, key.output_precision) == (5, None, 2)
    refused = client.post("/admin/keys", data=form | {"rows_per_day": "many"})
    assert refused.status_code == 422 and "rows_per_day must be a whole number" in refused.text
