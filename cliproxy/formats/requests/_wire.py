"""Small helpers shared by the per-format parsers and emitters: JSON text, data URLs, ids."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from urllib.parse import unquote_to_bytes

from cliproxy.formats.json_types import JSON, JSONArray, JSONObject
from cliproxy.formats.requests.errors import TranslationError
from cliproxy.formats.requests.ir import Media, ResponseFormat, Text


def json_text(value: JSON) -> str:
    """Compact JSON text, non-ASCII kept as is (what every upstream accepts)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def loads_or_none(text: JSON) -> JSON:
    if not isinstance(text, str):
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


def args_object(arguments: str) -> JSONObject:
    """Tool-call arguments as the object Claude and Gemini require; `{}` when not an object."""
    value = loads_or_none(arguments)
    return value if isinstance(value, dict) else {}


def args_text(value: JSON) -> str:
    """Tool-call arguments as JSON text whatever the client sent (object, string, nothing)."""
    if value is None or value == "":
        return "{}"
    if isinstance(value, str):
        return value
    return json_text(value)


def synth_call_id(ordinal: int, name: str, arguments: str = "") -> str:
    """A deterministic id for a tool call that arrived without one.

    Deterministic rather than random so that the same history translates to the same bytes on
    every turn: upstream prompt caches key on the prefix.
    """
    digest = hashlib.sha256(f"{ordinal}\0{name}\0{arguments}".encode()).hexdigest()
    return "call_" + digest[:24]


def parse_data_url(url: JSON) -> tuple[str | None, str] | None:
    """`data:<mime>;base64,<b64>` (or a plain `data:<mime>,<text>`) -> (mime, base64)."""
    if not isinstance(url, str) or not url.startswith("data:"):
        return None
    head, sep, payload = url[5:].partition(",")
    if not sep:
        return None
    params = head.split(";")
    mime = params[0] or None
    if "base64" in params[1:]:
        return mime, payload
    return mime, base64.b64encode(unquote_to_bytes(payload)).decode("ascii")


def data_url(mime: str | None, data: str) -> str:
    return f"data:{mime or 'application/octet-stream'};base64,{data}"


_EXT_MIME = {
    "png": "image/png",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "gif": "image/gif",
    "webp": "image/webp",
    "heic": "image/heic",
    "pdf": "application/pdf",
    "txt": "text/plain",
    "md": "text/markdown",
    "csv": "text/csv",
    "html": "text/html",
    "json": "application/json",
    "mp3": "audio/mpeg",
    "wav": "audio/wav",
    "ogg": "audio/ogg",
    "flac": "audio/flac",
    "aac": "audio/aac",
    "webm": "audio/webm",
    "mp4": "video/mp4",
}

_AUDIO_FORMAT_MIME = {"mp3": "audio/mpeg", "pcm16": "audio/pcm", "g711_ulaw": "audio/basic"}


def mime_from_name(name: JSON) -> str | None:
    """A MIME type guessed from a file name or URL extension (a fixed table: deterministic)."""
    if not isinstance(name, str):
        return None
    path = name.split("?", 1)[0].split("#", 1)[0]
    ext = path.rsplit(".", 1)[-1].lower() if "." in path.rsplit("/", 1)[-1] else ""
    return _EXT_MIME.get(ext)


def audio_mime(fmt: JSON) -> str:
    fmt = str(fmt or "wav").lower()
    return _AUDIO_FORMAT_MIME.get(fmt, _EXT_MIME.get(fmt, f"audio/{fmt}"))


def audio_format(mime: str | None) -> str:
    """OpenAI's `input_audio.format` for a MIME type."""
    sub = (mime or "audio/wav").split("/", 1)[-1].lower()
    return {"mpeg": "mp3", "x-wav": "wav", "wave": "wav"}.get(sub, sub)


def kind_of_mime(mime: str | None) -> str:
    if mime and mime.startswith("image/"):
        return "image"
    if mime and mime.startswith("audio/"):
        return "audio"
    if mime and mime.startswith("video/"):
        return "video"
    return "document"


def default_filename(mime: str | None) -> str:
    """A file name for an unnamed inline document: `document.<extension of its type>`
    (`document.pdf`), as OpenAI's file inputs want a name with an extension."""
    sub = (mime or "application/octet-stream").split("/", 1)[-1]
    return "document." + {"plain": "txt", "octet-stream": "bin"}.get(sub, sub)


def media_fallback_text(media: Media) -> Text:
    """A text stand-in for media the target cannot carry, so the model still knows it was there.

    Same wording as CLIProxyAPI's Gemini -> Claude translator uses for file_data.
    """
    ref = media.url or media.file_id or media.filename or media.kind
    return Text(f"File: {ref} (Type: {media.mime or media.kind})")


def media_from_url(
    kind: str,
    url: JSON,
    *,
    detail: str | None = None,
    filename: str | None = None,
    bare_ok: bool = False,
) -> Media | None:
    """A data URL becomes inline media, anything else a URL reference (bare base64 if allowed)."""
    if not isinstance(url, str) or not url:
        return None
    parsed = parse_data_url(url)
    if parsed is not None:
        mime, data = parsed
        mime = mime or mime_from_name(filename)
        if kind == "document":
            kind = kind_of_mime(mime)
        return Media(kind, mime, data=data, filename=filename, detail=detail)
    if bare_ok and "://" not in url:
        mime = mime_from_name(filename)
        return Media(kind_of_mime(mime), mime, data=url, filename=filename)
    mime = mime_from_name(url)
    if kind == "document" and mime:
        kind = kind_of_mime(mime)
    return Media(kind, mime, url=url, filename=filename, detail=detail)


def decode_text_document(media: Media) -> str | None:
    """The text of a base64 text/* document, for targets that take text documents only."""
    if media.data is None or not (media.mime or "").startswith("text/"):
        return None
    try:
        return base64.b64decode(media.data, validate=False).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None


def get(obj: JSON, *keys: str) -> JSON:
    """The first present key of a dict (Gemini accepts camelCase and snake_case alike)."""
    if not isinstance(obj, dict):
        return None
    for key in keys:
        if key in obj:
            return obj[key]
    return None


def list_or_empty(value: JSON) -> JSONArray:
    """`value` if it is a list, else no items (for optional arrays nobody must reject)."""
    return value if isinstance(value, list) else []


def function_of(tool: JSONObject) -> JSONObject:
    """A function tool's name/description/parameters: under `function` (Chat) or beside `type`."""
    fn = tool.get("function")
    return fn if isinstance(fn, dict) else tool


def as_str(value: JSON) -> str | None:
    return value if isinstance(value, str) else None


def as_number(value: JSON) -> float | int | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return value


def as_int(value: JSON) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def as_list(value: JSON, what: str) -> JSONArray:
    """`value` if it is a list; a missing value is empty; anything else is a client error."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise TranslationError(f"{what} must be an array")
    return value


def content_items(content: JSON, where: str) -> JSONArray:
    """Message content as a list of items: a non-empty string or a lone object is one item.

    A missing value or an empty string is no items; anything but a string, object or
    array is a client error.
    """
    if content is None:
        return []
    if isinstance(content, str):
        return [content] if content else []
    if isinstance(content, dict):
        return [content]
    if not isinstance(content, list):
        raise TranslationError(f"{where} must be a string or an array")
    return content


def as_dict(value: JSON, what: str) -> JSONObject:
    if not isinstance(value, dict):
        raise TranslationError(f"{what} must be an object")
    return value


def openai_response_format(fmt: JSON, *, nested: bool) -> ResponseFormat | None:
    """An OpenAI structured-output format object, or None.

    Chat's `response_format` nests the schema fields under `json_schema` (`nested`);
    Responses' `text.format` puts them beside `type`.
    """
    if not isinstance(fmt, dict):
        return None
    kind = fmt.get("type")
    if kind == "json_schema":
        spec = fmt.get("json_schema") if nested else fmt
        if not isinstance(spec, dict):
            spec = {}
        schema = spec.get("schema")
        strict = spec.get("strict")
        return ResponseFormat(
            "json_schema",
            as_str(spec.get("name")),
            schema if isinstance(schema, dict) else None,
            strict if isinstance(strict, bool) else None,
        )
    if kind in ("json_object", "text"):
        return ResponseFormat(kind)
    return None


def stop_list(value: JSON) -> list[str] | None:
    if isinstance(value, str):
        return [value] if value else None
    if isinstance(value, list):
        items = [s for s in value if isinstance(s, str) and s]
        return items or None
    return None


# ---- reasoning signatures (translators.md §2.5, by prefix: the protobuf checks are not needed
# to decide where a signature may be replayed) ----------------------------------------------

_SIG_PREFIXES = {
    "claude#": "claude",
    "anthropic#": "claude",
    "gemini#": "gemini",
    "google#": "gemini",
    "openai#": "openai",
    "gpt#": "openai",
    "codex#": "openai",
}
GEMINI_BYPASS_SIGNATURE = "skip_thought_signature_validator"
_GEMINI_SENTINELS = {GEMINI_BYPASS_SIGNATURE, "context_engineering_is_the_way_to_go"}
_B64 = re.compile(r"^[A-Za-z0-9+/_-]+=*$")


def signature_provider(sig: JSON) -> tuple[str | None, str]:
    """(provider, bare signature): provider is "claude", "gemini", "openai" or None."""
    if not isinstance(sig, str) or not sig:
        return None, ""
    for prefix, provider in _SIG_PREFIXES.items():
        if sig.lower().startswith(prefix):
            return provider, sig[len(prefix) :]
    if sig in _GEMINI_SENTINELS:
        return "gemini", sig
    if not _B64.match(sig):
        return None, sig
    if sig.startswith("gAAAA"):
        return "openai", sig
    if sig[0] in "ER" and len(sig) >= 40:
        return "claude", sig
    if sig[0] == "C":
        return "gemini", sig
    return None, sig


def signature_for(provider: str, sig: JSON) -> str | None:
    """The bare signature if it was made by `provider`, else None (it would be rejected)."""
    found, bare = signature_provider(sig)
    return bare if found == provider else None
