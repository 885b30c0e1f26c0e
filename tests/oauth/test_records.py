"""Token answers into auth-file records (CLIProxyAPI's fields) and refreshed records."""

from __future__ import annotations

import pytest

from cliproxy.credentials.oauth.providers import CLAUDE, CODEX, GEMINI
from cliproxy.credentials.oauth.records import (
    claude_record,
    codex_identity,
    codex_record,
    gemini_record,
    jwt_claims,
    refreshed_record,
)
from cliproxy.credentials.oauth.tokens import OAuthError
from tests.fakes import unsigned_jwt
from tests.oauth.kit import T0, claude_file, codex_file, gemini_file

ID_TOKEN = unsigned_jwt(
    {
        "email": "a@b.c",
        "https://api.openai.com/auth": {"chatgpt_account_id": "acc-1", "chatgpt_plan_type": "pro"},
    }
)


def test_claude_record():
    answer = {
        "access_token": "sk-ant-oat-1",
        "refresh_token": "sk-ant-ort-1",
        "expires_in": 28800,
        "account": {"uuid": "u", "email_address": "a@b.c"},
        "organization": {"uuid": "o", "name": "Org"},
    }
    assert claude_record(answer, T0) == {
        "type": "claude",
        "access_token": "sk-ant-oat-1",
        "refresh_token": "sk-ant-ort-1",
        "id_token": "",
        "email": "a@b.c",
        "expired": "2026-01-01T08:00:00Z",
        "last_refresh": "2026-01-01T00:00:00Z",
    }
    with pytest.raises(OAuthError, match="no account email"):
        claude_record({"access_token": "x"}, T0)


def test_codex_record_reads_the_id_token():
    answer = {"access_token": "a", "refresh_token": "r", "id_token": ID_TOKEN, "expires_in": 60}
    record = codex_record(answer, T0)
    assert (record["email"], record["account_id"]) == ("a@b.c", "acc-1")
    assert record["expired"] == "2026-01-01T00:01:00Z" and record["type"] == "codex"
    assert codex_identity(ID_TOKEN)["plan_type"] == "pro"
    with pytest.raises(OAuthError, match="no id_token"):
        codex_record({"access_token": "a"}, T0)
    assert jwt_claims("not-a-jwt") == {} and jwt_claims("a.!!!.c") == {}


def test_gemini_record_has_googles_token_shape():
    answer = {"access_token": "ya29", "refresh_token": "1//r", "expires_in": 3599}
    record = gemini_record(
        answer,
        T0,
        spec=GEMINI,
        token_url="https://oauth2.googleapis.com/token",
        email="a@b.c",
        project_id="p",
        auto=False,
        checked=True,
    )
    assert record["token"] == {
        "access_token": "ya29",
        "token_type": "Bearer",
        "refresh_token": "1//r",
        "expiry": "2026-01-01T00:59:59Z",
        "token_uri": "https://oauth2.googleapis.com/token",
        "client_id": GEMINI.client_id,
        "client_secret": GEMINI.client_secret,
        "scopes": list(GEMINI.scopes),
        "universe_domain": "googleapis.com",
    }
    assert (record["project_id"], record["auto"], record["checked"]) == ("p", False, True)


def test_refreshed_records_keep_the_users_fields():
    old = dict(claude_file("a", "r", T0), prefix="team", priority=2)
    new = refreshed_record(CLAUDE, old, {"access_token": "a2", "refresh_token": "r2"}, T0 + 10)
    assert (new["access_token"], new["refresh_token"]) == ("a2", "r2")
    assert (new["prefix"], new["priority"]) == ("team", 2)
    assert (
        new["expired"] == "2026-01-01T01:00:10Z" and new["last_refresh"] == "2026-01-01T00:00:10Z"
    )
    assert old["access_token"] == "a"  # not modified in place

    codex = refreshed_record(
        CODEX, codex_file("a", "r", T0), {"access_token": "a2", "id_token": ID_TOKEN}, T0
    )
    assert codex["refresh_token"] == "r"  # kept when the answer has none
    assert (codex["account_id"], codex["email"], codex["id_token"]) == ("acc-1", "a@b.c", ID_TOKEN)

    gem = refreshed_record(GEMINI, gemini_file("a", "r", T0), {"access_token": "a2"}, T0)
    assert gem["token"]["access_token"] == "a2" and gem["token"]["refresh_token"] == "r"
    assert gem["token"]["expiry"] == gem["expiry"] == "2026-01-01T01:00:00Z"
    assert gem["access_token"] == "a2" and gem["token"]["client_id"] == GEMINI.client_id
