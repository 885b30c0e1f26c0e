# -*- test-case-name: tests.config.test_config_errors -*-
"""The config room's one error type, and the one-line format it shares with warnings."""

from __future__ import annotations


def describe(source: str, path: str, message: str, line: int | None) -> str:
    """Format `source: path: message (line N)`, leaving out the parts that are unknown."""
    parts = [p for p in (source, path) if p]
    text = ": ".join([*parts, message])
    if line is not None:
        text += f" (line {line})"
    return text


class ConfigError(Exception):
    """A config file that cannot be used, with the key path and line that caused it.

    Attributes:
        message: what is wrong, for a person ("not a URL").
        path: the key path (`claude-api-key[1].base-url`), or "" for the whole file.
        line: the 1-based line in the file, or None when unknown.
        source: the file name (or "<config>" for text), or "".
    """

    def __init__(self, message: str, path: str = "", line: int | None = None, source: str = ""):
        super().__init__(message, path, line, source)
        self.message = message
        self.path = path
        self.line = line
        self.source = source

    def __str__(self) -> str:
        return describe(self.source, self.path, self.message, self.line)
