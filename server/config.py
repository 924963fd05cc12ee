"""Settings: defaults, then the TOML file named by COFRE_CONFIG, then COFRE_* variables,
then overrides from the caller; validated once into a frozen object.

This is the only module that reads the environment. Values from the environment
are parsed as JSON when they parse (Flask's `from_prefixed_env` convention), so
COFRE_MAX_ROWS=500 is an int and COFRE_LOG_JSON=false a bool.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from governance.accounts.budgets import Budget, check_limit, check_precision, parse_limit
from governance.errors import InvalidInput
from governance.monitoring.rules import Rule, make_rule
from server.proxy import parse_addresses

PREFIX = "COFRE_"
_LENGTH = re.compile(r"^[1-9][0-9]{0,3}[mhd]$")
# Variables with the prefix that are not settings: the config file's own name, and
# the test suite's knobs.
NOT_SETTINGS = ("COFRE_CONFIG", "COFRE_TEST_")


class ConfigError(Exception):
    """A setting is missing, unknown or invalid; the message is one line."""


@dataclass(frozen=True)
class Settings:
    """Validated settings. Paths are absolute; derived defaults are filled in."""

    home: Path
    database_url: str
    key_dir: Path
    artifact_dir: Path
    backup_dir: Path
    # Where the encrypted artifacts live: "files" (under artifact_dir) or "database"
    # (PostgreSQL only: application hosts then share nothing but the database).
    # Unset, it is "database" on PostgreSQL and "files" on SQLite.
    artifact_store: str = "files"
    max_body_bytes: int = 1024 * 1024
    max_rows: int = 1000
    max_artifact_bytes: int = 256 * 1024 * 1024
    model_cache_size: int = 8
    alias_refresh_seconds: float = 2.0
    db_lock_timeout_ms: int = 5_000
    log_level: str = "INFO"
    log_json: bool = True
    metrics_dir: Path | None = None
    session_idle_minutes: int = 30
    session_absolute_hours: int = 8
    trust_proxy: bool = False
    # Peers whose X-Forwarded-For/-Proto are believed when trust_proxy is on
    # (comma-separated addresses of the nginx hosts).
    trusted_proxies: str = "127.0.0.1"
    bind: str = "127.0.0.1:8000"
    workers: int = 2
    threads: int = 4
    # Scheduled operations (`cofre scheduler`). Cron: 5 fields, or 6 with seconds
    # first; UTC. Retention keeps the newest backup of each of the last N days,
    # weeks and months; the mirror is a second (mounted) directory for copies.
    backup_schedule: str = "0 2 * * *"
    backup_drill_schedule: str = "30 3 * * 0"
    # Signed audit checkpoints: export them off the appliance to detect truncation.
    checkpoint_schedule: str = "*/15 * * * *"
    backup_keep_daily: int = 7
    backup_keep_weekly: int = 4
    backup_keep_monthly: int = 6
    backup_mirror_dir: Path | None = None
    job_retries: int = 2
    job_retry_delay_seconds: float = 30.0
    scheduler_poll_seconds: float = 15.0
    retraining_data_dir: Path | None = None  # data files plans may read; default $HOME/datasets
    retraining_database_url: str = ""  # the database retraining SQL queries run against
    retraining_max_rows: int = 1_000_000
    # Data-subject rights. Personal data in the audit log is kept `retention_days`
    # for versions published without their own period; the `retention` job shreds
    # what is older; a contested decision is due `review_due_days` after it is
    # opened (LGPD Art. 19: 15 days). The controller is named in subject exports
    # and the record of processing.
    retention_days: int = 365
    retention_schedule: str = "0 4 * * *"
    review_due_days: int = 15
    controller_name: str = ""
    controller_contact: str = ""
    # Staged rollouts: shadow scorings a worker may queue before it drops them (and
    # counts them dropped), and the approvals a move of `production` needs from a
    # person other than the one asking (four-eyes: regulated deployments set 1).
    shadow_queue_size: int = 1000
    promotion_approvals: int = 0
    # Supply chain: refuse to publish or load a version without a signature by a
    # trusted signer (`cofre signers add`). The Ansible role turns it on.
    require_signed_models: bool = False
    # Monitoring (drift, data quality, performance; governance/monitoring/). The
    # `monitoring` job computes every served version's report over the last
    # `monitoring_window`; windows end on multiples of `monitoring_step` (whole
    # hours), so a 24h window is recomputed until its hour has passed, then final.
    # A version published without reference data is profiled from its first
    # `monitoring_profile_rows` served rows. Drift thresholds: PSI 0.1 (moderate)
    # and 0.25 (major), the credit-scoring convention (Siddiqi 2006); the tests'
    # p-value below 0.05. Lengths are a number of m, h or d.
    monitoring_schedule: str = "*/15 * * * *"
    monitoring_window: str = "24h"
    monitoring_step: str = "1h"
    monitoring_profile_rows: int = 1000
    monitoring_psi_moderate: float = 0.1
    monitoring_psi_major: float = 0.25
    monitoring_p_value: float = 0.05
    # Alerts. The default rules every model follows until its publisher edits its
    # own: drift by `alert_drift_method` above `alert_drift_threshold` on any
    # feature (or the output) for `alert_drift_windows` consecutive windows; PSI
    # above 0.25 is the usual "significant shift" line (Siddiqi, Credit Risk
    # Scorecards, 2006). The others are off until set: a performance metric worse
    # than a floor, a missing share or an error rate above a limit (0 = off).
    # Transitions are POSTed to `alert_webhook_url` (an internal endpoint) by the
    # scheduler, signed with `alert_webhook_secret` when set, each retried with
    # exponential backoff up to `alert_delivery_attempts` attempts.
    alert_drift_method: str = "psi"
    alert_drift_threshold: float = 0.25
    alert_drift_windows: int = 1
    alert_performance_metric: str = ""
    alert_performance_floor: float = 0.0
    alert_missing_share_limit: float = 0.0
    alert_error_rate_limit: float = 0.0
    alert_webhook_url: str = ""
    alert_webhook_secret: str = ""
    alert_webhook_timeout_seconds: float = 5.0
    alert_delivery_schedule: str = "* * * * *"
    alert_delivery_attempts: int = 8
    alert_delivery_backoff_seconds: float = 30.0
    # Disk space (governance/operations/storage.py). A full disk stops the audit
    # log, and with it every prediction (fail closed): the `storage` job raises a
    # `disk` alert when a file system holding the home (SQLite database), the
    # artifacts, the backups or the mirror has less than `disk_alert_free_percent`
    # per cent or `disk_alert_free_bytes` bytes available (0 turns a floor off).
    storage_schedule: str = "*/5 * * * *"
    disk_alert_free_percent: float = 10.0
    disk_alert_free_bytes: int = 1024**3
    # Extraction and membership-probing detection (governance/monitoring/extraction.py).
    # The `extraction` job judges each API key's rows to each version over the last
    # `extraction_window`, once the key sent `extraction_min_rows` rows: it raises an
    # `extraction` alert when `extraction_sweep_share` of them differ from another of
    # its rows in exactly one feature, or when a feature's PSI against the reference
    # profile reaches `extraction_distance` (0 turns either signal off). Only the
    # newest `extraction_max_rows` rows of a key are judged. `extraction_throttle_rate`
    # ("" = alert only; e.g. "1/s") is the rate a key gets when its alert fires.
    extraction_schedule: str = "*/5 * * * *"
    extraction_window: str = "1h"
    extraction_min_rows: int = 50
    extraction_sweep_share: float = 0.5
    extraction_distance: float = 2.0
    extraction_max_rows: int = 5000
    extraction_throttle_rate: str = ""
    # Query budgets and output precision of API keys (governance/accounts/budgets.py):
    # what a key created without its own gets: requests per second (a number, or
    # "50/s"), rows scored per UTC day, decimals of the probabilities. Unset: no
    # limit, full precision. Copied into each key at creation; `cofre keys limit`
    # changes a key's own.
    key_rate: int | None = None
    key_rows_per_day: int | None = None
    key_precision: int | None = None
    testing: bool = False

    def public_view(self) -> dict[str, Any]:
        """For `cofre config` and logs: no secrets live in settings, but URLs may hold
        passwords, so the database URL is shown with its password masked."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["database_url"] = mask_url(self.database_url)
        out["alert_webhook_url"] = mask_url(self.alert_webhook_url)
        out["alert_webhook_secret"] = "***" if self.alert_webhook_secret else ""
        return {k: str(v) if isinstance(v, Path) else v for k, v in out.items()}


_DERIVED = ("home", "database_url", "key_dir", "artifact_dir", "backup_dir", "artifact_store")


def load_settings(
    overrides: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Build the settings from every layer; raise ConfigError with a one-line reason."""
    env = os.environ if environ is None else environ
    raw: dict[str, Any] = {}
    config_file = env.get("COFRE_CONFIG")
    if config_file:
        raw.update(_read_toml(Path(config_file)))
    raw.update(_from_env(env))
    raw.update(overrides or {})
    return _validate(raw)


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"COFRE_CONFIG names {path}, which does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from None
    # Accept both a flat file and one with a [cofre] table.
    return dict(data.get("cofre", data))


def _from_env(env: Mapping[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in env.items():
        if not name.startswith(PREFIX) or name.startswith(NOT_SETTINGS):
            continue
        try:
            out[name[len(PREFIX) :].lower()] = json.loads(value)
        except ValueError:
            out[name[len(PREFIX) :].lower()] = value
    return out


def _validate(raw: dict[str, Any]) -> Settings:
    known = {f.name: f for f in fields(Settings)}
    unknown = sorted(set(raw) - set(known))
    if unknown:
        raise ConfigError(f"unknown setting {unknown[0]!r} (as COFRE_{unknown[0].upper()})")
    home = Path(str(raw.get("home", "./var"))).expanduser().resolve()
    values: dict[str, Any] = {
        "home": home,
        "database_url": str(raw.get("database_url") or f"sqlite:///{home / 'cofre.db'}"),
        "key_dir": _path(raw.get("key_dir"), home / "keys"),
        "artifact_dir": _path(raw.get("artifact_dir"), home / "artifacts"),
        "backup_dir": _path(raw.get("backup_dir"), home / "backups"),
    }
    values["artifact_store"] = _artifact_store(raw.get("artifact_store"), values["database_url"])
    for name, value in raw.items():
        if name not in _DERIVED:
            values[name] = _coerce(name, value, known[name].default)
    settings = Settings(**values)
    _check(settings)
    return settings


ARTIFACT_STORES = ("files", "database")


def _artifact_store(value: Any, database_url: str) -> str:
    on_postgres = database_url.startswith("postgresql")
    if value in (None, "", "auto"):
        return "database" if on_postgres else "files"
    if value not in ARTIFACT_STORES:
        raise ConfigError("setting 'artifact_store' must be files or database")
    if value == "database" and not on_postgres:
        raise ConfigError("artifact_store = database needs PostgreSQL; on SQLite use files")
    return str(value)


def _path(value: Any, default: Path) -> Path:
    return Path(str(value)).expanduser().resolve() if value else default


def _coerce(name: str, value: Any, default: Any) -> Any:
    if name in _KEY_BUDGET:
        return _key_budget(name, value)
    if name in ("metrics_dir", "backup_mirror_dir", "retraining_data_dir"):
        return Path(str(value)).resolve() if value else None
    kind = type(default)
    if kind is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"setting {name!r} must be true or false")
    if kind in (int, float):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"setting {name!r} must be a number")
        return kind(value)
    return str(value)


_KEY_BUDGET = ("key_rate", "key_rows_per_day", "key_precision")


def _key_budget(name: str, value: Any) -> int | None:
    """A default limit: unset (None, "" or "none") means none."""
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "none")):
        return None
    field = name.removeprefix("key_")
    try:
        if isinstance(value, str):
            return parse_limit(field, value)
        return check_precision(value) if field == "precision" else check_limit(field, value)
    except InvalidInput as exc:
        raise ConfigError(f"setting {name!r}: {exc.detail}") from None


def _check(settings: Settings) -> None:
    url = settings.database_url
    if not (url.startswith("sqlite:///") or url.startswith("postgresql+psycopg://")):
        raise ConfigError("database_url must start with sqlite:/// or postgresql+psycopg://")
    for name in (
        "max_body_bytes",
        "max_artifact_bytes",
        "max_rows",
        "model_cache_size",
        "workers",
        "threads",
        "db_lock_timeout_ms",
        "session_idle_minutes",
        "session_absolute_hours",
        "retention_days",
        "review_due_days",
        "shadow_queue_size",
        "monitoring_profile_rows",
    ):
        if getattr(settings, name) < 1:
            raise ConfigError(f"setting {name!r} must be at least 1")
    if settings.log_level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ConfigError("log_level must be DEBUG, INFO, WARNING or ERROR")
    try:
        parse_addresses(settings.trusted_proxies)
    except ValueError as exc:
        raise ConfigError(f"setting 'trusted_proxies': {exc}") from None
    _check_operations(settings)


def _check_operations(settings: Settings) -> None:
    for name in (
        "backup_keep_daily",
        "backup_keep_weekly",
        "backup_keep_monthly",
        "job_retries",
        "promotion_approvals",
    ):
        if getattr(settings, name) < 0:
            raise ConfigError(f"setting {name!r} must be zero or more")
    for name in ("scheduler_poll_seconds", "retraining_max_rows"):
        if getattr(settings, name) <= 0:
            raise ConfigError(f"setting {name!r} must be more than zero")
    if settings.job_retry_delay_seconds < 0:
        raise ConfigError("setting 'job_retry_delay_seconds' must be zero or more")
    _check_monitoring(settings)
    _check_alerts(settings)
    _check_extraction(settings)


def _check_monitoring(settings: Settings) -> None:
    for name in ("monitoring_window", "monitoring_step"):
        if not _LENGTH.match(getattr(settings, name)):
            raise ConfigError(f"setting {name!r} must be a length such as 30m, 1h or 24h")
    if not 0 < settings.monitoring_psi_moderate <= settings.monitoring_psi_major:
        raise ConfigError("monitoring PSI thresholds must be 0 < moderate <= major")
    if not 0 < settings.monitoring_p_value < 1:
        raise ConfigError("setting 'monitoring_p_value' must be between 0 and 1")


def _check_alerts(settings: Settings) -> None:
    url = settings.alert_webhook_url
    if url and not (url.startswith("http://") or url.startswith("https://")):
        raise ConfigError("alert_webhook_url must start with http:// or https://")
    if settings.alert_webhook_secret and not url:
        raise ConfigError("alert_webhook_secret is set but alert_webhook_url is not")
    for name in ("alert_webhook_timeout_seconds", "alert_delivery_attempts"):
        if getattr(settings, name) <= 0:
            raise ConfigError(f"setting {name!r} must be more than zero")
    if settings.alert_delivery_backoff_seconds < 0:
        raise ConfigError("setting 'alert_delivery_backoff_seconds' must be zero or more")
    if not 0 <= settings.disk_alert_free_percent < 100:
        raise ConfigError("setting 'disk_alert_free_percent' must be from 0 to under 100")
    if settings.disk_alert_free_bytes < 0:
        raise ConfigError("setting 'disk_alert_free_bytes' must be zero or more")
    try:
        default_alert_rules(settings)
    except InvalidInput as exc:
        where = "; ".join(f"{e.field} must be {e.message}" for e in exc.errors)
        raise ConfigError(f"the default alert rules are invalid: {where}") from None


def _check_extraction(settings: Settings) -> None:
    if not _LENGTH.match(settings.extraction_window):
        raise ConfigError("setting 'extraction_window' must be a length such as 30m, 1h or 24h")
    for name in ("extraction_min_rows", "extraction_max_rows"):
        if getattr(settings, name) < 2:
            raise ConfigError(f"setting {name!r} must be at least 2")
    if not 0 <= settings.extraction_sweep_share <= 1:
        raise ConfigError("setting 'extraction_sweep_share' must be from 0 to 1 (0 = off)")
    if settings.extraction_distance < 0:
        raise ConfigError("setting 'extraction_distance' must be zero (off) or more")
    rate = settings.extraction_throttle_rate
    if rate and not _is_a_rate(rate):
        raise ConfigError("setting 'extraction_throttle_rate' must be a rate such as 1/s")


def _is_a_rate(written: str) -> bool:
    """Whether a key's rate limit can be set to it (requests per second, as budgets count)."""
    try:
        return parse_limit("rate", written) is not None
    except InvalidInput:
        return False


def default_alert_rules(settings: Settings) -> list[Rule]:
    """The rules a model follows until its publisher edits its own."""
    rules = []
    if settings.alert_drift_threshold > 0:
        rules.append(
            make_rule(
                "drift",
                settings.alert_drift_method,
                settings.alert_drift_threshold,
                settings.alert_drift_windows,
            )
        )
    if settings.alert_performance_metric:
        rules.append(
            make_rule(
                "performance", settings.alert_performance_metric, settings.alert_performance_floor
            )
        )
    if settings.alert_missing_share_limit > 0:
        rules.append(make_rule("missing", None, settings.alert_missing_share_limit))
    if settings.alert_error_rate_limit > 0:
        rules.append(make_rule("error_rate", None, settings.alert_error_rate_limit))
    return rules


def default_key_budget(settings: Settings) -> Budget:
    return Budget(settings.key_rate, settings.key_rows_per_day, settings.key_precision)


def mask_url(url: str) -> str:
    """The URL with any password replaced by ***."""
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return url
    credentials, _, host = rest.rpartition("@")
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}" if ":" in credentials else url
