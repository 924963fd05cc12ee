"""The canonical serialisation and hash of an audit record: golden vectors."""

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from governance.audit.chain import GENESIS, HASHED_FIELDS, canonical_bytes, record_hash

RECORD = {
    "seq": 1,
    "at": "2026-01-02T03:04:05.000006Z",
    "request_id": "req-1",
    "kind": "prediction",
    "outcome": "ok",
    "status": 200,
    "actor_type": "key",
    "actor_id": "7",
    "actor_role": "predictor",
    "endpoint": "native",
    "model_name": "iris",
    "model_version": 2,
    "artifact_sha256": "ab" * 32,
    "purpose": "crédito",
    "subjects": ["p1", None],
    "payload": [{"k": "key1", "c": "Y2lwaGVy"}],
    "details": {"rows": 2, "latency_ms": 3},
    "prev_hash": GENESIS,
}
# Written out by hand from the rules in governance/audit/chain.py: sorted keys at every
# depth, no white space, UTF-8 (not \u escapes), null for None.
CANONICAL = (
    '{"actor_id":"7","actor_role":"predictor","actor_type":"key","artifact_sha256":"'
    + "ab" * 32
    + '","at":"2026-01-02T03:04:05.000006Z","details":{"latency_ms":3,"rows":2},'
    '"endpoint":"native","kind":"prediction","model_name":"iris","model_version":2,'
    '"outcome":"ok","payload":[{"c":"Y2lwaGVy","k":"key1"}],"prev_hash":"' + GENESIS + '",'
    '"purpose":"crédito","request_id":"req-1","seq":1,"status":200,"subjects":["p1",null]}'
)
GOLDEN = "fbd99c4c5053cee31421c7905e2e922e02511a4db47adba3d66fa38913b6dcfb"


def test_canonical_form_is_exactly_the_documented_bytes() -> None:
    assert canonical_bytes(RECORD) == CANONICAL.encode("utf-8")


def test_hash_is_sha256_of_the_canonical_bytes() -> None:
    expected = hashlib.sha256(CANONICAL.encode("utf-8")).hexdigest()
    assert record_hash(RECORD) == expected
    assert record_hash(dict(reversed(list(RECORD.items())))) == expected  # order-free


def test_golden_vector_is_stable() -> None:
    # If this changes, every existing log stops verifying: a format change needs a
    # new format name, not an edit here.
    assert record_hash(RECORD) == GOLDEN


def test_any_field_change_changes_the_hash() -> None:
    for name in HASHED_FIELDS:
        changed = dict(RECORD)
        changed[name] = "x" if not isinstance(RECORD[name], str) else RECORD[name] + "x"
        assert record_hash(changed) != record_hash(RECORD), name


def test_floats_and_missing_fields_are_refused() -> None:
    with pytest.raises(TypeError):
        record_hash(RECORD | {"details": {"latency": 1.5}})
    with pytest.raises(ValueError):
        record_hash({k: v for k, v in RECORD.items() if k != "purpose"})


def test_plain_documents_read_back_and_older_nan_rows_still_open() -> None:
    import math

    from governance.audit.chain import plain_bytes, read_plain

    assert read_plain(plain_bytes({"x": [1.5, None, "a"]})) == {"x": [1.5, None, "a"]}
    older = read_plain(b'{"input": {"x": NaN}}')  # json.dumps wrote NaN before orjson
    assert math.isnan(older["input"]["x"])


def test_the_template_fills_in_the_golden_vector() -> None:
    from governance.audit.chain import CHAIN_FIELDS, CanonicalTemplate

    template = CanonicalTemplate({k: v for k, v in RECORD.items() if k not in CHAIN_FIELDS})
    chained = {"seq": RECORD["seq"], "at": RECORD["at"], "prev_hash": RECORD["prev_hash"]}
    assert template.canonical(**chained) == CANONICAL.encode("utf-8")
    assert template.hash(**chained) == GOLDEN
    with pytest.raises(ValueError):
        CanonicalTemplate(dict(RECORD))  # the chain's own fields are not the template's
    with pytest.raises(TypeError):
        CanonicalTemplate({k: v for k, v in RECORD.items() if k not in CHAIN_FIELDS} | {
            "details": {"latency": 1.5}
        })  # fmt: skip


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(
    fields=st.fixed_dictionaries(
        {name: _JSON for name in HASHED_FIELDS if name not in ("seq", "at", "prev_hash")}
    ),
    seq=st.integers(1, 2**62),
    at=st.text(min_size=1),
    prev_hash=st.text(min_size=1),
)
def test_the_template_is_byte_for_byte_the_canonical_form(
    fields: dict, seq: int, at: str, prev_hash: str
) -> None:
    """What the chain hashes under its lock (the template) is what verification
    recomputes (`record_hash` over the whole record), for any record."""
    from governance.audit.chain import CanonicalTemplate

    whole = fields | {"seq": seq, "at": at, "prev_hash": prev_hash}
    template = CanonicalTemplate(fields)
    assert template.canonical(seq=seq, at=at, prev_hash=prev_hash) == canonical_bytes(whole)
    assert template.hash(seq=seq, at=at, prev_hash=prev_hash) == record_hash(whole)
