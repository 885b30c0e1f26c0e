# -*- test-case-name: tests.formats.test_resp_nonstream -*-
"""The entry points: pick a decoder and an encoder (or a pass-through) for a pair of formats."""

from __future__ import annotations

import time
from collections.abc import Callable

from cliproxy.formats import Format
from cliproxy.formats.json_types import JSONObject
from cliproxy.formats.responses_side.decode_chat import ChatDecoder, message_from_chat
from cliproxy.formats.responses_side.decode_claude import ClaudeDecoder, message_from_claude
from cliproxy.formats.responses_side.decode_gemini import GeminiDecoder, message_from_gemini
from cliproxy.formats.responses_side.decode_responses import (
    ResponsesDecoder,
    message_from_responses,
)
from cliproxy.formats.responses_side.encode_chat import ChatEncoder, chat_from_message
from cliproxy.formats.responses_side.encode_claude import ClaudeEncoder, claude_from_message
from cliproxy.formats.responses_side.encode_gemini import GeminiEncoder, gemini_from_message
from cliproxy.formats.responses_side.encode_responses import (
    ResponsesEncoder,
    responses_from_message,
)
from cliproxy.formats.responses_side.ir import (
    Decoder,
    Encoder,
    EncoderOptions,
    Message,
    ToolCallBlock,
    ToolNames,
    new_nonce,
)
from cliproxy.formats.responses_side.passthrough import (
    ChatPassThrough,
    ClaudePassThrough,
    GeminiPassThrough,
    ResponsesPassThrough,
)
from cliproxy.formats.responses_side.stream import HubTranslator, StreamTranslator

_DECODERS: dict[Format, type[Decoder]] = {
    Format.CLAUDE: ClaudeDecoder,
    Format.OPENAI_CHAT: ChatDecoder,
    Format.OPENAI_RESPONSES: ResponsesDecoder,
    Format.GEMINI: GeminiDecoder,
}

_ENCODERS: dict[Format, type[Encoder]] = {
    Format.CLAUDE: ClaudeEncoder,
    Format.OPENAI_CHAT: ChatEncoder,
    Format.OPENAI_RESPONSES: ResponsesEncoder,
    Format.GEMINI: GeminiEncoder,
}

_FROM_BODY: dict[Format, Callable[..., Message]] = {
    Format.CLAUDE: message_from_claude,
    Format.OPENAI_CHAT: message_from_chat,
    Format.OPENAI_RESPONSES: message_from_responses,
    Format.GEMINI: message_from_gemini,
}

_TO_BODY: dict[Format, Callable[..., JSONObject]] = {
    Format.CLAUDE: claude_from_message,
    Format.OPENAI_CHAT: chat_from_message,
    Format.OPENAI_RESPONSES: responses_from_message,
    Format.GEMINI: gemini_from_message,
}


def _format(value: Format | str) -> Format:
    """`value` as a Format; a member as it is (calling the Enum costs ~5k instructions)."""
    return value if type(value) is Format else Format(value)


def translate_response(
    provider: Format,
    client: Format,
    body: JSONObject,
    *,
    model: str,
    tool_names: ToolNames | None = None,
    created: int | None = None,
    nonce: str | None = None,
) -> JSONObject:
    """A whole upstream response in `provider`'s format → the same answer in `client`'s.

    Args:
        model: the model the client asked for; echoed back.
        tool_names: upstream tool name → the client's name or `ClientTool`, for names the
            request side shortened, sanitised or flattened (requests.client_tools builds it).
        created, nonce: the timestamp and the random part of generated ids (tests pin them).

    The same format on both sides returns `body` itself, untouched, like the stream fast path.
    """
    provider, client = _format(provider), _format(client)
    if provider is client:
        return body
    nonce = nonce or new_nonce()
    message = _FROM_BODY[provider](body if isinstance(body, dict) else {}, nonce=nonce)
    _usable_tool_calls(message, nonce)
    return _TO_BODY[client](
        message,
        model=model,
        created=int(time.time()) if created is None else created,
        nonce=nonce,
        tool_names=tool_names,
    )


def _usable_tool_calls(message: Message, nonce: str) -> None:
    """Drop calls without a name (nobody can answer them); give the others an id."""
    blocks = []
    for n, block in enumerate(message.blocks, 1):
        if isinstance(block, ToolCallBlock):
            if not block.name:
                continue
            if not block.id:
                block.id = f"call_{nonce}{n}"
        blocks.append(block)
    message.blocks = blocks


def _encoder(
    client: Format,
    model: str,
    *,
    created: int | None,
    nonce: str,
    tool_names: ToolNames | None,
    gemini_sse: bool,
) -> Encoder:
    options: EncoderOptions = {
        "created": int(time.time()) if created is None else created,
        "nonce": nonce,
        "tool_names": tool_names,
    }
    if client is Format.GEMINI:
        return GeminiEncoder(model, sse=gemini_sse, **options)
    return _ENCODERS[client](model, **options)


def _pass_through(encoder: Encoder, *, gemini_sse: bool) -> StreamTranslator:
    """The same-format fast path, keeping `encoder` (the client's format) for error events."""
    if isinstance(encoder, GeminiEncoder):
        return GeminiPassThrough(encoder, sse=gemini_sse)
    if isinstance(encoder, ResponsesEncoder):
        return ResponsesPassThrough(encoder)
    if isinstance(encoder, ClaudeEncoder):
        return ClaudePassThrough(encoder)
    return ChatPassThrough(encoder)


def stream_translator(
    provider: Format,
    client: Format,
    *,
    model: str,
    tool_names: ToolNames | None = None,
    gemini_sse: bool = True,
    created: int | None = None,
    nonce: str | None = None,
) -> StreamTranslator:
    """A translator for one streamed response from `provider` to a `client`.

    Args:
        model: the model the client asked for; echoed in every header.
        tool_names: upstream tool name → the client's name or `ClientTool`.
        gemini_sse: for Gemini clients: True for `alt=sse` framing, False for the JSON array
            Gemini sends without `alt=sse`.
        created, nonce: the timestamp and the random part of generated ids (tests pin them).
    """
    provider, client = _format(provider), _format(client)
    nonce = nonce or new_nonce()
    encoder = _encoder(
        client, model, created=created, nonce=nonce, tool_names=tool_names, gemini_sse=gemini_sse
    )
    if provider is client:
        return _pass_through(encoder, gemini_sse=gemini_sse)
    return HubTranslator(_DECODERS[provider](encoder, nonce=nonce), encoder)


def error_event(client: Format, status: int, message: str, *, gemini_sse: bool = True) -> bytes:
    """A terminal error event in `client`'s stream format, for errors before any translator.

    `message` may be plain text or an upstream JSON error body (its message is extracted).
    """
    encoder = _encoder(
        _format(client), "", created=0, nonce=new_nonce(), tool_names=None, gemini_sse=gemini_sse
    )
    encoder.error(status, message)
    return b"".join(encoder.drain())
