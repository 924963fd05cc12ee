"""A bounded schemathesis run: every operation of /openapi.json, every check, positive
and negative data, its coverage cases (boundaries, missing parts, methods the
document does not list) and Hypothesis-generated ones, with a predictor key and an
admin key. Zero server errors and zero
disagreements between the document and the server, or this fails.

schemathesis's own pytest integration does not run under this pytest (it reaches
for a node attribute pytest 9 removed), so each operation's Hypothesis strategy
from schemathesis's Python API is driven here, against the WSGI app, and every
failure of every operation is collected before the test fails: one report, not
the first failure only. Generation is derandomised: the same cases every run.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import FailureGroup, positive_data_acceptance
from schemathesis.schemas import BaseSchema

from server.container import Container
from tests.support.publishing import publish

# Generated cases per operation, per generation mode, per credential; with the
# coverage cases, about 5,000 in all.
EXAMPLES = int(os.environ.get("COFRE_FUZZ_EXAMPLES", "12"))
MODES = [GenerationMode.POSITIVE, GenerationMode.NEGATIVE]
# Operations whose valid requests the document cannot tell from refused ones: their
# refusals (422) follow rules no schema holds. Every other check still runs on them.
SEMANTIC = {
    # an artifact must be a skops file that loads with trusted types only
    "POST /api/v1/models/{name}/versions",
    # the source must exist under the data directory, the schedule parse as cron,
    # the metric fit the champion
    "POST /api/v1/operations/retraining/plans",
    # the labels must match the prediction's rows and the answering version's classes
    "POST /api/v1/predictions/{request_id}/feedback",
    # a rule's method must fit its kind (a drift method, a metric)
    "POST /api/v1/models/{name}/alert-rules",
    # the candidate must be another version than the champion, the plan fit its strategy
    "PUT /api/v1/models/{name}/rollout",
    # the sunset must be a date or time in the future
    "POST /api/v1/models/{name}/versions/{version}/deprecate",
}

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@dataclass
class Findings:
    cases: int = 0
    failures: dict[str, list[str]] = field(default_factory=dict)

    def summary(self) -> str:
        return "\n\n".join(
            f"== {label}\n" + "\n".join(text[:1500] for text in found[:2])
            for label, found in self.failures.items()
        )


def _check(
    case: schemathesis.Case, headers: dict[str, str], findings: Findings, label: str
) -> None:
    excluded = [positive_data_acceptance] if case.operation.label in SEMANTIC else []
    findings.cases += 1
    try:
        case.call_and_validate(headers=headers, excluded_checks=excluded)
    except (AssertionError, FailureGroup) as exc:
        findings.failures.setdefault(label, []).append(str(exc))


def _coverage(
    schema: BaseSchema,
    operation: schemathesis.APIOperation,
    headers: dict[str, str],
    findings: Findings,
) -> None:
    config = schema.config.generation_for(operation=operation)
    for case in schema.iter_coverage_cases(
        operation, generation_modes=MODES, generation_config=config
    ):
        _check(case, headers, findings, f"{operation.label} (coverage)")


def _fuzz(
    operation: schemathesis.APIOperation,
    mode: GenerationMode,
    headers: dict[str, str],
    findings: Findings,
) -> None:

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.generate],  # no shrinking: every failure is reported as found
        derandomize=True,
        database=None,
    )
    def one(case: schemathesis.Case) -> None:
        _check(case, headers, findings, f"{operation.label} ({mode.value})")

    try:
        one()
    except Unsatisfiable:  # nothing to make invalid (no parameters, no body)
        assert mode is GenerationMode.NEGATIVE


@pytest.mark.parametrize("role", ["predictor", "admin"])
def test_the_server_keeps_its_document(
    app: Flask, cofre: Container, api_key: Callable[..., dict[str, str]], role: str
) -> None:
    publish(cofre, "iris", aliases=["production"])
    schema = schemathesis.openapi.from_wsgi("/openapi.json", app)
    findings = Findings()
    started = time.monotonic()
    for result in schema.get_all_operations():
        operation = result.ok()
        # A fresh key each time: an admin's cases may revoke the key they carry.
        _coverage(schema, operation, api_key(role), findings)
        for mode in MODES:
            _fuzz(operation, mode, api_key(role), findings)
    print(f"{role}: {findings.cases} cases in {time.monotonic() - started:.0f}s")
    assert findings.cases >= 20 * EXAMPLES  # the run did run
    failed = len(findings.failures)
    assert not failed, f"{failed} operations disagree with the document:\n{findings.summary()}"
