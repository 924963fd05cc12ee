"""Every ORM class in one import, so metadata (Alembic, tests) sees all tables."""

from governance.accounts.records import ApiKey, KeyUsage, LoginFailure, LoginSession, User
from governance.audit.records import AuditCheckpoint, AuditDataKey, AuditHead, AuditRecord
from governance.monitoring.records import (
    Alert,
    AlertDelivery,
    AlertRule,
    FeedbackLabel,
    MonitoringRollup,
    ReferenceProfile,
)
from governance.operations.records import JobRun
from governance.provenance.records import TrustedSigner, VersionOrigin, VersionSignature
from governance.registry.records import (
    Alias,
    AliasHistory,
    Compilation,
    ModelVersion,
    RegisteredModel,
)
from governance.retraining.records import RetrainingPlan, RetrainingRun
from governance.rollouts.records import PromotionRequest, Rollout, RolloutTally
from governance.subjects.records import DecisionReview, SubjectHold

__all__ = [
    "Alert",
    "AlertDelivery",
    "AlertRule",
    "Alias",
    "AliasHistory",
    "ApiKey",
    "AuditCheckpoint",
    "AuditDataKey",
    "AuditHead",
    "AuditRecord",
    "Compilation",
    "DecisionReview",
    "FeedbackLabel",
    "JobRun",
    "KeyUsage",
    "LoginFailure",
    "LoginSession",
    "ModelVersion",
    "MonitoringRollup",
    "PromotionRequest",
    "ReferenceProfile",
    "RegisteredModel",
    "RetrainingPlan",
    "RetrainingRun",
    "Rollout",
    "RolloutTally",
    "SubjectHold",
    "TrustedSigner",
    "User",
    "VersionOrigin",
    "VersionSignature",
]
