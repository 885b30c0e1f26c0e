# -*- test-case-name: tests.formats.test_requests_roundtrip -*-
"""translate_request: any of the four request formats into any other, through the IR.

Where CLIProxyAPI has a marked quirk we do what a client expects instead:
* Gemini gets `maxOutputTokens` and `stopSequences` from every source (§D, §F dropped them);
* system text goes to the target's system slot, never a leading user turn (§B, §C);
* Gemini bodies are read in camelCase and snake_case alike (§C read snake_case only);
* Gemini results pair with calls by name and order, not "the last id" (§L);
* `tool_choice: none` stays none (§K made it auto); Anthropic-defined tools (bash, editor,
  computer...) are dropped rather than declared as functions nobody implements (§K);
* images reach every target that takes them (§J dropped them for Codex);
* tool results without their call become text instead of a request the upstream refuses;
* tool names are fitted to every target, not only Gemini and Codex (a Gemini client's `a.b`
  is refused by Claude and OpenAI), made unique, and restored in the answer (tool_map.py).
"""

from __future__ import annotations

from collections.abc import Callable

from cliproxy.formats import Format
from cliproxy.formats.json_types import JSON, JSONObject
from cliproxy.formats.requests import claude, gemini, openai_chat, responses, thinking
from cliproxy.formats.requests.errors import TranslationError
from cliproxy.formats.requests.gemini_fixups import backfill_function_response_names
from cliproxy.formats.requests.ir import (
    Conversation,
    dedupe_results,
    orphan_results_as_text,
    unique_call_ids,
)
from cliproxy.formats.requests.limits import clamp_output_tokens
from cliproxy.formats.requests.tool_map import rename_tools

_PARSERS: dict[Format, Callable[[JSONObject], Conversation]] = {
    Format.OPENAI_CHAT: openai_chat.parse,
    Format.OPENAI_RESPONSES: responses.parse,
    Format.CLAUDE: claude.parse,
    Format.GEMINI: gemini.parse,
}
_EMITTERS = {
    Format.OPENAI_CHAT: openai_chat.emit,
    Format.OPENAI_RESPONSES: responses.emit,
    Format.CLAUDE: claude.emit,
    Format.GEMINI: gemini.emit,
}


def parse_request(src: Format, body: JSON) -> Conversation:
    """The Conversation a request body of format `src` describes."""
    if not isinstance(body, dict):
        raise TranslationError("request body must be a JSON object")
    parser = _PARSERS.get(src)
    if parser is None:
        raise TranslationError(f"unsupported request format {src!r}")
    try:
        conv = parser(body)
    except TranslationError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as e:
        # A shape the parsers did not foresee: still the client's malformed body, and the
        # caller must get the one exception it knows how to turn into a 400.
        raise TranslationError(f"malformed {src.value} request: {e}") from e
    unique_call_ids(conv.messages)
    dedupe_results(conv.messages)
    orphan_results_as_text(conv.messages)
    return conv


def emit_request(
    dst: Format,
    conv: Conversation,
    *,
    model: str,
    stream: bool,
    model_caps: JSONObject | None = None,
) -> JSONObject:
    """A request body of format `dst` for `conv` (whose tools get names `dst` accepts)."""
    emitter = _EMITTERS.get(dst)
    if emitter is None:
        raise TranslationError(f"unsupported request format {dst!r}")
    rename_tools(dst, conv)
    caps = thinking.ModelCaps.from_dict(model_caps)
    limit = caps.max_output if caps is not None else None
    if limit and conv.max_tokens is not None and conv.max_tokens > limit:
        conv.max_tokens = limit
    try:
        return emitter(conv, model=model, stream=stream, caps=caps)
    except TranslationError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as e:
        raise TranslationError(f"cannot express this request as {dst.value}: {e}") from e


def translate_request(
    src: Format,
    dst: Format,
    body: JSONObject,
    *,
    model: str,
    stream: bool,
    model_caps: JSONObject | None = None,
) -> JSONObject:
    """`body` (a client request in format `src`) as a request in format `dst`.

    `model` is the upstream model name (suffix already stripped; see parse_thinking_suffix).
    Same format in and out: a shallow copy with only `model` set (Gemini keeps its model in
    the URL; its body only gets empty `functionResponse` names filled in). `model_caps` is
    the catalog's thinking entry for the model (see thinking.ModelCaps.from_dict) and
    decides, for example, adaptive vs budget thinking on Claude. Raises TranslationError,
    and nothing else, for a malformed body.
    """
    if not isinstance(body, dict):
        raise TranslationError("request body must be a JSON object")
    if src is dst:
        out = dict(body)
        if dst is not Format.GEMINI:
            out["model"] = model
        else:
            out = backfill_function_response_names(out)
        caps = thinking.ModelCaps.from_dict(model_caps)
        return clamp_output_tokens(dst, out, caps.max_output if caps is not None else None)
    conv = parse_request(src, body)
    return emit_request(dst, conv, model=model, stream=stream, model_caps=model_caps)
