"""Golden upstream requests: what cliproxy sends each provider for one fixed client request.

For every executor of core.md §2 x client format x stream, `build_fixture` runs the router's
pipeline without sockets (`translate_request` -> `apply_thinking` -> the executor's `build`,
plus the OAuth executors' send-time `auth_headers`) and returns method, URL, headers and body.
Secrets become `<secret>` and per-call random values (UUIDs) `<uuid>`, so a fixture only
changes when what we send changes.
"""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from twisted.internet import task

from cliproxy.config import OAuthEndpoints
from cliproxy.credentials.authdir import AuthDir
from cliproxy.credentials.model import Credential
from cliproxy.formats import Format
from cliproxy.formats.requests import apply_thinking, translate_request
from cliproxy.upstream import executor_for
from cliproxy.upstream.oauth_call import OAuthCall
from tests.oauth.kit import T0, claude_file, codex_file, gemini_file, write_file
from tests.upstream.test_antigravity import antigravity_file

FIXTURES = Path(__file__).parent / "fixtures"
#: set to 1 to rewrite the fixture files from what cliproxy builds now (then review the diff)
REGEN_ENV = "CLIPROXY_REGEN_GOLDEN"

API_KEY = "sk-golden-key-0001"
ACCESS = "golden-access-token"
SECRET_HEADERS = {"authorization", "x-api-key", "x-goog-api-key", "api-key"}
SECRET_QUERY = {"key", "api_key", "access_token"}
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.I)

#: executor name -> (credential kind or OAuth token file type, provider, model)
EXECUTORS: dict[str, tuple[str, str, str]] = {
    "gemini-key": ("gemini-api-key", "gemini", "gemini-2.5-flash"),
    "gemini-cli-oauth": ("oauth", "gemini-cli", "gemini-2.5-pro"),
    "vertex-key": ("vertex-api-key", "vertex", "gemini-2.5-flash"),
    "codex-oauth": ("oauth", "codex", "gpt-5-codex"),
    "codex-key": ("codex-api-key", "codex", "gpt-5-codex"),
    "claude-oauth": ("oauth", "claude", "claude-sonnet-4-5"),
    "claude-key": ("claude-api-key", "claude", "claude-sonnet-4-5"),
    "openai-compat": ("openai-compatibility", "golden-compat", "gpt-4o-mini"),
    "antigravity-oauth": ("oauth", "antigravity", "gemini-3-flash"),
    "antigravity-claude-oauth": ("oauth", "antigravity", "claude-sonnet-4-6"),
}
CLIENTS = {
    "chat": Format.OPENAI_CHAT,
    "responses": Format.OPENAI_RESPONSES,
    "claude": Format.CLAUDE,
    "gemini": Format.GEMINI,
}
BASES = {
    "gemini-api-key": "",
    "vertex-api-key": "",
    "codex-api-key": "https://chatgpt.com/backend-api/codex",
    "claude-api-key": "",
    "openai-compatibility": "https://compat.example/v1",
}
WEATHER = {
    "type": "object",
    "properties": {"city": {"type": "string", "description": "City name"}},
    "required": ["city"],
}
SYSTEM = "You are terse."
QUESTION = "What is the weather in Paris?"


def client_request(client: str) -> dict[str, Any]:
    """The fixed request each client format sends (a system prompt, a question, one tool)."""
    if client == "chat":
        return {
            "messages": [
                {"role": "system", "content": SYSTEM},
                {"role": "user", "content": QUESTION},
            ],
            "tools": [{"type": "function", "function": {"name": "weather", "parameters": WEATHER}}],
            "temperature": 0.2,
            "max_tokens": 512,
        }
    if client == "responses":
        return {
            "instructions": SYSTEM,
            "input": [{"role": "user", "content": [{"type": "input_text", "text": QUESTION}]}],
            "tools": [{"type": "function", "name": "weather", "parameters": WEATHER}],
            "max_output_tokens": 512,
        }
    if client == "claude":
        return {
            "system": SYSTEM,
            "messages": [{"role": "user", "content": QUESTION}],
            "tools": [{"name": "weather", "input_schema": WEATHER}],
            "temperature": 0.2,
            "max_tokens": 512,
        }
    return {
        "systemInstruction": {"parts": [{"text": SYSTEM}]},
        "contents": [{"role": "user", "parts": [{"text": QUESTION}]}],
        "tools": [{"functionDeclarations": [{"name": "weather", "parameters": WEATHER}]}],
        "generationConfig": {"temperature": 0.2, "maxOutputTokens": 512},
    }


def credential(executor: str, directory: str) -> Credential:
    kind, provider, _model = EXECUTORS[executor]
    if kind != "oauth":
        return Credential(
            id=f"{kind}:golden",
            provider=provider,
            kind=kind,
            api_key=API_KEY,
            base_url=BASES[kind],
        )
    record = {
        "claude": lambda: claude_file(ACCESS, "rt", T0 + 10**9),
        "codex": lambda: codex_file(ACCESS, "rt", T0 + 10**9),
        "gemini-cli": lambda: gemini_file(ACCESS, "rt", T0 + 10**9),
        "antigravity": lambda: antigravity_file(ACCESS, "rt", T0 + 10**9),
    }[provider]()
    write_file(directory, f"{provider}-golden.json", record)
    authdir = AuthDir(lambda: directory, task.Clock(), OAuthEndpoints)
    authdir.scan()
    return authdir.credentials()[0]


def build_fixture(executor: str, client: str, stream: bool) -> dict[str, Any]:
    """The request cliproxy sends `executor`'s upstream for `client`'s fixed request."""
    model = EXECUTORS[executor][2]
    src = CLIENTS[client]
    body = client_request(client)
    if src is not Format.GEMINI:
        body["model"] = model
        if stream:
            body["stream"] = True
    with tempfile.TemporaryDirectory() as directory:
        cred = credential(executor, directory)
        ex = executor_for(cred)
        upstream_stream = stream or ex.always_streams
        out = translate_request(src, ex.format, body, model=model, stream=upstream_stream)
        out = apply_thinking(ex.format, out, None)
        call = ex.build(cred, model=model, body=out, stream=upstream_stream)
        headers = dict(call.headers)
        if isinstance(call, OAuthCall):
            headers = ex.auth_headers(call, ACCESS)  # type: ignore[attr-defined]
    return {
        "method": call.method,
        "url": _mask_url(call.url),
        "headers": {k: _mask_header(k, v) for k, v in sorted(headers.items())},
        "body": _mask_body(json.loads(call.body) if call.body else None),
    }


def _mask_header(name: str, value: str) -> str:
    if name.lower() in SECRET_HEADERS:
        return re.sub(r"\S+$", "<secret>", value)
    return _UUID.sub("<uuid>", value)


def _mask_url(url: str) -> str:
    parts = urlsplit(url)
    query = [(k, "<secret>" if k in SECRET_QUERY else v) for k, v in parse_qsl(parts.query)]
    return urlunsplit(parts._replace(query=urlencode(query, safe="<>")))


def _mask_body(body: Any) -> Any:
    return json.loads(_UUID.sub("<uuid>", json.dumps(body)))


def fixture_path(executor: str, client: str, stream: bool) -> Path:
    return FIXTURES / executor / f"{client}-{'stream' if stream else 'nonstream'}.json"


def combinations() -> list[tuple[str, str, bool]]:
    return [(e, c, s) for e in EXECUTORS for c in CLIENTS for s in (False, True)]
