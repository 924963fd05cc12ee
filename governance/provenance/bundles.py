"""Signed bundles between appliances (deploy-model): one file carrying a version from,
say, staging to production with everything needed to trust and serve it there.

A bundle is `MAGIC + body + signature`: the body is JSON (the artifact, its card,
feature schema, reference profile (the baseline of drift, aggregates only), artifact
signature, origin (MLflow run, training data SHA-256, source commit) and the
exporting appliance's attestation: its id, the version's aliases, who moved them
there and its latest monitoring figures); the last 64 bytes are the exporting
appliance's Ed25519 signature over MAGIC and body, so any byte changed anywhere is
refused. With a
recipient, the artifact is sealed to that appliance's X25519 key (an ephemeral key
exchange, HKDF-SHA256, then the one AES-GCM envelope of governance/crypto/envelope.py);
without one it travels as plain skops bytes.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import asdict
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from governance.accounts.actor import Actor
from governance.audit.service import AuditEvent, AuditLog
from governance.clock import utcnow
from governance.crypto.envelope import open_sealed, seal
from governance.crypto.keyring import KeyRing
from governance.errors import IntegrityError, InvalidInput, UntrustedArtifact
from governance.monitoring.profiles import Profiles
from governance.monitoring.records import MonitoringRollup
from governance.provenance import appliance
from governance.provenance.service import Origin
from governance.provenance.signers import Signers
from governance.registry.records import ModelVersion
from governance.registry.service import ModelCard, PublishRequest, Registry

MAGIC = b"COFRE-BUNDLE-1\n"
SIGNATURE_BYTES = 64
_RAW = serialization.Encoding.Raw, serialization.PublicFormat.Raw


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _aad(sha256: str) -> bytes:
    return b"cofre-bundle-artifact\x00" + sha256.encode()


def _wrap_key(shared: bytes, ephemeral: bytes, recipient: bytes) -> bytes:
    info = b"cofre-bundle-1\x00" + ephemeral + recipient
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(shared)


class Bundles:
    """Export a version as a signed bundle; import one from a trusted appliance."""

    def __init__(
        self,
        registry: Registry,
        signers: Signers,
        keyring: KeyRing,
        audit: AuditLog,
        profiles: Profiles,
    ) -> None:
        self.registry = registry
        self.signers = signers
        self.keyring = keyring
        self.audit = audit
        self.profiles = profiles

    # -- export ------------------------------------------------------------------------
    def export(
        self, session: Session, actor: Actor, version: ModelVersion, recipient: bytes | None
    ) -> bytes:
        plaintext = self.registry.load_plaintext(version)
        body = json.dumps(
            {
                "format": "cofre-bundle/1",
                "model": _model(version),
                "artifact": self._artifact(plaintext, version.sha256, recipient),
                "signature": _signature(version),
                "origin": _origin(version),
                "reference_profile": self._profile(session, version),
                "attestation": self._attestation(session, version),
            },
            sort_keys=True,
        ).encode()
        signed = appliance.signing_key(self.keyring).sign(MAGIC + body)
        self.audit.append(
            session,
            AuditEvent(
                kind="model.exported",
                actor=actor,
                model_name=version.model.name,
                model_version=version.version,
                artifact_sha256=version.sha256,
                details={"sealed_to_appliance": recipient is not None},
            ),
        )
        return MAGIC + body + signed

    def _artifact(self, plaintext: bytes, sha256: str, recipient: bytes | None) -> dict[str, str]:
        if recipient is None:
            return {"encoding": "plain", "data": _b64(plaintext)}
        _, encryption = appliance.parts(appliance.check_appliance_key(recipient))
        if encryption is None:
            raise InvalidInput("the recipient's key file has no encryption key (X25519)")
        ephemeral = X25519PrivateKey.generate()
        ephemeral_raw = ephemeral.public_key().public_bytes(*_RAW)
        recipient_raw = encryption.public_bytes(*_RAW)
        key = _wrap_key(ephemeral.exchange(encryption), ephemeral_raw, recipient_raw)
        return {
            "encoding": "x25519-aes256gcm",
            "recipient": _b64(recipient_raw),
            "ephemeral": _b64(ephemeral_raw),
            "data": _b64(seal(key, plaintext, _aad(sha256))),
        }

    def _profile(self, session: Session, version: ModelVersion) -> dict[str, Any] | None:
        found = self.profiles.get(session, version.model.name, version.version)
        return None if found is None else found.profile

    def _attestation(self, session: Session, version: ModelVersion) -> dict[str, Any]:
        history = self.registry.alias_history(session, version.model.name)
        moves = [h for h in history if h.to_version == version.version]
        return {
            "appliance_id": appliance.identity(self.keyring),
            "exported_at": utcnow().isoformat(),
            "aliases": sorted(
                a.name for a in version.model.aliases if a.version == version.version
            ),
            "approved_by": sorted({m.actor for m in moves}),
            "alias_moves": [
                {"alias": m.alias, "actor": m.actor, "at": m.at.isoformat()} for m in moves
            ],
            "monitoring": _latest_figures(session, version),
        }

    # -- import ------------------------------------------------------------------------
    def import_(
        self, session: Session, actor: Actor, data: bytes, as_name: str | None
    ) -> ModelVersion:
        """Verify every signature and hash, then publish as a new version; a refusal
        publishes nothing."""
        body, exporter = self._verified(session, data)
        manifest = json.loads(body)
        model = manifest["model"]
        plaintext = self._open(manifest["artifact"], model["sha256"])
        signature = manifest.get("signature")
        attestation = manifest.get("attestation") or {}
        upstream = manifest.get("origin") or {}
        origin = Origin(
            source="bundle",
            reference=f"{model['name']}:{model['version']}",
            run_id=upstream.get("run_id"),
            link=upstream.get("link"),
            params=upstream.get("params") or {},
            metrics=upstream.get("metrics") or {},
            details={
                "imported_from": exporter,
                "exported_name": model["name"],
                "exported_version": model["version"],
                "attestation": attestation,
                "upstream_origin": manifest.get("origin"),
            },
            training_data_sha256=upstream.get("training_data_sha256"),
            source_commit=upstream.get("source_commit"),
        )
        request = PublishRequest(
            name=as_name or model["name"],
            artifact=plaintext,
            card=ModelCard(**model["card"]),
            features=model["features"],
            allow_missing=bool(model["allow_missing"]),
            signature=base64.b64decode(signature["bundle"]) if signature else None,
            origin=origin,
            allow_duplicate=True,
        )
        version = self.registry.publish(session, actor, request)
        profile = manifest.get("reference_profile")
        if profile is not None:  # drift is judged here against the same baseline
            self.profiles.keep(session, version.model.name, version.version, profile)
        return version

    def _verified(self, session: Session, data: bytes) -> tuple[bytes, str]:
        """The body and the name of the trusted appliance whose signature it carries."""
        if not data.startswith(MAGIC) or len(data) <= len(MAGIC) + SIGNATURE_BYTES:
            raise UntrustedArtifact("the file is not a cofre bundle")
        body, signature = data[len(MAGIC) : -SIGNATURE_BYTES], data[-SIGNATURE_BYTES:]
        for signer in self.signers.all(session, "appliance"):
            self.signers.check_seal(signer)
            signing, _ = appliance.parts(signer.public_key)
            try:
                signing.verify(signature, MAGIC + body)
            except InvalidSignature:
                continue
            return body, signer.name
        raise UntrustedArtifact(
            "the bundle is not signed by a trusted appliance, or it was changed after "
            "signing (`cofre signers add --appliance NAME KEY_FILE` trusts an appliance)"
        )

    def _open(self, artifact: dict[str, str], sha256: str) -> bytes:
        if artifact["encoding"] == "plain":
            plaintext = base64.b64decode(artifact["data"])
        else:
            own = appliance.encryption_key(self.keyring)
            own_raw = own.public_key().public_bytes(*_RAW)
            if base64.b64decode(artifact["recipient"]) != own_raw:
                raise UntrustedArtifact("the bundle's artifact is sealed to another appliance")
            ephemeral_raw = base64.b64decode(artifact["ephemeral"])
            shared = own.exchange(X25519PublicKey.from_public_bytes(ephemeral_raw))
            key = _wrap_key(shared, ephemeral_raw, own_raw)
            plaintext = open_sealed(
                key, base64.b64decode(artifact["data"]), _aad(sha256), "the bundle's artifact"
            )
        if hashlib.sha256(plaintext).hexdigest() != sha256:
            raise IntegrityError("the bundle's artifact does not match its SHA-256")
        return plaintext


MAX_FIGURES = 500


def _latest_figures(session: Session, version: ModelVersion) -> list[dict[str, Any]]:
    """The version's monitoring figures of its latest window here (drift, quality,
    performance: one per feature, metric and method)."""
    mine = (
        MonitoringRollup.model_name == version.model.name,
        MonitoringRollup.model_version == version.version,
    )
    latest = session.scalar(select(func.max(MonitoringRollup.window_end)).where(*mine))
    if latest is None:
        return []
    stmt = (
        select(MonitoringRollup)
        .where(*mine, MonitoringRollup.window_end == latest)
        .order_by(MonitoringRollup.feature, MonitoringRollup.metric, MonitoringRollup.method)
        .limit(MAX_FIGURES)
    )
    return [
        {
            "window_start": r.window_start.isoformat(),
            "window_end": r.window_end.isoformat(),
            "feature": r.feature,
            "metric": r.metric,
            "method": r.method,
            "value": r.value,
            "rows": r.rows,
        }
        for r in session.scalars(stmt)
    ]


def _model(version: ModelVersion) -> dict[str, Any]:
    card = ModelCard(
        purpose=version.purpose,
        legal_basis=version.legal_basis,
        description=version.description,
        decision_mode=version.decision_mode,
        owner=version.owner,
        retention_days=version.retention_days,
        recipients=version.recipients,
    )
    return {
        "name": version.model.name,
        "version": version.version,
        "sha256": version.sha256,
        "features": version.features,
        "allow_missing": version.allow_missing,
        "published_by": version.published_by,
        "published_at": version.published_at.isoformat(),
        "card": asdict(card),
    }


def _signature(version: ModelVersion) -> dict[str, str] | None:
    signed = getattr(version, "signature", None)
    if signed is None:
        return None
    return {"signer": signed.signer, "format": signed.format, "bundle": _b64(signed.signature)}


def _origin(version: ModelVersion) -> dict[str, Any] | None:
    origin = getattr(version, "origin", None)
    if origin is None:
        return None
    return {
        "source": origin.source,
        "reference": origin.reference,
        "run_id": origin.run_id,
        "link": origin.link,
        "params": origin.params,
        "metrics": origin.metrics,
        "training_data_sha256": origin.details.get("training_data_sha256"),
        "source_commit": origin.details.get("source_commit"),
    }
