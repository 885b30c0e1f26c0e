# -*- test-case-name: tests.formats.test_requests_thinking -*-
"""Reasoning effort and thinking budgets: the suffix, the level/budget scales, per-format fields.

Vocabulary (translators.md §2.2): a config is NONE (off), AUTO (model decides), LEVEL (an effort
name) or BUDGET (thinking tokens). Each format keeps it in its own fields; `read` and `write`
below are the only places that know them, used both by the translators and by
`apply_thinking`, which lets a `model(value)` suffix override the body.

Deliberate differences from CLIProxyAPI, chosen for what a client expects:
* out-of-range budgets and unsupported levels from the body are clamped, never a 400;
* Claude AUTO on a budget-only model becomes a medium budget (Claude needs `budget_tokens`);
* OpenAI targets get `medium` for AUTO and `xhigh` for `max` (they know neither word) unless
  the model's levels name `max` (an OpenAI-compatible server that takes it);
* a budget that does not fit under Claude's `max_tokens` switches thinking off rather than
  sending a request Claude will refuse.
"""

from __future__ import annotations

from dataclasses import dataclass

from cliproxy.formats import Format
from cliproxy.formats.json_types import JSON, JSONObject
from cliproxy.formats.requests._wire import as_int, get
from cliproxy.formats.requests.errors import TranslationError
from cliproxy.formats.requests.ir import Reasoning

LEVELS = ("minimal", "low", "medium", "high", "xhigh", "max")
_LEVEL_BUDGET = {
    "none": 0,
    "auto": -1,
    "minimal": 512,
    "low": 1024,
    "medium": 8192,
    "high": 24576,
    "xhigh": 32768,
    "max": 128000,
}
_CLAUDE_MIN_BUDGET = 1024
_CLAUDE_DEFAULT_MAX_TOKENS = 32000
_CLAUDE_AUTO_BUDGET = _LEVEL_BUDGET["medium"]


def parse_thinking_suffix(model: str) -> tuple[str, str | None]:
    """`"gpt-5(high)"` -> `("gpt-5", "high")`; no suffix -> `(model, None)`.

    The suffix is the text inside the last parentheses when the name ends with `)`. It is
    stripped even when its value means nothing (then `apply_thinking` ignores it).
    """
    if not model.endswith(")"):
        return model, None
    open_at = model.rfind("(")
    if open_at <= 0:
        return model, None
    return model[:open_at], model[open_at + 1 : -1]


def config_from_suffix(value: str | None) -> Reasoning | None:
    """The config a suffix value stands for, or None when it means nothing."""
    if value is None:
        return None
    v = value.strip().lower()
    if v == "none":
        return Reasoning("none")
    if v in ("auto", "-1"):
        return Reasoning("auto")
    if v in LEVELS:
        return Reasoning("level", level=v)
    if v.isdigit():
        n = int(v)
        return Reasoning("none") if n == 0 else Reasoning("budget", budget=n)
    return None


def level_to_budget(level: str) -> int | None:
    return _LEVEL_BUDGET.get(level)


def budget_to_level(budget: int) -> str | None:
    if budget == -1:
        return "auto"
    if budget < -1:
        return None
    if budget == 0:
        return "none"
    for level in ("minimal", "low", "medium", "high"):
        if budget <= _LEVEL_BUDGET[level]:
            return level
    return "xhigh"


@dataclass(frozen=True)
class ModelCaps:
    """What a model accepts, from the catalog's `thinking` entry."""

    min_budget: int | None = None
    max_budget: int | None = None
    levels: tuple[str, ...] = ()
    zero_allowed: bool = False
    dynamic_allowed: bool = False
    max_output: int | None = None

    @property
    def thinks(self) -> bool:
        return bool(self.levels) or self.max_budget is not None

    @classmethod
    def from_dict(cls, caps: JSONObject | None) -> ModelCaps | None:
        """Accepts the catalog's keys (`min`, `max`, ...) and `min_budget`/`max_budget`.

        None means an unknown model (configs pass unchecked); `{}` a known model that does not
        think (thinking fields are removed). An optional `output`/`max_output` (the model's
        output token limit) bounds Claude's default `max_tokens`.
        """
        if caps is None:
            return None
        levels = caps.get("levels") or ()
        return cls(
            min_budget=as_int(get(caps, "min_budget", "min")),
            max_budget=as_int(get(caps, "max_budget", "max")),
            levels=tuple(str(lv).lower() for lv in levels if isinstance(lv, str)),
            zero_allowed=bool(caps.get("zero_allowed", False)),
            dynamic_allowed=bool(caps.get("dynamic_allowed", False)),
            max_output=as_int(get(caps, "max_output", "output")),
        )


#: the two names for "above high": one stands for the other where only that one is offered
_TOP_LEVEL_TWIN = {"xhigh": "max", "max": "xhigh"}


def _nearest_level(level: str, levels: tuple[str, ...]) -> str:
    """`level` if supported, else the closest supported one (ties go to the lower level).

    `xhigh` and `max` mean the same intent (the top effort), so either takes the other
    before falling back to a lower level.
    """
    choices = [lv for lv in levels if lv in LEVELS]
    if not choices or level in choices:
        return level
    if _TOP_LEVEL_TWIN.get(level) in choices:
        return _TOP_LEVEL_TWIN[level]
    want = LEVELS.index(level) if level in LEVELS else LEVELS.index("medium")
    return min(choices, key=lambda lv: (abs(LEVELS.index(lv) - want), LEVELS.index(lv)))


def _clamp_budget(budget: int, caps: ModelCaps) -> int:
    if caps.min_budget is not None:
        budget = max(budget, caps.min_budget)
    if caps.max_budget is not None:
        budget = min(budget, caps.max_budget)
    return budget


def normalize(cfg: Reasoning, caps: ModelCaps | None) -> Reasoning:
    """Fit `cfg` to what the model accepts; unknown models (caps None) take it as it is."""
    mode, level, budget = cfg.mode, cfg.level, cfg.budget
    if mode == "level" and level in ("none", "auto"):
        mode, level = level, None
    if mode == "budget" and budget is not None and budget <= 0:
        mode = "none" if budget == 0 else "auto"
    # "show me the thoughts" alone (a summary, includeThoughts) asks for no thinking: a Codex
    # client's default `summary: auto` must not turn on Claude's 32k-token thinking
    if caps is None or mode is None:
        return Reasoning(mode, level, budget, cfg.include_thoughts, cfg.summary)

    def out(m: str, lv: str | None = None, b: int | None = None) -> Reasoning:
        # "none" on a model that cannot stop thinking still means: show no thoughts
        include = False if mode == "none" else cfg.include_thoughts
        return Reasoning(m, lv, b, include, cfg.summary)

    level_only = bool(caps.levels) and caps.max_budget is None
    if mode == "budget" and level_only:
        mode, level = "level", budget_to_level(budget or 0) or "medium"
    if mode == "level" and not caps.levels:
        mode, budget = "budget", _LEVEL_BUDGET.get(level or "", _LEVEL_BUDGET["medium"])
    if mode == "level":
        return out("level", _nearest_level(level or "medium", caps.levels))
    if mode == "budget":
        return out("budget", b=_clamp_budget(budget or 0, caps))
    if mode == "auto":
        if caps.dynamic_allowed or (caps.levels and not level_only):
            return out("auto")
        if level_only:
            return out("level", _nearest_level("medium", caps.levels))
        lo, hi = caps.min_budget or 0, caps.max_budget or 0
        return out("budget", b=(lo + hi) // 2) if (lo + hi) // 2 > 0 else out("none")
    # mode == "none"
    if caps.zero_allowed or "none" in caps.levels:
        return out("none")
    if caps.levels:
        first = next((lv for lv in caps.levels if lv in LEVELS), "low")
        return out("level", first)
    return out("budget", b=caps.min_budget or 0)


# ---- reading a body -----------------------------------------------------------------------


def read(fmt: Format, body: JSONObject) -> Reasoning | None:
    """The thinking config a body of format `fmt` carries, or None."""
    if fmt is Format.CLAUDE:
        return _read_claude(body)
    if fmt is Format.GEMINI:
        gen = get(body, "generationConfig", "generation_config")
        return _read_gemini(get(gen, "thinkingConfig", "thinking_config"))
    if fmt is Format.OPENAI_CHAT:
        return _read_effort(body.get("reasoning_effort"), None)
    reasoning = body.get("reasoning")
    if not isinstance(reasoning, dict):
        return None
    summary = reasoning.get("summary") if isinstance(reasoning.get("summary"), str) else None
    cfg = _read_effort(reasoning.get("effort"), summary)
    if cfg is None and summary:
        return Reasoning(None, include_thoughts=summary != "none", summary=summary)
    return cfg


def _read_effort(effort: JSON, summary: str | None) -> Reasoning | None:
    if not isinstance(effort, str) or not effort.strip():
        return None
    e = effort.strip().lower()
    include = None if summary is None else summary != "none"
    if e == "none":
        return Reasoning("none", summary=summary)
    if e == "auto":
        return Reasoning("auto", include_thoughts=include, summary=summary)
    return Reasoning("level", level=e, include_thoughts=include, summary=summary)


def _read_claude(body: JSONObject) -> Reasoning | None:
    thinking = body.get("thinking")
    oc = body.get("output_config")
    effort = oc.get("effort") if isinstance(oc, dict) else None
    effort = effort.strip().lower() if isinstance(effort, str) and effort.strip() else None
    kind = thinking.get("type") if isinstance(thinking, dict) else None
    if kind == "disabled":
        return Reasoning("none")
    if kind == "enabled" and isinstance(thinking, dict):
        budget = as_int(thinking.get("budget_tokens"))
        if budget is None or budget == -1:
            return Reasoning("auto", include_thoughts=True)
        return Reasoning("none") if budget == 0 else Reasoning("budget", budget=budget)
    if kind in ("adaptive", "auto") or effort:
        # Adaptive thinking without an effort runs at Claude's default effort, which is high.
        level = effort or "high"
        if level in ("none", "auto"):
            return Reasoning(level)
        return Reasoning("level", level=level, include_thoughts=True if kind else None)
    return None


def _read_gemini(tc: JSON) -> Reasoning | None:
    if not isinstance(tc, dict):
        return None
    include = get(tc, "includeThoughts", "include_thoughts")
    include = include if isinstance(include, bool) else None
    level = get(tc, "thinkingLevel", "thinking_level")
    if isinstance(level, str) and level.strip():
        lv = level.strip().lower()
        if lv in ("none", "auto"):
            return Reasoning(lv, include_thoughts=include)
        return Reasoning("level", level=lv, include_thoughts=include)
    budget = as_int(get(tc, "thinkingBudget", "thinking_budget"))
    if budget is not None:
        if budget == 0:
            return Reasoning("none", include_thoughts=include)
        if budget == -1:
            return Reasoning("auto", include_thoughts=include)
        return Reasoning("budget", budget=budget, include_thoughts=include)
    if include:
        return Reasoning("auto", include_thoughts=True)
    return None


# ---- writing a body -----------------------------------------------------------------------


def write(fmt: Format, body: JSONObject, cfg: Reasoning, caps: ModelCaps | None) -> None:
    """Replace the thinking fields of `body` (format `fmt`) with `cfg`, in place.

    Nested objects are copied before they are changed, so a shallow copy of a client's body
    can be passed without touching the client's own dicts.
    """
    if cfg.mode is None:
        # Chat has no field for "show the thoughts": a summary alone sets no effort there
        if not cfg.include_thoughts or fmt is Format.OPENAI_CHAT:
            return
        cfg = Reasoning("auto", include_thoughts=True, summary=cfg.summary)
    if fmt is Format.CLAUDE:
        _write_claude(body, cfg, caps)
    elif fmt is Format.GEMINI:
        _write_gemini(body, cfg, caps)
    elif fmt is Format.OPENAI_CHAT:
        body["reasoning_effort"] = _openai_effort(cfg, caps)
    else:
        old = body.get("reasoning")
        reasoning = dict(old) if isinstance(old, dict) else {}
        reasoning["effort"] = _openai_effort(cfg, caps)
        if cfg.summary and "summary" not in reasoning:
            reasoning["summary"] = cfg.summary
        elif cfg.include_thoughts and cfg.mode != "none" and "summary" not in reasoning:
            reasoning["summary"] = "auto"
        body["reasoning"] = reasoning


def _openai_effort(cfg: Reasoning, caps: ModelCaps | None = None) -> str:
    """The effort word; `max` becomes `xhigh` (OpenAI's name) unless the model offers `max`."""
    if cfg.mode == "none":
        return "none"
    level: str | None
    if cfg.mode == "budget":
        level = budget_to_level(cfg.budget or 0) or "medium"
    else:
        level = cfg.level if cfg.mode == "level" else "auto"
    if level == "auto":
        return "medium"
    if level == "max" and not (caps is not None and "max" in caps.levels):
        return "xhigh"
    return level or "medium"


def _claude_effort(level: str, caps: ModelCaps | None) -> str:
    if caps is not None and level in caps.levels:
        return level
    if level == "minimal":
        return "low"
    if level in ("xhigh", "max"):
        return "max" if caps is None or "max" in caps.levels else "high"
    if level == "auto":
        return "high"
    return level


def _write_claude(body: JSONObject, cfg: Reasoning, caps: ModelCaps | None) -> None:
    oc = (
        dict(body.get("output_config") or {}) if isinstance(body.get("output_config"), dict) else {}
    )
    oc.pop("effort", None)
    adaptive = caps is None or bool(caps.levels)
    mode = cfg.mode
    thinking: JSONObject
    if mode == "none":
        thinking = {"type": "disabled"}
    elif mode == "auto" and adaptive:
        thinking = {"type": "adaptive"}
    elif mode == "level" and adaptive:
        thinking = {"type": "adaptive"}
        oc["effort"] = _claude_effort(cfg.level or "high", caps)
    else:
        if mode == "level":
            budget = level_to_budget(cfg.level or "medium") or _CLAUDE_AUTO_BUDGET
        elif mode == "auto":
            budget = _CLAUDE_AUTO_BUDGET
        else:
            budget = cfg.budget or _CLAUDE_AUTO_BUDGET
        if caps is not None:
            budget = _clamp_budget(budget, caps)
        max_tokens = as_int(body.get("max_tokens"))
        if max_tokens is None:
            max_tokens = (caps.max_output if caps else None) or _CLAUDE_DEFAULT_MAX_TOKENS
            body["max_tokens"] = max_tokens
        if max_tokens <= budget:
            budget = max_tokens - 1
        if budget < _CLAUDE_MIN_BUDGET:
            # The client's output limit leaves no room for thinking: honour the limit.
            thinking = {"type": "disabled"}
        else:
            thinking = {"type": "enabled", "budget_tokens": budget}
    body["thinking"] = thinking
    if oc:
        body["output_config"] = oc
    else:
        body.pop("output_config", None)


def _write_gemini(body: JSONObject, cfg: Reasoning, caps: ModelCaps | None) -> None:
    gen_key = "generation_config" if "generation_config" in body else "generationConfig"
    gen = dict(body.get(gen_key) or {}) if isinstance(body.get(gen_key), dict) else {}
    old = get(gen, "thinkingConfig", "thinking_config")
    gen.pop("thinking_config", None)
    include = cfg.include_thoughts
    if include is None and isinstance(old, dict):
        kept = get(old, "includeThoughts", "include_thoughts")
        include = kept if isinstance(kept, bool) else None
    tc: JSONObject = {}
    mode, budget = cfg.mode, cfg.budget
    if mode == "level" and caps is not None and caps.levels:
        tc["thinkingLevel"] = cfg.level
        tc["includeThoughts"] = True if include is None else include
    else:
        if mode == "level":
            budget = level_to_budget(cfg.level or "medium")
            if budget is None:
                budget = -1
        elif mode == "auto":
            budget = -1
        elif mode == "none":
            budget = 0
        budget = budget if budget is not None else -1
        tc["thinkingBudget"] = budget
        if mode == "none" or budget == 0:
            tc["includeThoughts"] = False
        else:
            tc["includeThoughts"] = True if include is None else include
    gen["thinkingConfig"] = tc
    body[gen_key] = gen


def strip(fmt: Format, body: JSONObject) -> None:
    """Remove every thinking field (the model does not think)."""
    if fmt is Format.CLAUDE:
        body.pop("thinking", None)
        _drop_field(body, "output_config", "effort")
    elif fmt is Format.GEMINI:
        for key in ("generationConfig", "generation_config"):
            gen = body.get(key)
            if isinstance(gen, dict):
                body[key] = {
                    k: v for k, v in gen.items() if k not in ("thinkingConfig", "thinking_config")
                }
    elif fmt is Format.OPENAI_CHAT:
        body.pop("reasoning_effort", None)
    else:
        _drop_field(body, "reasoning", "effort")


def _drop_field(body: JSONObject, outer: str, inner: str) -> None:
    """Remove `body[outer][inner]` without touching the client's object; an emptied one goes."""
    obj = body.get(outer)
    if isinstance(obj, dict) and inner in obj:
        rest = {k: v for k, v in obj.items() if k != inner}
        if rest:
            body[outer] = rest
        else:
            del body[outer]


def claude_thinking_rules(body: JSONObject) -> None:
    """Claude's constraints on thinking requests (translators.md §2.2 step 6), in place.

    A forced tool choice cannot be combined with thinking, so thinking goes; with thinking on,
    temperature must be 1, top_k is not accepted and top_p must be at least 0.95.
    """
    choice = body.get("tool_choice")
    if isinstance(choice, dict) and choice.get("type") in ("any", "tool"):
        strip(Format.CLAUDE, body)
    elif _unsigned_tool_turn(body.get("messages")):
        # With thinking on, Claude wants the last assistant turn of a tool loop to open with
        # its signed thinking block. History from another provider has none to give, so this
        # request goes without thinking rather than fail.
        strip(Format.CLAUDE, body)
    thinking = body.get("thinking")
    if isinstance(thinking, dict) and thinking.get("type") in ("enabled", "adaptive", "auto"):
        if "temperature" in body and body["temperature"] != 1:
            body["temperature"] = 1
        body.pop("top_k", None)
        top_p = body.get("top_p")
        if isinstance(top_p, (int, float)) and top_p < 0.95:
            del body["top_p"]


def _unsigned_tool_turn(messages: JSON) -> bool:
    """Whether the last assistant message uses a tool without opening with thinking."""
    if not isinstance(messages, list):
        return False
    for msg in reversed(messages):
        if isinstance(msg, dict) and msg.get("role") == "assistant":
            blocks = msg.get("content")
            if not isinstance(blocks, list) or not blocks:
                return False
            uses_tool = any(isinstance(b, dict) and b.get("type") == "tool_use" for b in blocks)
            first = blocks[0].get("type") if isinstance(blocks[0], dict) else None
            return uses_tool and first not in ("thinking", "redacted_thinking")
    return False


def apply_thinking(
    dst: Format,
    body: JSONObject,
    suffix: str | None,
    *,
    model_caps: JSONObject | None = None,
) -> JSONObject:
    """A copy of `body` (already in format `dst`) with the suffix's thinking config applied.

    Without a (meaningful) suffix the body's own config is fitted to the model. `model_caps`
    is the catalog's thinking entry: None for an unknown model (nothing is checked), `{}` for
    a model that does not think (thinking fields are removed). `none` disables thinking.
    """
    if not isinstance(body, dict):
        raise TranslationError("request body must be a JSON object")
    caps = ModelCaps.from_dict(model_caps)
    out = dict(body)
    if caps is not None and not caps.thinks:
        strip(dst, out)
        return out
    cfg = config_from_suffix(suffix)
    if cfg is None and caps is not None:
        cfg = read(dst, out)
    if cfg is not None:
        write(dst, out, normalize(cfg, caps), caps)
    if dst is Format.CLAUDE:
        claude_thinking_rules(out)
    return out


def emit(dst: Format, body: JSONObject, cfg: Reasoning | None, caps: ModelCaps | None) -> None:
    """Write a translated conversation's reasoning settings into `body` (used by emitters)."""
    if cfg is not None and (caps is None or caps.thinks):
        write(dst, body, normalize(cfg, caps), caps)
    if dst is Format.CLAUDE:
        claude_thinking_rules(body)
