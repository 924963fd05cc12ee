"""Open Inference Protocol (KServe V2) tensors to rows and results back to tensors.

Inputs are either one tensor per feature (named after it, shape [rows] or
[rows, 1]) or a single 2-D tensor [rows, n_features] in the schema's order.
Both JSON `data` and the binary tensor data extension (tritonclient's default)
are read; outputs are `predict` and, where available, `predict_proba`, written
as JSON or binary as the request asks.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from governance.errors import MalformedInput
from server.inference.predictor import PredictionResult, ServedVersion
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


@dataclass
class InferRequest:
    table: Table
    id: str | None
    parameters: dict[str, Any]
    outputs: list[dict[str, Any]] | None
    binary_outputs: bool = False
    named_inputs: list[str] = field(default_factory=list)


def decode(body: bytes, header_length: str | None, schema_names: tuple[str, ...]) -> InferRequest:
    head, binary = _split_body(body, header_length)
    try:
        request = json.loads(head)
    except ValueError:
        raise MalformedInput("the inference header is not valid JSON") from None
    if not isinstance(request, dict) or not isinstance(request.get("inputs"), list):
        raise MalformedInput("an inference request needs an 'inputs' list")
    tensors = _read_tensors(request["inputs"], binary)
    parameters = request.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise MalformedInput("'parameters' must be an object")
    outputs = request.get("outputs")
    if outputs is not None and not isinstance(outputs, list):
        raise MalformedInput("'outputs' must be a list")
    request_id = request.get("id")
    return InferRequest(
        table=_table(tensors, schema_names),
        id=request_id if isinstance(request_id, str) else None,
        parameters=parameters,
        outputs=outputs,
        binary_outputs=bool(parameters.get("binary_data_output", False)),
    )


def _split_body(body: bytes, header_length: str | None) -> tuple[bytes, bytes]:
    if header_length is None:
        return body, b""
    if not header_length.isdigit() or int(header_length) > len(body):
        raise MalformedInput(f"{HEADER_LENGTH} does not fit the body")
    return body[: int(header_length)], body[int(header_length) :]


def _read_tensors(inputs: list[Any], binary: bytes) -> dict[str, np.ndarray]:
    tensors: dict[str, np.ndarray] = {}
    offset = 0
    for spec in inputs:
        if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
            raise MalformedInput("every input needs a name, shape and datatype")
        array, used = _read_tensor(spec, binary, offset)
        offset += used
        tensors[spec["name"]] = array
    if offset != len(binary):
        raise MalformedInput("binary data left over after the declared inputs")
    return tensors


def _read_tensor(spec: dict[str, Any], binary: bytes, offset: int) -> tuple[np.ndarray, int]:
    name, datatype, shape = spec["name"], spec.get("datatype"), spec.get("shape")
    if not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape):
        raise MalformedInput(f"input {name!r}: shape must be a list of non-negative integers")
    if datatype not in NUMPY_TYPES and datatype != "BYTES":
        raise MalformedInput(f"input {name!r}: unsupported datatype {str(datatype)[:16]!r}")
    size = (spec.get("parameters") or {}).get("binary_data_size")
    if size is not None:
        if not isinstance(size, int) or offset + size > len(binary):
            raise MalformedInput(f"input {name!r}: binary_data_size does not fit the body")
        array = _from_binary(binary[offset : offset + size], datatype)
        return _shaped(array, shape, name), size
    return _shaped(_from_json(spec.get("data"), datatype, name), shape, name), 0


def _from_binary(raw: bytes, datatype: str) -> np.ndarray:
    if datatype == "BYTES":
        items, position = [], 0
        while position < len(raw):
            if position + 4 > len(raw):
                raise MalformedInput("truncated BYTES element")
            (length,) = struct.unpack_from("<I", raw, position)
            items.append(raw[position + 4 : position + 4 + length])
            position += 4 + length
        return np.array(items, dtype=object)
    dtype = np.dtype(NUMPY_TYPES[datatype]).newbyteorder("<")
    if len(raw) % dtype.itemsize:
        raise MalformedInput("binary data is not a whole number of elements")
    return np.frombuffer(raw, dtype=dtype)


def _from_json(data: Any, datatype: str, name: str) -> np.ndarray:
    if not isinstance(data, list):
        raise MalformedInput(f"input {name!r}: 'data' must be a list")
    flat = np.array(data, dtype=object).ravel()
    if datatype == "BYTES":
        return flat
    try:
        return flat.astype(NUMPY_TYPES[datatype])
    except (ValueError, TypeError):
        raise MalformedInput(f"input {name!r}: data does not match datatype {datatype}") from None


def _shaped(array: np.ndarray, shape: list[int], name: str) -> np.ndarray:
    if int(np.prod(shape)) != array.size:
        raise MalformedInput(f"input {name!r}: {array.size} values do not fill shape {shape}")
    return array.reshape(shape)


def _table(tensors: dict[str, np.ndarray], schema_names: tuple[str, ...]) -> Table:
    if len(tensors) == 1:
        only = next(iter(tensors.values()))
        if (
            only.ndim == 2
            and only.shape[1] == len(schema_names)
            and (len(schema_names) > 1 or next(iter(tensors)) not in schema_names)
        ):
            return Table([[_plain(v) for v in row] for row in only])
    lengths = set()
    columns: dict[str, list[Any]] = {}
    for name, array in tensors.items():
        if array.ndim == 2 and array.shape[1] == 1:
            array = array[:, 0]
        if array.ndim != 1:
            raise MalformedInput(
                f"input {name!r}: one tensor per feature has shape [rows] "
                "or [rows, 1]; or send one [rows, features] tensor"
            )
        lengths.add(array.shape[0])
        columns[name] = [_plain(v) for v in array]
    if len(lengths) != 1:
        raise MalformedInput("every feature tensor needs the same number of rows")
    return Table([list(values) for values in zip(*columns.values(), strict=True)], list(columns))


def _plain(value: Any) -> Any:
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            raise MalformedInput("BYTES values must be UTF-8 text") from None
    return value.item() if hasattr(value, "item") else value


# -- responses ----------------------------------------------------------------------------
def metadata(served: ServedVersion, versioned: bool) -> dict[str, Any]:
    inputs = [
        {"name": n, "datatype": SCHEMA_TO_V2[d], "shape": [-1]}
        for n, d in zip(served.schema.names, served.schema.dtypes, strict=True)
    ]
    outputs: list[dict[str, Any]] = [
        {"name": "predict", "datatype": _label_type(served.classes), "shape": [-1]}
    ]
    if served.has_proba and served.classes:
        outputs.append(
            {"name": "predict_proba", "datatype": "FP64", "shape": [-1, len(served.classes)]}
        )
    return {
        "name": served.name,
        "versions": [str(served.version)] if versioned else [str(v) for v in served.versions],
        "platform": "scikit-learn",
        "inputs": inputs,
        "outputs": outputs,
        "parameters": {"version": served.version, "sha256": served.sha256},
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


def encode(result: PredictionResult, request: InferRequest) -> tuple[bytes, int | None]:
    """(body, JSON header length when binary outputs follow, else None)."""
    tensors = {"predict": np.asarray(result.predictions)}
    if result.probabilities is not None:
        tensors["predict_proba"] = np.asarray(result.probabilities, dtype=np.float64)
    wanted = _wanted_outputs(request, tensors)
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
            "id": request.id or result.request_id,
            "parameters": {"request_id": result.request_id, "sha256": result.sha256},
            "outputs": outputs,
        }
    ).encode()
    if not chunks:
        return header, None
    return header + b"".join(chunks), len(header)


def _wanted_outputs(
    request: InferRequest, tensors: dict[str, np.ndarray]
) -> list[tuple[str, bool]]:
    if not request.outputs:
        return [(name, request.binary_outputs) for name in tensors]
    wanted = []
    for spec in request.outputs:
        name = spec.get("name") if isinstance(spec, dict) else None
        if name not in tensors:
            raise MalformedInput(
                f"unknown output {str(name)[:64]!r}; available: {', '.join(tensors)}"
            )
        binary = bool((spec.get("parameters") or {}).get("binary_data", request.binary_outputs))
        wanted.append((name, binary))
    return wanted


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
