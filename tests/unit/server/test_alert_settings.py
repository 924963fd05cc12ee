"""Alert settings: the default rules they make, and the one-line refusals of wrong ones;
the webhook secret and the URL's password never shown."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from server.config import ConfigError, default_alert_rules, load_settings


def _settings(tmp_path: Path, **values: Any) -> Any:
    return load_settings({"home": str(tmp_path)} | values, environ={})


def test_the_default_is_psi_above_a_quarter_on_any_feature(tmp_path: Path) -> None:
    [rule] = default_alert_rules(_settings(tmp_path))
    assert (rule.kind, rule.method, rule.threshold, rule.windows, rule.feature) == (
        "drift",
        "psi",
        0.25,
        1,
        "",
    )


def test_more_defaults_and_none(tmp_path: Path) -> None:
    settings = _settings(
        tmp_path,
        alert_drift_method="wasserstein",
        alert_drift_windows=3,
        alert_performance_metric="f1",
        alert_performance_floor=0.7,
        alert_missing_share_limit=0.2,
        alert_error_rate_limit=0.05,
    )
    described = [r.describe() for r in default_alert_rules(settings)]
    assert described == [
        "drift: wasserstein > 0.25 on any feature in 3 consecutive windows",
        "performance: f1 < 0.7 in the latest window",
        "missing: missing_share > 0.2 on any feature in the latest window",
        "error_rate: error_rate > 0.05 in the latest window",
    ]
    assert default_alert_rules(_settings(tmp_path, alert_drift_threshold=0)) == []


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"alert_drift_method": "pca"}, "default alert rules are invalid: method"),
        ({"alert_performance_metric": "speed"}, "default alert rules are invalid: method"),
        ({"alert_drift_windows": 0}, "windows"),
        ({"alert_webhook_url": "file:///etc/passwd"}, "http:// or https://"),
        ({"alert_webhook_secret": "s3cret"}, "alert_webhook_url is not"),
        ({"alert_delivery_attempts": 0}, "more than zero"),
    ],
)
def test_wrong_settings_stop_with_one_line(
    tmp_path: Path, values: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError) as refused:
        _settings(tmp_path, **values)
    assert message in str(refused.value) and "\n" not in str(refused.value)


def test_the_secret_and_the_url_password_are_masked(tmp_path: Path) -> None:
    settings = _settings(
        tmp_path,
        alert_webhook_url="https://cofre:hunter2@alerts.internal/hook",
        alert_webhook_secret="s3cret",
    )
    shown = settings.public_view()
    assert shown["alert_webhook_secret"] == "***"
    assert shown["alert_webhook_url"] == "https://cofre:***@alerts.internal/hook"
