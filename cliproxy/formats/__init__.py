"""The four wire formats and every translation between them.

Pure code: no Twisted, no I/O, no config. The routing layer drives it.
"""

from enum import StrEnum


class Format(StrEnum):
    """A wire format, named as CLIProxyAPI names its translators."""

    OPENAI_CHAT = "openai"
    OPENAI_RESPONSES = "openai-response"
    CLAUDE = "claude"
    GEMINI = "gemini"


class Family(StrEnum):
    """The API family a client speaks, which decides the shape of its error bodies."""

    OPENAI = "openai"
    CLAUDE = "claude"
    GEMINI = "gemini"


def family_of(fmt: Format) -> Family:
    if fmt is Format.CLAUDE:
        return Family.CLAUDE
    if fmt is Format.GEMINI:
        return Family.GEMINI
    return Family.OPENAI


__all__ = ["Family", "Format", "family_of"]
