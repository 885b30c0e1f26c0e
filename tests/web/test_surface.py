"""The HTTP surface: health, index, models, client keys in every place and family shape,
CORS, JSON errors, the access log."""

from __future__ import annotations

import pytest
from twisted.logger import LogLevel, capturedLogs

from cliproxy.app import build_app
from cliproxy.config import parse_config
from cliproxy.config.watcher import ConfigStore
from tests.web.httpwire import Wire, new_clock, one, request_bytes

KEYS_YAML = """
host: 127.0.0.1
port: 8317
api-keys:
  - sk-client-alpha-1111
  - sk-client-beta-2222
"""


def make_site(yaml_text: str = KEYS_YAML):
    clock = new_clock()
    store = ConfigStore(parse_config(yaml_text))
    site = build_app(store, clock).site
    return site, store, clock


def test_healthz_needs_no_key():
    site, _, _ = make_site()
    a = one(site, "GET", "/healthz")
    assert a.status == 200
    assert a.json() == {"status": "ok"}
    assert a.header("x-request-id")


def test_index_lists_name_version_endpoints():
    site, _, _ = make_site()
    a = one(site, "GET", "/")
    body = a.json()
    assert a.status == 200
    assert body["name"] == "cliproxy"
    assert "GET /v1/models" in body["endpoints"]
    assert body["version"]


def test_models_without_key_is_401_in_openai_shape():
    site, _, _ = make_site()
    a = one(site, "GET", "/v1/models")
    assert a.status == 401
    err = a.json()["error"]
    assert err["type"] == "authentication_error"
    assert "Missing API key" in err["message"]


def test_models_wrong_key_is_401_invalid():
    site, _, _ = make_site()
    a = one(site, "GET", "/v1/models", {"Authorization": "Bearer sk-nope"})
    assert a.status == 401
    assert a.json()["error"]["message"] == "Invalid API key"


@pytest.mark.parametrize(
    "headers,path",
    [
        ({"Authorization": "Bearer sk-client-alpha-1111"}, "/v1/models"),
        ({"Authorization": "sk-client-alpha-1111"}, "/v1/models"),
        ({"x-api-key": "sk-client-beta-2222"}, "/v1/models"),
        ({"x-goog-api-key": "sk-client-beta-2222"}, "/v1/models"),
        ({}, "/v1/models?key=sk-client-alpha-1111"),
        ({}, "/v1/models?auth_token=sk-client-alpha-1111"),
    ],
)
def test_key_accepted_in_every_place(headers, path):
    site, _, _ = make_site()
    a = one(site, "GET", path, headers)
    assert a.status == 200
    assert a.json()["object"] == "list"


def test_amp_placeholder_goog_key_next_to_valid_bearer_is_not_a_failure():
    site, _, _ = make_site()
    a = one(
        site,
        "GET",
        "/v1/models",
        {"Authorization": "Bearer sk-client-alpha-1111", "x-goog-api-key": "placeholder"},
    )
    assert a.status == 200


def test_claude_cli_user_agent_gets_claude_shape():
    site, _, _ = make_site()
    a = one(
        site,
        "GET",
        "/v1/models",
        {"x-api-key": "sk-client-alpha-1111", "User-Agent": "claude-cli/2.0.1 (external, cli)"},
    )
    assert a.status == 200
    assert set(a.json()) >= {"data", "has_more", "first_id", "last_id"}


def test_gemini_models_401_in_gemini_shape():
    site, _, _ = make_site()
    a = one(site, "GET", "/v1beta/models")
    assert a.status == 401
    err = a.json()["error"]
    assert err["code"] == 401
    assert err["status"] == "UNAUTHENTICATED"


def test_gemini_models_listing_with_key():
    site, _, _ = make_site()
    a = one(site, "GET", "/v1beta/models?key=sk-client-beta-2222")
    assert a.status == 200
    assert "models" in a.json()


def test_claude_family_path_401_in_claude_shape():
    site, _, _ = make_site()
    a = one(site, "POST", "/v1/messages/nope", {"Content-Type": "application/json"}, b"{}")
    assert a.status == 401  # refused from the headers, before the path is looked up
    assert a.json()["error"]["type"] == "authentication_error"
    a = one(
        site,
        "POST",
        "/v1/messages/nope",
        {"Content-Type": "application/json", "x-api-key": "sk-client-alpha-1111"},
        b"{}",
    )
    assert a.status == 404
    assert a.json()["type"] == "error"
    assert a.json()["error"]["type"] == "not_found_error"


def test_unknown_path_is_json_404():
    site, _, _ = make_site()
    a = one(site, "GET", "/nope/at/all")
    assert a.status == 404
    assert a.header("content-type") == "application/json"
    assert "no route" in a.json()["error"]["message"]


CORS_YAML = KEYS_YAML + "cors:\n  allow-origins: [http://x.example]\n"


def test_options_from_an_allowed_origin_is_204_with_cors():
    site, _, _ = make_site(CORS_YAML)
    a = one(site, "OPTIONS", "/v1/chat/completions", {"Origin": "http://x.example"})
    assert a.status == 204
    assert a.header("access-control-allow-origin") == "http://x.example"
    assert "POST" in a.header("access-control-allow-methods")
    assert a.header("vary") == "Origin"


def test_options_from_other_origins_is_403_and_without_origin_204_bare():
    site, _, _ = make_site()
    a = one(site, "OPTIONS", "/v1/chat/completions", {"Origin": "http://x.example"})
    assert a.status == 403
    assert a.header("access-control-allow-origin") is None
    a = one(site, "OPTIONS", "/v1/chat/completions")
    assert a.status == 204
    assert a.header("access-control-allow-origin") is None


def test_api_routes_carry_cors_headers_for_allowed_origins_only():
    site, _, _ = make_site(CORS_YAML)
    key = {"x-api-key": "sk-client-alpha-1111"}
    a = one(site, "GET", "/v1/models", {**key, "Origin": "http://x.example"})
    assert a.header("access-control-allow-origin") == "http://x.example"
    a = one(site, "GET", "/v1/models", key)
    assert a.status == 200 and a.header("access-control-allow-origin") is None


def test_wrong_method_is_405_json():
    site, _, _ = make_site()
    a = one(site, "DELETE", "/v1/models", {"x-api-key": "sk-client-alpha-1111"})
    assert a.status == 405
    assert "GET" in a.header("allow")


def test_empty_api_keys_means_open_access():
    site, _, _ = make_site("host: 127.0.0.1\nport: 8317\n")
    a = one(site, "GET", "/v1/models")
    assert a.status == 200


def test_key_change_takes_effect_on_next_request():
    site, store, _ = make_site()
    assert one(site, "GET", "/v1/models", {"x-api-key": "sk-new-3333"}).status == 401
    store.replace(parse_config(KEYS_YAML + "  - sk-new-3333\n"))
    assert one(site, "GET", "/v1/models", {"x-api-key": "sk-new-3333"}).status == 200


def test_access_log_has_fields_and_no_secret():
    site, _, _ = make_site()
    with capturedLogs() as events:
        one(site, "GET", "/v1/models?key=sk-client-alpha-1111", {})
        one(site, "GET", "/v1/models", {"Authorization": "Bearer sk-client-beta-2222"})
    access = [e for e in events if e.get("log_namespace") == "cliproxy.access"]
    assert len(access) == 2
    first = access[0]
    assert first["method"] == "GET"
    assert first["path"] == "/v1/models"
    assert first["status"] == 200
    assert first["client_key"] == "…1111"
    assert first["request_id"]
    assert first["bytes"] > 0
    assert first["log_level"] == LogLevel.info
    for e in events:
        text = repr(e)
        assert "sk-client-alpha-1111" not in text
        assert "sk-client-beta-2222" not in text


def test_keep_alive_serves_two_requests_on_one_connection():
    site, _, _ = make_site()
    wire = Wire(site)
    wire.send(request_bytes("GET", "/healthz") + request_bytes("GET", "/healthz"))
    answers = wire.answers()
    assert [a.status for a in answers] == [200, 200]
