"""CLIProxyAPI's own Go tests as a yardstick (../shared/conformance, see its README).

The request-side sets (translator and executor cases) run through the routing pipeline
without sockets: `translate_request` -> `apply_thinking` -> the credential's executor
`build`, exactly what `Router._attempt` does before sending. Each case must pass, or be
listed with its reason in docs/provider-fidelity.md (then it is an expected failure).

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

from cliproxy.credentials.model import Credential
from cliproxy.formats import Format
from cliproxy.formats.requests import apply_thinking, translate_request
from cliproxy.formats.requests.errors import TranslationError
from cliproxy.formats.requests.thinking import parse_thinking_suffix
from cliproxy.upstream import executor_for
from tests.conformance.checks import check

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


def _cases(kind_dir: str) -> list[Any]:
    if CASES_DIR is None:
        return [pytest.param(None, marks=pytest.mark.skip(reason="no ../shared/conformance"))]
    out = []
    for path in sorted((CASES_DIR / kind_dir).glob("*.json")):
        case = json.loads(path.read_text())
        marks = []
        if case.get("skip"):
            marks.append(pytest.mark.skip(reason=case["skip"]))
        elif case["id"] in LISTED:
            marks.append(pytest.mark.xfail(reason=LISTED[case["id"]], strict=False))
        out.append(pytest.param(case, id=case["id"], marks=marks))
    return out


def _listed() -> dict[str, str]:
    """Case id -> reason, from the table rows `| \\`id\\` | reason |` of the fidelity doc."""
    if not DOC.exists():
        return {}
    rows = re.findall(r"^\|\s*`([a-z0-9-]+)`\s*\|\s*(.+?)\s*\|\s*$", DOC.read_text(), re.M)
    return dict(rows)


LISTED = _listed()


def _credential(spec: dict[str, Any]) -> Credential:
    kind = spec["kind"].replace("-key", "-api-key").replace("openai-compat", "openai-compatibility")
    provider = {
        "claude-api-key": "claude",
        "codex-api-key": "codex",
        "gemini-api-key": "gemini",
        "vertex-api-key": "vertex",
    }.get(kind, spec.get("name", "openai-compatibility"))
    options = tuple(sorted((k, v) for k, v in spec.items() if k in ("plan_type", "cloak")))
    return Credential(
        id=f"{kind}:conformance",
        provider=provider,
        kind=kind,
        api_key=spec.get("api-key", "sk-conformance-0000"),
        base_url=BASES.get(kind, ""),
        headers=tuple((spec.get("headers") or {}).items()),
        options=options,
    )


def _send(case: dict[str, Any], cred: Credential) -> tuple[str, dict[str, str], Any]:
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
    out = translate_request(src, executor.format, body, model=model, stream=upstream_stream)
    out = apply_thinking(executor.format, out, suffix)
    call = executor.build(
        cred,
        model=model,
        body=out,
        stream=upstream_stream,
        action=action,
        client_headers=case.get("client_headers") or {},
    )
    return call.url, call.headers, json.loads(call.body) if call.body else {}


def _run(case: dict[str, Any], cred: Credential) -> None:
    try:
        url, headers, body = _send(case, cred)
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
    _run(case, _credential(case["credential"]))
