# -*- test-case-name: tests.formats.test_requests_schema -*-
"""JSON-schema adjustments: Gemini's subset (translators.md §2.4) and object-schema defaults."""

from __future__ import annotations

import json

from cliproxy.formats.json_types import JSON, JSONObject

# Constraints Gemini rejects; their meaning survives as a hint in the description.
_HINT_KEYS = (
    "minLength",
    "maxLength",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "pattern",
    "minItems",
    "maxItems",
    "uniqueItems",
    "format",
    "default",
    "examples",
)
_HINT_KEY_SET = frozenset(_HINT_KEYS)
_DROP_KEYS = frozenset(
    _HINT_KEYS
    + (
        "$schema",
        "$defs",
        "definitions",
        "const",
        "$ref",
        "$id",
        "additionalProperties",
        "propertyNames",
        "patternProperties",
        "enumTitles",
        "prefill",
        "deprecated",
        "nullable",
        "title",
    )
)
_RESPONSE_DROP_KEYS = _DROP_KEYS - {"additionalProperties"}
_PLACEHOLDER_REASON = "Brief explanation of why you are calling this tool"


def clean_schema_for_gemini(schema: JSON, *, response: bool = False) -> JSONObject:
    """A copy of `schema` reduced to what Gemini's function declarations accept.

    Unsupported keywords are removed and, where they carry meaning for the model (enums,
    bounds, formats, alternatives), restated as a hint in `description`. A `response`
    schema (`generationConfig.responseJsonSchema`) keeps `additionalProperties`, which
    Gemini's structured output honours.
    """
    if not isinstance(schema, dict):
        return {"type": "object", "properties": {}}
    drop = _RESPONSE_DROP_KEYS if response else _DROP_KEYS
    cleaned, _nullable = _clean(_tree_copy(schema), drop)
    return cleaned


def _tree_copy(node: JSONObject) -> JSONObject:
    """A copy of a parsed JSON object whose dicts and lists are all new (what _clean may
    change in place). Not copy.deepcopy: its memo and dispatch cost about four times as
    much, and a parsed body shares no objects that the memo would have to preserve."""
    return {k: _copy_value(v) for k, v in node.items()}


def _copy_value(value: JSON) -> JSON:
    if isinstance(value, dict):
        return {k: _copy_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy_value(v) for v in value]
    return value  # str, number, bool, None: immutable


def _hint(node: JSONObject, hint: str) -> None:
    desc = node.get("description")
    node["description"] = f"{desc} ({hint})" if isinstance(desc, str) and desc else hint


def _fmt(value: JSON) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _rank(member: JSON) -> int:
    if not isinstance(member, dict):
        return -1
    kind = member.get("type")
    if kind == "object" or "properties" in member:
        return 3
    if kind == "array" or "items" in member:
        return 2
    if kind not in (None, "null"):
        return 1
    return 0


def _clean(node: JSONObject, drop: frozenset[str]) -> tuple[JSONObject, bool]:
    """Clean one schema node (children first); returns it and whether it admitted null."""
    if "$ref" in node:
        return _ref_stub(node), False
    # Children first: the parent's decisions (required, nullable) depend on them.
    _clean_children(node, drop)
    _hint_constraints(node, drop)
    _merge_all_of(node)
    node, nullable = _collapse_unions(node)
    nullable = _single_type(node) or nullable
    _drop_unsupported(node, drop)
    return node, nullable


def _ref_stub(node: JSONObject) -> JSONObject:
    """Gemini cannot follow `$ref`: an object that names what it referred to."""
    ref = str(node["$ref"]).rsplit("/", 1)[-1]
    out: JSONObject = {"type": "object"}
    if isinstance(node.get("description"), str) and node["description"]:
        out["description"] = node["description"]
    _hint(out, f"See: {ref}")
    return out


def _clean_children(node: JSONObject, drop: frozenset[str]) -> None:
    """Clean properties, items and union members in place; a nullable property is optional."""
    props = node.get("properties")
    if isinstance(props, dict):
        required = node.get("required")
        for key in list(props):
            child = props[key]
            if not isinstance(child, dict):
                continue
            cleaned, nullable = _clean(child, drop)
            if nullable:
                _hint(cleaned, "nullable")
                if isinstance(required, list) and key in required:
                    required.remove(key)
            props[key] = cleaned
    items = node.get("items")
    if isinstance(items, dict):
        node["items"] = _clean(items, drop)[0]
    elif isinstance(items, list):
        node["items"] = [_clean(i, drop)[0] if isinstance(i, dict) else i for i in items]
    for key in ("allOf", "anyOf", "oneOf"):
        members = node.get(key)
        if isinstance(members, list):
            node[key] = [_clean(m, drop)[0] if isinstance(m, dict) else m for m in members]


def _hint_constraints(node: JSONObject, drop: frozenset[str]) -> None:
    """Enums become string enums; constraints Gemini ignores survive as description hints."""
    if "const" in node and "enum" not in node:
        node["enum"] = [node["const"]]
    enum = node.get("enum")
    if isinstance(enum, list):
        node["enum"] = [_fmt(v) for v in enum]
        node["type"] = "string"
        if 2 <= len(enum) <= 10:
            _hint(node, "Allowed: " + ", ".join(node["enum"]))
    if node.get("additionalProperties") is False and "additionalProperties" in drop:
        _hint(node, "No extra properties allowed")
    if node.keys().isdisjoint(_HINT_KEY_SET):  # most nodes: one test, not eleven
        return
    for key in _HINT_KEYS:
        if key in node:
            _hint(node, f"{key}: {_fmt(node[key])}")


def _merge_all_of(node: JSONObject) -> None:
    """Fold `allOf` members' properties and required names into the node itself."""
    all_of = node.pop("allOf", None)
    if not isinstance(all_of, list):
        return
    for member in all_of:
        if not isinstance(member, dict):
            continue
        if isinstance(member.get("properties"), dict):
            node.setdefault("properties", {}).update(member["properties"])
            node.setdefault("type", "object")
        if isinstance(member.get("required"), list):
            req = node.setdefault("required", [])
            req.extend(r for r in member["required"] if r not in req)


def _collapse_unions(node: JSONObject) -> tuple[JSONObject, bool]:
    """Replace `anyOf`/`oneOf` by their richest member; also whether a member was null."""
    nullable = False
    for key in ("anyOf", "oneOf"):
        members = node.pop(key, None)
        if not isinstance(members, list) or not members:
            continue
        types = [m.get("type") for m in members if isinstance(m, dict)]
        nullable = nullable or "null" in types
        offered = [t for t in types if isinstance(t, str) and t != "null"]
        best = max(members, key=_rank)
        if isinstance(best, dict):
            merged = dict(best)
            if isinstance(node.get("description"), str) and node["description"]:
                merged["description"] = node["description"]
            for k, v in node.items():
                merged.setdefault(k, v)
            node = merged
        if len(set(offered)) > 1:
            _hint(node, "Accepts: " + " | ".join(dict.fromkeys(offered)))
    return node, nullable


def _single_type(node: JSONObject) -> bool:
    """A list of types becomes its first non-null one; True if the list admitted null."""
    kind = node.get("type")
    if not isinstance(kind, list):
        return False
    non_null = [t for t in kind if t != "null"]
    node["type"] = non_null[0] if non_null else "string"
    if len(non_null) > 1:
        _hint(node, "Accepts: " + " | ".join(non_null))
    return "null" in kind


def _drop_unsupported(node: JSONObject, drop: frozenset[str]) -> None:
    """Drop keywords Gemini rejects, placeholder properties and required names not declared."""
    for key in list(node):
        if key in drop or key.startswith("x-"):
            del node[key]
    props = node.get("properties")
    if isinstance(props, dict):
        props.pop("_", None)
        reason = props.get("reason")
        if (
            len(props) == 1
            and isinstance(reason, dict)
            and reason.get("description") == _PLACEHOLDER_REASON
        ):
            del props["reason"]
    required = node.get("required")
    if isinstance(required, list):
        names = props if isinstance(props, dict) else {}
        required = [r for r in required if r in names]
        if required:
            node["required"] = required
        else:
            del node["required"]


def object_schema(schema: JSON) -> JSONObject:
    """A tool input schema as Claude and the OpenAI APIs want it: an object with properties,
    and every nested `type: object` with a `properties` map too (some OpenAI-compatible
    servers refuse an object schema without one)."""
    if not isinstance(schema, dict):
        return {"type": "object", "properties": {}}
    out = _flatten_root_unions(schema)
    out.setdefault("type", "object")
    filled = _with_properties(out)
    assert isinstance(filled, dict)
    return filled


def _flatten_root_unions(schema: JSONObject) -> JSONObject:
    """A copy of a tool schema without `anyOf`/`oneOf`/`allOf` at its root, which Anthropic
    and OpenAI refuse there: the properties of every branch that can be an object join the
    root's (the root's own first, then earlier branches first), `allOf` branches also add
    their required names, and the root is `type: object`. A union of alternatives thus
    accepts any of them, its "one of these is required" rules left to the description."""
    unions = [k for k in ("anyOf", "oneOf", "allOf") if k in schema]
    if not unions:
        return dict(schema)
    out = {k: v for k, v in schema.items() if k not in unions}
    props = dict(out["properties"]) if isinstance(out.get("properties"), dict) else {}
    required = [r for r in out.get("required") or [] if isinstance(r, str)]
    for key in unions:
        for branch in list_of_dicts(schema[key]):
            if not _can_be_object(branch):
                continue
            for name, prop in (branch.get("properties") or {}).items():
                props.setdefault(name, prop)
            if key == "allOf":
                required += [r for r in branch.get("required") or [] if r not in required]
    out["type"] = "object"
    out["properties"] = props
    if required:
        out["required"] = required
    return out


def list_of_dicts(value: JSON) -> list[JSONObject]:
    """The objects of a list (nothing when `value` is not a list)."""
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _can_be_object(schema: JSONObject) -> bool:
    kind = schema.get("type", "object")
    return kind == "object" or (isinstance(kind, list) and "object" in kind)


_SUBSCHEMA_LISTS = ("anyOf", "oneOf", "allOf", "prefixItems")
_SUBSCHEMA_MAPS = ("properties", "$defs", "definitions", "patternProperties")


_SUBSCHEMA_NODES = frozenset(("items", "additionalProperties", "not"))
_NESTING_KEYS = _SUBSCHEMA_NODES.union(_SUBSCHEMA_LISTS, _SUBSCHEMA_MAPS)


def _with_properties(node: JSON) -> JSON:
    """Schema `node` where each `type: object` node has a `properties` map: `node` itself
    when nothing in it needs one, else a copy of the nodes on the way to the ones that do.

    Copy on write, and one pass over each node's own keys, because copying every node of
    twenty tool schemas dominated translating a long request. Sharing unchanged nodes with
    the client's body is safe: nothing after translation writes inside a tool schema
    (payload rules work on a deep copy, the Gemini cleaner deep-copies, executors only set
    top-level keys)."""
    if not isinstance(node, dict):
        return node
    if node.keys().isdisjoint(_NESTING_KEYS):  # a leaf, most nodes: one C-level test
        if node.get("type") == "object":
            return {**node, "properties": {}}
        return node
    changed: JSONObject = {}
    for key, sub in node.items():
        filled: JSON
        if isinstance(sub, dict):
            if key in _SUBSCHEMA_MAPS:
                filled = {k: _with_properties(v) for k, v in sub.items()}
                if all(filled[k] is v for k, v in sub.items()):
                    continue
            elif key in _SUBSCHEMA_NODES:
                filled = _with_properties(sub)
            else:
                continue
        elif isinstance(sub, list) and key in _SUBSCHEMA_LISTS:
            filled = [_with_properties(v) for v in sub]
            if all(a is b for a, b in zip(filled, sub, strict=True)):
                continue
        else:
            continue
        if filled is not sub:
            changed[key] = filled
    if node.get("type") == "object" and not isinstance(node.get("properties"), dict):
        changed["properties"] = {}
    if not changed:
        return node
    out = dict(node)
    out.update(changed)
    return out


#: keys of Gemini's OpenAPI-style `Schema` that JSON Schema (Claude, OpenAI, Codex) lacks
_GEMINI_ONLY_KEYS = frozenset({"propertyOrdering", "property_ordering", "example", "nullable"})
#: keys whose value is a map of property names to schemas (the names are not keywords)
_SCHEMA_MAPS = frozenset({"properties", "$defs", "definitions", "patternProperties"})


def lowercase_types(schema: JSON) -> JSON:
    """A copy of a Gemini-dialect schema as plain JSON Schema.

    Type names are lower-cased (`OBJECT` -> `object`, also inside type lists), Gemini-only
    keys (`propertyOrdering`, `example`) are dropped and `nullable: true` becomes a type list
    with `"null"`, at every depth: properties, items, `anyOf`/`oneOf`/`allOf` branches.
    Property names are never treated as keywords.
    """
    if isinstance(schema, list):
        return [lowercase_types(v) for v in schema]
    if not isinstance(schema, dict):
        return schema
    out: JSONObject = {}
    for key, value in schema.items():
        if key in _GEMINI_ONLY_KEYS:
            continue
        if key == "type":
            out[key] = _lower_type(value)
        elif key in _SCHEMA_MAPS and isinstance(value, dict):
            out[key] = {k: lowercase_types(v) for k, v in value.items()}
        else:
            out[key] = lowercase_types(value)
    if schema.get("nullable") is True and isinstance(out.get("type"), str):
        if out["type"] != "null":
            out["type"] = [out["type"], "null"]
    return out


def _lower_type(value: JSON) -> JSON:
    if isinstance(value, str):
        return value.lower()
    if isinstance(value, list):
        return [v.lower() if isinstance(v, str) else v for v in value]
    return value
