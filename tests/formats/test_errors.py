"""Error bodies come out in the client family's own shape, whatever shape upstream used."""

from __future__ import annotations

import json

from cliproxy.formats import Family
from cliproxy.formats.errors import error_body, error_object, upstream_error_object


def test_each_family_gets_its_own_error_shape_from_the_status():
    assert error_object(Family.OPENAI, 429, "slow down") == {
        "error": {
            "message": "slow down",
            "type": "rate_limit_error",
            "param": None,
            "code": "rate_limit_exceeded",
        }
    }
    assert error_object(Family.CLAUDE, 529, "busy") == {
        "type": "error",
        "error": {"type": "overloaded_error", "message": "busy"},
    }
    assert error_object(Family.GEMINI, 404, "no such model") == {
        "error": {"code": 404, "message": "no such model", "status": "NOT_FOUND"}
    }


def test_unlisted_statuses_fall_back_by_class():
    assert error_object(Family.OPENAI, 503, "m")["error"]["type"] == "server_error"
    assert error_object(Family.OPENAI, 418, "m")["error"]["type"] == "invalid_request_error"
    assert error_object(Family.CLAUDE, 503, "m")["error"]["type"] == "api_error"
    assert error_object(Family.GEMINI, 418, "m")["error"]["status"] == "FAILED_PRECONDITION"


def test_type_code_and_extra_override_and_extend_the_derived_fields():
    body = error_object(
        Family.OPENAI, 400, "m", type="my_type", code="my_code", extra={"param": "model"}
    )
    assert body["error"] == {"message": "m", "type": "my_type", "param": "model", "code": "my_code"}


def test_error_body_is_the_error_object_as_json_bytes():
    raw = error_body(Family.CLAUDE, 401, "bad key", type="authentication_error")
    assert json.loads(raw) == error_object(Family.CLAUDE, 401, "bad key")


def test_a_gemini_error_reaches_an_openai_client_in_openai_shape():
    upstream = b'{"error":{"code":400,"message":"bad","status":"INVALID_ARGUMENT"}}'
    assert upstream_error_object(Family.OPENAI, 400, upstream) == {
        "error": {"message": "bad", "type": "invalid_request_error", "param": None, "code": None}
    }


def test_a_claude_error_reaches_a_gemini_client_with_a_status_name_not_a_type():
    upstream = b'{"type":"error","error":{"type":"authentication_error","message":"key"}}'
    assert upstream_error_object(Family.GEMINI, 401, upstream) == {
        "error": {"code": 401, "message": "key", "status": "UNAUTHENTICATED"}
    }


def test_plain_text_and_empty_upstream_bodies_still_give_a_message():
    assert upstream_error_object(Family.CLAUDE, 502, b"")["error"]["message"] == (
        "upstream returned HTTP 502"
    )
    assert upstream_error_object(Family.OPENAI, 500, b"oops\n")["error"]["message"] == "oops"
    assert upstream_error_object(Family.OPENAI, 500, b'{"error":"flat"}')["error"]["message"] == (
        "flat"
    )
