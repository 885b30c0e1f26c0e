# -*- test-case-name: tests.test_jsonutil -*-
"""JSON on the request path: orjson when it is installed (`pip install cliproxy[fast]`),
the standard library otherwise, with the standard library's results.

`loads` gives what `json.loads` gives: orjson parses, and whatever it refuses or
might read differently goes to `json.loads`, which answers (or raises its own error,
so error messages do not change): `NaN`/`Infinity`, numbers beyond a double, lone
surrogates, a BOM, non-UTF-8 bytes, and any integer of 19 or more digits (orjson
reads those beyond 64 bits as floats, losing digits).

`dumps` gives compact UTF-8 (`separators=(",", ":")`, `ensure_ascii=False`), with a
lone surrogate `\\u`-escaped (the whole document then in ASCII), big integers and
non-string keys as `json.dumps` writes them (orjson refuses those; the standard
library writes them). Two spellings differ with orjson, both the same JSON value or
better: a float with a small exponent is written `1e-7` (the standard library:
`1e-07`), and NaN/Infinity become `null` (the standard library writes the tokens
`NaN`/`Infinity`, which are not JSON and which strict clients reject).
"""

from __future__ import annotations

import json
from typing import Any

try:
    import orjson
except ImportError:  # the standard library only
    orjson = None  # type: ignore[assignment]

#: an integer literal orjson may read as a float (or 19+ digits anywhere: then the
#: standard library parses, which is only slower). Found as a run of b"0" once every
#: ASCII digit is mapped to b"0" and every other byte to b" ": a translate and a substring
#: search are ~10x cheaper than searching for the regex \d{19}, on every body parsed.
_DIGITS_AS_ZEROS = bytes(0x30 if 0x30 <= c <= 0x39 else 0x20 for c in range(256))
_LONG_DIGITS = b"0" * 19


def _long_digits(raw: bytes | bytearray) -> bool:
    """Whether `raw` holds 19 or more ASCII digits in a row."""
    return _LONG_DIGITS in raw.translate(_DIGITS_AS_ZEROS)


def std_loads(data: bytes | bytearray | str) -> Any:
    return json.loads(data)


def std_dumps(obj: Any) -> bytes:
    try:
        return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: \u-escape it
        return json.dumps(obj, separators=(",", ":")).encode("ascii")


def fast_loads(data: bytes | bytearray | str) -> Any:
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    if not _long_digits(raw):
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            pass
    return json.loads(data)


def fast_dumps(obj: Any) -> bytes:
    try:
        return orjson.dumps(obj)
    except TypeError:  # surrogates, integers beyond 64 bits, non-str keys...
        return std_dumps(obj)


#: which implementation is in use: "orjson" or "json"
BACKEND = "json" if orjson is None else "orjson"
loads = std_loads if orjson is None else fast_loads
dumps = std_dumps if orjson is None else fast_dumps


__all__ = ["BACKEND", "dumps", "loads"]
