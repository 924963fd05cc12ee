"""Signed artifacts through the CLI: `cofre models sign` offline, `cofre signers`, publish
with --signature, the COFRE_REQUIRE_SIGNED_MODELS policy and the check at every load."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select, update

from governance.errors import IntegrityError
from governance.provenance.records import TrustedSigner, VersionSignature
from server.cli import cli
from server.container import Container
from tests.support.models import iris_classifier, iris_classifier_v2
from tests.support.signing import signing_key_pair

CARD = ["--purpose", "score flowers", "--legal-basis", "legitimate interest"]


def _run(runner: CliRunner, *args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    result = runner.invoke(cli, list(args), env=env)
    return result.exit_code, result.output


def _ok(runner: CliRunner, *args: str, env: dict[str, str] | None = None) -> str:
    code, out = _run(runner, *args, env=env)
    assert code == 0, out
    return out


@pytest.fixture
def signed(tmp_path: Path) -> dict[str, Path]:
    """An artifact, the signer's keys and the signature, made offline (no appliance)."""
    private, public = signing_key_pair(tmp_path / "keys-of-alice")
    artifact = tmp_path / "iris.skops"
    artifact.write_bytes(iris_classifier())
    out = CliRunner().invoke(cli, ["models", "sign", str(artifact), "--key", str(private)])
    assert out.exit_code == 0, out.output
    return {
        "artifact": artifact,
        "signature": tmp_path / "iris.skops.sig",
        "private": private,
        "public": public,
    }


def test_sign_writes_a_model_signing_bundle_offline(signed: dict[str, Path]) -> None:
    bundle = json.loads(signed["signature"].read_text())
    assert bundle["mediaType"] == "application/vnd.dev.sigstore.bundle.v0.3+json"
    assert bundle["verificationMaterial"]["tlogEntries"] == []  # no transparency log: offline
    assert bundle["dsseEnvelope"]["payloadType"] == "application/vnd.in-toto+json"


def test_signed_publish_records_the_signer(
    runner: CliRunner, signed: dict[str, Path], cofre: Container
) -> None:
    out = _ok(runner, "signers", "add", "alice", str(signed["public"]))
    assert out.startswith("trusted artifact signer alice fingerprint=")
    listed = json.loads(_ok(runner, "signers", "list", "--json"))
    assert [(s["name"], s["kind"]) for s in listed] == [("alice", "artifact")]
    published = json.loads(
        _ok(
            runner,
            "models",
            "publish",
            str(signed["artifact"]),
            "--name",
            "iris",
            *CARD,
            "--signature",
            str(signed["signature"]),
            "--json",
        )
    )
    assert published["signature"]["signer"] == "alice"
    shown = json.loads(_ok(runner, "models", "show", "iris:1", "--json"))
    assert shown["signature"]["fingerprint"] == listed[0]["fingerprint"]
    with cofre.read() as session:
        version = cofre.registry.resolve(session, "iris", version=1)
        assert cofre.registry.verify_provenance(session, version) == "alice"


def test_a_signature_over_another_file_is_refused(
    runner: CliRunner, signed: dict[str, Path], tmp_path: Path
) -> None:
    _ok(runner, "signers", "add", "alice", str(signed["public"]))
    other = tmp_path / "other.skops"
    other.write_bytes(iris_classifier_v2())
    code, out = _run(
        runner,
        "models",
        "publish",
        str(other),
        "--name",
        "iris",
        *CARD,
        "--signature",
        str(signed["signature"]),
    )
    assert code != 0
    assert "over another file" in out and len(out.strip().splitlines()) == 1
    assert json.loads(_ok(runner, "models", "list", "--json")) == []


def test_an_untrusted_signer_is_refused(runner: CliRunner, signed: dict[str, Path]) -> None:
    code, out = _run(
        runner,
        "models",
        "publish",
        str(signed["artifact"]),
        "--name",
        "iris",
        *CARD,
        "--signature",
        str(signed["signature"]),
    )
    assert code != 0 and "not by a trusted signer" in out


def test_unsigned_is_refused_under_the_policy(runner: CliRunner, signed: dict[str, Path]) -> None:
    policy = {"COFRE_REQUIRE_SIGNED_MODELS": "true"}
    code, out = _run(
        runner, "models", "publish", str(signed["artifact"]), "--name", "iris", *CARD, env=policy
    )
    assert code != 0 and "requires signed models" in out
    _ok(runner, "signers", "add", "alice", str(signed["public"]), env=policy)
    _ok(
        runner,
        "models",
        "publish",
        str(signed["artifact"]),
        "--name",
        "iris",
        *CARD,
        "--signature",
        str(signed["signature"]),
        env=policy,
    )
    # Without the policy an unsigned file still publishes.
    _ok(
        runner,
        "models",
        "publish",
        str(signed["artifact"]),
        "--name",
        "iris",
        *CARD,
        "--allow-duplicate",
    )


def test_a_removed_signer_stops_the_version_loading(
    runner: CliRunner, signed: dict[str, Path], cofre: Container
) -> None:
    _ok(runner, "signers", "add", "alice", str(signed["public"]))
    args = ["--signature", str(signed["signature"])]
    _ok(runner, "models", "publish", str(signed["artifact"]), "--name", "iris", *CARD, *args)
    assert _ok(runner, "signers", "remove", "alice").strip() == "removed signer alice"
    with cofre.read() as session:
        version = cofre.registry.resolve(session, "iris", version=1)
        with pytest.raises(IntegrityError, match="no longer trusted"):
            cofre.registry.load_estimator(version)


def test_a_signer_row_written_without_the_key_directory_is_refused(
    runner: CliRunner, signed: dict[str, Path], cofre: Container, tmp_path: Path
) -> None:
    """Someone who can write the database swaps in their own key and signature."""
    _ok(runner, "signers", "add", "alice", str(signed["public"]))
    args = ["--signature", str(signed["signature"])]
    _ok(runner, "models", "publish", str(signed["artifact"]), "--name", "iris", *CARD, *args)
    mallory_private, mallory_public = signing_key_pair(tmp_path / "mallory", "mallory")
    forged = tmp_path / "forged.sig"
    _ok(
        runner,
        "models",
        "sign",
        str(signed["artifact"]),
        "--key",
        str(mallory_private),
        "--out",
        str(forged),
    )
    with cofre.write() as session:
        alice = session.scalars(select(TrustedSigner)).one()
        session.execute(
            update(TrustedSigner)
            .where(TrustedSigner.id == alice.id)
            .values(public_key=mallory_public.read_text())
        )
        session.execute(update(VersionSignature).values(signature=forged.read_bytes()))
    with cofre.read() as session:
        version = cofre.registry.resolve(session, "iris", version=1)
        with pytest.raises(IntegrityError, match="fails its seal"):
            cofre.registry.verify_provenance(session, version)


def test_a_changed_signature_record_is_an_integrity_failure(
    runner: CliRunner, signed: dict[str, Path], cofre: Container
) -> None:
    _ok(runner, "signers", "add", "alice", str(signed["public"]))
    args = ["--signature", str(signed["signature"])]
    _ok(runner, "models", "publish", str(signed["artifact"]), "--name", "iris", *CARD, *args)
    bundle = json.loads(signed["signature"].read_text())
    sig = bundle["dsseEnvelope"]["signatures"][0]["sig"]
    bundle["dsseEnvelope"]["signatures"][0]["sig"] = ("A" if sig[0] != "A" else "B") + sig[1:]
    with cofre.write() as session:
        session.execute(update(VersionSignature).values(signature=json.dumps(bundle).encode()))
    with cofre.read() as session:
        version = cofre.registry.resolve(session, "iris", version=1)
        with pytest.raises(IntegrityError, match="no longer verifies"):
            cofre.registry.verify_provenance(session, version)


def test_signer_changes_are_audited_and_the_chain_verifies(
    runner: CliRunner, signed: dict[str, Path], cofre: Container
) -> None:
    from governance.audit.records import AuditRecord

    _ok(runner, "signers", "add", "alice", str(signed["public"]))
    args = ["--signature", str(signed["signature"])]
    _ok(runner, "models", "publish", str(signed["artifact"]), "--name", "iris", *CARD, *args)
    _ok(runner, "signers", "remove", "alice")
    code, _ = _run(runner, "signers", "remove", "alice")
    assert code != 0
    with cofre.read() as session:
        kinds = [r.kind for r in session.scalars(select(AuditRecord).order_by(AuditRecord.seq))]
    assert kinds.count("signer.added") == 1 and kinds.count("signer.removed") == 1
    assert "model.signature_verified" in kinds
    assert _run(runner, "audit", "verify")[0] == 0
