# -*- test-case-name: tests.management.test_config_endpoints -*-
"""Writing through the `ConfigWriter` from an endpoint: body shapes and error answers."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ruamel.yaml.comments import CommentedMap, CommentedSeq
from twisted.logger import Logger
from twisted.web.server import Request

from cliproxy.config import ConfigError
from cliproxy.management.resource import BadRequest, answer, error
from cliproxy.management.writer import ConfigWriter, InvalidYAML, Mutation

log = Logger()


def get_path(doc: Any, path: Sequence[str], default: Any = None) -> Any:
    node = doc
    for key in path:
        if not hasattr(node, "get"):
            return default
        node = node.get(key)
        if node is None:
            return default
    return node


def set_path(doc: CommentedMap, path: Sequence[str], value: Any) -> None:
    """Set `path` in `doc`, making the mappings on the way; keeps the key's position."""
    node = doc
    for key in path[:-1]:
        child = node.get(key)
        if not isinstance(child, CommentedMap):
            child = CommentedMap()
            node[key] = child
        node = child
    node[path[-1]] = to_yaml(value)


def delete_path(doc: CommentedMap, path: Sequence[str]) -> None:
    node = get_path(doc, path[:-1]) if len(path) > 1 else doc
    if isinstance(node, CommentedMap) and path[-1] in node:
        del node[path[-1]]


def to_yaml(value: Any) -> Any:
    """JSON values as YAML nodes (flow style for short scalar lists, as people write them)."""
    if isinstance(value, dict):
        out = CommentedMap()
        for k, v in value.items():
            out[str(k)] = to_yaml(v)
        return out
    if isinstance(value, list):
        seq = CommentedSeq(to_yaml(v) for v in value)
        return seq
    return value


def plain(value: Any) -> Any:
    """A YAML node as plain JSON-able Python values."""
    if hasattr(value, "items"):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def value_of(body: Any) -> Any:
    """The `value` of a `{"value": ...}` body.

    Raises:
        BadRequest: not an object with a `value`.
    """
    if not isinstance(body, dict) or "value" not in body or body["value"] is None:
        raise BadRequest("invalid body")
    return body["value"]


def items_of(body: Any, kind: type) -> Any:
    """A PUT body that is the collection itself or `{"items": ...}`."""
    if isinstance(body, dict) and "items" in body and kind is not dict:
        body = body["items"]
    elif isinstance(body, dict) and kind is dict and isinstance(body.get("items"), dict):
        body = body["items"]
    if not isinstance(body, kind):
        raise BadRequest("invalid body")
    return body


def save(request: Request, writer: ConfigWriter, mutate: Mutation) -> bytes:
    """Apply `mutate` and answer `{"status":"ok"}`, or the reason it was refused."""
    refused = apply(request, writer, mutate)
    if refused is not None:
        return refused
    return answer(request, {"status": "ok"})


def apply(request: Request, writer: ConfigWriter, mutate: Mutation) -> bytes | None:
    """Apply `mutate`; None when saved, else the error body to send."""
    try:
        writer.update(mutate)
    except BadRequest:
        raise
    except ConfigError as e:
        return answer(request, {"error": "invalid_config", "message": str(e)}, 422)
    except InvalidYAML as e:
        return answer(request, {"error": "invalid_yaml", "message": str(e)}, 400)
    except OSError as e:
        log.error("could not save the config: {error}", error=str(e))
        return error(request, 500, f"failed to save config: {e.strerror or e}")
    return None


Reader = Callable[[Any], Any]
