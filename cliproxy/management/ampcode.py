# -*- test-case-name: tests.management.test_ampcode -*-
"""`/v0/management/ampcode...`: the Amp settings (amp.md MGT-01..10).

Writes go to the nested `ampcode:` section; a flat `amp-*` key for the same setting is
removed so that the file says one thing.
"""

from __future__ import annotations

from typing import Any

from ruamel.yaml.comments import CommentedMap
from twisted.web.resource import Resource
from twisted.web.server import Request

from cliproxy.config.watcher import ConfigStore
from cliproxy.management.edits import delete_path, get_path, plain, save, set_path, value_of
from cliproxy.management.resource import BadRequest, Endpoint, Node, answer, read_json
from cliproxy.management.secrets import mask, masked_ampcode
from cliproxy.management.writer import ConfigWriter

FLAT = {
    "upstream-url": "amp-upstream-url",
    "upstream-api-key": "amp-upstream-api-key",
    "restrict-management-to-localhost": "amp-restrict-management-to-localhost",
    "model-mappings": "amp-model-mappings",
    "force-model-mappings": "amp-force-model-mappings",
}


def _set(name: str, value: Any) -> Any:
    def mutate(doc: CommentedMap) -> None:
        set_path(doc, ("ampcode", name), value)
        if name in FLAT:
            delete_path(doc, (FLAT[name],))

    return mutate


def _current(doc: CommentedMap, name: str) -> Any:
    found = get_path(doc, ("ampcode", name))
    if found is None and name in FLAT:
        found = get_path(doc, (FLAT[name],))
    return plain(found)


class _AmpEndpoint(Endpoint):
    def __init__(self, store: ConfigStore, writer: ConfigWriter) -> None:
        super().__init__()
        self.store = store
        self.writer = writer


class AmpSummary(_AmpEndpoint):
    def render_GET(self, request: Request) -> bytes:
        return answer(request, {"ampcode": masked_ampcode(self.store.current)})


class AmpScalar(_AmpEndpoint):
    """upstream-url, upstream-api-key (masked on GET), and the two booleans."""

    def __init__(self, store: ConfigStore, writer: ConfigWriter, name: str, kind: type) -> None:
        super().__init__(store, writer)
        self.name = name
        self.kind = kind

    def render_GET(self, request: Request) -> bytes:
        value = masked_ampcode(self.store.current)[self.name]
        return answer(request, {self.name: value})

    def render_PUT(self, request: Request) -> bytes:
        value = value_of(read_json(request))
        if isinstance(value, bool) != (self.kind is bool) or not isinstance(value, self.kind):
            raise BadRequest("invalid body")
        if isinstance(value, str):
            value = value.strip()
        return save(request, self.writer, _set(self.name, value))

    render_PATCH = render_PUT

    def render_DELETE(self, request: Request) -> bytes:
        if self.kind is bool:
            raise BadRequest("method not allowed", 405)
        return save(request, self.writer, _set(self.name, ""))


def _clean_keys(value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, list):
        raise BadRequest("invalid body")
    out = []
    for item in value:
        if not isinstance(item, dict):
            raise BadRequest("invalid body")
        key = str(item.get("upstream-api-key") or "").strip()
        clients = [str(k).strip() for k in item.get("api-keys") or [] if str(k).strip()]
        if key:
            out.append({"upstream-api-key": key, "api-keys": clients})
    return out


class UpstreamAPIKeys(_AmpEndpoint):
    """Client keys per upstream key: PUT replaces, PATCH upserts, DELETE removes by key."""

    def render_GET(self, request: Request) -> bytes:
        keys = masked_ampcode(self.store.current)["upstream-api-keys"]
        return answer(request, {"upstream-api-keys": keys})

    def render_PUT(self, request: Request) -> bytes:
        entries = _clean_keys(value_of(read_json(request)))
        return save(request, self.writer, _set("upstream-api-keys", entries))

    def render_PATCH(self, request: Request) -> bytes:
        entries = _clean_keys(value_of(read_json(request)))

        def mutate(doc: CommentedMap) -> None:
            current = _current(doc, "upstream-api-keys") or []
            index = {e.get("upstream-api-key"): i for i, e in enumerate(current)}
            for entry in entries:
                at = index.get(entry["upstream-api-key"])
                if at is None:
                    current.append(entry)
                else:
                    current[at] = entry
            _set("upstream-api-keys", current)(doc)

        return save(request, self.writer, mutate)

    def render_DELETE(self, request: Request) -> bytes:
        body = read_json(request)
        if not isinstance(body, dict) or body.get("value") is None:
            raise BadRequest("missing value")
        value = body["value"]
        if not isinstance(value, list):
            raise BadRequest("invalid body")
        drop = {str(v).strip() for v in value if str(v).strip()}
        if value and not drop:
            raise BadRequest("empty value")

        def mutate(doc: CommentedMap) -> None:
            current = _current(doc, "upstream-api-keys") or []
            kept = [e for e in current if drop and e.get("upstream-api-key") not in drop]
            _set("upstream-api-keys", kept)(doc)

        return save(request, self.writer, mutate)


def _mappings(value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, list):
        raise BadRequest("invalid body")
    out = []
    for item in value:
        if not isinstance(item, dict) or not item.get("from") or not item.get("to"):
            raise BadRequest("invalid body")
        entry: dict[str, Any] = {"from": str(item["from"]).strip(), "to": str(item["to"]).strip()}
        if item.get("regex"):
            entry["regex"] = True
        out.append(entry)
    return out


class ModelMappings(_AmpEndpoint):
    """PUT replaces, PATCH upserts by `from`, DELETE removes the named `from`s (all if none)."""

    def render_GET(self, request: Request) -> bytes:
        return answer(
            request, {"model-mappings": masked_ampcode(self.store.current)["model-mappings"]}
        )

    def render_PUT(self, request: Request) -> bytes:
        entries = _mappings(value_of(read_json(request)))
        return save(request, self.writer, _set("model-mappings", entries))

    def render_PATCH(self, request: Request) -> bytes:
        entries = _mappings(value_of(read_json(request)))

        def mutate(doc: CommentedMap) -> None:
            current = _current(doc, "model-mappings") or []
            index = {e.get("from"): i for i, e in enumerate(current)}
            for entry in entries:
                at = index.get(entry["from"])
                if at is None:
                    current.append(entry)
                else:
                    current[at] = entry
            _set("model-mappings", current)(doc)

        return save(request, self.writer, mutate)

    def render_DELETE(self, request: Request) -> bytes:
        body = read_json(request, allow_empty=True)
        value = body.get("value") if isinstance(body, dict) else None
        if body is not None and not isinstance(body, dict):
            raise BadRequest("invalid body")
        if value is not None and not isinstance(value, list):
            raise BadRequest("invalid body")
        drop = {str(v).strip() for v in value} if value else None

        def mutate(doc: CommentedMap) -> None:
            current = _current(doc, "model-mappings") or []
            kept = [e for e in current if drop is not None and e.get("from") not in drop]
            _set("model-mappings", kept)(doc)

        return save(request, self.writer, mutate)


def ampcode_tree(store: ConfigStore, writer: ConfigWriter) -> Resource:
    node = Node(AmpSummary(store, writer))
    for name, kind in (
        ("upstream-url", str),
        ("upstream-api-key", str),
        ("restrict-management-to-localhost", bool),
        ("force-model-mappings", bool),
    ):
        node.putChild(name.encode("ascii"), AmpScalar(store, writer, name, kind))
    node.putChild(b"upstream-api-keys", UpstreamAPIKeys(store, writer))
    node.putChild(b"model-mappings", ModelMappings(store, writer))
    return node


__all__ = ["ampcode_tree", "mask"]
