"""cliproxy.jsonutil: orjson when installed, with the standard library's results.

Both paths are tested on whichever line has orjson; without it the orjson tests skip
and the standard-library path (the one in use) is still tested.
"""

import json
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cliproxy import jsonutil

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)

# documents where orjson and the standard library could disagree, or fail differently
EDGE_DOCUMENTS = [
    b'{"a":1,"a":2}',
    b"NaN",
    b"[Infinity,-Infinity]",
    b"1e400",
    b'"\\ud800"',
    b'"\\udc00x\\ud83d\\ude00"',
    b"18446744073709551616",
    b"-9223372036854775809",
    b"[123456789012345678901234567890]",
    b"9223372036854775807",
    b"\xef\xbb\xbf{}",
    b"-0",
    b"-0.0",
    b"1E5",
    b"0.1",
    b'  {"x": [1, 2.5, "\xc3\xa9"]}\n',
    b"[1,2",
    b"",
    b"{'a':1}",
    b'"\x01"',
    b"\xff",
    b'"' + "é".encode() * 3 + b'"',
]


def same(a, b):
    """Equal as JSON values, NaN included, ints and floats kept apart."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a):
        return math.isnan(b)
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    return a == b


def outcome(fn, doc):
    try:
        return "ok", fn(doc)
    except Exception as e:  # noqa: BLE001 - the exception is the result compared
        return type(e), str(e)


def check_loads_like_stdlib(loads):
    for doc in EDGE_DOCUMENTS:
        for given_doc in (doc, doc.decode("utf-8", "replace")):
            got, want = outcome(loads, given_doc), outcome(json.loads, given_doc)
            assert got[0] == want[0], given_doc
            if got[0] == "ok":
                assert same(got[1], want[1]), given_doc
            else:
                assert got[1] == want[1], given_doc


@pytest.fixture
def fast():
    pytest.importorskip("orjson")
    return jsonutil.fast_loads, jsonutil.fast_dumps


def test_stdlib_path_loads_and_dumps_as_before():
    check_loads_like_stdlib(jsonutil.std_loads)
    assert jsonutil.std_dumps({"a": [1, "é", None]}) == '{"a":[1,"é",null]}'.encode()
    assert jsonutil.std_dumps(["\ud800"]) == b'["\\ud800"]'
    assert jsonutil.std_dumps([float("nan")]) == b"[NaN]"
    assert jsonutil.std_dumps({1: 2**70}) == b'{"1":1180591620717411303424}'


def test_backend_in_use_is_the_one_installed():
    try:
        import orjson  # noqa: F401
    except ImportError:
        assert jsonutil.BACKEND == "json" and jsonutil.loads is jsonutil.std_loads
    else:
        assert jsonutil.BACKEND == "orjson" and jsonutil.dumps is jsonutil.fast_dumps


def test_orjson_path_parses_every_edge_document_like_the_stdlib(fast):
    loads, _ = fast
    check_loads_like_stdlib(loads)


def test_orjson_path_keeps_big_integers_exact(fast):
    loads, dumps = fast
    big = [2**64, -(2**63) - 1, 10**30, 2**63 - 1]
    assert loads(json.dumps(big)) == big
    assert all(type(v) is int for v in loads(json.dumps(big)))
    assert dumps(big) == json.dumps(big, separators=(",", ":")).encode()


def test_orjson_path_escapes_lone_surrogates_like_the_stdlib(fast):
    _, dumps = fast
    value = {"t": "a\ud800b", "é": "ok"}
    assert dumps(value) == jsonutil.std_dumps(value)
    assert dumps(value) == b'{"t":"a\\ud800b","\\u00e9":"ok"}'


def test_orjson_path_writes_non_string_keys_like_the_stdlib(fast):
    _, dumps = fast
    assert dumps({1: True, "x": None}) == b'{"1":true,"x":null}'


def test_orjson_path_differs_only_in_the_documented_spellings(fast):
    _, dumps = fast
    assert dumps([float("nan"), float("inf")]) == b"[null,null]"  # stdlib: [NaN,Infinity]
    assert dumps([1e-7]) == b"[1e-7]" and json.loads(dumps([1e-7])) == [1e-7]


@given(json_values)
def test_both_paths_round_trip_and_agree(value):
    std = jsonutil.std_dumps(value)
    assert same(jsonutil.std_loads(std), value)
    assert same(jsonutil.loads(std), value)
    out = jsonutil.dumps(value)
    assert same(json.loads(out), value)
    if "e-" not in std.decode("utf-8", "replace"):  # no small-exponent float
        assert out == std
