"""Properties of the Open Inference Protocol codec (Hypothesis): any JSON a client
sends either decodes or is refused with MalformedInput, never anything else; and a
valid tensor of every datatype, as JSON or as binary data, decodes to its values;
what the encoder writes, the decoder reads back."""

from __future__ import annotations

import json
import math
import struct
from typing import Any

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from governance.errors import MalformedInput
from server.inference.codecs import v2 as v2_codec
from server.inference.predictor import Decoded, ServedVersion
from server.inference.table import Schema

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
DATATYPES = [*v2_codec.NUMPY_TYPES, "BYTES"]


def _served() -> ServedVersion:
    schema = Schema(("a",), ("float64",), named=True, allow_missing=False)
    return ServedVersion("m", 3, "ab" * 32, schema, True, [0, 1], (3,), "f", "k", b"")


def _decode(body: bytes, length: str | None = None) -> Decoded | None:
    """The decoded request, or None when refused with MalformedInput (only that)."""
    try:
        return v2_codec.decode(body, length, _served())
    except MalformedInput:
        return None


# -- any JSON ------------------------------------------------------------------------------
_SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
_JSON = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=20,
)
_KEYS = st.sampled_from(
    [*v2_codec.REQUEST_KEYS, *v2_codec.INPUT_KEYS, *v2_codec.REQUEST_PARAMETERS, "x"]
)
_NEAR_VALID_TENSOR = st.fixed_dictionaries(
    {},
    optional={
        "name": st.sampled_from(["a", "b", "input-0"]) | _JSON,
        "shape": st.lists(st.integers(-2, 2**33), max_size=3) | _JSON,
        "datatype": st.sampled_from([*DATATYPES, "COMPLEX"]) | _JSON,
        "data": st.lists(_SCALARS | st.lists(_SCALARS, max_size=3), max_size=4) | _JSON,
        "parameters": st.dictionaries(
            st.sampled_from(["binary_data_size", "x"]), st.integers(-1, 16) | _JSON
        )
        | _JSON,
    },
)
_NEAR_VALID_REQUEST = st.fixed_dictionaries(
    {"inputs": st.lists(_NEAR_VALID_TENSOR, max_size=3) | st.just([]) | _JSON},
    optional={
        "id": st.text() | _JSON,
        "outputs": st.lists(
            st.fixed_dictionaries(
                {"name": st.sampled_from(["predict", "predict_proba", "x"]) | _JSON},
                optional={"parameters": st.dictionaries(st.just("binary_data"), _JSON)},
            ),
            max_size=3,
        )
        | _JSON,
        "parameters": st.dictionaries(st.sampled_from(v2_codec.REQUEST_PARAMETERS), _JSON)
        | st.dictionaries(_KEYS, _JSON),
    },
)


@st.composite
def _mutated_valid_requests(draw: st.DrawFn) -> dict[str, Any]:
    """A valid request, then (usually) one part of it replaced by any JSON, removed,
    or joined by an unknown key: the near misses a fuzzer reaches least."""
    datatype, values, _ = draw(_tensors())
    spec: dict[str, Any] = {"name": "a", "datatype": datatype, "shape": [len(values)]}
    request: dict[str, Any] = {"inputs": [spec | {"data": values}]}
    if draw(st.booleans()):
        request["outputs"] = [{"name": draw(st.sampled_from(["predict", "predict_proba"]))}]
    if draw(st.booleans()):
        request["parameters"] = {"subject_ids": [None] * len(values), "purpose": "p"}
    target = draw(st.sampled_from([request, request["inputs"][0], *request.get("outputs", [])]))
    action = draw(st.sampled_from(["keep", "replace", "remove", "add"]))
    key = draw(st.sampled_from(sorted(target)))
    if action == "replace":
        target[key] = draw(_JSON)
    elif action == "remove":
        del target[key]
    elif action == "add":
        target[draw(_KEYS)] = draw(_JSON)
    return request


@settings(SETTINGS, max_examples=600)
@given(request=_JSON | _NEAR_VALID_REQUEST | _mutated_valid_requests())
def test_any_json_decodes_or_is_malformed(request: Any) -> None:
    _decode(json.dumps(request).encode())


@SETTINGS
@given(
    request=_NEAR_VALID_REQUEST | _mutated_valid_requests(),
    tail=st.binary(max_size=32),
    length=st.none() | st.text(max_size=6) | st.integers(-5, 4000).map(str),
)
def test_any_binary_extension_decodes_or_is_malformed(
    request: Any, tail: bytes, length: str | None
) -> None:
    _decode(json.dumps(request).encode() + tail, length)


@SETTINGS
@given(body=st.binary(max_size=64))
def test_any_bytes_decode_or_are_malformed(body: bytes) -> None:
    _decode(body)


# -- valid tensors -----------------------------------------------------------------------------
def _values(datatype: str) -> st.SearchStrategy[Any]:
    if datatype == "BYTES":
        return st.text()
    if datatype == "BOOL":
        return st.booleans()
    if datatype.startswith("FP"):
        info = np.finfo(v2_codec.NUMPY_TYPES[datatype])
        width = {"FP16": 16, "FP32": 32, "FP64": 64}[datatype]
        finite = st.floats(
            -float(info.max), float(info.max), allow_nan=False, allow_infinity=False, width=width
        )
        return finite | st.integers(-(2**10), 2**10)
    info_int = np.iinfo(v2_codec.NUMPY_TYPES[datatype])
    return st.integers(int(info_int.min), int(info_int.max))


@st.composite
def _tensors(draw: st.DrawFn) -> tuple[str, list[Any], bool]:
    datatype = draw(st.sampled_from(DATATYPES))
    values = draw(st.lists(_values(datatype), max_size=8))
    return datatype, values, draw(st.booleans())


def _expected(datatype: str, values: list[Any]) -> list[Any]:
    if datatype == "BYTES":
        return values
    return [v.item() for v in np.array(values, dtype=v2_codec.NUMPY_TYPES[datatype])]


def _binary(datatype: str, values: list[Any]) -> bytes:
    if datatype == "BYTES":
        encoded = [v.encode("utf-8") for v in values]
        return b"".join(struct.pack("<I", len(e)) + e for e in encoded)
    dtype = np.dtype(v2_codec.NUMPY_TYPES[datatype]).newbyteorder("<")
    return np.array(values, dtype=dtype).tobytes()


def _same(got: list[Any], want: list[Any]) -> bool:
    return len(got) == len(want) and all(
        g == w or (isinstance(g, float) and math.isnan(g) and math.isnan(w))
        for g, w in zip(got, want, strict=True)
    )


@SETTINGS
@given(tensor=_tensors(), binary=st.booleans())
def test_valid_tensors_of_every_datatype_decode_to_their_values(
    tensor: tuple[str, list[Any], bool], binary: bool
) -> None:
    datatype, values, as_column = tensor
    shape = [len(values), 1] if as_column else [len(values)]
    spec: dict[str, Any] = {"name": "a", "datatype": datatype, "shape": shape}
    tail = b""
    if binary:
        tail = _binary(datatype, values)
        spec["parameters"] = {"binary_data_size": len(tail)}
    else:
        spec["data"] = values
    head = json.dumps({"inputs": [spec]}).encode()
    decoded = v2_codec.decode(head + tail, str(len(head)) if binary else None, _served())
    assert _same([row[0] for row in decoded.table.rows], _expected(datatype, values))


@SETTINGS
@given(
    values=st.lists(st.integers(-(2**63), 2**63 - 1), max_size=6)
    | st.lists(st.floats(allow_nan=False, allow_infinity=False), max_size=6)
    | st.lists(st.booleans(), max_size=6)
    # numpy's fixed-width strings (an estimator's labels among them) drop trailing NULs
    | st.lists(st.text(st.characters(exclude_characters="\x00")), max_size=6),
    binary=st.booleans(),
)
def test_what_the_encoder_writes_the_decoder_reads(values: list[Any], binary: bool) -> None:
    spec, chunk = v2_codec._output("a", np.asarray(values), binary)
    head = json.dumps({"inputs": [spec]}).encode()
    length = str(len(head)) if chunk is not None else None
    decoded = v2_codec.decode(head + (chunk or b""), length, _served())
    assert _same([row[0] for row in decoded.table.rows], list(values))


# -- the C-level checks agree with the value-by-value ones ---------------------------------
def _flat_by_walk(data: list[Any]) -> list[Any] | None:
    try:
        return v2_codec._flatten_each(data, "a")
    except MalformedInput:
        return None


def _flat_fast(data: list[Any]) -> list[Any] | None:
    try:
        return v2_codec._flatten(data, "a")
    except MalformedInput:
        return None


def _in_range_by_value(values: list[Any], limit: float) -> bool:
    finite = (v for v in values if not (type(v) is float and not math.isfinite(v)))
    return all(-limit <= v <= limit for v in finite)


_EDGE_NUMBERS = (
    st.floats()
    | st.integers()
    | st.sampled_from(
        [
            float(np.finfo(np.float32).max),
            int(float(np.finfo(np.float32).max)) + 1,
            int(np.finfo(np.float64).max),
            int(np.finfo(np.float64).max) + 2**960,
            2**1024,
            -(2**1024),
            float(np.finfo(np.float16).max),
            65520,
        ]
    )
)


@SETTINGS
@given(st.lists(_SCALARS | st.lists(_SCALARS | st.lists(_SCALARS), max_size=3), max_size=5))
def test_flattening_agrees_with_the_walk(data: list[Any]) -> None:
    assert _flat_fast(data) == _flat_by_walk(data)


@SETTINGS
@given(st.lists(_EDGE_NUMBERS, max_size=6), st.sampled_from(["FP16", "FP32", "FP64"]))
def test_the_range_check_agrees_with_exact_comparison(values: list[Any], datatype: str) -> None:
    limit = float(np.finfo(v2_codec.NUMPY_TYPES[datatype]).max)
    assert v2_codec._within(values, limit) == _in_range_by_value(values, limit)
