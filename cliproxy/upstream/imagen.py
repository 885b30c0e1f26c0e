# -*- test-case-name: tests.upstream.test_vertex_service_account -*-
"""Vertex Imagen (`:predict`): a Gemini request turned into Imagen's, and its answer back.

As CLIProxyAPI's `gemini_vertex_executor.go`: the prompt is the first text of the Gemini
`contents` (or of OpenAI `messages`, or a `prompt` field); `aspectRatio`, `sampleCount`
and `negativePrompt` pass through; `predictions[].bytesBase64Encoded` come back as Gemini
`inlineData` parts of one candidate, with zero token counts (Imagen reports none).
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from twisted.web.iweb import IResponse

from cliproxy.credentials.model import Credential
from cliproxy.upstream.base import UnsupportedAction, UpstreamCall
from cliproxy.upstream.body import read_body
from cliproxy.upstream.gemini import GeminiExecutor
from cliproxy.upstream.oauth_call import BufferedResponse

__all__ = [
    "gemini_answer",
    "imagen_body",
    "imagen_request",
    "imagen_response",
    "is_imagen",
    "predict_call",
]

#: an Imagen answer (base64 images) is read whole, up to this size
IMAGEN_LIMIT = 64 * 1024 * 1024


def is_imagen(model: str) -> bool:
    return "imagen" in model.lower()


def _prompt(body: dict[str, Any]) -> str:
    for turn in body.get("contents") or ():
        parts = turn.get("parts") if isinstance(turn, dict) else None
        for part in parts or ():
            if isinstance(part, dict) and isinstance(part.get("text"), str) and part["text"]:
                return str(part["text"])
        break  # CLIProxyAPI reads contents[0].parts[0] only
    for message in body.get("messages") or ():
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, str) and content:
            return content
    prompt = body.get("prompt")
    return prompt if isinstance(prompt, str) else ""


def imagen_request(body: dict[str, Any]) -> dict[str, Any]:
    """The `:predict` body for a Gemini-shaped request.

    Raises:
        ValueError: the request holds no prompt text.
    """
    prompt = _prompt(body)
    if not prompt:
        raise ValueError("imagen: no prompt found in the request")
    instance: dict[str, Any] = {"prompt": prompt}
    parameters: dict[str, Any] = {"sampleCount": 1}
    if isinstance(body.get("aspectRatio"), str):
        parameters["aspectRatio"] = body["aspectRatio"]
    if isinstance(body.get("sampleCount"), int) and not isinstance(body["sampleCount"], bool):
        parameters["sampleCount"] = body["sampleCount"]
    if isinstance(body.get("negativePrompt"), str):
        instance["negativePrompt"] = body["negativePrompt"]
    return {"instances": [instance], "parameters": parameters}


def gemini_answer(data: bytes, model: str) -> bytes:
    """Imagen's `predictions` as a Gemini `generateContent` answer (unchanged if not Imagen's)."""
    try:
        answer = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return data
    predictions = answer.get("predictions") if isinstance(answer, dict) else None
    if not isinstance(predictions, list):
        return data
    parts = [
        {
            "inlineData": {
                "mimeType": str(p.get("mimeType") or "image/png"),
                "data": p["bytesBase64Encoded"],
            }
        }
        for p in predictions
        if isinstance(p, dict) and isinstance(p.get("bytesBase64Encoded"), str)
    ]
    gemini = {
        "candidates": [{"content": {"parts": parts, "role": "model"}, "finishReason": "STOP"}],
        "responseId": f"imagen-{time.time_ns()}",
        "modelVersion": model,
        "usageMetadata": {"promptTokenCount": 0, "candidatesTokenCount": 0, "totalTokenCount": 0},
    }
    return json.dumps(gemini).encode("utf-8")


def imagen_body(model: str, body: dict[str, Any], stream: bool) -> dict[str, Any]:
    """The `:predict` body for `model`, or why it cannot be sent.

    Raises:
        UnsupportedAction: a stream was asked for, or the request holds no prompt.
    """
    if stream:
        raise UnsupportedAction(f"Imagen model {model!r} answers once: ask with stream off")
    try:
        return imagen_request(body)
    except ValueError as e:
        raise UnsupportedAction(str(e)) from None


async def imagen_response(response: IResponse, model: str) -> IResponse:
    """A successful `:predict` answer as a Gemini one (other answers pass unchanged)."""
    if response.code != 200:
        return response
    data = await read_body(response, IMAGEN_LIMIT)
    return BufferedResponse(200, gemini_answer(data, model))


def predict_call(
    executor: GeminiExecutor,
    cred: Credential,
    *,
    model: str,
    body: dict[str, Any],
    stream: bool,
    client_headers: Mapping[str, str] | None = None,
) -> UpstreamCall:
    """The Gemini builder's call for an Imagen model, sent to `:predict` with Imagen's body.

    Raises:
        UnsupportedAction: a stream was asked for, or the request holds no prompt.
    """
    call = GeminiExecutor.build(
        executor,
        cred,
        model=model,
        body=imagen_body(model, body, stream),
        stream=False,
        client_headers=client_headers,
    )
    return replace(call, url=call.url.replace(":generateContent", ":predict", 1))
