"""Publishing with a signature over HTTP (the JSON API and the admin upload page), and
what the admin and the auditor see of it."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from governance.accounts.actor import SYSTEM
from server.container import Container
from tests.support.models import iris_classifier
from tests.support.signing import signing_key_pair
from tests.unit.server.admin.conftest import sign_in

CARD = {"purpose": "score iris flowers", "legal_basis": "legitimate interest"}


@pytest.fixture
def signature(tmp_path: Path, cofre: Container) -> bytes:
    """alice signs the artifact with `cofre models sign` (a process of its own, as on a
    data scientist's machine) and is a trusted signer of the appliance."""
    private, public = signing_key_pair(tmp_path / "alice")
    artifact = tmp_path / "iris.skops"
    artifact.write_bytes(iris_classifier())
    cofre_cli = str(Path(sys.executable).with_name("cofre"))
    subprocess.run([cofre_cli, "models", "sign", str(artifact), "--key", str(private)], check=True)
    with cofre.write() as session:
        cofre.signers.add(session, SYSTEM, "alice", public.read_bytes(), "artifact")
    return (tmp_path / "iris.skops.sig").read_bytes()


def _post(client: FlaskClient, headers: dict[str, str], signature: bytes | None) -> Any:
    data: dict[str, object] = {**CARD, "file": (io.BytesIO(iris_classifier()), "m.skops")}
    if signature is not None:
        data["signature"] = (io.BytesIO(signature), "m.skops.sig")
    return client.post(
        "/api/v1/models/iris/versions",
        data=data,
        headers=headers,
        content_type="multipart/form-data",
    )


def test_api_publish_with_signature(
    client: FlaskClient, api_key: Callable[..., dict[str, str]], signature: bytes
) -> None:
    publisher = api_key("publisher")
    response = _post(client, publisher, signature)
    assert response.status_code == 201, response.text
    assert response.json["signature"]["signer"] == "alice"
    bundle = json.loads(signature)
    sig = bundle["dsseEnvelope"]["signatures"][0]["sig"]
    bundle["dsseEnvelope"]["signatures"][0]["sig"] = ("A" if sig[0] != "A" else "B") + sig[1:]
    tampered = json.dumps(bundle).encode()
    refused = _post(client, publisher, tampered)
    assert refused.status_code == 422
    assert refused.json["type"] == "urn:cofre:problem:untrusted-artifact"


def test_api_unsigned_refused_under_policy(
    overrides: dict[str, object], api_key: Callable[..., dict[str, str]]
) -> None:
    overrides["require_signed_models"] = True
    from server import create_app
    from server.extension import EXTENSION
    from server.setup import initialise

    app = create_app(overrides)
    initialise(app.extensions[EXTENSION], SYSTEM, "admin", "correct horse battery staple")
    container: Container = app.extensions[EXTENSION]
    with container.write() as session:
        created = container.accounts.create_key(session, SYSTEM, "p", "publisher", None, False)
    response = _post(app.test_client(), {"Authorization": f"Bearer {created.secret}"}, None)
    container.close()
    assert response.status_code == 422
    assert "requires signed models" in response.json["detail"]


def test_upload_page_takes_a_signature(
    client: FlaskClient, cofre: Container, signature: bytes
) -> None:
    with cofre.write() as session:
        cofre.accounts.create_user(session, SYSTEM, "pub", "publisher", "a long enough password")
    csrf = sign_in(client, "pub", "a long enough password")
    assert 'name="signature"' in client.get("/admin/publish").text
    response = client.post(
        "/admin/publish",
        data={
            **CARD,
            "csrf_token": csrf,
            "name": "iris",
            "decision_mode": "automated",
            "file": (io.BytesIO(iris_classifier()), "m.skops"),
            "signature": (io.BytesIO(signature), "m.skops.sig"),
        },
        content_type="multipart/form-data",
    )
    assert response.status_code == 303, response.text
    page = client.get("/admin/models/iris/versions/1").text
    assert '<dd id="signer">alice' in page
