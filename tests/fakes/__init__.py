"""Fake upstreams on loopback that speak the real wire protocols (see README.md here)."""

from tests.fakes.amp import FakeAmp
from tests.fakes.base import ModelFake
from tests.fakes.claude import (
    FakeClaude,
    claude_ask,
    claude_error,
    claude_error_event,
    claude_error_reply,
    claude_events,
    claude_message,
)
from tests.fakes.cloudcode import FakeCloudCode, cloudcode_wrap
from tests.fakes.codex import FakeCodex, codex_usage_limit_error, codex_usage_limit_reply
from tests.fakes.gemini import (
    FakeGemini,
    gemini_ask,
    gemini_chunks,
    gemini_error,
    gemini_error_reply,
    gemini_events,
    gemini_response,
    gemini_stream_reply,
)
from tests.fakes.oauth import (
    FakeOAuth,
    oauth_error,
    oauth_error_reply,
    pkce_challenge,
    unsigned_jwt,
)
from tests.fakes.openai import (
    FakeOpenAI,
    chat_ask,
    chat_chunks,
    chat_completion,
    openai_error,
    openai_error_reply,
    response_events,
    response_object,
    responses_ask,
)
from tests.fakes.records import RecordedRequest
from tests.fakes.reply import (
    HAVE_ZSTD,
    Event,
    Pause,
    Piece,
    Reply,
    ReplyPlan,
    plan_reply,
    sse_bytes,
)
from tests.fakes.server import FakeUpstream, Tunnel, bearer, websocket_accept
from tests.fakes.turn import Ask, ToolCall, Turn, Usage, decide, placeholder_args

__all__ = [
    "HAVE_ZSTD",
    "Ask",
    "Event",
    "FakeAmp",
    "FakeClaude",
    "FakeCloudCode",
    "FakeCodex",
    "FakeGemini",
    "FakeOAuth",
    "FakeOpenAI",
    "FakeUpstream",
    "ModelFake",
    "Pause",
    "Piece",
    "RecordedRequest",
    "Reply",
    "ReplyPlan",
    "ToolCall",
    "Tunnel",
    "Turn",
    "Usage",
    "bearer",
    "chat_ask",
    "chat_chunks",
    "chat_completion",
    "claude_ask",
    "claude_error",
    "claude_error_event",
    "claude_error_reply",
    "claude_events",
    "claude_message",
    "cloudcode_wrap",
    "codex_usage_limit_error",
    "codex_usage_limit_reply",
    "decide",
    "gemini_ask",
    "gemini_chunks",
    "gemini_error",
    "gemini_error_reply",
    "gemini_events",
    "gemini_response",
    "gemini_stream_reply",
    "oauth_error",
    "oauth_error_reply",
    "openai_error",
    "openai_error_reply",
    "pkce_challenge",
    "placeholder_args",
    "plan_reply",
    "response_events",
    "response_object",
    "responses_ask",
    "sse_bytes",
    "unsigned_jwt",
    "websocket_accept",
]
