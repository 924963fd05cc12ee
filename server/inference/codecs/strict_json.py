"""The one JSON reader for request bodies: strict, bounded, never a crash.

What it refuses, as MalformedInput (a 400 at the edge) rather than letting it
through or failing later with a 500:
  * text that is not JSON, or not UTF-8;
  * an object with a duplicated key (JSON leaves it undefined; Python keeps the
    last one, so a record could be stored without what its caller meant);
  * nesting deeper than MAX_DEPTH (the C scanner recurses per level, and 100,000
    nested arrays raise RecursionError);
  * integer literals longer than MAX_INT_DIGITS digits (10**400 parses, then
    overflows the first float conversion).
NaN and Infinity literals are read as floats: schema validation refuses them
where a model does not allow missing values, with a field-level reason.

Speed: most bodies are read by orjson (ten times faster than the standard
library with a per-object hook). What it cannot say, the text says: an object
with a duplicated key has fewer members parsed than colons in the text outside
strings. Whatever orjson refuses or may read otherwise than the standard library
(NaN, 1e400, lone surrogates, integers beyond 64 bits, which it turns into
floats) goes to the standard library's path, which also words every refusal.
"""

from __future__ import annotations

import json
import re
from typing import Any

import numpy as np
import orjson

from governance.errors import MalformedInput

MAX_DEPTH = 64
MAX_INT_DIGITS = 40


def loads(data: bytes | str) -> Any:
    """Parse a request body, or raise MalformedInput saying what is wrong."""
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    value = _read_fast(raw)
    if value is not _UNSURE:
        return value
    _check_depth(raw)
    return _strict_loads(data if isinstance(data, str) else _text(raw))


def _read_fast(raw: bytes) -> Any:
    """orjson, then one walk of what it read: depth, members, and floats that may have
    been integers beyond 64 bits. (Measured: cheaper than vectorised passes over the
    text for one row, and as cheap for a hundred.) `_UNSURE` when the strict path
    must read it."""
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return _UNSURE
    depth, members, maybe_long_integer = _walk(value)
    if depth > MAX_DEPTH or maybe_long_integer:
        return _UNSURE
    if members != raw.count(b":") and members != _members_in_text(raw):
        return _UNSURE  # a key repeated: fewer members read than the text holds
    return value


def _text(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedInput("the body is not UTF-8 text") from None


def _strict_loads(text: str) -> Any:
    try:
        return json.loads(text, object_pairs_hook=_unique_keys, parse_int=_bounded_int)
    except DuplicateKey as exc:
        raise MalformedInput(f"duplicated key {exc.key[:64]!r} in a JSON object") from None
    except IntegerTooLong:
        raise MalformedInput(f"an integer has more than {MAX_INT_DIGITS} digits") from None
    except (ValueError, RecursionError):
        raise MalformedInput("the body is not valid JSON") from None


def _walk(value: Any) -> tuple[int, int, bool]:
    """Depth, object members, and whether a float is integral beyond 64 bits (orjson
    reads such an integer literal as a float; the standard library keeps the int)."""
    depth, members, stack = 0, 0, [([value], 0)]  # wrapped: the value itself is checked
    while stack:
        item, level = stack.pop()
        if type(item) is dict:
            members += len(item)
            values: Any = item.values()
        elif type(item) is list:
            values = item
        else:
            continue
        depth = max(depth, level)
        for v in values:
            if type(v) is float:
                if abs(v) >= _INT64 and v.is_integer():
                    return depth, members, True
            elif type(v) in _CONTAINERS:
                stack.append((v, level + 1))
    return depth, members, False


def _members_in_text(raw: bytes) -> int:
    """Members of valid JSON text: its colons outside strings."""
    if b"\\" in raw:
        raw = _STRING.sub(b'""', raw)
    structure = np.frombuffer(raw.translate(None, _NOT_MEMBERS), np.uint8)
    outside = (np.cumsum(structure == _QUOTE, dtype=np.int32) & 1) == 0
    return int(np.count_nonzero(outside & (structure == _COLON)))


class DuplicateKey(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


class IntegerTooLong(ValueError):
    pass


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise DuplicateKey(key)
            seen.add(key)
    return result


def _bounded_int(text: str) -> int:
    if len(text) > MAX_INT_DIGITS:
        raise IntegerTooLong(text[:8])
    return int(text)


def _check_depth(raw: bytes) -> None:
    """Refuse deep nesting before parsing, without a Python loop over the text.

    Only quotes and brackets matter, so everything else is deleted first (one
    `bytes.translate`, in C). Brackets inside strings do not nest: without
    backslashes a bracket is inside a string exactly when an odd number of
    quotes precede it; with backslashes, strings are blanked out by a regular
    expression first (slower, exact). The running depth is then a cumulative
    sum. Exact for valid JSON; for invalid text the parser that follows says so.
    """
    if raw.count(b"[") + raw.count(b"{") <= MAX_DEPTH:
        return  # cannot be deeper than its number of openers: the common case
    if b"\\" in raw:
        raw = _STRING.sub(b'""', raw)
    structure = np.frombuffer(raw.translate(None, _NOT_STRUCTURE), np.uint8)
    inside = (np.cumsum(structure == _QUOTE, dtype=np.int32) & 1).astype(bool)
    opens = (structure == _BRACKET) | (structure == _BRACE)
    closes = (structure == _BRACKET_END) | (structure == _BRACE_END)
    steps = opens.astype(np.int32) - closes
    steps[inside] = 0
    if int(np.cumsum(steps, dtype=np.int32).max()) > MAX_DEPTH:
        raise MalformedInput(f"the JSON nests deeper than {MAX_DEPTH} levels")


# A JSON string, unrolled so the engine does not backtrack per character.
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_UNSURE = object()  # orjson's reading may differ from the standard library's
# orjson reads an integer beyond 64 bits as a float; no float this large is not integral.
_INT64 = 2.0**63
_NOT_STRUCTURE = bytes(b for b in range(256) if b not in b'"[]{}')
_NOT_MEMBERS = bytes(b for b in range(256) if b not in b'":')
_QUOTE, _COLON = ord('"'), ord(":")
_BRACKET, _BRACKET_END, _BRACE, _BRACE_END = ord("["), ord("]"), ord("{"), ord("}")
_CONTAINERS = (dict, list)
