"""The fake upstream: canned OpenAI and Claude answers, nginx's and cliproxy's configs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
CLIENT_KEY = "sk-bench-client-key-7f3a"  # sk-: LiteLLM wants its master key so
UPSTREAM_KEY = "bench-upstream-key-91c2"
MODEL = "bench-model"
#: served by a `claude-api-key` entry pointing at the same nginx (its /v1/messages)
CLAUDE_MODEL = "claude-bench-model"
CHUNKS = 20
CHUNK_GAP_S = 0.010
ECHO_MODULE_DIRS = ("/usr/lib/nginx/modules", "/usr/share/nginx/modules")
#: more CPU than this (in cores) used by other processes makes a run noisy
QUIET_CORES = 0.15
TARGETS = {
    "nonstream_c64_rps": 1000.0,
    "stream256_added_ttfb_p50_ms": 50.0,
    "stream256_total_ratio": 1.2,
    "peak_rss_mb": 100.0,
}

# -- canned upstream bodies -------------------------------------------------------------
# Kept free of ' \ and $ so they can sit in nginx single-quoted strings as they are.

ANSWER = "Hello! This is a canned answer from the benchmark fake upstream."
CHAT_COMPLETION = {
    "id": "chatcmpl-bench0001",
    "object": "chat.completion",
    "created": 1700000000,
    "model": MODEL,
    "choices": [
        {
            "index": 0,
            "message": {
                "role": "assistant",
                "content": ANSWER,
            },
            "finish_reason": "stop",
        }
    ],
    "usage": {"prompt_tokens": 12, "completion_tokens": 14, "total_tokens": 26},
}

WORDS = (
    "Hello there, this is a streamed answer from the fake upstream, one small "
    "piece at a time, like a real model."
).split(" ")


def sse_chunks() -> list[str]:
    """The 20 `data:` payloads of the canned stream (text, then finish, then usage)."""
    base = {
        "id": "chatcmpl-bench0002",
        "object": "chat.completion.chunk",
        "created": 1700000000,
        "model": MODEL,
    }
    out = []
    n_text = CHUNKS - 2
    for i in range(n_text):
        delta: dict[str, Any] = {"content": WORDS[i % len(WORDS)] + " "}
        if i == 0:
            delta = {"role": "assistant", **delta}
        choice = {"index": 0, "delta": delta, "finish_reason": None}
        out.append(json.dumps({**base, "choices": [choice]}, separators=(",", ":")))
    finish = {"index": 0, "delta": {}, "finish_reason": "stop"}
    out.append(json.dumps({**base, "choices": [finish]}, separators=(",", ":")))
    usage = {"prompt_tokens": 12, "completion_tokens": n_text, "total_tokens": 12 + n_text}
    out.append(json.dumps({**base, "choices": [], "usage": usage}, separators=(",", ":")))
    return out


#: client-side flavours: (request path, model, request shape). chat2claude is an OpenAI
#: chat request for a model a `claude-api-key` entry serves: cliproxy translates both ways.
FLAVOURS = {
    "openai": ("/v1/chat/completions", MODEL, "chat"),
    "claude": ("/v1/messages", CLAUDE_MODEL, "claude"),
    "chat2claude": ("/v1/chat/completions", CLAUDE_MODEL, "chat"),
    # OpenAI chat to LiteLLM, whose upstream client never asks for text/event-stream (nginx
    # picks SSE by Accept): its streams ask for a second model name whose upstream requests
    # carry that header (compare.litellm_config)
    "litellm": ("/v1/chat/completions", MODEL, "chat"),
}
LITELLM_STREAM_MODEL = MODEL + "-stream"


def request_body(stream: bool, flavour: str = "openai") -> bytes:
    _, model, shape = FLAVOURS[flavour]
    if flavour == "litellm" and stream:
        model = LITELLM_STREAM_MODEL
    system = "You are a helpful assistant."
    user = {"role": "user", "content": "Say hello in one short sentence."}
    body: dict[str, Any]
    if shape == "claude":
        body = {"model": model, "max_tokens": 256, "system": system, "messages": [user]}
    else:
        body = {"model": model, "messages": [{"role": "system", "content": system}, user]}
    body["stream"] = stream
    return json.dumps(body).encode()


def echo_module() -> str | None:
    for d in ECHO_MODULE_DIRS:
        p = Path(d, "ngx_http_echo_module.so")
        if p.exists():
            return str(p)
    return None


def claude_message() -> dict[str, Any]:
    """The canned non-stream Claude Messages answer."""
    return {
        "id": "msg_bench0001",
        "type": "message",
        "role": "assistant",
        "model": CLAUDE_MODEL,
        "content": [{"type": "text", "text": ANSWER}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 12, "output_tokens": 14},
    }


def claude_sse_events() -> list[tuple[str, str]]:
    """The 20 (event, data) pairs of the canned Claude stream, as Anthropic sends them."""

    def ev(kind: str, **fields: Any) -> tuple[str, str]:
        return kind, json.dumps({"type": kind, **fields}, separators=(",", ":"))

    start = {**claude_message(), "content": [], "stop_reason": None}
    start["usage"] = {"input_tokens": 12, "output_tokens": 1}
    out = [ev("message_start", message=start)]
    out.append(ev("content_block_start", index=0, content_block={"type": "text", "text": ""}))
    n_text = CHUNKS - 5
    for i in range(n_text):
        delta = {"type": "text_delta", "text": WORDS[i % len(WORDS)] + " "}
        out.append(ev("content_block_delta", index=0, delta=delta))
    out.append(ev("content_block_stop", index=0))
    done = {"stop_reason": "end_turn", "stop_sequence": None}
    out.append(ev("message_delta", delta=done, usage={"output_tokens": n_text}))
    out.append(ev("message_stop"))
    return out


def sse_location(frames: list[str]) -> str:
    """nginx echo directives that send `frames` 10 ms apart, flushing each."""
    lines = []
    for i, frame in enumerate(frames):
        lines.append(f"            echo -n '{frame}';")
        lines.append("            echo_flush;")
        if i != len(frames) - 1:
            lines.append(f"            echo_sleep {CHUNK_GAP_S};")
    return "\n".join(lines)


def api_location(path: str, sse: str, body: str, stream: str) -> str:
    """`path` answers `body`, or the stream at `sse` when asked for an event stream."""
    return f"""        # cliproxy asks for a stream with Accept: text/event-stream
        location = {path} {{
            if ($http_accept ~* "event-stream") {{ rewrite ^ {sse} last; }}
            default_type application/json;
            return 200 '{body}';
        }}
        location = {sse} {{
            internal;
            default_type text/event-stream;
            add_header Cache-Control no-cache;
{stream}
        }}"""


def nginx_config(out: Path, port: int) -> str:
    nl2 = "\\n\\n"
    chat_frames = [f"data: {c}{nl2}" for c in sse_chunks()]
    chat_frames[-1] += f"data: [DONE]{nl2}"
    stream = sse_location(chat_frames)
    claude_frames = [f"event: {e}\\ndata: {d}{nl2}" for e, d in claude_sse_events()]
    claude_stream = sse_location(claude_frames)
    body = json.dumps(CHAT_COMPLETION, separators=(",", ":"))
    claude_body = json.dumps(claude_message(), separators=(",", ":"))
    models = json.dumps({"object": "list", "data": [{"id": MODEL, "object": "model"}]})
    chat = api_location("/v1/chat/completions", "/_sse", body, stream)
    claude = api_location("/v1/messages", "/_claude_sse", claude_body, claude_stream)
    tmp = out / "nginx-tmp"
    return f"""# generated by bench/run.py
load_module {echo_module()};
daemon off;
master_process on;
worker_processes 1;
worker_rlimit_nofile 16384;
pid {out}/nginx.pid;
error_log {out}/nginx-error.log warn;
events {{ worker_connections 8192; multi_accept on; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    keepalive_requests 10000000;
    keepalive_timeout 120s;
    server {{
        listen 127.0.0.1:{port} backlog=4096;
{chat}
{claude}
        location = /v1/models {{
            default_type application/json;
            return 200 '{models}';
        }}
        location = /healthz {{ return 200 'ok'; }}
    }}
}}
"""


def cliproxy_config(out: Path, port: int, upstream_port: int) -> str:
    return f"""# generated by bench/run.py
host: "127.0.0.1"
port: {port}
api-keys: ["{CLIENT_KEY}"]
auth-dir: "{out}/auth"
openai-compatibility:
  - name: bench
    base-url: "http://127.0.0.1:{upstream_port}/v1"
    api-key-entries:
      - api-key: "{UPSTREAM_KEY}"
    models:
      - name: "{MODEL}"
        alias: "{MODEL}"
claude-api-key:
  - api-key: "{UPSTREAM_KEY}"
    base-url: "http://127.0.0.1:{upstream_port}"
    models:
      - name: "{CLAUDE_MODEL}"
        alias: "{CLAUDE_MODEL}"
"""
