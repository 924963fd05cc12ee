"""Settings: defaults -> TOML (COFRE_CONFIG) -> COFRE_* environment -> overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from server.config import ConfigError, load_settings, mask_url


def _toml(tmp_path: Path, text: str) -> str:
    path = tmp_path / "cofre.toml"
    path.write_text(text)
    return str(path)


def test_defaults_derive_from_home(tmp_path: Path) -> None:
    settings = load_settings(environ={"COFRE_HOME": str(tmp_path / "h")})
    home = (tmp_path / "h").resolve()
    assert settings.home == home
    assert settings.database_url == f"sqlite:///{home / 'cofre.db'}"
    assert settings.key_dir == home / "keys"
    assert settings.artifact_dir == home / "artifacts"
    assert (settings.max_body_bytes, settings.max_rows, settings.model_cache_size) == (
        1048576,
        1000,
        8,
    )
    assert (settings.bind, settings.workers) == ("127.0.0.1:8000", 2)


def test_default_home_is_var_in_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert load_settings(environ={}).home == (tmp_path / "var").resolve()


def test_each_layer_overrides_the_one_before(tmp_path: Path) -> None:
    config = _toml(tmp_path, "max_rows = 10\nmax_body_bytes = 2000\nworkers = 3\nbind = 'a:1'\n")
    environ = {"COFRE_CONFIG": config, "COFRE_MAX_BODY_BYTES": "3000", "COFRE_WORKERS": "4"}
    settings = load_settings({"workers": 5}, environ=environ)
    assert settings.max_rows == 10  # TOML over the default
    assert settings.max_body_bytes == 3000  # environment over TOML
    assert settings.workers == 5  # overrides over the environment
    assert settings.bind == "a:1"
    assert settings.model_cache_size == 8  # default where nobody says otherwise


def test_toml_may_use_a_cofre_table(tmp_path: Path) -> None:
    config = _toml(tmp_path, "[cofre]\nmax_rows = 7\nlog_json = false\n")
    settings = load_settings(environ={"COFRE_CONFIG": config})
    assert (settings.max_rows, settings.log_json) == (7, False)


def test_environment_values_are_json_when_they_parse(tmp_path: Path) -> None:
    settings = load_settings(
        environ={
            "COFRE_HOME": str(tmp_path),
            "COFRE_LOG_JSON": "false",
            "COFRE_MAX_ROWS": "500",
            "COFRE_BIND": "0.0.0.0:9000",
            "COFRE_TEST_POSTGRES_URL": "ignored: the suite's own knob",
        }
    )
    assert settings.log_json is False
    assert settings.max_rows == 500
    assert settings.bind == "0.0.0.0:9000"


def test_explicit_paths_win_over_derived_ones(tmp_path: Path) -> None:
    settings = load_settings(
        environ={"COFRE_HOME": str(tmp_path / "h"), "COFRE_KEY_DIR": str(tmp_path / "k")}
    )
    assert settings.key_dir == (tmp_path / "k").resolve()
    assert settings.artifact_dir == (tmp_path / "h" / "artifacts").resolve()


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"COFRE_MAX_ROWS": "many"}, "setting 'max_rows' must be a number"),
        ({"COFRE_MAX_ROWS": "0"}, "setting 'max_rows' must be at least 1"),
        ({"COFRE_LOG_JSON": "maybe"}, "setting 'log_json' must be true or false"),
        ({"COFRE_NO_SUCH_THING": "1"}, "unknown setting 'no_such_thing'"),
        ({"COFRE_DATABASE_URL": "mysql://x/y"}, "database_url must start with"),
        ({"COFRE_LOG_LEVEL": "LOUD"}, "log_level must be"),
        ({"COFRE_CONFIG": "/nonexistent/cofre.toml"}, "does not exist"),
    ],
)
def test_invalid_settings_fail_fast_with_one_line(
    tmp_path: Path, environ: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError) as failure:
        load_settings(environ={"COFRE_HOME": str(tmp_path), **environ})
    assert message in str(failure.value)
    assert "\n" not in str(failure.value)


def test_invalid_toml_is_one_line(tmp_path: Path) -> None:
    config = _toml(tmp_path, "max_rows = \n[[[")
    with pytest.raises(ConfigError, match="not valid TOML") as failure:
        load_settings(environ={"COFRE_CONFIG": config})
    assert "\n" not in str(failure.value)


def test_settings_are_frozen(tmp_path: Path) -> None:
    settings = load_settings(environ={"COFRE_HOME": str(tmp_path)})
    with pytest.raises(AttributeError):
        settings.max_rows = 3  # type: ignore[misc]


def test_public_view_masks_the_database_password(tmp_path: Path) -> None:
    url = "postgresql+psycopg://cofre:s3cr3t-pw@db.internal:5432/cofre"
    view = load_settings(
        environ={"COFRE_HOME": str(tmp_path), "COFRE_DATABASE_URL": url}
    ).public_view()
    assert view["database_url"] == "postgresql+psycopg://cofre:***@db.internal:5432/cofre"
    assert "s3cr3t-pw" not in repr(view)
    assert isinstance(view["home"], str)


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("sqlite:////var/cofre.db", "sqlite:////var/cofre.db"),
        ("postgresql+psycopg://cofre@db/x", "postgresql+psycopg://cofre@db/x"),
        ("postgresql+psycopg://u:p@ss:w@db/x", "postgresql+psycopg://u:***@db/x"),
    ],
)
def test_mask_url(url: str, masked: str) -> None:
    assert mask_url(url) == masked


def test_the_cli_reports_a_bad_setting_in_one_line(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from server.cli import cli

    runner = CliRunner(env={"COFRE_HOME": str(tmp_path), "COFRE_WORKERS": "lots"})
    result = runner.invoke(cli, ["users", "list"])
    assert result.exit_code == 1
    assert result.output.splitlines() == [
        "Error: configuration: setting 'workers' must be a number"
    ]
