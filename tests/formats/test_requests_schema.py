"""Gemini schema cleaning (translators.md §2.4) and the object-schema defaults."""

from __future__ import annotations

from cliproxy.formats.requests.schema import clean_schema_for_gemini, lowercase_types, object_schema


def test_refs_consts_enums_and_hints():
    schema = {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "$defs": {"Pt": {"type": "object"}},
        "type": "object",
        "title": "Args",
        "properties": {
            "where": {"$ref": "#/$defs/Pt", "description": "A point"},
            "mode": {"const": "fast"},
            "level": {"type": "integer", "enum": [1, 2, 3]},
            "name": {"type": "string", "minLength": 1, "pattern": "^[a-z]+$", "format": "email"},
            "x-meta": {"type": "string", "x-internal": True},
        },
        "additionalProperties": False,
        "x-vendor": 1,
    }
    assert clean_schema_for_gemini(schema) == {
        "type": "object",
        "properties": {
            "where": {"type": "object", "description": "A point (See: Pt)"},
            "mode": {"enum": ["fast"], "type": "string"},
            "level": {"type": "string", "enum": ["1", "2", "3"], "description": "Allowed: 1, 2, 3"},
            "name": {
                "type": "string",
                "description": "minLength: 1 (pattern: ^[a-z]+$) (format: email)",
            },
            # a property may be called x-anything: only schema keywords are dropped
            "x-meta": {"type": "string"},
        },
        "description": "No extra properties allowed",
    }


def test_any_of_picks_the_richest_branch_and_nullable_leaves_required():
    schema = {
        "type": "object",
        "properties": {
            "target": {
                "description": "Where",
                "anyOf": [
                    {"type": "string"},
                    {"type": "object", "properties": {"id": {"type": "string"}}},
                ],
            },
            "note": {"anyOf": [{"type": "string"}, {"type": "null"}]},
            "count": {"type": ["integer", "string", "null"]},
        },
        "required": ["target", "note", "count", "ghost"],
    }
    out = clean_schema_for_gemini(schema)
    assert out["properties"]["target"] == {
        "type": "object",
        "properties": {"id": {"type": "string"}},
        "description": "Where (Accepts: string | object)",
    }
    assert out["properties"]["note"] == {"type": "string", "description": "nullable"}
    assert out["properties"]["count"] == {
        "type": "integer",
        "description": "Accepts: integer | string (nullable)",
    }
    assert out["required"] == ["target"]


def test_all_of_merges_and_placeholders_go():
    schema = {
        "allOf": [
            {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]},
            {"properties": {"b": {"type": "number"}}, "required": ["b"]},
        ],
        "properties": {"_": {"type": "string"}},
    }
    out = clean_schema_for_gemini(schema)
    assert out == {
        "properties": {"a": {"type": "string"}, "b": {"type": "number"}},
        "type": "object",
        "required": ["a", "b"],
    }
    reason_only = {
        "type": "object",
        "properties": {
            "reason": {
                "type": "string",
                "description": "Brief explanation of why you are calling this tool",
            }
        },
        "required": ["reason"],
    }
    assert clean_schema_for_gemini(reason_only) == {"type": "object", "properties": {}}


def test_cleaning_leaves_the_input_alone_and_tolerates_junk():
    schema = {"type": "object", "properties": {"a": {"type": "string", "default": "x"}}}
    clean_schema_for_gemini(schema)
    assert schema["properties"]["a"]["default"] == "x"
    assert clean_schema_for_gemini("nope") == {"type": "object", "properties": {}}
    assert clean_schema_for_gemini({"items": [{"title": "t"}, 3], "anyOf": [1]}) == {
        "items": [{}, 3]
    }


def test_object_schema_and_lowercase_types():
    assert object_schema(None) == {"type": "object", "properties": {}}
    assert object_schema({"properties": {"a": {}}}) == {"type": "object", "properties": {"a": {}}}
    gem = {
        "type": "OBJECT",
        "properties": {"type": {"type": "STRING"}},
        "items": {"type": "NUMBER"},
    }
    assert lowercase_types(gem) == {
        "type": "object",
        "properties": {"type": {"type": "string"}},
        "items": {"type": "number"},
    }


def test_gemini_dialect_becomes_json_schema_at_every_depth():
    gem = {
        "type": "OBJECT",
        "propertyOrdering": ["choice", "propertyOrdering"],
        "properties": {
            "choice": {
                "anyOf": [{"type": "STRING", "example": "x"}, {"type": "INTEGER"}],
                "nullable": True,
            },
            "propertyOrdering": {"type": "ARRAY", "items": {"type": "BOOLEAN", "nullable": True}},
            "both": {"type": ["STRING", "NULL"]},
        },
    }
    assert lowercase_types(gem) == {
        "type": "object",
        "properties": {
            "choice": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
            "propertyOrdering": {"type": "array", "items": {"type": ["boolean", "null"]}},
            "both": {"type": ["string", "null"]},
        },
    }


def test_response_schemas_keep_additional_properties_for_gemini():
    schema = {
        "type": "object",
        "properties": {"a": {"type": "string"}},
        "additionalProperties": False,
    }
    assert clean_schema_for_gemini(schema, response=True)["additionalProperties"] is False
    assert "additionalProperties" not in clean_schema_for_gemini(schema)


def test_object_schema_gives_every_nested_object_its_properties():
    schema = {
        "type": "object",
        "properties": {
            "nested": {"type": "object"},
            "list": {"type": "array", "items": {"type": "object"}},
            "either": {"anyOf": [{"type": "object"}, {"type": "string"}]},
            "properties": {"type": "string"},
        },
    }
    out = object_schema(schema)
    props = out["properties"]
    assert props["nested"] == {"type": "object", "properties": {}}
    assert props["list"]["items"] == {"type": "object", "properties": {}}
    assert props["either"]["anyOf"][0] == {"type": "object", "properties": {}}
    assert props["properties"] == {"type": "string"}  # a property name, not a keyword
    assert schema["properties"]["nested"] == {"type": "object"}  # the input is not modified
    assert schema["properties"]["list"]["items"] == {"type": "object"}
    assert schema["properties"]["either"]["anyOf"][0] == {"type": "object"}


def test_object_schema_flattens_root_unions():
    branches = [
        {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]},
        {"properties": {"b": {"type": "integer"}, "a": {"type": "number"}}},
        {"type": "string"},
    ]
    union = {"anyOf": branches, "description": "d"}
    assert object_schema(union) == {
        "description": "d",
        "type": "object",
        "properties": {"a": {"type": "string"}, "b": {"type": "integer"}},
    }
    assert union["anyOf"] is branches  # the input is not changed
    constraint = {
        "type": "object",
        "properties": {"a": {"type": "string"}, "b": {"type": "string"}},
        "oneOf": [{"required": ["a"]}, {"required": ["b"]}],
    }
    flat = object_schema(constraint)
    assert "oneOf" not in flat and "required" not in flat
    assert set(flat["properties"]) == {"a", "b"}
    merged = object_schema(
        {
            "required": ["x"],
            "properties": {"x": {"type": "string"}},
            "allOf": [{"properties": {"y": {"type": "object"}}, "required": ["y", "x"]}],
        }
    )
    assert merged["required"] == ["x", "y"]
    assert merged["properties"]["y"] == {"type": "object", "properties": {}}
