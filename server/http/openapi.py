"""GET /openapi.json: the whole HTTP API as OpenAPI 3.1.

Paths, methods, parameters and required permissions come from the app's own
URL map and route declarations, so no route can be left out; request and
response bodies of the main operations are described in BODIES below, and a
test fails if BODIES names an operation the app no longer has.
"""

from __future__ import annotations

import re
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from flask import Blueprint, Flask, current_app, jsonify
from flask.typing import ResponseReturnValue

from governance.accounts.roles import Role
from server.security.access import PUBLIC, declared_permission, public

blueprint = Blueprint("openapi", __name__)
ADMIN_PREFIX = "/admin"
_CONVERTER = re.compile(r"<(?:(\w+)(?:\([^)]*\))?:)?(\w+)>")

_ROWS = {"type": "array", "items": {"oneOf": [{"type": "object"}, {"type": "array"}]}}
_SPLIT = {
    "type": "object",
    "required": ["columns", "data"],
    "properties": {
        "columns": {"type": "array", "items": {"type": "string"}},
        "data": {"type": "array", "items": {"type": "array"}},
    },
}
# A key's query budget and output precision (governance/accounts/budgets.py).
_LIMIT = {"type": ["integer", "null"], "minimum": 1, "maximum": 2147483647}
_KEY_LIMITS: dict[str, Any] = {
    "rate": _LIMIT | {"description": "requests per second; null: no limit"},
    "rows_per_day": _LIMIT | {"description": "rows scored per UTC day; null: no limit"},
    "precision": {
        "type": ["integer", "null"],
        "minimum": 0,
        "maximum": 15,
        "description": "decimals of the probabilities returned; null: full precision",
    },
}
SCHEMAS: dict[str, Any] = {
    "Problem": {
        "type": "object",
        "required": ["type", "title", "status", "detail"],
        "properties": {
            "type": {"type": "string"},
            "title": {"type": "string"},
            "status": {"type": "integer"},
            "detail": {"type": "string"},
            "request_id": {"type": "string"},
            "errors": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "field": {"type": "string"},
                        "message": {"type": "string"},
                        "row": {"type": "integer"},
                    },
                },
            },
        },
    },
    "PredictRequest": {
        "type": "object",
        "properties": {
            "instances": _ROWS,
            "dataframe_split": _SPLIT,
            "subject_ids": {"type": "array", "items": {"type": ["string", "null"]}},
            "purpose": {"type": "string", "maxLength": 256},
        },
    },
    "PredictResponse": {
        "type": "object",
        "required": ["request_id", "name", "version", "sha256", "predictions"],
        "properties": {
            "request_id": {"type": "string"},
            "name": {"type": "string"},
            "version": {"type": "integer"},
            "sha256": {"type": "string"},
            "runtime": {"type": "string", "enum": ["onnx", "sklearn"]},
            "predictions": {"type": "array"},
            "classes": {"type": "array"},
            "probabilities": {"type": "array", "items": {"type": "array"}},
            "rollout": {
                "type": "object",
                "description": "during a staged rollout: which variant answered and why",
                "properties": {
                    "rollout": {"type": "integer"},
                    "variant": {"enum": ["champion", "candidate"]},
                    "reason": {
                        "enum": [
                            "subject-hash",
                            "request-hash",
                            "shadow",
                            "blue-green",
                            "warming",
                            "candidate-failed",
                        ]
                    },
                    "candidate_error": {"type": "string"},
                },
            },
        },
    },
    "MlflowRequest": {
        "type": "object",
        "properties": {
            "dataframe_split": _SPLIT,
            "dataframe_records": _ROWS,
            "instances": _ROWS,
            "inputs": {"oneOf": [_ROWS, {"type": "object"}]},
        },
    },
    "MlflowResponse": {
        "type": "object",
        "required": ["predictions"],
        "properties": {"predictions": {"type": "array"}},
    },
    "InferRequest": {
        "type": "object",
        "required": ["inputs"],
        "properties": {
            "id": {"type": "string"},
            "parameters": {"type": "object"},
            "inputs": {"type": "array", "items": {"$ref": "#/components/schemas/Tensor"}},
            "outputs": {"type": "array", "items": {"type": "object"}},
        },
    },
    "InferResponse": {
        "type": "object",
        "required": ["model_name", "outputs"],
        "properties": {
            "model_name": {"type": "string"},
            "model_version": {"type": "string"},
            "id": {"type": "string"},
            "parameters": {"type": "object"},
            "outputs": {"type": "array", "items": {"$ref": "#/components/schemas/Tensor"}},
        },
    },
    "Tensor": {
        "type": "object",
        "required": ["name", "shape", "datatype"],
        "properties": {
            "name": {"type": "string"},
            "shape": {"type": "array", "items": {"type": "integer"}},
            "datatype": {"type": "string"},
            "data": {"type": "array"},
            "parameters": {"type": "object"},
        },
    },
}
_STRING = {"type": "string"}
_SUBJECT_ID = {"type": "string", "minLength": 1, "maxLength": 128, "pattern": "\\S"}
_REASON = {"type": "string", "minLength": 1, "maxLength": 500, "pattern": "\\S"}
_NULLABLE_STRING = {"type": ["string", "null"]}
_REVIEW = {
    "type": "object",
    "required": ["id", "status", "request_id", "row", "model", "version", "due_at"],
    "properties": {
        "id": {"type": "integer"},
        "status": {"enum": ["open", "decided"]},
        "request_id": _STRING,
        "row": {"type": "integer"},
        "prediction_seq": {"type": "integer"},
        "model": _STRING,
        "version": {"type": "integer"},
        "sha256": _STRING,
        "subject": _NULLABLE_STRING,
        "opened_by": _STRING,
        "opened_at": _STRING,
        "due_at": _STRING,
        "age_days": {"type": "integer"},
        "overdue": {"type": "boolean"},
        "reason": _NULLABLE_STRING,
        "decided_by": _NULLABLE_STRING,
        "decided_at": _NULLABLE_STRING,
        "outcome": {"enum": ["upheld", "overturned", None]},
        "decision_reason": _NULLABLE_STRING,
        "corrected_output": {},
        "erased": {"type": "boolean"},
    },
}
_HOLD = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "subject": _STRING,
        "reason": _STRING,
        "placed_by": _STRING,
        "placed_at": _STRING,
        "released_by": _NULLABLE_STRING,
        "released_at": _NULLABLE_STRING,
    },
}
SCHEMAS |= {
    "SubjectRequest": {
        "type": "object",
        "required": ["subject_id"],
        "additionalProperties": False,
        "properties": {"subject_id": _SUBJECT_ID},
    },
    "SubjectExportRequest": {
        "type": "object",
        "required": ["subject_id"],
        "additionalProperties": False,
        "properties": {"subject_id": _SUBJECT_ID, "format": {"enum": ["json", "csv"]}},
    },
    "SubjectReasonRequest": {
        "type": "object",
        "required": ["subject_id", "reason"],
        "additionalProperties": False,
        "properties": {"subject_id": _SUBJECT_ID, "reason": _REASON},
    },
    "SubjectExport": {
        "type": "object",
        "required": ["format", "subject", "processing", "decisions"],
        "properties": {
            "format": {"const": "cofre-subject-export-1"},
            "generated_at": _STRING,
            "subject": {"type": "object"},
            "controller": {"type": "object"},
            "processing": {"type": "array", "items": {"type": "object"}},
            "decisions": {"type": "array", "items": {"type": "object"}},
            "legal_holds": {"type": "array", "items": {"type": "object"}},
            "requests": {"type": "array", "items": {"type": "object"}},
        },
    },
    "Erasure": {
        "type": "object",
        "required": ["subject", "keys_destroyed", "already_erased", "seq"],
        "properties": {
            "subject": _STRING,
            "keys_destroyed": {"type": "integer"},
            "already_erased": {"type": "boolean"},
            "seq": {"type": "integer"},
            "at": _STRING,
        },
    },
    "Hold": _HOLD,
    "SubjectStatus": {
        "type": "object",
        "properties": {
            "subject": _STRING,
            "known": {"type": "boolean"},
            "held": {"type": "boolean"},
            "live_keys": {"type": "integer"},
            "destroyed_keys": {"type": "integer"},
            "holds": {"type": "array", "items": _HOLD},
            "events": {"type": "array", "items": {"type": "object"}},
        },
    },
    "RetentionPlan": {
        "type": "object",
        "properties": {
            "at": _STRING,
            "dry_run": {"type": "boolean"},
            "due": {"type": "integer"},
            "shredded": {"type": "integer"},
            "versions": {"type": "array", "items": {"type": "object"}},
            "artifacts": {
                "type": "array",
                "items": _STRING,
                "description": "retired versions (NAME:V) whose artifact key is (or would "
                "be) shredded, their retention after retirement passed",
            },
        },
    },
    "ReviewRequest": {
        "type": "object",
        "required": ["row", "reason"],
        "additionalProperties": False,
        "properties": {
            "row": {"type": "integer", "minimum": 0, "maximum": 2147483647},
            "reason": {"type": "string", "minLength": 1, "maxLength": 2000, "pattern": "\\S"},
        },
    },
    # A corrected output goes only with an overturned decision.
    "ReviewDecisionRequest": {
        "oneOf": [
            {
                "type": "object",
                "required": ["outcome", "reason"],
                "additionalProperties": False,
                "properties": {
                    "outcome": {"const": "upheld"},
                    "reason": {
                        "type": "string",
                        "minLength": 1,
                        "maxLength": 2000,
                        "pattern": "\\S",
                    },
                },
            },
            {
                "type": "object",
                "required": ["outcome", "reason"],
                "additionalProperties": False,
                "properties": {
                    "outcome": {"const": "overturned"},
                    "reason": {
                        "type": "string",
                        "minLength": 1,
                        "maxLength": 2000,
                        "pattern": "\\S",
                    },
                    "corrected_output": {},
                },
            },
        ]
    },
    "Review": _REVIEW,
    "ReviewList": {
        "type": "object",
        "properties": {"reviews": {"type": "array", "items": _REVIEW}},
    },
    "Explanation": {
        "type": "object",
        "required": ["method", "output", "base_value", "contributions"],
        "properties": {
            "request_id": _STRING,
            "row": {"type": "integer"},
            "model": _STRING,
            "version": {"type": "integer"},
            "sha256": _STRING,
            "decided_at": _STRING,
            "input": {"type": "object"},
            "recorded_output": {},
            "method": _STRING,
            "output": {"type": "number"},
            "output_space": _STRING,
            "target": {},
            "base_value": {"type": "number"},
            "contributions": {"type": "object", "additionalProperties": {"type": "number"}},
            "baseline": _STRING,
        },
    },
    "RecordOfProcessing": {
        "type": "object",
        "properties": {
            "format": {"const": "cofre-ropa-1"},
            "generated_at": _STRING,
            "controller": {"type": "object"},
            "activities": {"type": "array", "items": {"type": "object"}},
            "security_measures": {"type": "object"},
        },
    },
    "PublishForm": {
        "type": "object",
        "required": ["file", "purpose", "legal_basis"],
        "properties": {
            "file": {"type": "string", "contentMediaType": "application/octet-stream"},
            "purpose": _STRING,
            "legal_basis": _STRING,
            "description": _STRING,
            "decision_mode": {"enum": ["automated", "human-reviewed"]},
            "owner": _STRING,
            "retention_days": _STRING,
            "recipients": _STRING,
            "features": {"type": "string", "description": "JSON list of {name, dtype}"},
            "allow_missing": _STRING,
            "alias": {"type": "array", "items": _STRING},
            "reference_data": {
                "type": "string",
                "contentMediaType": "application/octet-stream",
                "description": "CSV (.csv) or Parquet (.parquet) of the features and "
                "optionally the target: the baseline of drift",
            },
            "reference_target": {
                "type": "string",
                "description": "the reference data's target column (default: target)",
            },
        },
    },
    "MonitoringReport": {
        "type": "object",
        "description": "A version's latest stored monitoring report over windows of the "
        "asked length: drift per feature and of the output (__output__) against the "
        "reference profile (PSI, KS or chi-squared with p-value, Wasserstein), data "
        "quality, performance and fairness where feedback exists, and traffic.",
        "required": ["model", "version", "window", "drift", "quality", "traffic"],
        "properties": {
            "model": _STRING,
            "version": {"type": "integer"},
            "window": {
                "type": "object",
                "properties": {"start": _STRING, "end": _STRING, "length": _STRING},
            },
            "computed_at": {"type": ["string", "null"]},
            "profile": {
                "type": ["object", "null"],
                "properties": {"source": {"enum": ["reference", "served"]}, "rows": {}},
            },
            "drifting": {"type": "array", "items": _STRING},
            "drift": {"type": "object", "additionalProperties": {"type": "object"}},
            "quality": {"type": "object", "additionalProperties": {"type": "object"}},
            "performance": {"type": "object"},
            "fairness": {"type": "object"},
            "traffic": {"type": "object"},
            "thresholds": {"type": "object"},
        },
    },
}
_NUMBER = {"type": "number"}
_ALERT_RULE = {
    "type": "object",
    "required": ["id", "ref", "source", "kind", "method", "threshold", "windows"],
    "properties": {
        "id": {"type": ["integer", "null"]},
        "ref": {"type": "string", "description": "the id, or default-N for a configured default"},
        "source": {"enum": ["model", "config"]},
        "kind": {"enum": ["drift", "performance", "missing", "error_rate"]},
        "method": _STRING,
        "feature": _NULLABLE_STRING,
        "threshold": _NUMBER,
        "windows": {"type": "integer", "minimum": 1},
        "description": _STRING,
    },
}
_FIGURE = {
    "type": "object",
    "properties": {
        "feature": _STRING,
        "window_start": _STRING,
        "window_end": _STRING,
        "value": {"type": ["number", "null"]},
        "rows": {"type": "integer"},
    },
}
_EVIDENCE = {
    "type": "object",
    "description": "the rollup figures that made the rule hold (or stop holding)",
    "properties": {
        "rule": _STRING,
        "threshold": _NUMBER,
        "windows": {"type": "array", "items": {"type": "object"}},
        "breaching": {"type": "array", "items": _STRING},
        "figures": {"type": "array", "items": _FIGURE},
        "reason": _STRING,
    },
}
_ALERT = {
    "type": "object",
    "required": ["id", "model", "version", "state", "kind", "rule", "fired_at", "evidence"],
    "properties": {
        "id": {"type": "integer"},
        "model": _STRING,
        "version": {"type": "integer"},
        "state": {"enum": ["firing", "resolved"]},
        "kind": _STRING,
        "rule": _ALERT_RULE,
        "fired_at": _STRING,
        "resolved_at": _NULLABLE_STRING,
        "evidence": _EVIDENCE,
        "resolution": {"oneOf": [_EVIDENCE, {"type": "null"}]},
        "deliveries": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "id": {"type": "integer"},
                    "transition": {"enum": ["firing", "resolved"]},
                    "channel": {"enum": ["webhook", "retrain"]},
                    "plan": {"type": ["integer", "null"]},
                    "status": {"enum": ["pending", "delivered", "failed"]},
                    "attempts": {"type": "integer"},
                    "next_attempt_at": _NULLABLE_STRING,
                    "last_error": _NULLABLE_STRING,
                    "history": {"type": "array", "items": {"type": "object"}},
                },
            },
        },
    },
}
SCHEMAS |= {
    "AlertRule": _ALERT_RULE,
    "AlertRuleRequest": {
        "type": "object",
        "required": ["kind", "threshold"],
        "additionalProperties": False,
        "properties": {
            "kind": {"enum": ["drift", "performance", "missing", "error_rate"]},
            "method": {
                "type": ["string", "null"],
                "description": "drift: psi, ks, chi2, wasserstein; performance: the metric",
            },
            "threshold": {
                "type": "number",
                "minimum": 0,
                "description": "fires above it (below it for scores such as accuracy)",
            },
            "windows": {"type": "integer", "minimum": 1, "maximum": 50, "default": 1},
            "feature": {"type": ["string", "null"], "description": "default: any feature"},
        },
    },
    "AlertRuleList": {
        "type": "object",
        "properties": {"model": _STRING, "rules": {"type": "array", "items": _ALERT_RULE}},
    },
    "AlertRuleRemoved": {"type": "object", "properties": {"removed": _ALERT_RULE}},
    "Alert": _ALERT,
    "AlertList": {
        "type": "object",
        "properties": {"alerts": {"type": "array", "items": _ALERT}},
    },
    "RetrainingPlanUpdate": {
        "type": "object",
        "required": ["on_alert"],
        "additionalProperties": False,
        "properties": {"on_alert": {"enum": ["drift", "performance", None]}},
    },
}
_LABEL = {
    "description": "a class of the version that answered (or its text form), "
    "or for a regressor a finite number",
    "type": ["string", "number", "integer", "boolean"],
}
_GROUP = {"type": ["string", "null"], "minLength": 1, "maxLength": 64}
SCHEMAS |= {
    "FeedbackRequest": {
        "description": "Either one label per row of the prediction, in row order "
        "(`ground_truth`, with optional `groups` beside it), or labels of some rows "
        "(`rows`). A row labelled again is a correction: the newest label counts.",
        "oneOf": [
            {
                "type": "object",
                "required": ["ground_truth"],
                "additionalProperties": False,
                "properties": {
                    "ground_truth": {"type": "array", "items": _LABEL},
                    "groups": {"type": "array", "items": _GROUP},
                },
            },
            {
                "type": "object",
                "required": ["rows"],
                "additionalProperties": False,
                "properties": {
                    "rows": {
                        "type": "array",
                        "minItems": 1,
                        "items": {
                            "type": "object",
                            "required": ["row", "ground_truth"],
                            "additionalProperties": False,
                            "properties": {
                                "row": {"type": "integer", "minimum": 0},
                                "ground_truth": _LABEL,
                                "group": _GROUP,
                            },
                        },
                    }
                },
            },
        ],
    },
    "FeedbackRecorded": {
        "type": "object",
        "required": ["request_id", "model", "version", "recorded", "rows", "seq"],
        "properties": {
            "request_id": _STRING,
            "model": _STRING,
            "version": {"type": "integer"},
            "recorded": {"type": "integer"},
            "rows": {"type": "array", "items": {"type": "integer"}},
            "corrections": {
                "description": "the rows whose earlier label this one supersedes",
                "type": "array",
                "items": {"type": "integer"},
            },
            "recorded_at": _STRING,
            "seq": {"type": "integer", "description": "the audit record of this feedback"},
        },
    },
}
_ROLE = {"enum": [r.value for r in Role]}
_NAME = {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"}
_WORDS = {"type": "string", "minLength": 1, "maxLength": 2000, "pattern": "\\S"}
_TEXT = {"type": "string", "minLength": 1}
_CHECKPOINT_PROPERTIES = {
    "format": {"const": "cofre-checkpoint-1"},
    "seq": {"type": "integer", "minimum": 0},
    "hash": _TEXT,
    "at": _TEXT,
    "public_key": _TEXT,
    "signature": _TEXT,
}
SCHEMAS |= {
    "UserRequest": {
        "type": "object",
        "required": ["username", "role", "password"],
        "additionalProperties": False,
        "properties": {
            "username": {"type": "string", "pattern": "^[a-zA-Z0-9][a-zA-Z0-9._@-]{0,63}$"},
            "role": _ROLE,
            "password": {"type": "string", "minLength": 12},
        },
    },
    "RoleRequest": {
        "type": "object",
        "required": ["role"],
        "additionalProperties": False,
        "properties": {"role": _ROLE},
    },
    "KeyRequest": {
        "type": "object",
        "required": ["name", "role"],
        "additionalProperties": False,
        "properties": {
            "name": {"type": "string", "maxLength": 64, "pattern": "^[ -~]*[!-~][ -~]*$"},
            "role": _ROLE,
            "models": {"type": ["array", "null"], "items": _STRING},
            "labels_only": {"type": "boolean"},
        }
        | _KEY_LIMITS,
    },
    "KeyLimits": {
        "type": "object",
        "additionalProperties": False,
        "description": "a field left out stays as it is; null lifts the limit",
        "properties": _KEY_LIMITS,
    },
    "DeprecationRequest": {
        "type": "object",
        "required": ["sunset", "reason"],
        "additionalProperties": False,
        "properties": {
            "sunset": {
                "type": "string",
                "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}",
                "description": "a future date (YYYY-MM-DD, midnight UTC) or ISO 8601 time",
            },
            "reason": {"type": "string", "minLength": 1, "maxLength": 1000, "pattern": "\\S"},
        },
    },
    "Retirement": {
        "type": "object",
        "description": "A version's way out of serving: deprecated (serving until the "
        "sunset), retired (410 at once), its artifact's key shredded after the card's "
        "retention; successor is the version its callers should move to.",
        "required": ["deprecated_at", "sunset", "retired_at", "shredded_at", "successor"],
        "properties": {
            "deprecated_at": _NULLABLE_STRING,
            "deprecated_by": _NULLABLE_STRING,
            "sunset": _NULLABLE_STRING,
            "reason": _STRING,
            "retired_at": _NULLABLE_STRING,
            "retired_by": _NULLABLE_STRING,
            "shred_after": _NULLABLE_STRING,
            "shredded_at": _NULLABLE_STRING,
            "successor": {"type": ["integer", "null"]},
        },
    },
    "LifecycleHistory": {
        "type": "object",
        "required": ["history"],
        "properties": {
            "history": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["at", "version", "action", "actor"],
                    "properties": {
                        "at": _STRING,
                        "version": {"type": "integer"},
                        "action": _STRING,
                        "actor": _STRING,
                        "details": {"type": "object"},
                    },
                },
            }
        },
    },
    "VersionCallers": {
        "type": "object",
        "required": ["callers"],
        "properties": {
            "callers": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["actor_type", "actor_id", "name", "requests", "last_seen"],
                    "properties": {
                        "actor_type": _STRING,
                        "actor_id": _STRING,
                        "name": _STRING,
                        "prefix": _NULLABLE_STRING,
                        "requests": {"type": "integer"},
                        "last_seen": _STRING,
                    },
                },
            }
        },
    },
    "AliasRequest": {
        "type": "object",
        "required": ["version"],
        "additionalProperties": False,
        "properties": {"version": {"type": "integer", "minimum": 1, "maximum": 2147483647}},
    },
    "PlanRequest": {
        "type": "object",
        "required": ["model", "source_kind", "source", "target", "schedule", "metric"],
        "additionalProperties": False,
        "properties": {
            "model": _NAME,
            "source_kind": {"enum": ["file", "sql"]},
            "source": {"type": "string", "minLength": 1},
            "target": {"type": "string", "minLength": 1},
            "schedule": {"type": "string", "minLength": 1},
            "metric": {"enum": ["roc_auc", "f1", "accuracy", "rmse", "mae", "r2"]},
            "min_improvement": {"type": "number"},
            "holdout": {"type": "number"},
            "profile_source": {"type": "string"},
            "on_alert": {"enum": ["drift", "performance", None]},
        },
    },
    "PublishForm": {
        "type": "object",
        "required": ["file"],
        "properties": {
            "file": {"type": "string", "format": "binary"},
            "purpose": _STRING,
            "legal_basis": _STRING,
            "description": _STRING,
            "decision_mode": _STRING,
            "owner": _STRING,
            "retention_days": _STRING,
            "recipients": _STRING,
            "features": {"type": "string", "description": "a JSON list of {name, dtype}"},
            "allow_missing": _STRING,
            "alias": _STRING,
            "note": {"type": "string", "description": "what changed and why (changelog)"},
        },
    },
    "Checkpoint": {
        "type": "object",
        "required": list(_CHECKPOINT_PROPERTIES),
        "additionalProperties": False,
        "properties": _CHECKPOINT_PROPERTIES,
    },
    "Changelog": {
        "type": "object",
        "description": "What changed between two versions (params_changed is null when "
        "either predates recorded parameters; training_data_changed null when either "
        "training data digest is unknown), with the later version's note.",
        "required": ["from_version", "to_version", "params_changed", "training_data_changed"],
        "properties": {
            "from_version": {"type": "integer"},
            "to_version": {"type": "integer"},
            "params_changed": {
                "type": ["array", "null"],
                "items": {
                    "type": "object",
                    "required": ["name", "from", "to"],
                    "properties": {"name": _STRING, "from": {}, "to": {}},
                },
            },
            "features_added": {"type": "array", "items": _STRING},
            "features_removed": {"type": "array", "items": _STRING},
            "training_data_changed": {"type": ["boolean", "null"]},
            "training_data_sha256": {
                "type": "object",
                "properties": {"from": _NULLABLE_STRING, "to": _NULLABLE_STRING},
            },
            "note": _NULLABLE_STRING,
        },
    },
    "VersionCheck": {
        "type": "object",
        "description": "A version checked again under the running scikit-learn: the "
        "publish checks, and its answers compared with those it gave at publish on its "
        "reference sample (against: sample) or with its proven ONNX model (onnx).",
        "required": ["name", "version", "sklearn_version", "passed", "problems"],
        "properties": {
            "name": _STRING,
            "version": {"type": "integer"},
            "sklearn_version": _STRING,
            "trained_with": _NULLABLE_STRING,
            "passed": {"type": "boolean"},
            "problems": {"type": "array", "items": _STRING},
            "comparison": {"type": "object"},
        },
    },
    "VerifyReport": {
        "type": "object",
        "required": ["ok", "checked"],
        "properties": {
            "ok": {"type": "boolean"},
            "checked": {"type": "integer"},
            "first_seq": {"type": ["integer", "null"]},
            "last_seq": {"type": ["integer", "null"]},
            "bad_seq": {"type": ["integer", "null"]},
            "reason": _NULLABLE_STRING,
            "checkpoint_seq": {"type": ["integer", "null"]},
        },
    },
}
_NUMBER_OR_NULL = {"type": ["number", "null"]}
_VARIANT = {
    "type": "object",
    "properties": {
        "version": {"type": "integer"},
        "requests": {"type": "integer"},
        "errors": {"type": "integer"},
        "error_rate": _NUMBER_OR_NULL,
        "p50_ms": _NUMBER_OR_NULL,
        "p99_ms": _NUMBER_OR_NULL,
        "compared": {"type": "integer", "description": "rows scored by both variants"},
        "agreed": {"type": "integer"},
        "agreement": _NUMBER_OR_NULL,
        "disagreement": _NUMBER_OR_NULL,
        "shadow_dropped": {"type": "integer"},
        "drift": _NUMBER_OR_NULL,
    },
}
SCHEMAS |= {
    "RolloutStart": {
        "type": "object",
        "required": ["candidate", "strategy"],
        "additionalProperties": False,
        "properties": {
            "candidate": {
                "type": "integer",
                "minimum": 1,
                "maximum": 2147483647,
                "description": "the version to roll out",
            },
            "strategy": {"enum": ["canary", "ab", "shadow", "blue-green"]},
            "percent": {
                "type": "number",
                "exclusiveMinimum": 0,
                "exclusiveMaximum": 100,
                "description": "canary/ab: share of traffic the candidate answers",
            },
            "sticky": {"enum": ["subject", "request"], "default": "subject"},
            "guardrails": {
                "type": "array",
                "items": {
                    "type": "string",
                    "pattern": "^(error_rate|p99_ms|disagreement|drift)<[0-9]+(\\.[0-9]+)?$",
                    "examples": ["error_rate<0.05", "p99_ms<300"],
                },
                "description": "METRIC<LIMIT; error_rate, p99_ms, disagreement, drift",
            },
            "min_requests": {"type": "integer", "minimum": 1, "default": 50},
            "alpha": {
                "type": "number",
                "exclusiveMinimum": 0,
                "exclusiveMaximum": 1,
                "default": 0.05,
            },
            "power": {
                "type": "number",
                "exclusiveMinimum": 0,
                "exclusiveMaximum": 1,
                "default": 0.8,
            },
            "horizon": {
                "type": "integer",
                "minimum": 1,
                "default": 1000,
                "description": "ab: labelled rows per variant at which the test ends",
            },
            "looks": {
                "type": "integer",
                "minimum": 1,
                "default": 5,
                "description": "ab: planned interim analyses, each at alpha/looks",
            },
        },
    },
    "RolloutAbort": {
        "type": "object",
        "required": ["reason"],
        "properties": {"reason": {"type": "string", "minLength": 1, "maxLength": 1000}},
    },
    "Rollout": {
        "type": "object",
        "required": ["id", "model", "status", "strategy", "champion", "candidate"],
        "properties": {
            "id": {"type": "integer"},
            "model": _STRING,
            "status": {"enum": ["running", "promoted", "aborted"]},
            "strategy": {"enum": ["canary", "ab", "shadow", "blue-green"]},
            "champion": {"type": "integer"},
            "candidate": {"type": "integer"},
            "percent": {"type": "number"},
            "sticky": {"enum": ["subject", "request"]},
            "guardrails": {"type": "array", "items": _STRING},
            "plan": {"type": "object"},
            "started_by": _STRING,
            "started_at": _STRING,
            "ended_by": _NULLABLE_STRING,
            "ended_at": _NULLABLE_STRING,
            "end_reason": _NULLABLE_STRING,
            "decision": {"type": ["object", "null"]},
        },
    },
}
SCHEMAS["Promotion"] = {
    "type": "object",
    "required": ["id", "model", "version", "alias", "status", "requested_by"],
    "properties": {
        "id": {"type": "integer"},
        "model": _STRING,
        "version": {"type": "integer"},
        "alias": _STRING,
        "rollout": {"type": ["integer", "null"]},
        "status": {"enum": ["pending", "approved", "rejected"]},
        "requested_by": _STRING,
        "requested_at": _STRING,
        "decided_by": _NULLABLE_STRING,
        "decided_at": _NULLABLE_STRING,
        "reason": _NULLABLE_STRING,
    },
}
SCHEMAS["RolloutStatus"] = {
    "allOf": [
        {"$ref": "#/components/schemas/Rollout"},
        {
            "type": "object",
            "properties": {
                "variants": {
                    "type": "object",
                    "properties": {"champion": _VARIANT, "candidate": _VARIANT},
                },
                "comparison": {
                    "type": "object",
                    "description": "ground truth: each variant's primary metric (accuracy "
                    "or mae) with its confidence interval, the test (two-proportion-z or "
                    "welch-t), the labelled rows still needed for the configured power, "
                    "and for ab the group-sequential analysis and its decision",
                },
            },
        },
    ]
}
# (method, rule) -> (request schema or content, response schema)
BODIES: dict[tuple[str, str], tuple[dict[str, Any] | None, str | None]] = {
    ("post", "/api/v1/models/<name>/predict"): (
        {"application/json": "PredictRequest"},
        "PredictResponse",
    ),
    ("post", "/api/v1/models/<name>/invocations"): (
        {"application/json": "MlflowRequest", "text/csv": None},
        "MlflowResponse",
    ),
    ("post", "/v2/models/<name>/infer"): (
        {"application/json": "InferRequest"},
        "InferResponse",
    ),
    ("post", "/v2/models/<name>/versions/<model_version>/infer"): (
        {"application/json": "InferRequest"},
        "InferResponse",
    ),
    ("post", "/api/v1/models/<name>/versions"): ({"multipart/form-data": "PublishForm"}, None),
    ("put", "/api/v1/models/<name>/aliases/<alias>"): ({"application/json": "AliasRequest"}, None),
    ("post", "/api/v1/users"): ({"application/json": "UserRequest"}, None),
    ("put", "/api/v1/users/<username>/role"): ({"application/json": "RoleRequest"}, None),
    ("post", "/api/v1/keys"): ({"application/json": "KeyRequest"}, None),
    ("put", "/api/v1/keys/<keyref:key_ref>/limits"): ({"application/json": "KeyLimits"}, None),
    ("post", "/api/v1/operations/retraining/plans"): ({"application/json": "PlanRequest"}, None),
    ("post", "/api/v1/audit/subjects/export"): ({"application/json": "SubjectRequest"}, None),
    ("post", "/api/v1/audit/verify"): ({"application/json": "Checkpoint"}, "VerifyReport"),
    ("get", "/api/v1/models/<name>/diff"): (None, "Changelog"),
    ("post", "/api/v1/models/<name>/versions/<int:version>/verify"): (None, "VersionCheck"),
    ("post", "/api/v1/models/<name>/versions/<int:version>/deprecate"): (
        {"application/json": "DeprecationRequest"},
        "Retirement",
    ),
    ("post", "/api/v1/models/<name>/versions/<int:version>/retire"): (None, "Retirement"),
    ("get", "/api/v1/models/<name>/lifecycle"): (None, "LifecycleHistory"),
    ("get", "/api/v1/models/<name>/versions/<int:version>/callers"): (None, "VersionCallers"),
    ("post", "/api/v1/audit/checkpoints"): (None, "Checkpoint"),
    ("post", "/api/v1/subjects/export"): (
        {"application/json": "SubjectExportRequest"},
        "SubjectExport",
    ),
    ("post", "/api/v1/subjects/erasure"): ({"application/json": "SubjectReasonRequest"}, "Erasure"),
    ("post", "/api/v1/subjects/status"): ({"application/json": "SubjectRequest"}, "SubjectStatus"),
    ("post", "/api/v1/subjects/holds"): ({"application/json": "SubjectReasonRequest"}, "Hold"),
    ("post", "/api/v1/subjects/holds/release"): ({"application/json": "SubjectRequest"}, "Hold"),
    ("get", "/api/v1/subjects/retention"): (None, "RetentionPlan"),
    ("post", "/api/v1/predictions/<request_id>/reviews"): (
        {"application/json": "ReviewRequest"},
        "Review",
    ),
    ("get", "/api/v1/predictions/<request_id>/explanation"): (None, "Explanation"),
    ("post", "/api/v1/predictions/<request_id>/feedback"): (
        {"application/json": "FeedbackRequest"},
        "FeedbackRecorded",
    ),
    ("get", "/api/v1/reviews"): (None, "ReviewList"),
    ("get", "/api/v1/reviews/<int:review_id>"): (None, "Review"),
    ("post", "/api/v1/reviews/<int:review_id>/decision"): (
        {"application/json": "ReviewDecisionRequest"},
        "Review",
    ),
    ("get", "/api/v1/compliance/ropa"): (None, "RecordOfProcessing"),
    ("get", "/api/v1/models/<name>/rollout"): (None, "RolloutStatus"),
    ("put", "/api/v1/models/<name>/rollout"): ({"application/json": "RolloutStart"}, "Rollout"),
    ("post", "/api/v1/models/<name>/rollout/promote"): (None, "Rollout"),
    ("post", "/api/v1/promotions/<int:request_id>/approve"): (None, "Promotion"),
    ("post", "/api/v1/promotions/<int:request_id>/reject"): (
        {"application/json": "RolloutAbort"},
        "Promotion",
    ),
    ("post", "/api/v1/models/<name>/rollout/abort"): (
        {"application/json": "RolloutAbort"},
        "Rollout",
    ),
    ("get", "/api/v1/models/<name>/monitoring"): (None, "MonitoringReport"),
    ("get", "/api/v1/alerts"): (None, "AlertList"),
    ("get", "/api/v1/models/<name>/alert-rules"): (None, "AlertRuleList"),
    ("post", "/api/v1/models/<name>/alert-rules"): (
        {"application/json": "AlertRuleRequest"},
        "AlertRule",
    ),
    ("delete", "/api/v1/models/<name>/alert-rules/<rule>"): (None, "AlertRuleRemoved"),
    ("patch", "/api/v1/operations/retraining/plans/<int:plan_id>"): (
        {"application/json": "RetrainingPlanUpdate"},
        None,
    ),
}
# The prediction doors: a key's query budget may refuse them with 429 and Retry-After.
BUDGETED = {
    ("post", "/api/v1/models/<name>/predict"),
    ("post", "/api/v1/models/<name>/invocations"),
    ("post", "/v2/models/<name>/infer"),
    ("post", "/v2/models/<name>/versions/<model_version>/infer"),
}
# (method, rule) of operations answering 201 Created rather than 200
# Bodies a caller may leave out.
OPTIONAL_BODIES = {("post", "/api/v1/audit/verify")}
# (method, rule) -> the status of success, when it is not 200.
CREATED = 201
SUCCESS: dict[tuple[str, str], int] = {
    (method, rule): CREATED
    for method, rule in (
        ("post", "/api/v1/users"),
        ("post", "/api/v1/keys"),
        ("post", "/api/v1/models/<name>/versions"),
        ("post", "/api/v1/audit/checkpoints"),
        ("post", "/api/v1/operations/backups"),
        ("post", "/api/v1/operations/retraining/plans"),
        ("post", "/api/v1/operations/retraining/plans/<int:plan_id>/runs"),
        ("post", "/api/v1/subjects/holds"),
        ("post", "/api/v1/predictions/<request_id>/reviews"),
        ("post", "/api/v1/predictions/<request_id>/feedback"),
        ("post", "/api/v1/models/<name>/alert-rules"),
        ("put", "/api/v1/models/<name>/rollout"),
    )
}
# Answers other than success and problem details: the verification that fails is a 409
# carrying its report.
OTHER_ANSWERS: dict[tuple[str, str], dict[str, str]] = {
    ("post", "/api/v1/audit/verify"): {"409": "VerifyReport"},
    ("post", "/api/v1/models/<name>/versions/<int:version>/verify"): {"409": "VersionCheck"},
}
# Other media types of a success answer.
ALSO_AS: dict[tuple[str, str], list[str]] = {
    ("post", "/api/v1/subjects/export"): ["text/csv"],
}
# Path parameters that are narrower than any string: name -> schema.
PATH_PARAMETERS: dict[str, dict[str, Any]] = {
    "alias": {"type": "string", "pattern": "^[a-z][a-z0-9_-]{0,63}$"},
    "model_version": {"type": "string", "pattern": "^[1-9][0-9]{0,8}$"},
    "key_ref": {"type": "string", "pattern": "^([0-9]{1,9}|[0-9a-f]{8})$"},
    "backup_id": {"type": "string", "pattern": "^[0-9]{8}T[0-9]{6}Z-[0-9a-f]{6}$"},
}
_ID = {"type": "integer", "minimum": 1, "maximum": 2147483647}
# (method, rule) -> the query parameters the server refuses to go without
REQUIRED_QUERIES: dict[tuple[str, str], tuple[str, ...]] = {
    ("get", "/api/v1/models/<name>/diff"): ("from", "to"),
}
# (method, rule) -> query parameters: name -> (schema, description)
QUERIES: dict[tuple[str, str], dict[str, tuple[dict[str, Any], str]]] = {
    ("get", "/api/v1/models/<name>/diff"): {
        "from": (_ID, "the earlier version"),
        "to": (_ID, "the later version"),
    },
    ("get", "/api/v1/predictions/<request_id>/explanation"): {
        "row": (
            {"type": "integer", "minimum": 0, "maximum": 2147483647, "default": 0},
            "the row of the prediction",
        )
    },
    ("get", "/api/v1/reviews"): {
        "status": ({"enum": ["open", "decided"]}, "only reviews in this state")
    },
    ("get", "/api/v1/models/<name>/monitoring"): {
        "version": (
            {"type": "integer", "minimum": 1, "maximum": 2147483647},
            "the version (default: production)",
        ),
        "window": (
            {"type": "string", "pattern": "^[1-9][0-9]{0,3}[mhd]$"},
            "window length, e.g. 1h or 24h (default: the monitoring_window setting)",
        ),
    },
    ("get", "/api/v1/alerts"): {
        "state": ({"enum": ["firing", "resolved"]}, "only alerts in this state"),
        "model": ({"type": "string"}, "only this model's alerts"),
        "limit": ({"type": "integer", "minimum": 1, "maximum": 1000, "default": 100}, "at most"),
    },
}


@blueprint.get("/openapi.json")
@public
def openapi() -> ResponseReturnValue:
    """This document."""
    return jsonify(build_spec(current_app))


def build_spec(app: Flask) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if rule.endpoint == "static" or _is_page(rule.rule):
            continue
        path = _CONVERTER.sub(r"{\2}", rule.rule)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            paths.setdefault(path, {})[method.lower()] = _operation(app, rule, method.lower())
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "cofre",
            "version": _version(),
            "description": "Governed serving of scikit-learn models.",
        },
        "paths": paths,
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {
                "apiKey": {"type": "http", "scheme": "bearer"},
                "session": {"type": "apiKey", "in": "cookie", "name": "cofre_session"},
            },
        },
    }


def _is_page(rule: str) -> bool:
    """Admin pages are HTML for a browser with a session and CSRF, not API operations."""
    return rule == ADMIN_PREFIX or rule.startswith(ADMIN_PREFIX + "/")


def _operation(app: Flask, rule: Any, method: str) -> dict[str, Any]:
    view = app.view_functions[rule.endpoint]
    permission = declared_permission(app, rule.endpoint)
    operation: dict[str, Any] = {
        "operationId": f"{method}:{rule.rule}",
        "summary": ((view.__doc__ or rule.endpoint).strip().splitlines() or [""])[0],
        "parameters": [_parameter(conv, name) for conv, name in _CONVERTER.findall(rule.rule)]
        + [
            {
                "name": name,
                "in": "query",
                "required": name in REQUIRED_QUERIES.get((method, rule.rule), ()),
                "schema": schema,
                "description": text,
            }
            for name, (schema, text) in QUERIES.get((method, rule.rule), {}).items()
        ],
        "responses": _responses(rule.rule, method),
        "x-cofre-permission": permission,
    }
    if permission != PUBLIC:
        operation["security"] = [{"apiKey": []}, {"session": []}]
    request_body = BODIES.get((method, rule.rule), (None, None))[0]
    if request_body:
        operation["requestBody"] = {
            "required": (method, rule.rule) not in OPTIONAL_BODIES,
            "content": {
                media: {"schema": {"$ref": f"#/components/schemas/{name}"}} if name else {}
                for media, name in request_body.items()
            },
        }
    return operation


def _parameter(converter: str, name: str) -> dict[str, Any]:
    if converter == "seq":
        schema: dict[str, Any] = {"type": "integer", "minimum": 1}
    else:
        schema = _ID if converter == "int" else PATH_PARAMETERS.get(name, {"type": "string"})
    return {"name": name, "in": "path", "required": True, "schema": schema}


# The prediction doors: a deprecated version's answers say so in these headers.
DOORS = {
    ("post", "/api/v1/models/<name>/predict"),
    ("post", "/api/v1/models/<name>/invocations"),
    ("post", "/v2/models/<name>/infer"),
    ("post", "/v2/models/<name>/versions/<model_version>/infer"),
}
DEPRECATION_HEADERS = {
    "Deprecation": {
        "description": "the answering version is deprecated: when, as @<Unix seconds> "
        "(RFC 9745); from its sunset on it answers 410 naming its successor",
        "schema": {"type": "string", "pattern": "^@[0-9]+$"},
    },
    "Sunset": {
        "description": "when the deprecated version stops answering, an HTTP-date (RFC 8594)",
        "schema": {"type": "string"},
    },
}


def _responses(rule: str, method: str) -> dict[str, Any]:
    answer = BODIES.get((method, rule), (None, None))[1]
    ok: dict[str, Any] = {"description": "Success"}
    if (method, rule) in DOORS:
        ok["headers"] = DEPRECATION_HEADERS
    if answer:
        ok["content"] = {"application/json": {"schema": {"$ref": f"#/components/schemas/{answer}"}}}
        ok["content"] |= {media: {} for media in ALSO_AS.get((method, rule), [])}
    problem = {
        "description": "Problem details (RFC 9457)",
        "content": {
            "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
        },
    }
    responses = {str(SUCCESS.get((method, rule), 200)): ok}
    for status, name in OTHER_ANSWERS.get((method, rule), {}).items():
        body = {"application/json": {"schema": {"$ref": f"#/components/schemas/{name}"}}}
        responses[status] = {"description": "See the body", "content": body}
    if (method, rule) in BUDGETED:
        responses["429"] = problem | {
            "description": "Over the API key's budget (requests per second, rows per day)",
            "headers": {
                "Retry-After": {
                    "description": "seconds until the window that refused frees",
                    "schema": {"type": "integer", "minimum": 1},
                }
            },
        }
    return responses | {"4XX": problem, "5XX": problem}


def _version() -> str:
    try:
        return version("cofre")
    except PackageNotFoundError:
        return "0"
