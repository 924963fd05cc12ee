"""Reading skops artifacts safely: detect pickles, allow-list types, describe estimators.

Nothing here ever calls pickle. A file is accepted only if it is a skops zip
whose schema names types from TRUSTED (scikit-learn estimators and
transformers and the numpy/scipy/builtin containers they are made of); skops
then loads it with exactly the types it found, all of which we vetted.
"""

from __future__ import annotations

import importlib
import io
import json
import zipfile
from dataclasses import dataclass
from functools import cache
from typing import Any

import skops.io as sio

from governance.errors import UntrustedArtifact

_BUILTINS = {
    "dict",
    "list",
    "tuple",
    "str",
    "int",
    "float",
    "bool",
    "NoneType",
    "slice",
    "set",
    "frozenset",
    "bytes",
    "bytearray",
    "complex",
    "type",
}
_NUMPY_MODULES = {
    "numpy",
    "numpy.dtypes",
    "numpy.random",
    "numpy.random.mtrand",
    "numpy.random._generator",
    "numpy.random._pcg64",
    "numpy.random._mt19937",
    "numpy.random.bit_generator",
    "numpy.ma.core",
}
_COLLECTIONS = {"collections.OrderedDict", "collections.defaultdict"}
# Pure element-wise numpy functions a FunctionTransformer may reference.
SAFE_FUNCTIONS = {
    f"numpy.{n}"
    for n in (
        "log",
        "log1p",
        "log2",
        "log10",
        "exp",
        "expm1",
        "sqrt",
        "square",
        "abs",
        "absolute",
        "sign",
        "clip",
        "tanh",
        "arcsinh",
        "reciprocal",
        "negative",
        "floor",
        "ceil",
        "rint",
    )
}
# Callables that skops would import by name are code, not data: refuse even from sklearn.
_REFUSED_SKLEARN = ("sklearn.utils._testing", "sklearn.externals")

# Leading bytes of pickle, joblib's compressed pickles, and other refusals.
_PICKLE_SIGNS = {
    b"\x80": "a pickle (or joblib/cloudpickle) file",
    b"\x78": "a zlib-compressed joblib file",
    b"\x1f\x8b": "a gzip-compressed file (joblib?)",
    b"BZh": "a bz2-compressed file (joblib?)",
    b"\xfd7zXZ": "an xz-compressed file (joblib?)",
    b"\x04\x22\x4d\x18": "an lz4-compressed file (joblib?)",
    b"ZF": "a joblib file",
}


@dataclass(frozen=True)
class EstimatorFacts:
    """What publishing learns from an artifact, without trusting anything else."""

    estimator: Any
    feature_names: list[str] | None
    n_features: int
    has_proba: bool
    classes: list[Any] | None
    estimator_type: str
    sklearn_version: str | None
    skops_version: str | None = None


def is_trusted_type(type_name: str) -> bool:
    """True for allow-listed classes and SAFE_FUNCTIONS; every other name is refused."""
    kind, _, qualified = type_name.rpartition(":")
    if kind == "function":
        return qualified in SAFE_FUNCTIONS
    if kind:  # "method:" and anything unknown
        return False
    module, _, name = qualified.rpartition(".")
    return _trusted_module(module, qualified) and _is_class(module, name)


def _trusted_module(module: str, qualified: str) -> bool:
    if module == "builtins":
        return qualified.removeprefix("builtins.") in _BUILTINS
    if module == "sklearn" or module.startswith("sklearn."):
        return not module.startswith(_REFUSED_SKLEARN)
    if module in _NUMPY_MODULES or module.startswith("scipy.sparse"):
        return True
    return qualified in _COLLECTIONS


@cache
def _is_class(module: str, name: str) -> bool:
    """Whether module.name is a class. skops writes built-in *functions* (numpy.fromfile,
    posix.system) as TypeNodes, so a trusted module alone would let one through; only
    modules already vetted by `_trusted_module` are imported here."""
    try:
        return isinstance(getattr(importlib.import_module(module), name), type)
    except Exception:  # not importable, no such name: not a class we know
        return False


def read_schema(data: bytes) -> dict[str, Any]:
    """The skops schema of `data`, or UntrustedArtifact saying what the file is instead."""
    for sign, what in _PICKLE_SIGNS.items():
        if data.startswith(sign):
            raise UntrustedArtifact(
                f"the file is {what}; cofre accepts only skops files (skops.io.dump) and "
                "never loads pickle"
            )
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            schema = json.loads(archive.read("schema.json"))
    except (zipfile.BadZipFile, KeyError, ValueError):
        raise UntrustedArtifact("the file is not a skops file (no readable schema.json)") from None
    if not isinstance(schema, dict) or "protocol" not in schema:
        raise UntrustedArtifact("the file is not a skops file (schema without a protocol)")
    return schema


def types_named(schema: Any) -> set[str]:
    """Every `module.Name` the schema asks skops to construct or import.

    Functions (FunctionNode) are reported with a `function:` prefix: they are
    code, so they are trusted only from SAFE_FUNCTIONS, never by module. Bound
    methods (MethodNode) are code too, reported as `method:module.Class.name`
    and never trusted: a fitted model has no need to call one by reference.
    """
    found: set[str] = set()
    stack = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            module, name = node.get("__module__"), node.get("__class__")
            if isinstance(module, str) and isinstance(name, str):
                found.add(_type_name(node, module, name))
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return found


def _type_name(node: dict[str, Any], module: str, name: str) -> str:
    loader = node.get("__loader__")
    if loader == "FunctionNode":
        return f"function:{module}.{name}"
    if loader == "MethodNode":
        content = node.get("content")
        method = content.get("func") if isinstance(content, dict) else None
        return f"method:{module}.{name}.{method}"
    return f"{module}.{name}"


def load_trusted(data: bytes) -> Any:
    """Load a skops artifact, refusing any type outside the allow-list."""
    found = types_named(read_schema(data))
    _refuse(sorted(t for t in found if not is_trusted_type(t)))
    # Defence in depth: whatever skops itself would import must be something our
    # walk of the schema saw and vetted; anything else is refused by name.
    vetted = {t.partition(":")[2] if ":" in t else t for t in found}
    try:
        wanted = sio.get_untrusted_types(data=data)
    except Exception as exc:  # skops raises many kinds on malformed archives
        raise UntrustedArtifact(f"the skops file is malformed ({type(exc).__name__})") from None
    _refuse(sorted(t for t in wanted if t not in vetted))
    try:
        return sio.loads(data, trusted=wanted)
    except Exception as exc:
        raise UntrustedArtifact(
            f"the skops file could not be loaded ({type(exc).__name__})"
        ) from None


def _refuse(untrusted: list[str]) -> None:
    if untrusted:
        raise UntrustedArtifact(
            f"the file names types outside the trusted list: {', '.join(untrusted)}", untrusted
        )


def describe(data: bytes) -> EstimatorFacts:
    """Load and inspect an artifact for publishing."""
    estimator = load_trusted(data)
    if not callable(getattr(estimator, "predict", None)):
        raise UntrustedArtifact("the skops file holds no fitted estimator with predict()")
    names = getattr(estimator, "feature_names_in_", None)
    n_features = getattr(estimator, "n_features_in_", None)
    if n_features is None:
        raise UntrustedArtifact("the estimator is not fitted (no n_features_in_)")
    classes = getattr(estimator, "classes_", None)
    schema = read_schema(data)
    skops_version = schema.get("_skops_version")
    return EstimatorFacts(
        estimator=estimator,
        feature_names=[str(n) for n in names] if names is not None else None,
        n_features=int(n_features),
        has_proba=hasattr(estimator, "predict_proba"),
        classes=[_plain(c) for c in classes] if classes is not None else None,
        estimator_type=f"{type(estimator).__module__}.{type(estimator).__qualname__}",
        sklearn_version=_sklearn_version(schema),
        skops_version=str(skops_version) if skops_version is not None else None,
    )


def _sklearn_version(schema: dict[str, Any]) -> str | None:
    try:
        raw = schema["content"]["content"]["_sklearn_version"]["content"]
        return str(json.loads(raw))
    except (KeyError, TypeError, ValueError):
        return None


def _plain(value: Any) -> Any:
    """numpy scalars to Python scalars, for JSON."""
    return value.item() if hasattr(value, "item") else value
