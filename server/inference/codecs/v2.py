"""Open Inference Protocol (KServe V2) tensors to rows, and results back to tensors.

Inputs are either one tensor per feature (named after it, shape [rows] or
[rows, 1]) or a single 2-D tensor [rows, n_features] in the schema's order.
Both JSON `data` and the binary tensor data extension (tritonclient's default)
are read; outputs are `predict` and, where available, `predict_proba`, written
as JSON or binary as the request asks. The outputs asked for are checked while
decoding, before anything is scored, so a request the door cannot answer is
refused (and audited as refused), never scored and then failed.

Everything a client sends is checked before numpy touches it: keys, types,
shapes (their product in Python integers, so [2**32, 2**32] cannot overflow)
and every value against its datatype's range (2**63 is not an INT64, -1 not a
UINT8).
"""

from __future__ import annotations

import json
import math
import re
import struct
from dataclasses import dataclass
from itertools import chain
from typing import Any

import numpy as np

from governance.errors import FieldError, MalformedInput
from server.inference.codecs import strict_json
from server.inference.predictor import Decoded, PredictionResult, ServedVersion
from server.inference.table import Table

NUMPY_TYPES = {
    "BOOL": np.bool_,
    "UINT8": np.uint8,
    "UINT16": np.uint16,
    "UINT32": np.uint32,
    "UINT64": np.uint64,
    "INT8": np.int8,
    "INT16": np.int16,
    "INT32": np.int32,
    "INT64": np.int64,
    "FP16": np.float16,
    "FP32": np.float32,
    "FP64": np.float64,
}
SCHEMA_TO_V2 = {"float64": "FP64", "int64": "INT64", "bool": "BOOL", "string": "BYTES"}
HEADER_LENGTH = "Inference-Header-Content-Length"
REQUEST_KEYS = ("id", "inputs", "outputs", "parameters")
REQUEST_PARAMETERS = ("subject_ids", "purpose", "binary_data_output")
INPUT_KEYS = ("name", "shape", "datatype", "data", "parameters")
INPUT_PARAMETERS = ("binary_data_size",)
OUTPUT_KEYS = ("name", "parameters")
OUTPUT_PARAMETERS = ("binary_data",)
MAX_ID = 256
# Exact types a JSON tensor may hold, anything else (a list, an object) is looked at
# value by value; bool is not a number here (it is an int subclass, hence exact types).
_SCALARS = frozenset({int, float, str, bool, type(None)})
_NUMBERS = frozenset({int, float})
_DIGITS = re.compile(r"[0-9]{1,12}")


@dataclass(frozen=True)
class Wire:
    """What the encoder needs from the request: its id and the outputs to write."""

    id: str | None
    outputs: list[tuple[str, bool]]  # (output name, as binary); empty: every output
    binary_outputs: bool


def decode(body: bytes, header_length: str | None, served: ServedVersion) -> Decoded:
    head, binary = _split_body(body, header_length)
    request = strict_json.loads(head)
    if not isinstance(request, dict) or not isinstance(request.get("inputs"), list):
        raise MalformedInput("an inference request needs an 'inputs' list")
    _known_keys(request, REQUEST_KEYS, "the inference request")
    parameters = _parameters(request, REQUEST_PARAMETERS, "the inference request")
    binary_outputs = parameters.get("binary_data_output", False)
    if not isinstance(binary_outputs, bool):
        raise MalformedInput("'binary_data_output' must be true or false")
    outputs = _wanted_outputs(request.get("outputs"), served, binary_outputs)
    subject_ids = parameters.get("subject_ids")
    if subject_ids is not None and not isinstance(subject_ids, list):
        # The shape of the request is wrong, like any other parameter of the wrong kind;
        # what the list holds is the core's to check, on every door alike.
        raise MalformedInput(
            "'subject_ids' must be a list", [FieldError("subject_ids", "must be a list")]
        )
    return Decoded(
        table=_table(_read_tensors(request["inputs"], binary), served.schema.names),
        subject_ids=subject_ids,
        purpose=parameters.get("purpose"),
        want_proba=not outputs or any(name == "predict_proba" for name, _ in outputs),
        proba_required=any(name == "predict_proba" for name, _ in outputs),
        wire=Wire(_request_id(request.get("id")), outputs, binary_outputs),
    )


def _split_body(body: bytes, header_length: str | None) -> tuple[bytes, bytes]:
    if header_length is None:
        return body, b""
    if not _DIGITS.fullmatch(header_length) or int(header_length) > len(body):
        raise MalformedInput(f"{HEADER_LENGTH} must be ASCII digits and fit the body")
    return body[: int(header_length)], body[int(header_length) :]


def _known_keys(data: dict[str, Any], known: tuple[str, ...], where: str) -> None:
    unknown = [key for key in data if key not in known]
    if unknown:
        raise MalformedInput(
            f"unknown key {unknown[0][:64]!r} in {where}; expected {', '.join(known)}"
        )


def _parameters(data: dict[str, Any], known: tuple[str, ...], where: str) -> dict[str, Any]:
    parameters = data.get("parameters")
    if parameters is None:
        return {}
    if not isinstance(parameters, dict):
        raise MalformedInput(f"'parameters' of {where} must be an object")
    _known_keys(parameters, known, f"the parameters of {where}")
    return parameters


def _request_id(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > MAX_ID:
        raise MalformedInput(f"'id' must be a string of at most {MAX_ID} characters")
    return value


# -- inputs -------------------------------------------------------------------------------
def _read_tensors(inputs: list[Any], binary: bytes) -> dict[str, np.ndarray]:
    tensors: dict[str, np.ndarray] = {}
    offset = 0
    for spec in inputs:
        if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
            raise MalformedInput("every input needs a name, shape and datatype")
        name = spec["name"]
        _known_keys(spec, INPUT_KEYS, f"input {name[:64]!r}")
        if name in tensors:
            raise MalformedInput(f"input {name[:64]!r} is given twice")
        array, used = _read_tensor(spec, binary, offset)
        offset += used
        tensors[name] = array
    if offset != len(binary):
        raise MalformedInput("binary data left over after the declared inputs")
    return tensors


def _read_tensor(spec: dict[str, Any], binary: bytes, offset: int) -> tuple[np.ndarray, int]:
    name, datatype, shape = spec["name"][:64], spec.get("datatype"), spec.get("shape")
    if (
        not isinstance(shape, list)
        or not 1 <= len(shape) <= 2
        or not all(type(d) is int and d >= 0 for d in shape)
    ):
        raise MalformedInput(f"input {name!r}: shape must be [rows] or [rows, columns]")
    if not isinstance(datatype, str) or (datatype not in NUMPY_TYPES and datatype != "BYTES"):
        raise MalformedInput(f"input {name!r}: unsupported datatype {str(datatype)[:16]!r}")
    size = _parameters(spec, INPUT_PARAMETERS, f"input {name!r}").get("binary_data_size")
    if size is None:
        if "data" not in spec:
            raise MalformedInput(f"input {name!r}: needs 'data' or a binary_data_size")
        return _shaped(_from_json(spec["data"], datatype, name), shape, name), 0
    if type(size) is not int or size < 0 or offset + size > len(binary):
        raise MalformedInput(f"input {name!r}: binary_data_size does not fit the body")
    if "data" in spec:
        raise MalformedInput(f"input {name!r}: give 'data' or binary data, not both")
    array = _from_binary(binary[offset : offset + size], datatype, name)
    return _shaped(array, shape, name), size


def _from_binary(raw: bytes, datatype: str, name: str) -> np.ndarray:
    if datatype == "BYTES":
        items, position = [], 0
        while position < len(raw):
            if position + 4 > len(raw):
                raise MalformedInput(f"input {name!r}: truncated BYTES element")
            (length,) = struct.unpack_from("<I", raw, position)
            if position + 4 + length > len(raw):
                raise MalformedInput(f"input {name!r}: truncated BYTES element")
            items.append(raw[position + 4 : position + 4 + length])
            position += 4 + length
        return np.array(items, dtype=object)
    dtype = np.dtype(NUMPY_TYPES[datatype]).newbyteorder("<")
    if len(raw) % dtype.itemsize:
        raise MalformedInput(f"input {name!r}: binary data is not a whole number of elements")
    return np.frombuffer(raw, dtype=dtype)


def _from_json(data: Any, datatype: str, name: str) -> np.ndarray:
    """The values of a JSON tensor, flattened, each checked against the datatype."""
    if not isinstance(data, list):
        raise MalformedInput(f"input {name!r}: 'data' must be a list")
    flat = _flatten(data, name)
    problem = _values_problem(flat, datatype)
    if problem:
        raise MalformedInput(f"input {name!r}: {problem} for datatype {datatype}")
    if datatype == "BYTES":
        return np.array(flat, dtype=object)
    return np.array(flat, dtype=NUMPY_TYPES[datatype])


def _flatten(data: list[Any], name: str) -> list[Any]:
    """Nested lists (row-major, as the protocol allows) to one list of scalars."""
    # The usual shapes, flat or one list per row, are checked with C-level passes
    # (map, chain, set) instead of one Python step per value.
    if set(map(type, data)) <= _SCALARS:
        return data
    if all(type(item) is list for item in data):
        flat = list(chain.from_iterable(data))
        if set(map(type, flat)) <= _SCALARS:
            return flat
    return _flatten_each(data, name)


def _flatten_each(data: list[Any], name: str) -> list[Any]:
    """The value-by-value walk, which names what is wrong with an irregular `data`."""
    flat: list[Any] = []
    stack = [iter(data)]
    while stack:
        for item in stack[-1]:
            if isinstance(item, list):
                if len(stack) >= 2:
                    raise MalformedInput(f"input {name!r}: 'data' nests deeper than the shape")
                stack.append(iter(item))
                break
            if isinstance(item, dict):
                raise MalformedInput(f"input {name!r}: 'data' holds an object")
            flat.append(item)
        else:
            stack.pop()
    return flat


def _values_problem(values: list[Any], datatype: str) -> str | None:
    if datatype == "BYTES":
        return None if all(type(v) is str for v in values) else "values must be strings"
    if datatype == "BOOL":
        return None if all(type(v) is bool for v in values) else "values must be true or false"
    if datatype.startswith("FP"):
        if not set(map(type, values)) <= _NUMBERS:
            return "values must be numbers"
        limit = float(np.finfo(NUMPY_TYPES[datatype]).max)
        return None if _within(values, limit) else "a value is out of range"
    if not all(type(v) is int for v in values):
        return "values must be integers"
    info = np.iinfo(NUMPY_TYPES[datatype])
    inside = not values or (min(values) >= int(info.min) and max(values) <= int(info.max))
    return None if inside else f"a value is outside {int(info.min)}..{int(info.max)}"


def _within(values: list[Any], limit: float) -> bool:
    """Every finite value within +-limit (infinities and NaN are floats' own values).

    Checked on a float64 copy; an integer beyond float64 cannot be copied, and one
    that rounds onto the limit is compared exactly in Python, as the copy cannot tell."""
    try:
        block = np.abs(np.array(values, dtype=np.float64))
    except OverflowError:
        return False
    finite = block[np.isfinite(block)]
    if not (finite >= limit).any():
        return True
    finite_values = (v for v in values if not (type(v) is float and not math.isfinite(v)))
    return all(-limit <= v <= limit for v in finite_values)


def _shaped(array: np.ndarray, shape: list[int], name: str) -> np.ndarray:
    if math.prod(shape) != array.size:  # Python integers: no overflow
        raise MalformedInput(f"input {name!r}: {array.size} values do not fill shape {shape}")
    return array.reshape(shape)


def _table(tensors: dict[str, np.ndarray], schema_names: tuple[str, ...]) -> Table:
    if not tensors:
        raise MalformedInput("an inference request needs at least one input")
    if len(tensors) == 1:
        only = next(iter(tensors.values()))
        if (
            only.ndim == 2
            and only.shape[1] == len(schema_names)
            and (len(schema_names) > 1 or next(iter(tensors)) not in schema_names)
        ):
            return Table(_plain_values(only))
    lengths = set()
    columns: dict[str, list[Any]] = {}
    for name, array in tensors.items():
        if array.ndim == 2 and array.shape[1] == 1:
            array = array[:, 0]
        if array.ndim != 1:
            raise MalformedInput(
                f"input {name[:64]!r}: one tensor per feature has shape [rows] "
                "or [rows, 1]; or send one [rows, features] tensor"
            )
        lengths.add(array.shape[0])
        columns[name] = _plain_values(array)
    if len(lengths) != 1:
        raise MalformedInput("every feature tensor needs the same number of rows")
    return Table([list(values) for values in zip(*columns.values(), strict=True)], list(columns))


def _plain_values(array: np.ndarray) -> list[Any]:
    """The array's values as Python ones (nested for 2-D): by numpy's own tolist for
    numbers and booleans, value by value only for BYTES, which must be UTF-8 text."""
    if array.dtype != object:
        values: list[Any] = array.tolist()
        return values
    if array.ndim == 2:
        return [[_plain(v) for v in row] for row in array]
    return [_plain(v) for v in array]


def _plain(value: Any) -> Any:
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            raise MalformedInput("BYTES values must be UTF-8 text") from None
    return value.item() if hasattr(value, "item") else value


# -- outputs ------------------------------------------------------------------------------
def available_outputs(served: ServedVersion) -> list[str]:
    return ["predict", "predict_proba"] if served.has_proba and served.classes else ["predict"]


def _wanted_outputs(
    outputs: Any, served: ServedVersion, binary_default: bool
) -> list[tuple[str, bool]]:
    if outputs is None:
        return []
    if not isinstance(outputs, list):
        raise MalformedInput("'outputs' must be a list")
    available = available_outputs(served)
    wanted = []
    for spec in outputs:
        name = spec.get("name") if isinstance(spec, dict) else None
        if not isinstance(name, str) or name not in available:
            raise MalformedInput(
                f"unknown output {str(name)[:64]!r}; available: {', '.join(available)}"
            )
        _known_keys(spec, OUTPUT_KEYS, f"output {name!r}")
        binary = _parameters(spec, OUTPUT_PARAMETERS, f"output {name!r}").get(
            "binary_data", binary_default
        )
        if not isinstance(binary, bool):
            raise MalformedInput(f"output {name!r}: 'binary_data' must be true or false")
        wanted.append((name, binary))
    return wanted


def metadata(served: ServedVersion, versioned: bool) -> dict[str, Any]:
    inputs = [
        {"name": n, "datatype": SCHEMA_TO_V2[d], "shape": [-1]}
        for n, d in zip(served.schema.names, served.schema.dtypes, strict=True)
    ]
    outputs: list[dict[str, Any]] = [
        {"name": "predict", "datatype": _label_type(served.classes), "shape": [-1]}
    ]
    if "predict_proba" in available_outputs(served):
        outputs.append(
            {"name": "predict_proba", "datatype": "FP64", "shape": [-1, len(served.classes or [])]}
        )
    return {
        "name": served.name,
        "versions": [str(served.version)] if versioned else [str(v) for v in served.versions],
        "platform": "scikit-learn",
        "inputs": inputs,
        "outputs": outputs,
        "parameters": {
            "version": served.version,
            "sha256": served.sha256,
            "runtime": served.runtime,
        },
    }


def _label_type(classes: list[Any] | None) -> str:
    if not classes:
        return "FP64"
    sample = classes[0]
    if isinstance(sample, bool):
        return "BOOL"
    if isinstance(sample, int):
        return "INT64"
    return "FP64" if isinstance(sample, float) else "BYTES"


def encode(result: PredictionResult) -> tuple[bytes, int | None]:
    """(body, JSON header length when binary outputs follow, else None)."""
    wire: Wire = result.decoded.wire
    tensors = {"predict": np.asarray(result.predictions)}
    if result.probabilities is not None:
        tensors["predict_proba"] = np.asarray(result.probabilities, dtype=np.float64)
    wanted = wire.outputs or [(name, wire.binary_outputs) for name in tensors]
    outputs, chunks = [], []
    for name, binary in wanted:
        spec, chunk = _output(name, tensors[name], binary)
        outputs.append(spec)
        if chunk is not None:
            chunks.append(chunk)
    header = json.dumps(
        {
            "model_name": result.name,
            "model_version": str(result.version),
            "id": wire.id or result.request_id,
            "parameters": {
                "request_id": result.request_id,
                "sha256": result.sha256,
                "runtime": result.runtime,
            }
            | _rollout_parameters(result),
            "outputs": outputs,
        }
    ).encode()
    if not chunks:
        return header, None
    return header + b"".join(chunks), len(header)


def _rollout_parameters(result: PredictionResult) -> dict[str, Any]:
    """During a rollout, which variant answered and why (V2 parameters are scalars)."""
    if result.routed is None:
        return {}
    return {
        "rollout": result.routed.rollout,
        "rollout_variant": result.routed.variant,
        "rollout_reason": result.routed.reason,
    }


def _output(name: str, array: np.ndarray, binary: bool) -> tuple[dict[str, Any], bytes | None]:
    datatype, array = _v2_type(array)
    spec: dict[str, Any] = {"name": name, "datatype": datatype, "shape": list(array.shape)}
    if not binary:
        spec["data"] = array.ravel().tolist()
        return spec, None
    chunk = _to_binary(array, datatype)
    spec["parameters"] = {"binary_data_size": len(chunk)}
    return spec, chunk


def _v2_type(array: np.ndarray) -> tuple[str, np.ndarray]:
    if array.dtype.kind == "b":
        return "BOOL", array
    if array.dtype.kind in "iu":
        return "INT64", array.astype(np.int64)
    if array.dtype.kind == "f":
        return "FP64", array.astype(np.float64)
    return "BYTES", array.astype(str)


def _to_binary(array: np.ndarray, datatype: str) -> bytes:
    if datatype != "BYTES":
        return array.astype(array.dtype.newbyteorder("<")).tobytes()
    encoded = [str(v).encode("utf-8") for v in array.ravel()]
    return b"".join(struct.pack("<I", len(e)) + e for e in encoded)
