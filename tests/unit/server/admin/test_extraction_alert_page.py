"""The alerts page shows an extraction alert with its evidence: the key, the window's
counts, the swept feature, the one-feature share and the distance from the reference."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask.testing import FlaskClient

from server.container import Container
from server.jobs import extraction_work
from tests.support.extraction import key_of, publish_risk, send, sweep_rows

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def test_an_extraction_alert_shows_its_evidence(
    client: FlaskClient, cofre: Container, signed_in: Callable[[str], str]
) -> None:
    publish_risk(cofre)
    sweeper = key_of(cofre, "sweeper")
    send(cofre, sweeper, sweep_rows(60))
    extraction_work(cofre)
    signed_in("auditor")
    page = client.get("/admin/alerts/").text
    row = page.split('id="alert-1"')[1].split("</tr>")[0]
    assert "traffic looks like a sweep of the input space" in row
    assert f"<code>{sweeper.name.removeprefix('key:')}</code>" in row
    assert "6 requests, 60 rows" in row
    assert "60 rows (100%), 1770 pairs" in row
    assert "x1: 60 rows, up to 60 values with the others fixed" in row
    assert "PSI " in row and "evenly spaced</dt><dd>x1" in row
    assert "risk v1" in client.get("/admin/").text  # the dashboard's firing alerts
