"""The body reader's fast path (orjson, duplicates found by counting the text's
members) reads every text exactly as the standard library with a duplicate-key hook
does, and refuses what it refuses with the same words."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from governance.errors import MalformedInput
from server.inference.codecs import strict_json

KEYS = st.sampled_from(["a", "b", "a:b", 'q"{', "\\", "é", "{", ":"])
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**45), max_value=10**45)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=8)
)


def _dumps(value: Any, ascii_only: bool) -> str:
    return json.dumps(value, ensure_ascii=ascii_only)


@st.composite
def json_texts(draw: st.DrawFn, depth: int = 3) -> str:
    """JSON text, objects written by hand so that a key may repeat in one object."""
    ascii_only = draw(st.booleans())
    if depth == 0 or draw(st.integers(0, 2)) == 0:
        return _dumps(draw(SCALARS), ascii_only)
    children = draw(st.lists(json_texts(depth=depth - 1), max_size=4))
    if draw(st.booleans()):
        return "[" + ", ".join(children) + "]"
    keys = draw(st.lists(KEYS, min_size=len(children), max_size=len(children)))
    members = [f"{_dumps(k, ascii_only)}: {child}" for k, child in zip(keys, children, strict=True)]
    return "{" + ",".join(members) + "}"


def _reference(text: str) -> Any:
    """What the reader did before its fast path: the standard library, strict."""
    return strict_json._strict_loads(text)


def _outcome(read: Any, text: str | bytes) -> str:
    try:
        return "value " + json.dumps(read(text))  # 1 and 1.0, NaN and null differ here
    except MalformedInput as exc:
        return "refused " + exc.detail


@settings(max_examples=400, deadline=None)
@given(json_texts())
def test_the_fast_path_reads_and_refuses_as_the_standard_library(text: str) -> None:
    expected = _outcome(_reference, text)
    assert _outcome(strict_json.loads, text.encode("utf-8")) == expected
    assert _outcome(strict_json.loads, text) == expected


@pytest.mark.parametrize(
    ("body", "said"),
    [
        (b'{"rows": [[1, 2]], "rows": [[3, 4]]}', "refused duplicated key 'rows'"),
        (b'{"a": {"x": 1, "y": 2, "x": 3}}', "refused duplicated key 'x'"),
        (b'{"k\\"": 1, "k\\"": 2}', "refused duplicated key 'k\"'"),
        (b"[" + b"9" * 41 + b"]", "refused an integer has more than 40 digits"),
        (b"[12345678901234567890]", "value [12345678901234567890]"),  # an int, not 1.2e19
        (b"[NaN, 1e400]", "value [NaN, Infinity]"),
        (b'{"a": 1', "refused the body is not valid JSON"),
        (b"\xff", "refused the body is not UTF-8 text"),
        (b"[" * 64 + b"]" * 64, "value " + "[" * 64),
        (b"[" * 65 + b"]" * 65, "refused the JSON nests deeper than 64 levels"),
        (b'{"a":' * 65 + b"1" + b"}" * 65, "refused the JSON nests deeper than 64 levels"),
        (b"[" * 5000 + b"]" * 5000, "refused the JSON nests deeper than 64 levels"),
        (b'"\xed\xa0\x80"', "refused the body is not UTF-8 text"),  # an encoded surrogate
    ],
)
def test_what_orjson_reads_otherwise_goes_the_strict_way(body: bytes, said: str) -> None:
    assert _outcome(strict_json.loads, body).startswith(said)


@pytest.mark.parametrize(
    "body",
    [
        {"rows": [[0.1234567890123456, -2, 3e-7]] * 50, "subject_ids": ["p-1"] * 50},
        {"dataframe_split": {"columns": ["a", "b:c"], "data": [[1, "x{"]]}},
        {"inputs": [{"name": "a", "shape": [2], "datatype": "FP64", "data": [1.5, 2.5]}]},
        {"rows": [{"a": 1, "b": 'q"'}, {"a": 2, "b": "\\"}]},
        {"rows": [{"at": "2026-12-04T10:00:00", "a:b": 1}]},  # colons inside strings
        {"inputs": [[0.00012345678901234567, 1.5e-300, -(2.0**62)]] * 100},
    ],
)
def test_ordinary_bodies_take_the_fast_path(body: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_fallback(text: str) -> Any:
        raise AssertionError("read by the standard library")

    monkeypatch.setattr(strict_json, "_strict_loads", no_fallback)
    assert strict_json.loads(json.dumps(body).encode()) == body
