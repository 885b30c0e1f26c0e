"""The translation matrix end to end: every client SDK against every provider format.

Each cell runs a real SDK (in a thread) against a real cliproxy whose only provider is one
fake upstream, streamed and not, through two conversations:

* a tool turn: the SDK offers a tool, the fake calls it, the SDK sends the result back in
  its own format, the fake answers text. The upstream must see the result paired with the
  call it answers, and the client must get the call and then the final text;
* a reasoning turn: the SDK enables thinking its own way, the fake answers reasoning and
  text, and the client must see both where its format carries them.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Any

import pytest
import pytest_twisted
from twisted.internet.threads import deferToThread

from tests.fakes import FakeClaude, FakeCodex, FakeGemini, FakeOpenAI
from tests.fakes.gemini import gemini_ask
from tests.serving_kit import CLIENT_KEY, providers

openai = pytest.importorskip("openai")
anthropic = pytest.importorskip("anthropic")
genai = pytest.importorskip("google.genai")
from google.genai import types as gtypes  # noqa: E402

ASK = "What is the weather in Paris? Use the get_weather tool."
RESULT = "sunny, 21 degrees"
TOOL = "get_weather"
SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string", "description": "City name"}},
    "required": ["city"],
}
OTHER_TOOL = "get_time"  # offered too, so pairing with the wrong call would show
OTHER_SCHEMA = {
    "type": "object",
    "properties": {"zone": {"type": "string"}},
    "required": ["zone"],
}
TOOLS = [(TOOL, SCHEMA), (OTHER_TOOL, OTHER_SCHEMA)]
#: what the fakes fill a required string property with
PLACEHOLDER_ARGS = {"city": "test"}


# -- providers ------------------------------------------------------------------------------


def _camel(key: str) -> str:
    head, *rest = key.split("_")
    return head + "".join(word.title() for word in rest)


class SnakeCaseGemini(FakeGemini):
    """FakeGemini that also reads the snake_case fields google-genai sends.

    The real API takes both spellings (proto JSON). google-genai writes nested fields in
    snake_case (`thinking_config.include_thoughts`, `parameters_json_schema`), and cliproxy
    passes a Gemini client's body through as it is, so the Gemini-to-Gemini cells need it.
    """

    def read_ask(self, rec, model=None):
        body = json.loads(rec.body)
        gen = body.get("generationConfig") or {}
        for key in ("thinkingConfig", "thinking_config"):
            if isinstance(gen.get(key), dict):
                gen["thinkingConfig"] = {_camel(k): v for k, v in gen.pop(key).items()}
        for tool in body.get("tools") or []:
            for decl in tool.get("functionDeclarations") or []:
                if "parameters_json_schema" in decl:
                    decl["parametersJsonSchema"] = decl.pop("parameters_json_schema")
        ask = gemini_ask(body, model or "")
        ask.stream = "streamGenerateContent" in rec.path
        return ask


PROVIDERS = {
    "claude": (FakeClaude, "claude-fake"),
    "gemini": (SnakeCaseGemini, "gemini-fake"),
    "codex": (FakeCodex, "gpt-codex-fake"),
    "openai": (FakeOpenAI, "gpt-fake"),
}


def start_provider(start_fake, start_proxy, kind: str):
    cls, model = PROVIDERS[kind]
    fake = start_fake(cls)
    arg = {"claude": "claude", "gemini": "gemini", "codex": "codex", "openai": "oai"}[kind]
    proxy = start_proxy(providers(**{arg: fake}))
    return fake, proxy, model


# -- what the upstream saw ------------------------------------------------------------------


def _text(value: Any) -> str:
    """Any tool-result payload flattened to text, so each format's nesting compares alike."""
    return value if isinstance(value, str) else json.dumps(value)


def claude_pairs(body: dict) -> list[tuple[str | None, str]]:
    names: dict[str, str] = {}
    out = []
    for msg in body["messages"]:
        content = msg["content"] if isinstance(msg["content"], list) else []
        for block in content:
            if block.get("type") == "tool_use":
                names[block["id"]] = block["name"]
            elif block.get("type") == "tool_result":
                out.append((names.get(block["tool_use_id"]), _text(block.get("content"))))
    return out


def gemini_pairs(body: dict) -> list[tuple[str | None, str]]:
    # Gemini pairs a response with the call of the same name in the turn just before it
    out = []
    previous: list[str] = []
    for content in body["contents"]:
        calls = [p["functionCall"]["name"] for p in content["parts"] if "functionCall" in p]
        for part in content["parts"]:
            if "functionResponse" in part:
                fr = part["functionResponse"]
                out.append((fr["name"] if fr["name"] in previous else None, _text(fr["response"])))
        previous = calls
    return out


def responses_pairs(body: dict) -> list[tuple[str | None, str]]:
    names: dict[str, str] = {}
    out = []
    for item in body["input"]:
        if item.get("type") == "function_call":
            names[item["call_id"]] = item["name"]
        elif item.get("type") == "function_call_output":
            out.append((names.get(item["call_id"]), _text(item["output"])))
    return out


def chat_pairs(body: dict) -> list[tuple[str | None, str]]:
    names: dict[str, str] = {}
    out = []
    for msg in body["messages"]:
        for call in msg.get("tool_calls") or []:
            names[call["id"]] = call["function"]["name"]
        if msg["role"] == "tool":
            out.append((names.get(msg["tool_call_id"]), _text(msg["content"])))
    return out


UPSTREAM_PAIRS = {
    "claude": claude_pairs,
    "gemini": gemini_pairs,
    "codex": responses_pairs,
    "openai": chat_pairs,
}


def upstream_wants_reasoning(kind: str, body: dict) -> bool:
    if kind == "claude":
        return body.get("thinking", {}).get("type") in ("enabled", "adaptive")
    if kind == "gemini":
        gen = body["generationConfig"]
        tc = gen.get("thinkingConfig") or gen.get("thinking_config") or {}
        return bool(tc.get("includeThoughts") or tc.get("include_thoughts"))
    if kind == "codex":
        return body.get("reasoning", {}).get("effort") not in (None, "none")
    return body.get("reasoning_effort") not in (None, "none")


# -- the clients ----------------------------------------------------------------------------


@dataclass
class Call:
    id: str | None
    name: str
    args: dict
    #: Chat: the `extra_content` a call came with (Gemini's thought signature rides there)
    extra: dict | None = field(default=None, compare=False)


@dataclass
class Answer:
    text: str = ""
    reasoning: str = ""
    calls: list[Call] = field(default_factory=list)


class ChatClient:
    """openai.OpenAI().chat.completions"""

    def __init__(self, url: str) -> None:
        self.sdk = openai.OpenAI(base_url=url + "/v1", api_key=CLIENT_KEY, max_retries=0)

    def ask(self, model, messages, stream, **kw) -> Answer:
        if not stream:
            msg = self.sdk.chat.completions.create(model=model, messages=messages, **kw)
            m = msg.choices[0].message
            return Answer(
                m.content or "",
                getattr(m, "reasoning_content", None) or "",
                [
                    Call(
                        c.id,
                        c.function.name,
                        json.loads(c.function.arguments),
                        (c.model_extra or {}).get("extra_content"),
                    )
                    for c in m.tool_calls or []
                ],
            )
        ans = Answer()
        calls: dict[int, dict] = {}
        finish = None
        for chunk in self.sdk.chat.completions.create(
            model=model, messages=messages, stream=True, **kw
        ):
            if not chunk.choices:
                continue
            choice = chunk.choices[0]
            d = choice.delta
            ans.text += d.content or ""
            ans.reasoning += getattr(d, "reasoning_content", None) or ""
            for tc in d.tool_calls or []:
                slot = calls.setdefault(
                    tc.index, {"id": None, "name": "", "args": "", "extra": None}
                )
                slot["id"] = tc.id or slot["id"]
                slot["extra"] = (tc.model_extra or {}).get("extra_content") or slot["extra"]
                if tc.function is not None:
                    slot["name"] += tc.function.name or ""
                    slot["args"] += tc.function.arguments or ""
            finish = choice.finish_reason or finish
        ans.calls = [
            Call(c["id"], c["name"], json.loads(c["args"]), c["extra"]) for c in calls.values()
        ]
        assert finish == ("tool_calls" if ans.calls else "stop")
        return ans

    def tool_turn(self, model, stream, tools=TOOLS, ask=ASK, think=False):
        kw: dict[str, Any] = {"reasoning_effort": "low"} if think else {}
        kw["tools"] = [
            {"type": "function", "function": {"name": n, "description": n, "parameters": s}}
            for n, s in tools
        ]
        messages: list[dict] = [{"role": "user", "content": ask}]
        first = self.ask(model, messages, stream, **kw)
        messages.append(
            {
                "role": "assistant",
                "content": first.text or None,
                "tool_calls": [
                    {
                        "id": c.id,
                        "type": "function",
                        "function": {"name": c.name, "arguments": json.dumps(c.args)},
                        **({"extra_content": c.extra} if c.extra else {}),
                    }
                    for c in first.calls
                ],
            }
        )
        for c in first.calls:
            messages.append({"role": "tool", "tool_call_id": c.id, "content": RESULT})
        return first, self.ask(model, messages, stream, **kw)

    def reasoning_turn(self, model, stream) -> Answer:
        return self.ask(
            model,
            [{"role": "user", "content": "think, then say hi"}],
            stream,
            reasoning_effort="low",
        )


class ResponsesClient:
    """openai.OpenAI().responses"""

    def __init__(self, url: str) -> None:
        self.sdk = openai.OpenAI(base_url=url + "/v1", api_key=CLIENT_KEY, max_retries=0)

    @staticmethod
    def _from_output(output) -> Answer:
        ans = Answer()
        for item in output:
            if item.type == "message":
                ans.text += "".join(c.text for c in item.content if c.type == "output_text")
            elif item.type == "reasoning":
                ans.reasoning += "".join(s.text for s in item.summary)
            elif item.type == "function_call":
                ans.calls.append(Call(item.call_id, item.name, json.loads(item.arguments)))
        return ans

    def ask(self, model, input, stream, **kw) -> tuple[Answer, list]:
        if not stream:
            resp = self.sdk.responses.create(model=model, input=input, **kw)
            assert resp.status == "completed"
            return self._from_output(resp.output), resp.output
        ans = Answer()
        done_items = []
        final = None
        for ev in self.sdk.responses.create(model=model, input=input, stream=True, **kw):
            if ev.type == "response.output_text.delta":
                ans.text += ev.delta
            elif ev.type == "response.reasoning_summary_text.delta":
                ans.reasoning += ev.delta
            elif ev.type == "response.output_item.done":
                done_items.append(ev.item)
            elif ev.type == "response.completed":
                final = ev.response
        assert final is not None and final.status == "completed"
        from_items = self._from_output(done_items)
        ans.calls = from_items.calls
        # the finished items and the completed response agree with the deltas
        assert (from_items.text, from_items.reasoning) == (ans.text, ans.reasoning)
        assert self._from_output(final.output) == ans
        return ans, done_items

    def tool_turn(self, model, stream, tools=TOOLS, ask=ASK, think=False):
        kw: dict[str, Any] = {}
        if think:
            kw["reasoning"] = {"effort": "low", "summary": "auto"}
            kw["include"] = ["reasoning.encrypted_content"]
        kw["tools"] = [
            {"type": "function", "name": n, "description": n, "parameters": s} for n, s in tools
        ]
        items: list[Any] = [{"role": "user", "content": ask}]
        first, output = self.ask(model, items, stream, **kw)
        for item in output:
            if item.type == "reasoning":  # replayed, as Codex CLI does (it does not store)
                items.append(item.model_dump(exclude_none=True, exclude={"status"}))
            elif item.type == "function_call":
                items.append(
                    {
                        "type": "function_call",
                        "call_id": item.call_id,
                        "name": item.name,
                        "arguments": item.arguments,
                    }
                )
        for c in first.calls:
            items.append({"type": "function_call_output", "call_id": c.id, "output": RESULT})
        second, _ = self.ask(model, items, stream, **kw)
        return first, second

    def reasoning_turn(self, model, stream) -> Answer:
        ans, _ = self.ask(
            model,
            "think, then say hi",
            stream,
            reasoning={"effort": "low", "summary": "auto"},
        )
        return ans


class AnthropicClient:
    """anthropic.Anthropic().messages"""

    def __init__(self, url: str) -> None:
        self.sdk = anthropic.Anthropic(base_url=url, api_key=CLIENT_KEY, max_retries=0)

    def ask(self, model, messages, stream, **kw):
        kw.setdefault("max_tokens", 1024)
        if not stream:
            msg = self.sdk.messages.create(model=model, messages=messages, **kw)
            streamed_text = None
        else:
            with self.sdk.messages.stream(model=model, messages=messages, **kw) as s:
                streamed_text = "".join(s.text_stream)
                msg = s.get_final_message()
        ans = Answer()
        for block in msg.content:
            if block.type == "text":
                ans.text += block.text
            elif block.type == "thinking":
                ans.reasoning += block.thinking
            elif block.type == "tool_use":
                ans.calls.append(Call(block.id, block.name, block.input))
        if streamed_text is not None:
            assert streamed_text == ans.text
        assert msg.stop_reason == ("tool_use" if ans.calls else "end_turn")
        return ans, msg

    def tool_turn(self, model, stream, tools=TOOLS, ask=ASK, think=False):
        kw: dict[str, Any] = {}
        if think:
            kw["max_tokens"] = 4096
            kw["thinking"] = {"type": "enabled", "budget_tokens": 2048}
        kw["tools"] = [{"name": n, "description": n, "input_schema": s} for n, s in tools]
        messages: list[dict] = [{"role": "user", "content": ask}]
        first, msg = self.ask(model, messages, stream, **kw)
        messages.append(
            {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in msg.content]}
        )
        messages.append(
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": c.id, "content": RESULT}
                    for c in first.calls
                ],
            }
        )
        second, _ = self.ask(model, messages, stream, **kw)
        return first, second

    def reasoning_turn(self, model, stream) -> Answer:
        ans, _ = self.ask(
            model,
            [{"role": "user", "content": "think, then say hi"}],
            stream,
            max_tokens=4096,
            thinking={"type": "enabled", "budget_tokens": 2048},
        )
        return ans


class GenaiClient:
    """genai.Client().models.generate_content[_stream]"""

    def __init__(self, url: str) -> None:
        self.sdk = genai.Client(api_key=CLIENT_KEY, http_options=gtypes.HttpOptions(base_url=url))

    def ask(self, model, contents, stream, config):
        parts = []
        if not stream:
            resp = self.sdk.models.generate_content(model=model, contents=contents, config=config)
            parts = list(resp.candidates[0].content.parts or [])
        else:
            for chunk in self.sdk.models.generate_content_stream(
                model=model, contents=contents, config=config
            ):
                if chunk.candidates and chunk.candidates[0].content:
                    parts.extend(chunk.candidates[0].content.parts or [])
        ans = Answer()
        for p in parts:
            if p.function_call is not None:
                fc = p.function_call
                ans.calls.append(Call(fc.id, fc.name, dict(fc.args or {})))
            elif p.text and p.thought:
                ans.reasoning += p.text
            elif p.text:
                ans.text += p.text
        return ans, parts

    def tool_turn(self, model, stream, tools=TOOLS, ask=ASK, think=False):
        thinking = gtypes.ThinkingConfig(include_thoughts=True, thinking_budget=2048)
        config = gtypes.GenerateContentConfig(
            thinking_config=thinking if think else None,
            tools=[
                gtypes.Tool(
                    function_declarations=[
                        gtypes.FunctionDeclaration(name=n, description=n, parameters_json_schema=s)
                        for n, s in tools
                    ]
                )
            ],
            automatic_function_calling=gtypes.AutomaticFunctionCallingConfig(disable=True),
        )
        contents: list[Any] = [gtypes.Content(role="user", parts=[gtypes.Part(text=ask)])]
        first, parts = self.ask(model, contents, stream, config)
        contents.append(gtypes.Content(role="model", parts=parts))
        contents.append(
            gtypes.Content(
                role="user",
                parts=[
                    gtypes.Part(
                        function_response=gtypes.FunctionResponse(
                            id=c.id, name=c.name, response={"result": RESULT}
                        )
                    )
                    for c in first.calls
                ],
            )
        )
        second, _ = self.ask(model, contents, stream, config)
        return first, second

    def reasoning_turn(self, model, stream) -> Answer:
        config = gtypes.GenerateContentConfig(
            thinking_config=gtypes.ThinkingConfig(include_thoughts=True, thinking_budget=2048)
        )
        ans, _ = self.ask(model, "think, then say hi", stream, config)
        return ans


CLIENTS = {
    "chat": ChatClient,
    "responses": ResponsesClient,
    "anthropic": AnthropicClient,
    "genai": GenaiClient,
}

CELLS = [
    pytest.param(c, p, s, id=f"{c}-{p}-{'stream' if s else 'whole'}")
    for c in CLIENTS
    for p in PROVIDERS
    for s in (False, True)
]


# -- the matrix -----------------------------------------------------------------------------


@pytest.mark.parametrize("client_kind,provider,stream", CELLS)
@pytest_twisted.ensureDeferred
async def test_tool_call_and_result_round_trip(
    start_fake, start_proxy, client_kind, provider, stream
):
    fake, proxy, model = start_provider(start_fake, start_proxy, provider)
    client = CLIENTS[client_kind](proxy.url)

    first, second = await deferToThread(client.tool_turn, model, stream)

    assert [(c.name, c.args) for c in first.calls] == [(TOOL, PLACEHOLDER_ARGS)]
    assert first.calls[0].id or client_kind == "genai"  # Gemini pairs by name
    assert len(fake.requests) == 2
    pairs = UPSTREAM_PAIRS[provider](fake.last.json)
    assert len(pairs) == 1, pairs
    name, result = pairs[0]
    assert name == TOOL  # paired with the call it answers
    assert RESULT in result
    assert second.calls == []
    assert second.text == f"hello from {fake.name}"


@pytest.mark.parametrize("client_kind,provider,stream", CELLS)
@pytest_twisted.ensureDeferred
async def test_reasoning_reaches_the_client(start_fake, start_proxy, client_kind, provider, stream):
    fake, proxy, model = start_provider(start_fake, start_proxy, provider)
    client = CLIENTS[client_kind](proxy.url)

    ans = await deferToThread(client.reasoning_turn, model, stream)

    assert upstream_wants_reasoning(provider, fake.last.json)
    assert ans.reasoning == fake.reasoning_text
    assert ans.text == f"hello from {fake.name}"
    assert ans.calls == []


# -- tool names an upstream cannot take as they are ------------------------------------------

#: Gemini wants a letter or "_" first
DIGIT_FIRST = "3day_forecast"
#: longer than the 64 characters Codex and Gemini take (Claude Code's MCP tools look like this)
LONG_MCP = "mcp__weather_service_for_many_cities__get_current_conditions_for_city"
#: fine for Gemini, refused by Claude and OpenAI (`^[a-zA-Z0-9_-]{1,64}$`)
DOTTED = "weather.get:now"

NAME_CELLS = [
    pytest.param(c, p, name, s, id=f"{c}-{p}-{label}-{'stream' if s else 'whole'}")
    for c, p, name, label in [
        ("chat", "gemini", DIGIT_FIRST, "digit"),
        ("responses", "gemini", DIGIT_FIRST, "digit"),
        ("anthropic", "gemini", DIGIT_FIRST, "digit"),
        ("anthropic", "gemini", LONG_MCP, "long"),
        ("chat", "codex", LONG_MCP, "long"),
        ("anthropic", "codex", LONG_MCP, "long"),
        ("genai", "codex", LONG_MCP, "long"),
        ("genai", "claude", DOTTED, "dotted"),
        ("genai", "codex", DOTTED, "dotted"),
        ("genai", "openai", DOTTED, "dotted"),
    ]
    for s in (False, True)
]


@pytest.mark.parametrize("client_kind,provider,name,stream", NAME_CELLS)
@pytest_twisted.ensureDeferred
async def test_renamed_tools_come_back_under_the_clients_name(
    start_fake, start_proxy, client_kind, provider, name, stream
):
    fake, proxy, model = start_provider(start_fake, start_proxy, provider)
    client = CLIENTS[client_kind](proxy.url)

    tools = [(name, SCHEMA), (OTHER_TOOL, OTHER_SCHEMA)]
    first, second = await deferToThread(client.tool_turn, model, stream, tools, "Use the tool.")

    upstream_name = fake.read_ask(fake.requests[0]).tools[0][0]
    assert upstream_name != name  # the upstream was given a name it takes
    assert [(c.name, c.args) for c in first.calls] == [(name, PLACEHOLDER_ARGS)]
    pairs = UPSTREAM_PAIRS[provider](fake.last.json)
    assert [(n, RESULT in r) for n, r in pairs] == [(upstream_name, True)]
    assert second.text == f"hello from {fake.name}"


# -- Responses namespaces and freeform tools -------------------------------------------------

NAMESPACE_TOOL = {
    "type": "namespace",
    "name": "crm",
    "description": "customer records",
    "tools": [{"type": "function", "name": "lookup", "description": "find", "parameters": SCHEMA}],
}
FREEFORM_TOOL = {"type": "custom", "name": "apply_patch", "description": "edit files"}


def responses_tool_items(client: ResponsesClient, model, stream, tools) -> tuple[list, str]:
    """Both turns of a Responses tool conversation: (the call items, the final text)."""
    items: list[Any] = [{"role": "user", "content": "Use the tool."}]
    _, output = client.ask(model, items, stream, tools=tools)
    calls = [i for i in output if i.type in ("function_call", "custom_tool_call")]
    for call in calls:
        items.append(call.model_dump(exclude_none=True, exclude={"id", "status"}))
        kind = "function_call_output" if call.type == "function_call" else "custom_tool_call_output"
        items.append({"type": kind, "call_id": call.call_id, "output": RESULT})
    final, _ = client.ask(model, items, stream, tools=tools)
    return calls, final.text


RESPONSES_TOOL_CELLS = [
    pytest.param(p, s, id=f"{p}-{'stream' if s else 'whole'}")
    for p in ("claude", "gemini", "openai")
    for s in (False, True)
]


@pytest.mark.parametrize("provider,stream", RESPONSES_TOOL_CELLS)
@pytest_twisted.ensureDeferred
async def test_namespaced_tool_call_comes_back_in_its_namespace(
    start_fake, start_proxy, provider, stream
):
    fake, proxy, model = start_provider(start_fake, start_proxy, provider)
    client = ResponsesClient(proxy.url)

    calls, text = await deferToThread(
        responses_tool_items, client, model, stream, [NAMESPACE_TOOL, FREEFORM_TOOL]
    )

    assert [(c.type, c.namespace, c.name) for c in calls] == [("function_call", "crm", "lookup")]
    assert json.loads(calls[0].arguments) == PLACEHOLDER_ARGS
    pairs = UPSTREAM_PAIRS[provider](fake.last.json)
    assert [(n, RESULT in r) for n, r in pairs] == [("crm__lookup", True)]
    assert text == f"hello from {fake.name}"


@pytest.mark.parametrize("provider,stream", RESPONSES_TOOL_CELLS)
@pytest_twisted.ensureDeferred
async def test_freeform_tool_call_comes_back_with_raw_input(
    start_fake, start_proxy, provider, stream
):
    fake, proxy, model = start_provider(start_fake, start_proxy, provider)
    client = ResponsesClient(proxy.url)

    calls, text = await deferToThread(
        responses_tool_items, client, model, stream, [FREEFORM_TOOL, NAMESPACE_TOOL]
    )

    assert [(c.type, c.name, c.input) for c in calls] == [
        ("custom_tool_call", "apply_patch", "test")
    ]
    pairs = UPSTREAM_PAIRS[provider](fake.last.json)
    assert [(n, RESULT in r) for n, r in pairs] == [("apply_patch", True)]
    assert text == f"hello from {fake.name}"


# -- reasoning signatures across a tool call ------------------------------------------------

#: base64 signatures shaped like each provider's own (cliproxy tells them apart by shape)
SIGNATURES = {
    "claude": base64.b64encode(b"\x12\xa4\x01" + b"claude thinking signature fixture").decode(),
    "gemini": base64.b64encode(b"\x0a\x24\x01" + b"gemini thought signature fixture").decode(),
    "codex": base64.b64encode(b"\x80\x00\x00\x00\x00\x00" + b"codex encrypted reasoning").decode(),
}
#: (client, provider) cells where the client's format has a place for that provider's
#: signature, so the next request can give it back (README: what does not cross)
CARRIERS = {
    ("anthropic", "claude"),
    ("responses", "codex"),
    ("genai", "gemini"),
    ("anthropic", "codex"),  # Codex encrypted reasoning in a Claude thinking block
    ("responses", "claude"),  # Claude's thinking signature as encrypted_content
    ("chat", "gemini"),  # Gemini's call signature in the call's extra_content
}
SIGNATURE_CELLS = [
    pytest.param(c, p, s, id=f"{c}-{p}-{'stream' if s else 'whole'}")
    for c in CLIENTS
    for p in SIGNATURES
    for s in (False, True)
]


def signatures_in(value: Any) -> set[str]:
    keys = ("signature", "thoughtSignature", "thought_signature", "encrypted_content")
    if isinstance(value, dict):
        found = {v for k, v in value.items() if k in keys and isinstance(v, str)}
        return found.union(*(signatures_in(v) for v in value.values()))
    if isinstance(value, list):
        return set().union(*(signatures_in(v) for v in value))
    return set()


@pytest.mark.parametrize("client_kind,provider,stream", SIGNATURE_CELLS)
@pytest_twisted.ensureDeferred
async def test_thinking_signature_goes_back_only_to_the_provider_that_made_it(
    start_fake, start_proxy, client_kind, provider, stream
):
    from tests.fakes.turn import ToolCall, Turn

    fake, proxy, model = start_provider(start_fake, start_proxy, provider)
    signature = SIGNATURES[provider]
    fake.script_turn(
        Turn(
            reasoning=fake.reasoning_text,
            tool_calls=[ToolCall(TOOL, PLACEHOLDER_ARGS)],
            signature=signature,
        )
    )
    client = CLIENTS[client_kind](proxy.url)

    first, second = await deferToThread(client.tool_turn, model, stream, TOOLS, ASK, True)

    assert first.reasoning == fake.reasoning_text
    assert [c.name for c in first.calls] == [TOOL]
    assert second.text == f"hello from {fake.name}"
    replayed = signatures_in(fake.last.json)
    assert replayed <= {signature, "skip_thought_signature_validator"}  # nothing foreign
    if (client_kind, provider) in CARRIERS:
        assert signature in replayed
