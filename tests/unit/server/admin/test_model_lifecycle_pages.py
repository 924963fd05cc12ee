"""The version page says how a version was made and what changed; the model page marks
the versions refused at load under the running scikit-learn."""

from __future__ import annotations

from collections.abc import Callable
from io import BytesIO

from flask.testing import FlaskClient
from sqlalchemy import select

from governance.accounts.actor import SYSTEM
from governance.registry.records import ModelVersion
from governance.registry.service import PublishRequest
from server.container import Container
from tests.support.models import CARD, iris_classifier, iris_classifier_v2

HOSTILE_NOTE = "<script>alert(1)</script> tuned C"


def _publish(cofre: Container, artifact: bytes, note: str = "") -> None:
    request = PublishRequest(name="iris", artifact=artifact, card=CARD, note=note)
    with cofre.write() as session:
        cofre.registry.publish(session, SYSTEM, request)


def test_the_version_page_shows_parameters_libraries_note_and_changes(
    client: FlaskClient, signed_in: Callable[[str], str], cofre: Container
) -> None:
    _publish(cofre, iris_classifier())
    _publish(cofre, iris_classifier_v2(), note=HOSTILE_NOTE)
    signed_in("auditor")
    page = client.get("/admin/models/iris/versions/2").text
    assert "Changes against v1" in page
    assert "parameter <code>C</code>: <code>1.0</code> → <code>0.1</code>" in page
    assert "<td>max_iter</td><td><code>500</code></td>" in page
    assert "scikit-learn" in page and 'id="libraries"' in page
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt; tuned C" in page
    first = client.get("/admin/models/iris/versions/1").text
    assert "The first version: nothing to compare with." in first
    assert 'id="load-refusal"' not in first


def test_a_version_of_another_sklearn_minor_is_marked_refused(
    client: FlaskClient, signed_in: Callable[[str], str], cofre: Container
) -> None:
    _publish(cofre, iris_classifier())
    with cofre.write() as session:
        session.scalars(select(ModelVersion)).one().sklearn_version = "0.24.2"
    signed_in("auditor")
    page = client.get("/admin/models/iris/versions/1").text
    assert 'id="load-refusal"' in page and "cofre models verify iris:1" in page
    assert "refused at load" in client.get("/admin/models/iris").text


def test_an_upload_keeps_its_note(client: FlaskClient, signed_in: Callable[[str], str]) -> None:
    csrf = signed_in("publisher")
    assert 'name="note"' in client.get("/admin/publish").text
    response = client.post(
        "/admin/publish",
        data={
            "csrf_token": csrf,
            "name": "iris",
            "purpose": "sorting flowers",
            "legal_basis": "consent",
            "runtime": "sklearn",
            "note": "first cut, trained on the 2025 sample",
            "file": (BytesIO(iris_classifier()), "iris.skops"),
        },
        content_type="multipart/form-data",
    )
    assert response.status_code == 303
    page = client.get(response.headers["Location"]).text
    assert '<dd id="note">first cut, trained on the 2025 sample</dd>' in page
