"""`cofre init`: creates keys and schema once, then changes nothing."""

import stat
from pathlib import Path

from click.testing import CliRunner

from server.cli import cli


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_init_is_idempotent_and_private(tmp_path: Path) -> None:
    home, keys = tmp_path / "home", tmp_path / "keys"
    password = tmp_path / "pw"
    password.write_text("a long enough password\n")
    runner = CliRunner(env={"COFRE_HOME": str(home), "COFRE_KEY_DIR": str(keys)})
    first = runner.invoke(cli, ["init", "--admin-password-file", str(password)])
    assert first.exit_code == 0, first.output
    assert "created admin user 'admin'" in first.output
    assert "generated" not in first.output
    second = runner.invoke(cli, ["init"])
    assert second.exit_code == 0, second.output
    assert second.output.strip() == "Already initialised: nothing changed."
    assert _mode(keys) == 0o700
    assert {p.name for p in keys.iterdir()} >= {"pseudonym.key", "audit-signing.key", "kek.current"}
    assert all(_mode(p) == 0o600 for p in keys.iterdir())
    assert _mode(home / "cofre.db") == 0o600


def test_init_generates_and_prints_a_password_once(tmp_path: Path) -> None:
    runner = CliRunner(env={"COFRE_HOME": str(tmp_path / "home")})
    result = runner.invoke(cli, ["init"])
    assert result.exit_code == 0, result.output
    line = next(x for x in result.output.splitlines() if "generated admin password" in x)
    assert len(line.rsplit(" ", 1)[1]) >= 20


def test_bad_setting_is_one_line_error(tmp_path: Path) -> None:
    runner = CliRunner(env={"COFRE_HOME": str(tmp_path), "COFRE_MAX_ROWS": "many"})
    result = runner.invoke(cli, ["models", "list"])
    assert result.exit_code != 0
    assert result.output.strip().splitlines() == [
        "Error: configuration: setting 'max_rows' must be a number"
    ]
