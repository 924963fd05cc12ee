"""The service container: one per app, in `app.extensions["cofre"]`.

It builds collaborators lazily, so that nothing holding a connection, a thread
or a file exists before Gunicorn forks; `after_fork()` drops the engine's
inherited connections in each worker.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from functools import cached_property

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from backups.retention import Policy
from backups.service import BackupConfig, Backups
from governance.accounts.actor import SYSTEM
from governance.accounts.budgets import Budgets, parse_limit
from governance.accounts.logins import Logins, SessionPolicy
from governance.accounts.revocations import Revocations
from governance.accounts.service import Accounts
from governance.audit.checkpoints import Checkpoints
from governance.audit.disclosures import Disclosures
from governance.audit.search import AuditSearch
from governance.audit.service import AuditLog
from governance.audit.writer import AuditWriter
from governance.broadcasts import Broadcast
from governance.crypto.keyring import KeyRing
from governance.db import make_engine, make_session_factory, read_session, write_transaction
from governance.monitoring.alerts import Alerts
from governance.monitoring.delivery import Backoff, Deliveries, Webhook
from governance.monitoring.drift import Thresholds
from governance.monitoring.extraction import Extraction, ExtractionPolicy
from governance.monitoring.feedback import Feedback, FeedbackSource
from governance.monitoring.service import Monitoring, MonitoringPolicy
from governance.monitoring.windows import parse_length
from governance.operations.jobs import JobHistory
from governance.operations.storage import Storage, StoragePolicy
from governance.provenance.bundles import Bundles
from governance.provenance.service import Provenance
from governance.provenance.signers import Signers
from governance.registry.artifacts import (
    ArtifactFiles,
    ArtifactPlace,
    ArtifactStore,
    ArtifactTable,
)
from governance.registry.retirement import Retirements
from governance.registry.service import Registry
from governance.retraining.service import Retraining
from governance.retraining.sources import DataSources
from governance.rollouts.approvals import Promotions
from governance.rollouts.reports import RolloutReports
from governance.rollouts.service import Rollouts
from governance.subjects.decisions import Decisions
from governance.subjects.erasure import Subjects
from governance.subjects.export import Controller, ReviewSource, RowSource, SubjectExports
from governance.subjects.journal import ErasureJournal
from governance.subjects.retention import Retention
from governance.subjects.reviews import Reviews
from governance.subjects.sealing import RowSealer
from server.config import Settings, default_alert_rules, default_key_budget
from server.errors import classify
from server.inference.predictor import Limits, Predictor
from server.inference.rollouts import RolloutTraffic


class Container:
    """Holds settings and the services built from them."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @cached_property
    def engine(self) -> Engine:
        return make_engine(
            self.settings.database_url, db_lock_timeout_ms=self.settings.db_lock_timeout_ms
        )

    @cached_property
    def sessions(self) -> sessionmaker[Session]:
        return make_session_factory(self.engine)

    @cached_property
    def keyring(self) -> KeyRing:
        return KeyRing(self.settings.key_dir)

    @cached_property
    def audit(self) -> AuditLog:
        return AuditLog(self.keyring)

    @cached_property
    def disclosures(self) -> Disclosures:
        return Disclosures(self.audit)

    @cached_property
    def artifact_place(self) -> ArtifactPlace:
        """Files under artifact_dir, or rows of the database (artifact_store)."""
        if self.settings.artifact_store == "database":
            return ArtifactTable(self.engine)
        return ArtifactFiles(self.settings.artifact_dir)

    @cached_property
    def registry(self) -> Registry:
        return Registry(
            ArtifactStore(self.artifact_place, self.keyring),
            self.audit,
            default_retention_days=self.settings.retention_days,
            provenance=self.provenance,
            lifecycle_webhook=bool(self.settings.alert_webhook_url),
        )

    @cached_property
    def retirements(self) -> Retirements:
        """Deprecation, retirement and the shredding of retired artifacts."""
        return Retirements(self.registry)

    @cached_property
    def signers(self) -> Signers:
        return Signers(self.audit, self.keyring)

    @cached_property
    def bundles(self) -> Bundles:
        return Bundles(
            self.registry, self.signers, self.keyring, self.audit, self.registry.profiles
        )

    @cached_property
    def provenance(self) -> Provenance:
        return Provenance(self.signers, self.audit, self.settings.require_signed_models)

    @cached_property
    def accounts(self) -> Accounts:
        return Accounts(self.audit, self.revocations, default_key_budget(self.settings))

    @cached_property
    def revocations(self) -> Revocations:
        settings = self.settings
        return Revocations(settings.home / "key-revocations", settings.database_url)

    @cached_property
    def jobs(self) -> JobHistory:
        return JobHistory()

    @cached_property
    def backups(self) -> Backups:
        settings = self.settings
        config = BackupConfig(
            database_url=settings.database_url,
            artifact_dir=settings.artifact_dir,
            artifact_store=settings.artifact_store,
            backup_dir=settings.backup_dir,
            mirror_dir=settings.backup_mirror_dir,
            policy=Policy(
                daily=settings.backup_keep_daily,
                weekly=settings.backup_keep_weekly,
                monthly=settings.backup_keep_monthly,
            ),
        )
        return Backups(config, self.keyring, self.audit, self)

    @cached_property
    def retraining(self) -> Retraining:
        settings = self.settings
        sources = DataSources(
            settings.retraining_data_dir or settings.home / "datasets",
            settings.retraining_database_url or None,
            settings.retraining_max_rows,
        )
        return Retraining(self.registry, self.audit, sources, self)

    @cached_property
    def alerts(self) -> Alerts:
        settings = self.settings
        return Alerts(self.audit, default_alert_rules(settings), bool(settings.alert_webhook_url))

    @cached_property
    def storage(self) -> Storage:
        """Free space of every directory the appliance writes, and the database size."""
        settings = self.settings
        directories = {"home": settings.home}
        if settings.artifact_store == "files":  # else they count in the database's size
            directories["artifacts"] = settings.artifact_dir
        directories["backups"] = settings.backup_dir
        if settings.backup_mirror_dir is not None:
            directories["backup_mirror"] = settings.backup_mirror_dir
        policy = StoragePolicy(settings.disk_alert_free_percent, settings.disk_alert_free_bytes)
        return Storage(directories, self.engine, policy)

    @cached_property
    def alert_deliveries(self) -> Deliveries:
        settings = self.settings
        webhook = None
        if settings.alert_webhook_url:
            secret = settings.alert_webhook_secret.encode() or None
            webhook = Webhook(
                settings.alert_webhook_url, secret, settings.alert_webhook_timeout_seconds
            )
        backoff = Backoff(settings.alert_delivery_attempts, settings.alert_delivery_backoff_seconds)
        return Deliveries(self, webhook, backoff)

    @cached_property
    def audit_writer(self) -> AuditWriter:
        """Group commit of this process's request records (predictions, refusals)."""
        return AuditWriter(self.sessions, self.audit)

    @cached_property
    def predictor(self) -> Predictor:
        limits = Limits(
            max_rows=self.settings.max_rows,
            cache_size=self.settings.model_cache_size,
            alias_ttl_seconds=self.settings.alias_refresh_seconds,
        )
        return Predictor(
            self.sessions,
            self.registry,
            self.audit_writer,
            limits,
            classify,
            self.rollout_traffic,
            Budgets(self.sessions),
        )

    @cached_property
    def rollout_changes(self) -> Broadcast:
        """Every worker learns of a rollout started, promoted or aborted at once."""
        settings = self.settings
        return Broadcast(
            settings.home / "rollout-changes", settings.database_url, "cofre_rollout_changed"
        )

    @cached_property
    def rollouts(self) -> Rollouts:
        return Rollouts(self.registry, self.audit, self.rollout_changes, self.alerts)

    @cached_property
    def promotions(self) -> Promotions:
        """Every move of production goes through here (four-eyes when configured)."""
        return Promotions(
            self.registry, self.audit, self.rollouts, self.settings.promotion_approvals
        )

    @cached_property
    def rollout_reports(self) -> RolloutReports:
        return RolloutReports(self.rollouts, self.registry, self.audit, self.feedback, self.alerts)

    @cached_property
    def rollout_traffic(self) -> RolloutTraffic:
        """This worker's routing state, tallies and shadow queue."""
        return RolloutTraffic(
            self.sessions,
            self.rollouts,
            self.rollout_reports,
            self.rollout_changes,
            self.settings.shadow_queue_size,
        )

    @cached_property
    def monitoring(self) -> Monitoring:
        settings = self.settings
        policy = MonitoringPolicy(
            thresholds=Thresholds(
                psi_moderate=settings.monitoring_psi_moderate,
                psi_major=settings.monitoring_psi_major,
                p_value=settings.monitoring_p_value,
            ),
            profile_rows=settings.monitoring_profile_rows,
            step=parse_length(settings.monitoring_step),
        )
        return Monitoring(self.audit, self.registry, policy, labels=self.feedback, tx=self)

    @cached_property
    def extraction(self) -> Extraction:
        """The sweep detector; a suspicious key's rate is lowered through the key's own
        budget when `extraction_throttle_rate` is set."""
        settings = self.settings
        policy = ExtractionPolicy(
            window=parse_length(settings.extraction_window),
            min_rows=settings.extraction_min_rows,
            sweep_share=settings.extraction_sweep_share,
            distance=settings.extraction_distance,
            max_rows=settings.extraction_max_rows,
            throttle_rate=settings.extraction_throttle_rate,
        )
        return Extraction(self.monitoring, self.alerts, policy, throttle=self._throttle_key)

    def _throttle_key(self, session: Session, prefix: str, rate: str) -> None:
        """Lower a key's rate limit, as the appliance (audited as `key.limited`)."""
        self.accounts.limit_key(session, SYSTEM, prefix, rate=parse_limit("rate", rate))

    @property
    def monitoring_window(self) -> timedelta:
        """The window length the job computes, the gauges and pages show by default."""
        return parse_length(self.settings.monitoring_window)

    @cached_property
    def audit_search(self) -> AuditSearch:
        return AuditSearch()

    @cached_property
    def logins(self) -> Logins:
        policy = SessionPolicy(
            idle=timedelta(minutes=self.settings.session_idle_minutes),
            absolute=timedelta(hours=self.settings.session_absolute_hours),
        )
        return Logins(self.accounts, self.audit, policy)

    @cached_property
    def checkpoints(self) -> Checkpoints:
        return Checkpoints(self.audit, self)

    @cached_property
    def subjects(self) -> Subjects:
        return Subjects(self.audit, ErasureJournal(self.settings.key_dir), self)

    @cached_property
    def retention(self) -> Retention:
        return Retention(self.audit, self.settings.retention_days, self.retirements)

    @cached_property
    def decisions(self) -> Decisions:
        return Decisions(self.audit, self.registry)

    @cached_property
    def sealer(self) -> RowSealer:
        return RowSealer(self.keyring)

    @cached_property
    def reviews(self) -> Reviews:
        return Reviews(self.audit, self.decisions, self.sealer, self.settings.review_due_days, self)

    @cached_property
    def feedback(self) -> Feedback:
        return Feedback(self.audit, self.registry, self.sealer, self)

    @cached_property
    def subject_exports(self) -> SubjectExports:
        # Per-row items an export gathers: reviews and ground-truth feedback.
        sources: list[RowSource] = [ReviewSource(self.reviews), FeedbackSource(self.feedback)]
        controller = Controller(self.settings.controller_name, self.settings.controller_contact)
        return SubjectExports(self.audit, self.audit_search, sources, controller)

    @contextmanager
    def write(self) -> Iterator[Session]:
        """A transaction that commits when the block succeeds."""
        with write_transaction(self.sessions) as session:
            yield session

    @contextmanager
    def read(self) -> Iterator[Session]:
        with read_session(self.sessions) as session:
            yield session

    def after_fork(self) -> None:
        """Gunicorn post_fork: forget connections inherited from the parent, then build
        the shared services once, before request threads race to build them."""
        if "engine" in self.__dict__:
            self.engine.dispose(close=False)
        _ = (self.sessions, self.accounts, self.audit_writer, self.predictor)

    def close(self) -> None:
        if "revocations" in self.__dict__:
            self.revocations.close()
        if "rollout_traffic" in self.__dict__:
            self.rollout_traffic.close()
        if "rollout_changes" in self.__dict__:
            self.rollout_changes.close()
        if "engine" in self.__dict__:
            self.engine.dispose()
