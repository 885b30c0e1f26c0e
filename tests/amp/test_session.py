"""AFF-01: Amp's thread id as the session id for sticky routing (amp.md §2.10)."""

from __future__ import annotations

from cliproxy.amp.session import session_id

THREAD = "T-7873e6bd-6354-4a9a-be2c-c7702c6e1b64"


def test_AFF_01_amp_thread_id_is_the_session():
    assert session_id({"X-Amp-Thread-Id": THREAD}, {}) == f"amp:{THREAD}"


def test_AFF_01_thread_id_wins_over_client_request_id_and_conversation_id():
    headers = {"x-amp-thread-id": THREAD, "X-Client-Request-Id": "req-1"}
    assert session_id(headers, {"conversation_id": "c-1"}) == f"amp:{THREAD}"
    assert (
        session_id({"X-Client-Request-Id": "req-1"}, {"conversation_id": "c"}) == "clientreq:req-1"
    )
    assert session_id({}, {"conversation_id": "c-1"}) == "conv:c-1"


def test_AFF_01_claude_code_session_beats_the_thread_id():
    uuid = "0f6c7c1e-1b1a-4c3e-9d55-3c1d2b0a9f11"
    body = {"metadata": {"user_id": f"user_abc_account__session_{uuid}"}}
    assert session_id({"X-Amp-Thread-Id": THREAD}, body) == f"claude:{uuid}"
    body = {"metadata": {"user_id": '{"device_id":"d","session_id":"s-42"}'}}
    assert session_id({"X-Amp-Thread-Id": THREAD}, body) == "claude:s-42"


def test_session_id_other_sources_and_none():
    assert session_id({"X-Session-ID": "h"}, None) == "header:h"
    assert session_id({"Session_id": "c"}, None) == "codex:c"
    assert session_id({}, {"metadata": {"user_id": "plain"}}) == "user:plain"
    assert session_id({}, "not a dict") is None
