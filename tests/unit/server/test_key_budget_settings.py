"""The default budget and precision of new API keys: key_rate, key_rows_per_day,
key_precision, from the environment or overrides, unset meaning no limit."""

from __future__ import annotations

from pathlib import Path

import pytest

from governance.accounts.budgets import Budget
from server.config import ConfigError, default_key_budget, load_settings


def test_unset_means_no_limit_and_full_precision(tmp_path: Path) -> None:
    settings = load_settings(environ={"COFRE_HOME": str(tmp_path)})
    assert default_key_budget(settings) == Budget(None, None, None)


def test_defaults_read_from_the_environment(tmp_path: Path) -> None:
    environ = {
        "COFRE_HOME": str(tmp_path),
        "COFRE_KEY_RATE": "50/s",
        "COFRE_KEY_ROWS_PER_DAY": "100000",
        "COFRE_KEY_PRECISION": "0",
    }
    assert default_key_budget(load_settings(environ=environ)) == Budget(50, 100_000, 0)
    assert load_settings({"key_rate": 7, "key_precision": "none"}, environ={}).key_rate == 7


@pytest.mark.parametrize(
    ("name", "value"),
    [("key_rate", "50/m"), ("key_rate", 0), ("key_rows_per_day", -5), ("key_precision", 16)],
)
def test_nonsense_is_refused_in_one_line(name: str, value: object) -> None:
    with pytest.raises(ConfigError, match=f"setting '{name}'"):
        load_settings({name: value}, environ={})
