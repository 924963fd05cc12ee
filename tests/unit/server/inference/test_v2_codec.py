"""Open Inference Protocol tensors: JSON and binary in, JSON and binary out."""

import json
import struct

import numpy as np
import pytest

from governance.errors import MalformedInput
from server.inference.codecs import v2 as v2_codec
from server.inference.predictor import Decoded, PredictionResult, ServedVersion
from server.inference.table import Schema

NAMES = ("a", "b")


def _served(names: tuple[str, ...] = NAMES) -> ServedVersion:
    schema = Schema(names, ("float64",) * len(names), named=True, allow_missing=False)
    return ServedVersion("m", 3, "ab" * 32, schema, True, [0, 1], (3,), "f", "k", b"")


def _binary_request(
    inputs: list[tuple[str, str, list[int], bytes]], **extra: object
) -> tuple[bytes, str]:
    header = {
        "inputs": [
            {"name": n, "datatype": d, "shape": s, "parameters": {"binary_data_size": len(raw)}}
            for n, d, s, raw in inputs
        ]
    } | extra
    head = json.dumps(header).encode()
    return head + b"".join(raw for *_, raw in inputs), str(len(head))


def test_one_json_tensor_per_feature() -> None:
    body = json.dumps(
        {
            "inputs": [
                {"name": "b", "datatype": "FP32", "shape": [2], "data": [1.5, 2.5]},
                {"name": "a", "datatype": "INT64", "shape": [2, 1], "data": [[1], [2]]},
            ]
        }
    ).encode()
    decoded = v2_codec.decode(body, None, _served())
    assert decoded.table.columns == ["b", "a"]
    assert decoded.table.rows == [[1.5, 1], [2.5, 2]]


def test_one_binary_matrix_in_schema_order() -> None:
    matrix = np.array([[1.0, 2.0], [3.0, 4.0]], dtype="<f8")
    body, length = _binary_request([("input-0", "FP64", [2, 2], matrix.tobytes())])
    decoded = v2_codec.decode(body, length, _served())
    assert decoded.table.columns is None and decoded.table.rows == [[1.0, 2.0], [3.0, 4.0]]


def test_binary_bytes_tensor() -> None:
    raw = b"".join(struct.pack("<I", len(s)) + s for s in (b"x", b"yz"))
    body, length = _binary_request(
        [("a", "BYTES", [2], raw), ("b", "INT32", [2], np.array([7, 8], "<i4").tobytes())]
    )
    assert v2_codec.decode(body, length, _served()).table.rows == [["x", 7], ["yz", 8]]


@pytest.mark.parametrize(
    ("body", "length"),
    [
        (b"{not json", None),
        (
            json.dumps(
                {"inputs": [{"name": "a", "datatype": "FP64", "shape": [3], "data": [1, 2]}]}
            ).encode(),
            None,
        ),
        (
            json.dumps(
                {"inputs": [{"name": "a", "datatype": "COMPLEX", "shape": [1], "data": [1]}]}
            ).encode(),
            None,
        ),
        (
            json.dumps(
                {
                    "inputs": [
                        {
                            "name": "a",
                            "datatype": "FP64",
                            "shape": [1],
                            "parameters": {"binary_data_size": 8},
                        }
                    ]
                }
            ).encode(),
            "999",
        ),
        (
            json.dumps(
                {
                    "inputs": [
                        {"name": "a", "datatype": "FP64", "shape": [1], "data": [1]},
                        {"name": "b", "datatype": "FP64", "shape": [2], "data": [1, 2]},
                    ]
                }
            ).encode(),
            None,
        ),
    ],
)
def test_malformed_requests(body: bytes, length: str | None) -> None:
    with pytest.raises(MalformedInput):
        v2_codec.decode(body, length, _served())


def _result(decoded: Decoded) -> PredictionResult:
    return PredictionResult(
        "rid", "m", 3, "ab" * 32, [0, 1], [[0.9, 0.1], [0.2, 0.8]], [0, 1], decoded
    )


def test_json_outputs_by_default() -> None:
    request = v2_codec.decode(
        json.dumps(
            {"id": "mine", "inputs": [{"name": "a", "datatype": "FP64", "shape": [1], "data": [1]}]}
        ).encode(),
        None,
        _served(("a",)),
    )
    body, length = v2_codec.encode(_result(request))
    answer = json.loads(body)
    assert length is None and answer["id"] == "mine" and answer["model_version"] == "3"
    assert answer["outputs"][0] == {
        "name": "predict",
        "datatype": "INT64",
        "shape": [2],
        "data": [0, 1],
    }
    assert answer["outputs"][1]["shape"] == [2, 2]


def test_binary_output_when_asked() -> None:
    request = v2_codec.decode(
        json.dumps(
            {
                "inputs": [{"name": "a", "datatype": "FP64", "shape": [1], "data": [1]}],
                "outputs": [{"name": "predict_proba", "parameters": {"binary_data": True}}],
            }
        ).encode(),
        None,
        _served(("a",)),
    )
    body, length = v2_codec.encode(_result(request))
    assert length is not None
    header = json.loads(body[:length])
    assert [o["name"] for o in header["outputs"]] == ["predict_proba"]
    values = np.frombuffer(body[length:], dtype="<f8").reshape(2, 2)
    assert values.tolist() == [[0.9, 0.1], [0.2, 0.8]]
