"""Master-key rotation: every data key re-wrapped, the old KEK no longer needed."""

from __future__ import annotations

from typing import Any

from click.testing import CliRunner
from sqlalchemy import select

from governance.accounts.actor import SYSTEM
from governance.audit.service import AuditEvent, PersonalRow
from governance.crypto.keyring import KeyRing
from governance.registry.records import ModelVersion
from server import create_app
from server.cli import cli
from server.container import Container
from tests.conftest import services_of
from tests.support.models import cancer_pipeline, iris_classifier_v2
from tests.support.publishing import publish


def test_rotate_master_then_delete_the_old_key(
    cofre: Container, runner: CliRunner, overrides: dict[str, Any]
) -> None:
    publish(cofre, "iris", aliases=["production"])
    publish(cofre, "iris", iris_classifier_v2())
    publish(cofre, "cancer", cancer_pipeline())
    with cofre.write() as session:
        record = cofre.audit.append(
            session,
            AuditEvent(
                kind="test.personal",
                actor=SYSTEM,
                rows=[PersonalRow("subject-1", {"x": 1}), PersonalRow(None, {"x": 2})],
            ),
        )
    old_kek = KeyRing(cofre.settings.key_dir).current_kek_id()

    result = runner.invoke(cli, ["keys", "rotate-master"])
    assert result.exit_code == 0, result.output
    # 3 versions, their 3 compiled models, a subject and a row key
    assert "8 data keys re-wrapped" in result.output
    (cofre.settings.key_dir / f"kek-{old_kek}.key").unlink()

    fresh = services_of(create_app(overrides))  # nothing cached from before the rotation
    with fresh.read() as session:
        versions = list(session.scalars(select(ModelVersion)))
        assert {v.kek_id for v in versions} != {old_kek}
        for version in versions:
            assert fresh.registry.load_estimator(version).predict is not None
            assert fresh.registry.load_compiled(version)  # its ONNX model opens too
        stored = cofre.audit.by_request(session, SYSTEM, record.request_id)[0]
        assert fresh.audit.decrypt_payload(session, stored) == [{"x": 1}, {"x": 2}]
        kinds = [r.kind for r in fresh.audit.by_request(session, SYSTEM, _last_request(fresh))]
    assert kinds == ["keys.master_rotated"]
    verify = runner.invoke(cli, ["audit", "verify"])
    assert verify.exit_code == 0, verify.output
    fresh.close()


def _last_request(cofre: Container) -> str:
    from governance.audit.records import AuditRecord

    with cofre.read() as session:
        last = session.scalars(select(AuditRecord).order_by(AuditRecord.seq.desc())).first()
        assert last is not None
        return last.request_id
