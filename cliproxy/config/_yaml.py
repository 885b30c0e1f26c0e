# -*- test-case-name: tests.config.test_config_load -*-
"""YAML text to plain Python values that remember the line each value came from.

PyYAML's `safe_load` forgets positions, so we compose the node tree ourselves and build
dicts and lists from it, keeping `node.start_mark.line + 1` beside every key and item.
Scalars are built by the safe constructor, so their types match `yaml.safe_load`.
"""

from __future__ import annotations

from dataclasses import dataclass

import yaml

from .errors import ConfigError

#: The C loader is much faster; Debian's python3-yaml ships it, pure-Python installs may not.
Loader: type = getattr(yaml, "CSafeLoader", None) or yaml.SafeLoader

#: How deep lists and mappings may nest in a config file. Real configs use under ten levels;
#: the limit is ours, so the error does not depend on which PyYAML/libyaml is installed
#: (libyaml 0.2.5 stops near 1000 flow levels with its own wording, pure PyYAML recurses).
MAX_DEPTH = 64


#: A mapping key as YAML wrote it: usually a string, but `1:` or `true:` build an int or a bool.
YamlKey = object


class YamlMap(dict[YamlKey, object]):
    """A mapping from the file.

    Attributes:
        line: where the mapping starts.
        lines: key -> line of its value.
        texts: key -> the scalar's source text (for values written as plain scalars).
    """

    __slots__ = ("line", "lines", "texts")

    def __init__(self, line: int | None = None):
        super().__init__()
        self.line = line
        self.lines: dict[YamlKey, int] = {}
        self.texts: dict[YamlKey, str] = {}


class YamlSeq(list[object]):
    """A sequence from the file; `lines[i]` is where item i starts, `texts[i]` its scalar text."""

    __slots__ = ("line", "lines", "texts")

    def __init__(self, line: int | None = None):
        super().__init__()
        self.line = line
        self.lines: list[int] = []
        self.texts: list[str | None] = []


@dataclass(frozen=True, slots=True)
class Note:
    """Something odd but harmless found while reading (e.g. a duplicate key)."""

    path: str
    line: int | None
    message: str


def join_key(path: str, key: object) -> str:
    """`a.b` for a key under path `a`."""
    return f"{path}.{key}" if path else str(key)


def join_index(path: str, index: int) -> str:
    """`a[2]` for item 2 under path `a`."""
    return f"{path}[{index}]"


def _line(node: yaml.Node) -> int:
    return node.start_mark.line + 1


def yaml_error(exc: yaml.YAMLError, text: str, source: str) -> ConfigError:
    """One clear line for a YAML syntax problem, with the line where PyYAML noticed it."""
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = exc.problem or exc.context or "cannot be read"
        if exc.context and exc.problem:
            context = exc.context
            start = exc.context_mark
            if start is not None and line is not None and start.line + 1 != line:
                # An unclosed bracket or quote is noticed far below where it was opened.
                context += f" that starts on line {start.line + 1}"
            problem = f"{problem} ({context})"
        return ConfigError(f"not valid YAML: {problem}", line=line, source=source)
    position = getattr(exc, "position", None)
    line = text.count("\n", 0, position) + 1 if isinstance(position, int) else None
    reason = getattr(exc, "reason", None) or str(exc).splitlines()[0]
    return ConfigError(f"not valid YAML: {reason}", line=line, source=source)


class _Builder:
    def __init__(self, loader: yaml.SafeLoader, source: str):
        self.loader = loader
        self.source = source
        self.notes: list[Note] = []
        self._open: set[int] = set()  # node ids being built, to refuse alias cycles

    def build(self, node: yaml.Node, path: str) -> object:
        if isinstance(node, yaml.ScalarNode):
            return self.loader.construct_object(node, deep=True)
        if id(node) in self._open:
            raise ConfigError("a YAML alias refers to itself", path, _line(node), self.source)
        if len(self._open) >= MAX_DEPTH:
            raise _depth_error(_line(node), self.source)
        self._open.add(id(node))
        try:
            if isinstance(node, yaml.SequenceNode):
                return self._sequence(node, path)
            assert isinstance(node, yaml.MappingNode)  # the only other kind PyYAML composes
            return self._mapping(node, path)
        finally:
            self._open.discard(id(node))

    def _sequence(self, node: yaml.SequenceNode, path: str) -> YamlSeq:
        out = YamlSeq(_line(node))
        for index, item in enumerate(node.value):
            out.append(self.build(item, join_index(path, index)))
            out.lines.append(_line(item))
            out.texts.append(item.value if isinstance(item, yaml.ScalarNode) else None)
        return out

    def _mapping(self, node: yaml.MappingNode, path: str) -> YamlMap:
        self.loader.flatten_mapping(node)  # resolves `<<: *anchor` merge keys
        out = YamlMap(_line(node))
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise ConfigError(
                    "a key must be a plain name, not a list or mapping",
                    path,
                    _line(key_node),
                    self.source,
                )
            key = self.loader.construct_object(key_node, deep=True)
            if isinstance(key, (bytes, bytearray)):
                key = key.decode("utf-8", "replace")
            child = join_key(path, key)
            if key in out:
                self.notes.append(
                    Note(child, _line(key_node), "duplicate key, the last one is used")
                )
            out[key] = self.build(value_node, child)
            out.lines[key] = _line(value_node)
            if isinstance(value_node, yaml.ScalarNode):
                out.texts[key] = value_node.value
            else:
                out.texts.pop(key, None)
        return out


def load_tree(text: str, source: str) -> tuple[object, list[Note]]:
    """Parse one YAML document into YamlMap/YamlSeq/scalars.

    Returns:
        (root value or None for an empty document, notes about duplicate keys).

    Raises:
        ConfigError: the text is not YAML (with the line PyYAML reported).
    """
    loader = Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, []
        builder = _Builder(loader, source)
        return builder.build(node, ""), builder.notes
    except (yaml.YAMLError, RecursionError) as exc:
        line = _too_deep(text)
        if line is not None:
            raise _depth_error(line, source) from None
        if isinstance(exc, RecursionError):
            raise _depth_error(None, source) from None
        raise yaml_error(exc, text, source) from None
    finally:
        loader.dispose()


def _too_deep(text: str) -> int | None:
    """The line where nesting first goes past MAX_DEPTH, or None.

    Reads events with the pure-Python parser, which neither recurses nor stops at a nesting
    limit of its own (libyaml scans far ahead and has one, with its own wording), and stops
    at the first level too deep. Only called once loading has failed, so its speed is moot.
    """
    depth = 0
    loader = yaml.SafeLoader(text)
    try:
        while loader.check_event():
            event = loader.get_event()
            if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
                depth += 1
                if depth > MAX_DEPTH:
                    assert event.start_mark is not None  # the parser marks every event
                    return int(event.start_mark.line) + 1
            elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
                depth -= 1
    except yaml.YAMLError:
        return None
    finally:
        loader.dispose()
    return None


def _depth_error(line: int | None, source: str) -> ConfigError:
    return ConfigError(
        f"lists or mappings are nested more than {MAX_DEPTH} levels deep", line=line, source=source
    )


def plain(value: object) -> object:
    """The same data as ordinary dicts and lists (what `raw` exposes)."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value
