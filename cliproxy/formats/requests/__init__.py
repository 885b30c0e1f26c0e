"""Request translation between OpenAI Chat, OpenAI Responses, Claude Messages and Gemini.

Every format is parsed into one intermediate representation (ir.py) and emitted from it; see
ir.py for why. Pure code: no Twisted, no I/O, no config. Every function raises
TranslationError, and nothing else, for a body it cannot translate.
"""

from cliproxy.formats.requests.errors import TranslationError
from cliproxy.formats.requests.responses import codex_fixups, flat_tool_names
from cliproxy.formats.requests.thinking import apply_thinking, parse_thinking_suffix
from cliproxy.formats.requests.tokens import count_tokens_request, estimate_tokens
from cliproxy.formats.requests.tool_map import client_tools
from cliproxy.formats.requests.translate import emit_request, parse_request, translate_request

__all__ = [
    "TranslationError",
    "apply_thinking",
    "client_tools",
    "codex_fixups",
    "count_tokens_request",
    "emit_request",
    "estimate_tokens",
    "flat_tool_names",
    "parse_request",
    "parse_thinking_suffix",
    "translate_request",
]
