"""Helpers for config tests: parse dedented YAML text labelled `config.yaml`."""

from __future__ import annotations

import textwrap

import pytest

from cliproxy.config import Config, ConfigError, parse_config


def parse(text: str) -> Config:
    """The Config for `text` (dedented), as if read from config.yaml."""
    return parse_config(textwrap.dedent(text), "config.yaml")


def error_of(text: str) -> ConfigError:
    """The ConfigError that `text` must raise."""
    with pytest.raises(ConfigError) as info:
        parse(text)
    return info.value
