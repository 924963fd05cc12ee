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
"""

from __future__ import annotations

import json
import re
from typing import Any

import numpy as np

from governance.errors import MalformedInput

MAX_DEPTH = 64
MAX_INT_DIGITS = 40


def loads(data: bytes | str) -> Any:
    """Parse a request body, or raise MalformedInput saying what is wrong."""
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError:
            raise MalformedInput("the body is not UTF-8 text") from None
    _check_depth(data)
    try:
        return json.loads(data, object_pairs_hook=_unique_keys, parse_int=_bounded_int)
    except DuplicateKey as exc:
        raise MalformedInput(f"duplicated key {exc.key[:64]!r} in a JSON object") from None
    except IntegerTooLong:
        raise MalformedInput(f"an integer has more than {MAX_INT_DIGITS} digits") from None
    except (ValueError, RecursionError):
        raise MalformedInput("the body is not valid JSON") from None


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


def _check_depth(text: str) -> None:
    """Refuse deep nesting before parsing, without a Python loop over the text.

    Only quotes and brackets matter, so everything else is deleted first (one
    `bytes.translate`, in C). Brackets inside strings do not nest: without
    backslashes a bracket is inside a string exactly when an odd number of
    quotes precede it; with backslashes, strings are blanked out by a regular
    expression first (slower, exact). The running depth is then a cumulative
    sum. Exact for valid JSON; for invalid text the parser that follows says so.
    """
    if text.count("[") + text.count("{") <= MAX_DEPTH:
        return  # cannot be deeper than its number of openers: the common case
    if "\\" in text:
        text = _STRING.sub('""', text)
    structure = np.frombuffer(text.encode("utf-8").translate(None, _NOT_STRUCTURE), np.uint8)
    inside = (np.cumsum(structure == _QUOTE, dtype=np.int32) & 1).astype(bool)
    steps = np.isin(structure, _OPENERS).astype(np.int32) - np.isin(structure, _CLOSERS)
    steps[inside] = 0
    if int(np.cumsum(steps, dtype=np.int32).max()) > MAX_DEPTH:
        raise MalformedInput(f"the JSON nests deeper than {MAX_DEPTH} levels")


# A JSON string, unrolled so the engine does not backtrack per character.
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_STRUCTURE = bytes(b for b in range(256) if b not in b'"[]{}')
_QUOTE = ord('"')
_OPENERS = np.frombuffer(b"[{", np.uint8)
_CLOSERS = np.frombuffer(b"]}", np.uint8)
