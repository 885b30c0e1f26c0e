# -*- test-case-name: tests.test_registry -*-
"""The model listings, in the shape each client family's `GET .../models` answers."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal, NotRequired, TypedDict

from cliproxy.registry.catalog import ThinkingSpec

_GEMINI_DEFAULT_METHODS = ("generateContent",)


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """One listed model: its client-visible id, listing fields and who serves it."""

    id: str
    display_name: str
    created: int
    owned_by: str
    description: str = ""
    version: str = ""
    context: int | None = None
    output: int | None = None
    methods: tuple[str, ...] = ()
    thinking: ThinkingSpec | None = None
    providers: tuple[str, ...] = ()


class OpenAIModel(TypedDict):
    id: str
    object: Literal["model"]
    created: int
    owned_by: str


class OpenAIModelList(TypedDict):
    object: Literal["list"]
    data: list[OpenAIModel]


class ClaudeModel(TypedDict):
    id: str
    object: Literal["model"]
    type: Literal["model"]
    display_name: str
    created_at: str
    owned_by: str


class ClaudeModelList(TypedDict):
    data: list[ClaudeModel]
    has_more: bool
    first_id: str | None
    last_id: str | None


# supportedGenerationMethods is always set; NotRequired only lets it follow the optional
# limits, in the order Google's own listing uses
class GeminiModel(TypedDict):
    name: str
    version: str
    displayName: str
    description: str
    inputTokenLimit: NotRequired[int]
    outputTokenLimit: NotRequired[int]
    supportedGenerationMethods: NotRequired[list[str]]
    thinking: NotRequired[bool]


class GeminiModelList(TypedDict):
    models: list[GeminiModel]


#: any one of the listing bodies
ModelList = OpenAIModelList | ClaudeModelList | GeminiModelList


def openai_model_list(models: Iterable[ModelInfo]) -> OpenAIModelList:
    """`GET /v1/models` for OpenAI clients."""
    return {
        "object": "list",
        "data": [
            {"id": m.id, "object": "model", "created": m.created, "owned_by": m.owned_by}
            for m in models
        ],
    }


def claude_model_list(models: Iterable[ModelInfo]) -> ClaudeModelList:
    """`GET /v1/models` for Claude clients (Anthropic's paginated shape, one page)."""
    data: list[ClaudeModel] = [
        {
            "id": m.id,
            "object": "model",
            "type": "model",
            "display_name": m.display_name,
            "created_at": _rfc3339(m.created),
            "owned_by": m.owned_by,
        }
        for m in models
    ]
    return {
        "data": data,
        "has_more": False,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
    }


def gemini_model_list(models: Iterable[ModelInfo]) -> GeminiModelList:
    """`GET /v1beta/models`: each model once, Google's field names."""
    return {"models": [gemini_model(m) for m in models]}


def gemini_model(m: ModelInfo) -> GeminiModel:
    """One model in Google's shape (`GET /v1beta/models/{id}`)."""
    name = m.id if m.id.startswith("models/") else f"models/{m.id}"
    entry: GeminiModel = {
        "name": name,
        "version": m.version or "001",
        "displayName": m.display_name or m.id,
        "description": m.description or m.display_name or m.id,
    }
    if m.context is not None:
        entry["inputTokenLimit"] = m.context
    if m.output is not None:
        entry["outputTokenLimit"] = m.output
    entry["supportedGenerationMethods"] = list(m.methods or _GEMINI_DEFAULT_METHODS)
    if m.thinking is not None:
        entry["thinking"] = True
    return entry


def _rfc3339(created: int) -> str:
    return datetime.fromtimestamp(created, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
