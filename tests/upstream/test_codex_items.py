"""Codex input item ids (cliproxy.upstream.codex_items), and their effect on what a fake
Codex backend that enforces the 64-character id limit receives."""

from __future__ import annotations

import pytest_twisted
from hypothesis import given
from hypothesis import strategies as st

from cliproxy.upstream.codex_items import ID_LIMIT, sanitize_input_ids
from tests.fakes import FakeCodex
from tests.reliability.kit import call as call_proxy
from tests.serving_kit import providers

LONG = "x" * 80


def test_overlong_ids_are_shortened_alike_and_prefixes_added():
    payload = {
        "input": [
            {"type": "reasoning", "id": "r" * 70, "encrypted_content": "gAAA", "summary": []},
            {"type": "function_call", "id": LONG, "call_id": "c1", "name": "f", "arguments": ""},
            {"type": "function_call_output", "id": LONG, "call_id": "c1", "output": "ok"},
            {"type": "message", "id": "item_1", "role": "user", "content": "hi"},
            {"type": "message", "id": "msg_2", "role": "user", "content": "hi"},
        ]
    }
    out = sanitize_input_ids(payload)["input"]
    assert [i["type"] for i in out] == ["function_call", "function_call_output", "message"] + [
        "message"
    ]
    assert all(len(i["id"]) <= ID_LIMIT for i in out)
    assert out[0]["id"].startswith("fc_x") and out[1]["id"].startswith("x")
    assert out[2]["id"] == "msg_item_1" and out[3]["id"] == "msg_2"
    assert payload["input"][1]["id"] == LONG  # the caller's body is not changed


def test_a_prefixed_id_that_collides_with_an_existing_one_is_made_unique():
    payload = {
        "input": [
            {"type": "message", "id": "msg_a", "role": "user", "content": "1"},
            {"type": "message", "id": "a", "role": "user", "content": "2"},
        ]
    }
    out = sanitize_input_ids(payload)["input"]
    assert out[0]["id"] == "msg_a" and out[1]["id"] != "msg_a"


def test_nothing_to_change_returns_the_same_body():
    payload = {"input": [{"type": "message", "role": "user", "content": "hi"}]}
    assert sanitize_input_ids(payload) is payload
    assert sanitize_input_ids({"input": "text"}) == {"input": "text"}


@given(st.lists(st.text(min_size=1, max_size=120), max_size=8))
def test_every_id_fits_and_distinct_ids_stay_distinct(ids):
    items = [{"type": "function_call_output", "id": i, "call_id": "c"} for i in ids]
    out = sanitize_input_ids({"input": items})["input"]
    assert all(len(i["id"]) <= ID_LIMIT for i in out)
    assert len({i["id"] for i in out}) == len(set(ids))


@pytest_twisted.ensureDeferred
async def test_another_providers_long_ids_reach_codex_shortened(start_fake, start_proxy):
    codex = start_fake(FakeCodex, keys={"sk-codex-test-1"})
    proxy = start_proxy(providers(codex=codex))
    call = {"type": "function_call", "id": LONG, "call_id": "c1", "name": "f", "arguments": "{}"}
    result = {"type": "function_call_output", "id": LONG + "o", "call_id": "c1", "output": "ok"}
    body = {"model": "gpt-codex-fake", "input": [call, result]}
    answer = await call_proxy(proxy.url, "POST", "/v1/responses", body)
    assert answer.status == 200, answer.body
    sent = codex.last.json["input"]
    assert [len(i["id"]) <= ID_LIMIT for i in sent] == [True, True]
    assert [i["call_id"] for i in sent] == ["c1", "c1"]
