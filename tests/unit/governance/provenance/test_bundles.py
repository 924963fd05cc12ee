"""Bundles in one process: the attestation carries the version's aliases, approvers and
latest monitoring figures, the bundle its reference profile and provenance; an
artifact sealed to another appliance, a changed body and an untrusted appliance are
refused, publishing nothing."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from sklearn.datasets import load_iris

from governance.accounts.actor import SYSTEM
from governance.clock import utcnow
from governance.errors import UntrustedArtifact
from governance.monitoring.profiles import ReferenceData
from governance.monitoring.records import MonitoringRollup
from governance.provenance import appliance
from governance.provenance.bundles import MAGIC, SIGNATURE_BYTES
from governance.provenance.service import Origin
from governance.registry.service import PublishRequest
from server.container import Container
from tests.support.models import CARD, iris_classifier

TRAINED_ON, COMMIT = "ab" * 32, "0123abc"


def _reference_csv() -> bytes:
    frame = load_iris(as_frame=True).frame
    return frame.to_csv(index=False).encode()


def _other_appliance_key() -> bytes:
    pems = [
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        for key in (Ed25519PrivateKey.generate(), X25519PrivateKey.generate())
    ]
    return b"".join(pems)


@pytest.fixture
def published(cofre: Container) -> Container:
    with cofre.write() as session:
        cofre.registry.publish(
            session,
            SYSTEM,
            PublishRequest(
                name="iris",
                artifact=iris_classifier(),
                card=CARD,
                aliases=["staging"],
                reference=ReferenceData(_reference_csv(), "csv"),
                origin=Origin(
                    "file", "iris.skops", training_data_sha256=TRAINED_ON, source_commit=COMMIT
                ),
            ),
        )
        end = utcnow().replace(minute=0, second=0, microsecond=0)
        for start, value in ((end - timedelta(hours=2), 0.3), (end - timedelta(hours=1), 0.05)):
            session.add(
                MonitoringRollup(
                    model_name="iris",
                    model_version=1,
                    window_start=start,
                    window_end=start + timedelta(hours=1),
                    feature="petal length (cm)",
                    metric="drift",
                    method="psi",
                    value=value,
                    rows=120,
                    computed_at=utcnow(),
                )
            )
    return cofre


def _export(cofre: Container, recipient: bytes | None) -> bytes:
    with cofre.write() as session:
        version = cofre.registry.resolve(session, "iris", version=1)
        return cofre.bundles.export(session, SYSTEM, version, recipient)


def _import(cofre: Container, data: bytes) -> int:
    with cofre.write() as session:
        return cofre.bundles.import_(session, SYSTEM, data, "iris-copy").version


def _trust_self(cofre: Container) -> None:
    with cofre.write() as session:
        own = appliance.public_keys(cofre.keyring).encode()
        cofre.signers.add(session, SYSTEM, "self", own, "appliance")


def test_the_attestation_and_a_round_trip(published: Container) -> None:
    cofre = published
    _trust_self(cofre)
    data = _export(cofre, appliance.public_keys(cofre.keyring).encode())
    body = json.loads(data[len(MAGIC) : -SIGNATURE_BYTES])
    attestation = body["attestation"]
    assert attestation["aliases"] == ["staging"]
    assert attestation["approved_by"] == [SYSTEM.name]
    assert attestation["appliance_id"] == appliance.identity(cofre.keyring)
    assert [(f["value"], f["rows"]) for f in attestation["monitoring"]] == [(0.05, 120)]
    assert body["artifact"]["encoding"] == "x25519-aes256gcm"
    assert _import(cofre, data) == 1
    with cofre.read() as session:
        copy = cofre.registry.resolve(session, "iris-copy", version=1)
        original = cofre.registry.resolve(session, "iris", version=1)
        assert copy.sha256 == original.sha256
        details = copy.origin.details  # type: ignore[attr-defined]
        assert details["imported_from"] == "self"
        assert (details["training_data_sha256"], details["source_commit"]) == (TRAINED_ON, COMMIT)
        profiles = [cofre.registry.profiles.get(session, n, 1) for n in ("iris", "iris-copy")]
        assert profiles[0] is not None and profiles[1] is not None
        assert profiles[1].profile == profiles[0].profile and profiles[1].source == "reference"
    assert body["reference_profile"]["rows"] == 150
    assert body["origin"]["training_data_sha256"] == TRAINED_ON


def test_sealed_to_another_appliance_is_refused(published: Container) -> None:
    cofre = published
    _trust_self(cofre)
    data = _export(cofre, _other_appliance_key())
    with pytest.raises(UntrustedArtifact, match="sealed to another appliance"):
        _import(cofre, data)


def test_untrusted_or_changed_bundles_are_refused(published: Container) -> None:
    cofre = published
    data = _export(cofre, None)
    with pytest.raises(UntrustedArtifact, match="not signed by a trusted appliance"):
        _import(cofre, data)
    _trust_self(cofre)
    changed = data.replace(b'"staging"', b'"stagin_"', 1)
    assert changed != data
    with pytest.raises(UntrustedArtifact, match="changed after signing"):
        _import(cofre, changed)
    with pytest.raises(UntrustedArtifact, match="not a cofre bundle"):
        _import(cofre, b"PK\x03\x04" + data)
    with cofre.read() as session:
        assert [m.name for m in cofre.registry.models(session, SYSTEM)] == ["iris"]
