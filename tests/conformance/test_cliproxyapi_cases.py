"""CLIProxyAPI's own Go tests as a yardstick (../shared/conformance, see its README).

The request-side sets (translator and executor cases) run through the routing pipeline
without sockets: `translate_request` -> `apply_thinking` -> the case's `payload` rules ->
the credential's executor `build` and `finish`, exactly what `Attempt` does before sending.
Each case must pass, or be listed with its reason in docs/provider-fidelity.md (then it is
an expected failure).

The cases are CLIProxyAPI's material and are never copied here: they are read from
`../shared/conformance` (or `$CLIPROXY_CONFORMANCE`) and the tests skip without them.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest

from cliproxy.config import parse_config
from cliproxy.credentials.model import Credential, ModelAlias
from cliproxy.formats import Format
from cliproxy.formats.requests import apply_thinking, translate_request
from cliproxy.formats.requests.errors import TranslationError
from cliproxy.formats.requests.thinking import parse_thinking_suffix
from cliproxy.formats.responses_side import stream_translator, translate_response
from cliproxy.formats.sse import SSEDecoder
from cliproxy.registry import ModelRegistry
from cliproxy.routing.bodies import aggregate, thinking_caps
from cliproxy.upstream import executor_for
from cliproxy.upstream.payload import apply_payload_rules, client_protocol, provider_protocol
from tests.conformance.checks import check
from tests.conformance.response_checks import check_body, check_stream, parse_events

ROOT = Path(__file__).resolve().parents[2]


def _conformance_dir() -> Path | None:
    env = os.environ.get("CLIPROXY_CONFORMANCE")
    candidates = [Path(env)] if env else []
    candidates += [
        ROOT.parent / "shared" / "conformance",
        ROOT.parent.parent / "shared" / "conformance",
    ]
    return next((c for c in candidates if c.is_dir()), None)


CASES_DIR = _conformance_dir()
DOC = ROOT / "docs" / "provider-fidelity.md"
FORMATS = {
    "openai-chat": Format.OPENAI_CHAT,
    "openai-responses": Format.OPENAI_RESPONSES,
    "claude": Format.CLAUDE,
    "gemini": Format.GEMINI,
}
#: the credential a translator case's target is served by
TARGET_KIND = {
    "claude": "claude-api-key",
    "codex": "codex-api-key",
    "gemini": "gemini-api-key",
    "openai": "openai-compat",
}
BASES = {
    "claude-api-key": "https://api.anthropic.com",
    "codex-api-key": "https://chatgpt.com/backend-api/codex",
    "gemini-api-key": "https://generativelanguage.googleapis.com",
    "vertex-api-key": "https://aiplatform.googleapis.com",
    "openai-compatibility": "https://compat.example/v1",
}


def _cases(kind_dir: str, prefix: str = "") -> list[Any]:
    if CASES_DIR is None:
        return [pytest.param(None, marks=pytest.mark.skip(reason="no ../shared/conformance"))]
    out = []
    for path in sorted((CASES_DIR / kind_dir).glob("*.json")):
        case = json.loads(path.read_text())
        marks = []
        if case.get("skip"):
            marks.append(pytest.mark.skip(reason=case["skip"]))
        elif prefix + case["id"] in LISTED:
            marks.append(pytest.mark.xfail(reason=LISTED[prefix + case["id"]], strict=False))
        out.append(pytest.param(case, id=case["id"], marks=marks))
    return out


def _listed() -> dict[str, str]:
    """Case id -> reason, from the table rows `| \\`id\\` | reason |` of the fidelity doc
    (response cases as `response/<id>`: their ids overlap the translator set's)."""
    if not DOC.exists():
        return {}
    rows = re.findall(r"^\|\s*`([a-z0-9/-]+)`\s*\|\s*(.+?)\s*\|\s*$", DOC.read_text(), re.M)
    return dict(rows)


LISTED = _listed()


def _credential(spec: dict[str, Any], model: str = "") -> Credential:
    kind = spec["kind"].replace("-key", "-api-key").replace("openai-compat", "openai-compatibility")
    provider = {
        "claude-api-key": "claude",
        "codex-api-key": "codex",
        "gemini-api-key": "gemini",
        "vertex-api-key": "vertex",
    }.get(kind, spec.get("name", "openai-compatibility"))
    options = tuple(sorted((k, v) for k, v in spec.items() if k in ("plan_type", "cloak")))
    # an openai-compatibility model entry, as config would give it (name, alias, levels, ...)
    models: tuple[ModelAlias, ...] = ()
    if kind == "openai-compatibility" and ("model_name" in spec or "thinking-levels" in spec):
        name = spec.get("model_name") or model or "m"
        models = (
            ModelAlias(
                name=name,
                alias=spec.get("model_alias") or name,
                thinking_levels=tuple(spec.get("thinking-levels") or ()),
                input_modalities=tuple(spec.get("input-modalities") or ()),
            ),
        )
    return Credential(
        id=f"{kind}:conformance",
        provider=provider,
        kind=kind,
        api_key=spec.get("api-key", "sk-conformance-0000"),
        base_url=BASES.get(kind, ""),
        headers=tuple((spec.get("headers") or {}).items()),
        options=options,
        models=models,
    )


def _send(
    case: dict[str, Any], cred: Credential, catalog: bool = False
) -> tuple[str, dict[str, str], Any]:
    src = FORMATS[case["client_format"]]
    model, suffix = parse_thinking_suffix(case.get("model") or "m")
    route = case.get("client_route", "")
    action = {"responses/compact": "compact", "countTokens": "count_tokens"}.get(route, "generate")
    stream = bool(case.get("stream")) and action == "generate"
    body = dict(case["input"])
    if src is not Format.GEMINI:
        body["model"] = case.get("model") or "m"
        if stream:
            body["stream"] = True
    executor = executor_for(cred)
    upstream_stream = stream or (executor.always_streams and action == "generate")
    # the executor set runs with the shipped catalog's limits, as the router passes them
    # (a configured model's entry, e.g. openai-compatibility thinking levels, as the registry
    # built from the credential describes it)
    caps = thinking_caps(ModelRegistry([cred]).spec(model)) if catalog else None
    out = translate_request(
        src, executor.format, body, model=model, stream=upstream_stream, model_caps=caps
    )
    out = apply_thinking(executor.format, out, suffix, model_caps=caps)
    client_headers = case.get("client_headers") or {}
    config = parse_config(json.dumps(case.get("config") or {}))
    if config.payload.any():
        out = apply_payload_rules(
            config.payload,
            out,
            model=model,
            requested_model=case.get("model") or "m",
            protocol=provider_protocol(executor.provider, executor.format),
            from_protocol=client_protocol(src),
            headers=client_headers,
        )
    call = executor.build(
        cred,
        model=model,
        body=out,
        stream=upstream_stream,
        action=action,
        client_headers=client_headers,
    )
    call = executor.finish(call, cred, client_headers)
    return call.url, call.headers, json.loads(call.body) if call.body else {}


def _run(case: dict[str, Any], cred: Credential, catalog: bool = False) -> None:
    try:
        url, headers, body = _send(case, cred, catalog)
    except TranslationError as e:
        pytest.fail(f"translation refused: {e}")
    failures = []
    for a in case["assertions"]:
        failures += check(a, body=body, headers=headers, url=url, base=cred.base_url)
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("case", _cases("cliproxyapi-translator-cases"))
def test_translator_case(case):
    _run(case, _credential({"kind": TARGET_KIND[case["target"]].replace("-api", "")}))


@pytest.mark.parametrize("case", _cases("cliproxyapi-executor-cases"))
def test_executor_case(case):
    _run(case, _credential(case["credential"], case.get("model") or ""), catalog=True)


# ---- response cases: the upstream's answer -> what the client receives ------------------

UPSTREAM_FORMATS = {
    "claude": Format.CLAUDE,
    "codex": Format.OPENAI_RESPONSES,
    "gemini": Format.GEMINI,
    "openai": Format.OPENAI_CHAT,
}


def _sse(items: list[str]) -> bytes:
    """A stream case's items as the fake upstream would send them (the set's README)."""
    out = []
    for item in items:
        if item.startswith("data:") and item[5:].strip().startswith("{"):
            try:  # JSON the Go literal spreads over lines goes compact on one line
                item = "data: " + json.dumps(json.loads(item[5:]), separators=(",", ":"))
            except ValueError:
                pass
            out.append(item + "\n\n")
        elif item.startswith(("data:", "event:")):
            out.append(item.rstrip("\n") + "\n\n")
        else:
            try:
                item = json.dumps(json.loads(item), separators=(",", ":"))
            except ValueError:
                pass  # a fragment the Go test feeds as it is
            out.append(f"data: {item}\n\n")
    return "".join(out).encode()


def _client_stream(case: dict[str, Any], provider: Format, client: Format, model: str) -> bytes:
    translator = stream_translator(provider, client, model=model, gemini_sse=True)
    decoder = SSEDecoder()
    out: list[bytes] = []
    for ev in decoder.feed(_sse(case["upstream"])) + decoder.close():
        out += translator.feed(ev)
    out += translator.finish()
    return b"".join(out)


def _client_body(case: dict[str, Any], provider: Format, client: Format, model: str) -> Any:
    text: str = case["upstream"]
    if text.lstrip().startswith(("data:", "event:")):
        # Claude's SSE as the Go test's NonStream translator reads it; cliproxy asks Claude
        # for JSON, which the fake builds from the whole stream (ended, as a real one is)
        if "message_stop" not in text:
            text += '\ndata: {"type":"message_stop"}\n'
        parsed: Any = aggregate(text.replace("\n", "\n\n").encode(), provider)
    else:
        parsed = json.loads(text)
        if isinstance(parsed, dict) and str(parsed.get("type", "")).startswith("response."):
            # a Codex terminal event: Codex always streams, the router aggregates
            wire = f"event: {parsed['type']}\ndata: {json.dumps(parsed)}\n\n"
            parsed = aggregate(wire.encode(), provider)
    return translate_response(provider, client, parsed, model=model)


@pytest.mark.parametrize("case", _cases("cliproxyapi-response-cases", "response/"))
def test_response_case(case):
    provider = UPSTREAM_FORMATS[case["upstream_format"]]
    client = FORMATS[case["client_format"]]
    model = case.get("client_model") or case.get("model") or "m"
    failures = []
    if case["stream"]:
        raw = _client_stream(case, provider, client, model)
        events = parse_events(raw)
        for a in case["assertions"]:
            if not check_stream(a, events, raw.decode("utf-8", "replace")):
                failures.append(f"{a}")
        detail = json.dumps(events)[:1500]
    else:
        body = _client_body(case, provider, client, model)
        raw_text = json.dumps(body, ensure_ascii=False)
        for a in case["assertions"]:
            if not check_body(a, body, raw_text):
                failures.append(f"{a}")
        detail = raw_text[:1500]
    assert not failures, "\n".join(failures) + "\n" + detail
