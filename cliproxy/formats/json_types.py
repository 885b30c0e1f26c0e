"""The JSON boundary: the types of request and response bodies as `json.loads` gives them.

Client and upstream bodies are whatever the sender wrote, so their members are typed `Any`
here, and only here, on purpose: the parsers check each member (`isinstance`, `as_str`, ...)
before use, and everything past them is typed precisely (the request and response IR are
dataclasses). The same aliases type the bodies we build for the wire, which `json.dumps`
takes as they are.
"""

from __future__ import annotations

from typing import Any, TypeAlias

#: Any JSON value (object, array, string, number, boolean or null), its shape not yet checked.
JSON: TypeAlias = Any

#: A JSON object whose members are not yet checked.
JSONObject: TypeAlias = dict[str, JSON]

#: A JSON array whose items are not yet checked.
JSONArray: TypeAlias = list[JSON]

__all__ = ["JSON", "JSONArray", "JSONObject"]
