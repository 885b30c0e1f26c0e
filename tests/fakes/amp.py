"""The Amp control plane (ampcode.com): `FakeAmp` (amp.md).

Routes:
* `POST /api/internal?<method>` JSON-RPC style: `{"ok": true, "result": ...}`
  (`getUserInfo` returns a user; other methods `{}`);
* `GET /api/user`, `GET /api/threads[/<id>]`, and any other `/api/...` path, any method:
  JSON that echoes what arrived (`"echo": {"method","path","query","json"}`);
* `POST /api/thread-actors`: `{"threadId","wsToken","ownerUserId","threadVersion"}`;
* `GET /actors/gateway/...` with `Upgrade: websocket`: `101` and a byte echo tunnel
  (426 without the Upgrade header);
* `/api/provider/anthropic|openai|google|<other>/...`: the model APIs, answered by
  embedded `FakeClaude` / `FakeOpenAI` / `FakeGemini` logic with the text
  "hello from fake-amp";
* root pages (`/threads...`, `/docs...`, `/settings...`, `/auth...`, `*.rss`): small HTML/RSS.
Credential: `X-Api-Key` or `Authorization: Bearer` (the proxy sends both).
"""

from __future__ import annotations

from tests.fakes.claude import FakeClaude
from tests.fakes.gemini import MODEL_ACTION, FakeGemini
from tests.fakes.openai import FakeOpenAI
from tests.fakes.records import RecordedRequest
from tests.fakes.reply import Reply
from tests.fakes.server import FakeUpstream, Tunnel, bearer

_PROVIDER = r"/api/provider/(?P<provider>[^/]+)"


def echo_of(rec: RecordedRequest) -> dict:
    """What the control-plane routes echo back."""
    return {"method": rec.method, "path": rec.path, "query": rec.query, "json": rec.json}


class FakeAmp(FakeUpstream):
    """A fake ampcode.com.

    Attributes:
        user: what `/api/user` and `getUserInfo` return.
        claude, openai, gemini: the embedded provider fakes (not listening) that answer
            `/api/provider/...`; script their turns with e.g.
            `fake.script("POST", path, fake.claude.text_reply("x"))`.
    """

    name = "fake-amp"

    def __init__(self, keys=None, clock=None, reactor=None) -> None:
        self.user = {"id": "user-fake", "email": "amp-user@example.com", "username": "fake"}
        self.thread_counter = 0
        self.claude = FakeClaude(reactor=reactor)
        self.openai = FakeOpenAI(reactor=reactor)
        self.gemini = FakeGemini(reactor=reactor)
        for inner in (self.claude, self.openai, self.gemini):
            inner.name = self.name
        super().__init__(keys=keys, clock=clock, reactor=reactor)

    def install_builtins(self) -> None:
        p = _PROVIDER
        self.builtin("POST", p + r"(?:/v1)?/messages", self._claude)
        self.builtin("POST", p + r"(?:/v1)?/messages/count_tokens", self._claude)
        self.builtin("POST", p + r"(?:/v1)?/chat/completions", self._openai)
        self.builtin("POST", p + r"(?:/v1)?/responses", self._openai)
        self.builtin("POST", p + MODEL_ACTION, self._gemini)
        self.builtin("GET", p + r"(?:/v1beta1?|/v1)?/models", self._models)
        self.builtin("POST", r"/api/internal", self._internal)
        self.builtin("GET", r"/api/user", self._user)
        self.builtin("GET", r"/api/threads", self._threads)
        self.builtin("GET", r"/api/threads/(?P<id>[^/]+)", self._thread)
        self.builtin("POST", r"/api/thread-actors", self._thread_actors)
        self.builtin("GET", r"/actors/gateway/.*", self._gateway)
        self.builtin("*", r"/api/.*", self._echo)
        self.builtin("GET", r"/.*\.rss", self._rss)
        self.builtin("*", r"/(?:threads|docs|settings|auth)(?:/.*)?", self._page)

    def credential(self, rec: RecordedRequest) -> str | None:
        return rec.header("x-api-key") or bearer(rec)

    def auth_error(self, rec: RecordedRequest) -> Reply:
        return Reply(401, json={"error": "Unauthorized", "message": "invalid API key"})

    def not_found(self, rec: RecordedRequest) -> Reply:
        return Reply(404, json={"error": "Not Found", "path": rec.path})

    # -- provider routes ---------------------------------------------------------------

    def _claude(self, rec, m) -> Reply:
        if rec.path.endswith("/count_tokens"):
            return self.claude._count_tokens(rec, m)
        return self.claude._messages(rec, m)

    def _openai(self, rec, m) -> Reply:
        if rec.path.endswith("/responses"):
            return self.openai._responses(rec, m)
        return self.openai._chat(rec, m)

    def _gemini(self, rec, m) -> Reply:
        return self.gemini._action(rec, m)

    def _models(self, rec, m) -> Reply:
        provider = m["provider"]
        if provider == "anthropic":
            return self.claude._models(rec, m)
        if provider == "google":
            return self.gemini._models(rec, m)
        return self.openai._models(rec, m)

    # -- control plane -----------------------------------------------------------------

    def _internal(self, rec, m) -> Reply:
        body = rec.json if isinstance(rec.json, dict) else {}
        method = body.get("method") or next(iter(rec.query), "")
        result = dict(self.user) if method == "getUserInfo" else {}
        return Reply(json={"ok": True, "result": result, "echo": echo_of(rec)})

    def _user(self, rec, m) -> Reply:
        return Reply(json={**self.user, "echo": echo_of(rec)})

    def _threads(self, rec, m) -> Reply:
        return Reply(json={"threads": [], "echo": echo_of(rec)})

    def _thread(self, rec, m) -> Reply:
        return Reply(json={"id": m["id"], "title": "fake thread", "echo": echo_of(rec)})

    def _thread_actors(self, rec, m) -> Reply:
        self.thread_counter += 1
        body = rec.json if isinstance(rec.json, dict) else {}
        return Reply(
            json={
                "threadId": body.get("threadId") or f"T-fake-{self.thread_counter:04d}",
                "wsToken": "ws-fake-token",
                "ownerUserId": self.user["id"],
                "threadVersion": 1,
            }
        )

    def _gateway(self, rec, m):
        if (rec.header("upgrade") or "").lower() != "websocket":
            return Reply(426, json={"error": "Upgrade Required"})
        return Tunnel()

    def _echo(self, rec, m) -> Reply:
        return Reply(json={"ok": True, "echo": echo_of(rec)})

    def _rss(self, rec, m) -> Reply:
        return Reply(
            body=f'<?xml version="1.0"?><rss><channel><title>{self.name} {rec.path}</title>'
            "</channel></rss>",
            content_type="application/rss+xml",
        )

    def _page(self, rec, m) -> Reply:
        return Reply(
            body=f"<html><body>{self.name} {rec.path}</body></html>",
            content_type="text/html; charset=utf-8",
        )
