"""The prediction core, called directly (no Flask): every call ends as one audit
record, answered or refused, and the record names what the caller got."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import select

from governance.accounts.actor import ANONYMOUS, Actor
from governance.audit.records import AuditRecord
from governance.errors import (
    CofreError,
    InvalidInput,
    MalformedInput,
    PermissionDenied,
    Unauthenticated,
)
from server.container import Container
from server.inference.predictor import Call, Decoded, ServedVersion, parse_selector
from server.inference.table import Table
from tests.support.publishing import publish

PREDICTOR = Actor(type="key", id="7", role="predictor", name="key:test")
ROW = {
    "sepal length (cm)": 5.1,
    "sepal width (cm)": 3.5,
    "petal length (cm)": 1.4,
    "petal width (cm)": 0.2,
}


@pytest.fixture
def iris(cofre: Container) -> Container:
    publish(cofre, aliases=["production"])
    return cofre


def _call(request_id: str, **extra: Any) -> Call:
    return Call(endpoint="native", model="iris", request_id=request_id, path="/p", **extra)


def _rows(rows: list[Any]) -> Callable[[ServedVersion], Decoded]:
    return lambda served: Decoded(table=Table(rows))


def _records(cofre: Container, request_id: str) -> list[AuditRecord]:
    with cofre.read() as session:
        stmt = select(AuditRecord).where(AuditRecord.request_id == request_id)
        return list(session.scalars(stmt))


def test_an_answer_has_its_record_before_it_is_returned(iris: Container) -> None:
    result = iris.predictor.predict(lambda: PREDICTOR, _call("r-ok"), _rows([ROW]))
    (record,) = _records(iris, "r-ok")
    assert result.predictions == [0] and result.version == 1
    assert (record.outcome, record.status, record.model_version) == ("ok", 200, 1)
    with iris.read() as session:
        assert iris.audit.decrypt_payload(session, record)[0]["input"] == ROW


@pytest.mark.parametrize(
    ("caller", "call", "decode", "error", "outcome", "status", "reason"),
    [
        (ANONYMOUS, {}, [ROW], PermissionDenied, "denied", 403, "forbidden"),
        (PREDICTOR, {"version": "٣"}, [ROW], InvalidInput, "rejected", 422, "invalid-input"),
        (PREDICTOR, {"version": "9" * 11}, [ROW], InvalidInput, "rejected", 422, "invalid-input"),
        (PREDICTOR, {"alias": "nope"}, [ROW], CofreError, "rejected", 404, "not-found"),
        (PREDICTOR, {}, [{"x": 1}], InvalidInput, "rejected", 422, "invalid-input"),
    ],
)
def test_a_refusal_is_recorded_with_what_the_caller_got(
    iris: Container,
    caller: Actor,
    call: dict[str, str],
    decode: list[Any],
    error: type[Exception],
    outcome: str,
    status: int,
    reason: str,
) -> None:
    with pytest.raises(error):
        iris.predictor.predict(lambda: caller, _call("r-no", **call), _rows(decode))
    (record,) = _records(iris, "r-no")
    assert (record.outcome, record.status, record.details["reason"]) == (outcome, status, reason)
    assert record.payload is None  # a refused body is never kept


def test_failures_of_authentication_and_decoding_happen_inside_and_are_audited(
    iris: Container,
) -> None:
    def no_key() -> Actor:
        raise Unauthenticated("no key")

    def broken(served: ServedVersion) -> Decoded:
        raise MalformedInput("not JSON")

    with pytest.raises(Unauthenticated):
        iris.predictor.predict(no_key, _call("r-401"), _rows([ROW]))
    with pytest.raises(MalformedInput):
        iris.predictor.predict(lambda: PREDICTOR, _call("r-400"), broken)
    assert [(r.outcome, r.status) for r in _records(iris, "r-401")] == [("denied", 401)]
    (decoded,) = _records(iris, "r-400")
    # The version had been resolved when the body was refused: the record says which.
    assert (decoded.status, decoded.model_version) == (400, 1)


def test_an_unexpected_error_is_recorded_as_an_error(iris: Container) -> None:
    def crashing(served: ServedVersion) -> Decoded:
        raise RuntimeError("bug")

    with pytest.raises(RuntimeError):
        iris.predictor.predict(lambda: PREDICTOR, _call("r-500"), crashing)
    (record,) = _records(iris, "r-500")
    assert (record.outcome, record.status, record.details["reason"]) == ("error", 500, "internal")


def test_labels_only_keys_cannot_ask_for_probabilities(iris: Container) -> None:
    labels_only = Actor(type="key", id="8", role="predictor", name="k", labels_only=True)

    def asks(served: ServedVersion) -> Decoded:
        return Decoded(table=Table([ROW]), proba_required=True)

    with pytest.raises(PermissionDenied):
        iris.predictor.predict(lambda: labels_only, _call("r-lo"), asks)
    answer = iris.predictor.predict(lambda: labels_only, _call("r-lo2"), _rows([ROW]))
    assert answer.probabilities is None


def test_a_refused_model_name_of_any_length_is_recorded(iris: Container) -> None:
    call = Call(endpoint="native", model="m" * 5000, request_id="r-long", path="/p")
    with pytest.raises(CofreError):
        iris.predictor.predict(lambda: PREDICTOR, call, _rows([ROW]))
    (record,) = _records(iris, "r-long")
    assert record.model_name == "m" * 128 and record.status == 404


@pytest.mark.parametrize("text", ["0", "-1", "1.0", "²", "٣", " 1", "2147483648"])
def test_versions_are_ascii_digits_in_range(text: str) -> None:
    with pytest.raises(InvalidInput):
        parse_selector(None, text)
    assert parse_selector(None, "2147483647") == (None, 2147483647)
    assert parse_selector("staging", None) == ("staging", None)


def test_the_core_answers_from_the_runtime_the_registry_proved(cofre: Container) -> None:
    """A compiled version answers from ONNX Runtime, the same one on scikit-learn by
    choice from the estimator; both answers agree, and each record names its runtime."""
    from governance.accounts.actor import SYSTEM
    from governance.registry.service import PublishRequest
    from tests.support.models import CARD, iris_classifier

    with cofre.write() as session:
        for runtime in ("auto", "sklearn"):
            request = PublishRequest(
                "iris", iris_classifier(), CARD, runtime=runtime, allow_duplicate=True
            )
            cofre.registry.publish(session, SYSTEM, request)
    onnx = cofre.predictor.predict(lambda: PREDICTOR, _call("r-1", version="1"), _rows([ROW]))
    plain = cofre.predictor.predict(lambda: PREDICTOR, _call("r-2", version="2"), _rows([ROW]))
    assert (onnx.runtime, plain.runtime) == ("onnx", "sklearn")
    assert onnx.predictions == plain.predictions and onnx.classes == plain.classes
    assert onnx.probabilities is not None and plain.probabilities is not None
    pairs = zip(onnx.probabilities[0], plain.probabilities[0], strict=True)
    assert max(abs(a - b) for a, b in pairs) < 1e-5
    assert [r.details["runtime"] for r in _records(cofre, "r-1") + _records(cofre, "r-2")] == [
        "onnx",
        "sklearn",
    ]
