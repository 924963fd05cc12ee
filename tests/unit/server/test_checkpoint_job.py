"""The scheduler signs audit checkpoints periodically (job `audit-checkpoint`)."""

from __future__ import annotations

import json

from click.testing import CliRunner

from server.cli import cli
from server.container import Container


def test_checkpoint_job_signs_the_current_head(cofre: Container, runner: CliRunner) -> None:
    schedule = runner.invoke(cli, ["jobs", "schedule", "--json"])
    assert schedule.exit_code == 0, schedule.output
    assert "audit-checkpoint" in schedule.output
    result = runner.invoke(cli, ["jobs", "run", "audit-checkpoint"])
    assert result.exit_code == 0, result.output
    with cofre.read() as session:
        checkpoint = cofre.audit.latest_checkpoint(session)
        assert checkpoint is not None
        assert (checkpoint.seq, checkpoint.hash) == cofre.audit.head(session)
        exported = cofre.audit.export_checkpoint(checkpoint)
    assert cofre.audit.checkpoint_signature_ok(json.loads(json.dumps(exported)))
    history = runner.invoke(cli, ["jobs", "list", "--json"])
    assert '"audit-checkpoint"' in history.output and '"ok"' in history.output
