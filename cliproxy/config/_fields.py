# -*- test-case-name: tests.config.test_config_values -*-
"""Typed reads from one YAML mapping, each failure naming its key path and line.

A `Section` remembers which keys were read so the rest can be reported as unknown.
A YAML null (`key:` with nothing after it) reads as the default, as in upstream's Go loader.
"""

from __future__ import annotations

import datetime
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from ._units import parse_duration, parse_size
from ._yaml import YamlKey, YamlMap, YamlSeq, join_index, join_key
from .errors import ConfigError, describe

HTTP_SCHEMES = ("http", "https")
PROXY_SCHEMES = ("http", "https", "socks5", "socks5h")
_INDEX = re.compile(r"\[\d+\]")
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")  # RFC 9110 token


def kind_of(value: object) -> str:
    """How a value reads to a person: 'a list', 'a boolean', ..."""
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, (datetime.date, datetime.datetime)):
        return "a date"
    return type(value).__name__


def check_url(text: str, schemes: tuple[str, ...]) -> str | None:
    """None if `text` is an absolute URL with one of `schemes`, else what is wrong."""
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        return "not a URL"
    if not parts.scheme or not parts.netloc or not parts.hostname:
        return "not a URL"
    if parts.scheme.lower() not in schemes:
        return f"not a URL this key accepts (scheme must be one of {', '.join(schemes)})"
    return None


@dataclass
class Context:
    """What one parse shares: the file name and the warnings collected so far."""

    source: str
    warnings: list[str] = field(default_factory=list)
    #: every key path a typed read asked for, list indexes as `[]` (for the defaults test)
    asked: set[str] = field(default_factory=set)
    #: (key path, line, value) of every present key read only for its shape (`Section.keep`)
    kept: list[tuple[str, int | None, object]] = field(default_factory=list)

    def error(self, path: str, line: int | None, message: str) -> ConfigError:
        return ConfigError(message, path, line, self.source)

    def warn(self, path: str, line: int | None, message: str) -> None:
        self.warnings.append(describe(self.source, path, message, line))


class Section:
    """One YAML mapping at `path`, read key by key."""

    def __init__(self, ctx: Context, data: YamlMap, path: str = ""):
        self.ctx = ctx
        self.data = data
        self.path = path
        self._read: set[object] = set()

    @classmethod
    def of(cls, ctx: Context, value: object, path: str, line: int | None) -> Section:
        """A Section for `value`, which must be a mapping."""
        if not isinstance(value, YamlMap):
            raise ctx.error(path, line, f"expected a mapping of keys, got {kind_of(value)}")
        return cls(ctx, value, path)

    # -- bookkeeping -------------------------------------------------------------------------

    @property
    def line(self) -> int | None:
        return self.data.line

    def path_of(self, key: YamlKey) -> str:
        return join_key(self.path, key)

    def line_of(self, key: YamlKey) -> int | None:
        return self.data.lines.get(key, self.data.line)

    def has(self, key: str) -> bool:
        """True if the key is present with a non-null value."""
        return self.data.get(key) is not None

    def error(self, key: YamlKey, message: str) -> ConfigError:
        return self.ctx.error(self.path_of(key), self.line_of(key), message)

    def warn(self, key: YamlKey, message: str) -> None:
        self.ctx.warn(self.path_of(key), self.line_of(key), message)

    def take(self, key: YamlKey) -> object:
        """The raw value (None when absent), marking the key as known."""
        self._read.add(key)
        self.ctx.asked.add(_INDEX.sub("[]", self.path_of(key)))
        return self.data.get(key)

    def keep(self, key: str, *kinds: type) -> object:
        """Accept a key we do not act on, checking only its shape; returns its plain value."""
        self._read.add(key)
        value = self.data.get(key)
        if value is not None:
            self.ctx.kept.append((self.path_of(key), self.line_of(key), value))
        wrong_bool = isinstance(value, bool) and bool not in kinds
        if value is not None and kinds and (wrong_bool or not isinstance(value, kinds)):
            wanted = " or ".join(sorted({kind_of(k()) for k in kinds}))
            raise self.error(key, f"expected {wanted}, got {kind_of(value)}")
        return value

    def unread(self) -> Iterator[YamlKey]:
        for key in self.data:
            if key not in self._read:
                yield key

    def finish(self) -> None:
        """Warn about every key nobody asked for."""
        for key in self.unread():
            self.ctx.warn(
                join_key(self.path, key),
                self.data.lines.get(key),
                "unknown key, ignored",
            )

    # -- scalars -----------------------------------------------------------------------------

    def string(self, key: str, default: str = "", *, expand_user: bool = False) -> str:
        """A string, trimmed. Other plain scalars (numbers, dates) are read as written."""
        value = self.take(key)
        if value is None:
            text = default
        else:
            found = scalar_text(value, self.data.texts.get(key))
            if found is None:
                raise self.error(key, f"expected a string, got {kind_of(value)}")
            text = found
        if expand_user and text:
            text = os.path.expanduser(text)
        return text

    def boolean(self, key: str, default: bool) -> bool:
        value = self.optional_boolean(key)
        return default if value is None else value

    def optional_boolean(self, key: str) -> bool | None:
        """True, False, or None when absent (for settings that inherit a global one)."""
        value = self.take(key)
        if value is not None and not isinstance(value, bool):
            raise self.error(key, f"expected true or false, got {kind_of(value)}")
        return value

    def integer(
        self, key: str, default: int, *, minimum: int | None = 0, maximum: int | None = None
    ) -> int:
        value = self.take(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(key, f"expected a whole number, got {kind_of(value)}")
        if minimum is not None and value < minimum:
            raise self.error(key, f"must be at least {minimum}, got {value}")
        if maximum is not None and value > maximum:
            raise self.error(key, f"must be at most {maximum}, got {value}")
        return value

    def seconds(self, key: str, default: float) -> float:
        """A non-negative number of seconds (whole or fractional)."""
        value = self.take(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.error(key, f"expected a number of seconds, got {kind_of(value)}")
        if value < 0 or value != value or value == float("inf"):
            raise self.error(key, f"must be a non-negative number of seconds, got {value}")
        return value

    def duration(self, key: str, default: float) -> float:
        """Seconds from a number or a Go duration string such as "1h" or "90s"."""
        value = self.take(key)
        if value is None:
            return default
        if isinstance(value, str):
            seconds = parse_duration(value)
            if seconds is None:
                raise self.error(key, f'not a duration (try "90s", "5m" or "1h"): {value!r}')
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            seconds = float(value)
        else:
            raise self.error(key, f'expected a duration such as "1h", got {kind_of(value)}')
        if seconds < 0:
            raise self.error(key, "must not be negative")
        return seconds

    def size(self, key: str, default: int) -> int:
        """Bytes from a whole number or a string such as "32MiB"."""
        value = self.take(key)
        if value is None:
            return default
        if isinstance(value, bool):
            raise self.error(key, "expected a size in bytes, got a boolean")
        if isinstance(value, int):
            size = value
        elif isinstance(value, str):
            parsed = parse_size(value)
            if parsed is None:
                raise self.error(key, f'not a size (try 1048576 or "32MiB"): {value!r}')
            size = parsed
        else:
            raise self.error(key, f'expected a size such as "32MiB", got {kind_of(value)}')
        if size <= 0:
            raise self.error(key, "must be greater than zero")
        return size

    def choice(self, key: str, default: str, choices: dict[str, str]) -> str:
        """One of `choices` (alias -> canonical name), case-insensitive; returns the canonical."""
        text = self.string(key, default)
        canonical = choices.get(text.lower())
        if canonical is None:
            names = ", ".join(sorted(set(choices.values())))
            raise self.error(key, f"must be one of {names}, got {text!r}")
        return canonical

    def url(self, key: str, default: str = "", *, schemes: tuple[str, ...] = HTTP_SCHEMES) -> str:
        """An absolute URL with one of `schemes` (trailing '/' trimmed), or the default."""
        text = self.string(key)
        if not text:
            return default
        problem = check_url(text, schemes)
        if problem:
            raise self.error(key, f"{problem}: {text!r}")
        return text.rstrip("/")

    def proxy_url(self, key: str = "proxy-url") -> str:
        """ "" (inherit/none), "direct" (also written "none"), or an http(s)/socks5(h) URL."""
        text = self.string(key)
        if text.lower() in ("direct", "none"):
            return "direct"
        if text:
            problem = check_url(text, PROXY_SCHEMES)
            if problem:
                raise self.error(key, f'{problem} (or "direct"): {text!r}')
        return text

    def prefix(self, key: str = "prefix") -> str:
        """A model prefix: one path segment, surrounding '/' trimmed."""
        text = self.string(key).strip("/")
        if "/" in text:
            raise self.error(key, f"must be a single name without '/', got {text!r}")
        return text

    # -- collections -------------------------------------------------------------------------

    def sequence(self, key: YamlKey) -> list[tuple[str, int | None, object, str | None]]:
        """Items of a list as (path, line, value, scalar text); [] when absent."""
        value = self.take(key)
        if value is None:
            return []
        if not isinstance(value, YamlSeq):
            raise self.error(key, f"expected a list, got {kind_of(value)}")
        base = self.path_of(key)
        return [
            (join_index(base, i), value.lines[i], item, value.texts[i])
            for i, item in enumerate(value)
        ]

    def section(self, key: str) -> Section | None:
        """The nested mapping, or None when absent."""
        value = self.take(key)
        if value is None:
            return None
        return Section.of(self.ctx, value, self.path_of(key), self.line_of(key))

    def strings(self, key: YamlKey) -> list[str]:
        """A list of strings, trimmed, blanks dropped (order kept, duplicates kept)."""
        out = []
        for path, line, item, text in self.sequence(key):
            out_text = item_text(self.ctx, path, line, item, text)
            if out_text:
                out.append(out_text)
        return out

    def unique_strings(self, key: YamlKey, *, lower: bool = False) -> tuple[str, ...]:
        """`strings`, de-duplicated in first-seen order, optionally lowercased."""
        seen: dict[str, None] = {}
        for text in self.strings(key):
            seen.setdefault(text.lower() if lower else text, None)
        return tuple(seen)

    def headers(self, key: str = "headers") -> tuple[tuple[str, str], ...]:
        """A name -> value map; entries with an empty name or value are dropped."""
        sub = self.section(key)
        if sub is None:
            return ()
        out = []
        for name in list(sub.data):
            value = sub.string(name) if isinstance(name, str) else None
            if value is None or not isinstance(name, str):
                raise sub.error(str(name), "a header name must be text")
            name = name.strip()
            if not name or not value:
                continue
            if not _HEADER_NAME.match(name):
                raise sub.error(name, "not a valid HTTP header name")
            if "\r" in value or "\n" in value:
                raise sub.error(name, "a header value must be on one line")
            out.append((name, value))
        return tuple(out)


def scalar_text(value: object, text: str | None) -> str | None:
    """A scalar as the string its author meant, or None if it cannot be one.

    Upstream's Go loader reads `api-key: 0123` or `yes` into a string field as written,
    so numbers, dates and YAML 1.1 words like `yes`/`on` keep their source text here.
    Only a literal `true`/`false` is taken as a mistake.
    """
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, (dict, list)) or value is None:
        return None
    if isinstance(value, bool):
        if text is None or text.strip().lower() in ("true", "false"):
            return None
        return text.strip()
    if isinstance(value, (int, float, datetime.date)):
        return (text if text is not None else str(value)).strip()
    return None


def item_text(ctx: Context, path: str, line: int | None, item: object, text: str | None) -> str:
    """A list item read as a string (see `scalar_text`), trimmed; "" for null."""
    if item is None:
        return ""
    found = scalar_text(item, text)
    if found is None:
        raise ctx.error(path, line, f"expected a string, got {kind_of(item)}")
    return found
