"""Which credentials serve which model, and the model listings in every client's shape.

`catalog` reads the shipped catalog, `names` splits thinking suffixes and matches
exclusions, `model_registry` builds the `ModelRegistry` and resolves names, `listing`
shapes the `GET .../models` answers.
"""

from cliproxy.registry.catalog import (
    ModelSpec,
    ModelSpecs,
    ThinkingSpec,
    load_catalog,
    parse_catalog,
)
from cliproxy.registry.listing import (
    ClaudeModelList,
    GeminiModel,
    GeminiModelList,
    ModelInfo,
    ModelList,
    OpenAIModelList,
)
from cliproxy.registry.model_registry import (
    COMPAT_THINKING_LEVELS,
    LIST_HINT,
    Candidate,
    ModelRegistry,
    Resolution,
    UnknownModel,
)
from cliproxy.registry.names import matches_exclusion, split_thinking_suffix

__all__ = [
    "COMPAT_THINKING_LEVELS",
    "LIST_HINT",
    "Candidate",
    "ModelSpecs",
    "ClaudeModelList",
    "GeminiModel",
    "GeminiModelList",
    "ModelInfo",
    "ModelList",
    "ModelRegistry",
    "ModelSpec",
    "OpenAIModelList",
    "Resolution",
    "ThinkingSpec",
    "UnknownModel",
    "load_catalog",
    "matches_exclusion",
    "parse_catalog",
    "split_thinking_suffix",
]
