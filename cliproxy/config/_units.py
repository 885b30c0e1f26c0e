# -*- test-case-name: tests.config.test_config_values -*-
"""Byte sizes ("32MiB") and Go-style durations ("1h30m") written as strings in the config."""

from __future__ import annotations

import math
import re

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$", re.IGNORECASE)
_SIZE_UNITS = {
    "": 1,
    "b": 1,
    "k": 1024,
    "kib": 1024,
    "kb": 1000,
    "m": 1024**2,
    "mib": 1024**2,
    "mb": 1000**2,
    "g": 1024**3,
    "gib": 1024**3,
    "gb": 1000**3,
}

_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_DURATION_UNITS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}


def parse_size(text: str) -> int | None:
    """Bytes for "32MiB", "64 KiB", "1.5MB", "1000"; None if the text is not a size.

    KiB/MiB/GiB (and bare K/M/G) count in 1024s, KB/MB/GB in 1000s.
    """
    match = _SIZE.match(text)
    if match is None:
        return None
    factor = _SIZE_UNITS.get(match.group(2).lower())
    if factor is None:
        return None
    return int(float(match.group(1)) * factor)


def parse_duration(text: str) -> float | None:
    """Seconds for a Go duration string ("1h", "90s", "1m30s", "250ms"); None if malformed.

    A bare number is taken as seconds, which Go would refuse but people write anyway.
    """
    text = text.strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        return seconds if math.isfinite(seconds) else None
    pos = 0
    total = 0.0
    for match in _DURATION_PART.finditer(text):
        if match.start() != pos:
            return None
        total += float(match.group(1)) * _DURATION_UNITS[match.group(2)]
        pos = match.end()
    if pos != len(text) or pos == 0:
        return None
    return total
