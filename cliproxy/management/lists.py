# -*- test-case-name: tests.management.test_config_endpoints -*-
"""Lists and maps in config.yaml: `api-keys`, the provider key lists, `openai-compatibility`,
`oauth-excluded-models` and `oauth-model-alias` (core.md §6.2)."""

from __future__ import annotations

from typing import Any

from ruamel.yaml.comments import CommentedMap
from twisted.web.server import Request

from cliproxy.config.watcher import ConfigStore
from cliproxy.credentials.from_config import credentials_from_config
from cliproxy.management.edits import delete_path, get_path, items_of, plain, save, set_path
from cliproxy.management.resource import BadRequest, Endpoint, answer, query, read_json
from cliproxy.management.writer import ConfigWriter, load_document

KEY_LISTS = (
    "gemini-api-key",
    "claude-api-key",
    "codex-api-key",
    "vertex-api-key",
    "xai-api-key",
)


def _index(value: Any, size: int) -> int:
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < size:
        raise BadRequest("invalid index")
    return value


class _ConfigList(Endpoint):
    def __init__(self, store: ConfigStore, writer: ConfigWriter, key: str) -> None:
        super().__init__()
        self.store = store
        self.writer = writer
        self.key = key

    def current(self, doc: Any) -> list[Any]:
        found = plain(get_path(doc, (self.key,)))
        return found if isinstance(found, list) else []

    def put_list(self, items: list[Any]) -> Any:
        def mutate(doc: CommentedMap) -> None:
            set_path(doc, (self.key,), items)

        return mutate


class StringList(_ConfigList):
    """`api-keys`: PUT array|{items}; PATCH {index,value}|{old,new}; DELETE ?index|?value."""

    def render_GET(self, request: Request) -> bytes:
        return answer(request, {self.key: list(self.store.current.api_keys)})

    def render_PUT(self, request: Request) -> bytes:
        items = items_of(read_json(request), list)
        if not all(isinstance(i, str) for i in items):
            raise BadRequest("invalid body")
        return save(request, self.writer, self.put_list([i.strip() for i in items if i.strip()]))

    def render_PATCH(self, request: Request) -> bytes:
        body = read_json(request)
        if not isinstance(body, dict):
            raise BadRequest("invalid body")
        current = self.current(self.writer_doc())
        if "index" in body and isinstance(body.get("value"), str):
            current[_index(body["index"], len(current))] = body["value"]
        elif isinstance(body.get("old"), str) and isinstance(body.get("new"), str):
            if body["old"] in current:
                current[current.index(body["old"])] = body["new"]
            else:
                current.append(body["new"])
        else:
            raise BadRequest("invalid body")
        return save(request, self.writer, self.put_list(current))

    def render_DELETE(self, request: Request) -> bytes:
        current = self.current(self.writer_doc())
        index, value = query(request, "index"), query(request, "value")
        if index is not None:
            del current[_index(index, len(current))]
        elif value is not None:
            current = [v for v in current if v != value]
        else:
            raise BadRequest("missing index or value")
        return save(request, self.writer, self.put_list(current))

    def writer_doc(self) -> Any:
        return load_document(self.writer.text())


class KeyList(StringList):
    """A provider key list of objects (`claude-api-key`, ... and `openai-compatibility`)."""

    match_field = "api-key"

    def render_GET(self, request: Request) -> bytes:
        ids = _auth_indexes(self.store, self.key)
        entries = self.current(self.writer_doc())
        for entry in entries:
            if isinstance(entry, dict):
                entry["auth-index"] = ids.get(self._identity(entry), "")
        return answer(request, {self.key: entries})

    def _identity(self, entry: dict[str, Any]) -> str:
        return str(entry.get(self.match_field) or "")

    def render_PUT(self, request: Request) -> bytes:
        items = items_of(read_json(request), list)
        if not all(isinstance(i, dict) for i in items):
            raise BadRequest("invalid body")
        for item in items:
            item.pop("auth-index", None)
        return save(request, self.writer, self.put_list(items))

    def render_PATCH(self, request: Request) -> bytes:
        body = read_json(request)
        if not isinstance(body, dict) or not isinstance(body.get("value"), dict):
            raise BadRequest("invalid body")
        current = self.current(self.writer_doc())
        at = self._find(body, current)
        patch = dict(body["value"])
        patch.pop("auth-index", None)
        current[at].update(patch)
        if self.match_field == "api-key" and current[at].get("api-key") == "":
            del current[at]
        return save(request, self.writer, self.put_list(current))

    def _find(self, body: dict[str, Any], current: list[Any]) -> int:
        if "index" in body:
            return _index(body["index"], len(current))
        name = body.get("match" if self.match_field == "api-key" else "name")
        hits = [
            i
            for i, e in enumerate(current)
            if isinstance(e, dict) and e.get(self.match_field) == name
        ]
        if not hits:
            raise BadRequest("item not found", 404)
        return hits[0]

    def render_DELETE(self, request: Request) -> bytes:
        current = self.current(self.writer_doc())
        index = query(request, "index")
        if index is not None:
            del current[_index(index, len(current))]
            return save(request, self.writer, self.put_list(current))
        name = query(request, self.match_field if self.match_field == "api-key" else "name")
        if name is None:
            raise BadRequest("missing index or " + self.match_field)
        base = query(request, "base-url")
        hits = [
            i
            for i, e in enumerate(current)
            if isinstance(e, dict)
            and e.get(self.match_field) == name
            and (base is None or e.get("base-url") == base)
        ]
        if not hits:
            raise BadRequest("item not found", 404)
        if len(hits) > 1:
            raise BadRequest("several entries match; add base-url or use index")
        del current[hits[0]]
        return save(request, self.writer, self.put_list(current))


class CompatList(KeyList):
    """`openai-compatibility`: entries are matched by `name`."""

    match_field = "name"


def _auth_indexes(store: ConfigStore, key: str) -> dict[str, str]:
    """Entry identity (api-key, or compat name) -> the credential id it yields."""
    out: dict[str, str] = {}
    for cred in credentials_from_config(store.current):
        if cred.kind == key:
            out.setdefault(cred.api_key, cred.id)
        elif key == "openai-compatibility" and cred.kind == "openai-compatibility":
            out.setdefault(cred.provider, cred.id)
    if key == "openai-compatibility":
        for entry in store.current.openai_compatibility:
            if entry.provider in out:
                out[entry.name] = out[entry.provider]
    return out


class ConfigMap(_ConfigList):
    """`oauth-excluded-models` ({provider, models}) and `oauth-model-alias` ({channel, aliases})."""

    def __init__(self, store: ConfigStore, writer: ConfigWriter, key: str) -> None:
        super().__init__(store, writer, key)
        self.name_fields = (
            ("provider",) if key == "oauth-excluded-models" else ("channel", "provider")
        )
        self.value_field = "models" if key == "oauth-excluded-models" else "aliases"

    def _map(self) -> dict[str, Any]:
        found = plain(get_path(load_document(self.writer.text()), (self.key,)))
        return found if isinstance(found, dict) else {}

    def _save(self, request: Request, value: dict[str, Any]) -> bytes:
        def mutate(doc: CommentedMap) -> None:
            if value:
                set_path(doc, (self.key,), value)
            else:
                delete_path(doc, (self.key,))

        return save(request, self.writer, mutate)

    def render_GET(self, request: Request) -> bytes:
        return answer(request, {self.key: self._map()})

    def render_PUT(self, request: Request) -> bytes:
        body = items_of(read_json(request), dict)
        if not all(isinstance(v, list) for v in body.values()):
            raise BadRequest("invalid body")
        return self._save(request, body)

    def render_PATCH(self, request: Request) -> bytes:
        body = read_json(request)
        if not isinstance(body, dict):
            raise BadRequest("invalid body")
        name = next((body[f] for f in self.name_fields if isinstance(body.get(f), str)), "")
        value = body.get(self.value_field)
        if not name.strip() or not isinstance(value, list):
            raise BadRequest("invalid body")
        current = self._map()
        if value:
            current[name.strip().lower()] = value
        else:
            current.pop(name.strip().lower(), None)
        return self._save(request, current)

    def render_DELETE(self, request: Request) -> bytes:
        name = query(request, self.name_fields[0]) or query(request, "provider")
        if not name:
            raise BadRequest("missing " + self.name_fields[0])
        current = self._map()
        if current.pop(name.strip().lower(), None) is None:
            raise BadRequest("item not found", 404)
        return self._save(request, current)
