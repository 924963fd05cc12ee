"""`cofre subjects`, `cofre reviews` and `cofre compliance`: one-line errors, --json, files."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from governance.accounts.actor import SYSTEM
from governance.accounts.service import user_actor
from governance.subjects.caller import Caller
from server.cli import cli
from server.container import Container
from tests.support.publishing import publish
from tests.support.scoring import score


def _published(cofre: Container) -> Container:
    publish(cofre, "iris", aliases=["production"])
    return cofre


def test_export_hold_erase_release_and_status(
    runner: CliRunner, cofre: Container, tmp_path: Path
) -> None:
    request_id = score(_published(cofre), ["ana"])
    out = tmp_path / "ana.json"
    exported = runner.invoke(cli, ["subjects", "export", "ana", "--out", str(out)])
    assert exported.exit_code == 0, exported.output
    assert json.loads(out.read_text())["decisions"][0]["request_id"] == request_id
    assert out.stat().st_mode & 0o777 == 0o600
    as_csv = runner.invoke(cli, ["subjects", "export", "ana", "--format", "csv"])
    assert as_csv.output.splitlines()[0].startswith("request_id,row,seq")
    assert runner.invoke(cli, ["subjects", "export", "ana", "--out", str(out)]).exit_code != 0

    assert runner.invoke(cli, ["subjects", "hold", "ana", "--reason", "case 3"]).exit_code == 0
    refused = runner.invoke(cli, ["subjects", "erase", "ana", "--reason", "req 1"])
    assert refused.exit_code == 1 and "legal hold" in refused.output
    assert len(refused.output.strip().splitlines()) == 1
    assert runner.invoke(cli, ["subjects", "release", "ana"]).exit_code == 0
    erased = runner.invoke(cli, ["subjects", "erase", "ana", "--reason", "req 1", "--json"])
    assert erased.exit_code == 0 and json.loads(erased.output)["keys_destroyed"] == 1
    again = runner.invoke(cli, ["subjects", "erase", "ana", "--reason", "req 1"])
    assert again.exit_code == 0 and "already erased" in again.output
    unknown = runner.invoke(cli, ["subjects", "erase", "nobody", "--reason", "req 2"])
    assert unknown.exit_code == 1 and "no data about this subject" in unknown.output
    status = json.loads(runner.invoke(cli, ["subjects", "status", "ana", "--json"]).output)
    assert status["destroyed_keys"] == 1
    assert [e["kind"] for e in status["events"]].count("subject.erased") == 3
    assert runner.invoke(cli, ["audit", "verify"]).exit_code == 0


def test_retention_dry_run(runner: CliRunner, cofre: Container) -> None:
    score(_published(cofre), ["ana"])
    dry = runner.invoke(cli, ["subjects", "retention", "--dry-run", "--json"])
    assert dry.exit_code == 0 and json.loads(dry.output)["due"] == 0
    text = runner.invoke(cli, ["subjects", "retention", "--dry-run"]).output
    assert "would shred 0 data keys" in text


def test_reviews_list_show_and_decide(runner: CliRunner, cofre: Container) -> None:
    request_id = score(_published(cofre), ["ana"])
    with cofre.write() as session:
        dpo = cofre.accounts.create_user(session, SYSTEM, "dpo", "auditor", "a long password!")
    opened = cofre.reviews.open(Caller(user_actor(dpo), "api"), request_id, 0, "I contest it")
    review_id = str(opened.review.id)
    listed = json.loads(
        runner.invoke(cli, ["reviews", "list", "--status", "open", "--json"]).output
    )
    assert [r["id"] for r in listed] == [opened.review.id]
    shown = runner.invoke(cli, ["reviews", "show", review_id, "--explain"])
    assert shown.exit_code == 0 and "I contest it" in shown.output and "linear" in shown.output
    decide = ["reviews", "decide", review_id, "--reason", "typo", "--corrected-output", "2"]
    bad = runner.invoke(cli, [*decide, "--outcome", "upheld"])
    assert bad.exit_code != 0 and "only an overturned decision" in bad.output
    decided = runner.invoke(cli, [*decide, "--outcome", "overturned", "--json"])
    assert decided.exit_code == 0, decided.output
    assert json.loads(decided.output)["corrected_output"] == 2
    assert runner.invoke(cli, ["reviews", "show", "999"]).exit_code == 1


def test_record_of_processing(runner: CliRunner, cofre: Container) -> None:
    _published(cofre)
    markdown = runner.invoke(cli, ["compliance", "ropa"])
    assert markdown.exit_code == 0 and markdown.output.startswith("# Record of processing")
    assert "## iris (version 1, production alias)" in markdown.output
    document = json.loads(runner.invoke(cli, ["compliance", "ropa", "--format", "json"]).output)
    assert document["activities"][0]["retention_days"] == 365
