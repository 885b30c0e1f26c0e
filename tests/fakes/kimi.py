"""Kimi Code's API (`api.kimi.com/coding`): OpenAI Chat Completions under `/v1`, Bearer
tokens only, and the `X-Msh-Device-Id`/`X-Msh-Platform` headers its service requires
(a request without them is refused with 400, as an unregistered client)."""

from __future__ import annotations

from tests.fakes.oauth import FakeOAuth, oauth_error_reply
from tests.fakes.openai import FakeOpenAI, openai_error_reply
from tests.fakes.records import RecordedRequest
from tests.fakes.reply import Reply


class FakeKimi(FakeOpenAI):
    name = "fake-kimi"
    default_models = ("kimi-k2", "kimi-k2.5")

    def install_builtins(self) -> None:
        self.builtin("POST", r"/v1/chat/completions", self._kimi_chat)

    def _kimi_chat(self, rec: RecordedRequest, m) -> Reply:
        for header in ("x-msh-device-id", "x-msh-platform"):
            if not rec.header(header):
                return openai_error_reply(400, f"missing {header}")
        return self._chat(rec, m)


class FakeKimiAuth(FakeOAuth):
    """Kimi's token endpoint (`auth.kimi.com/api/oauth/token`): like every Kimi call it reads
    the `X-Msh-*` device headers, and refuses a call without them (400, RFC 6749 shape)."""

    name = "fake-kimi-auth"

    def __init__(self, **kwargs) -> None:
        super().__init__(flavor="generic", **kwargs)

    def _token(self, rec: RecordedRequest, m) -> Reply:
        for header in ("x-msh-device-id", "x-msh-platform", "x-msh-version"):
            if not rec.header(header):
                return oauth_error_reply(400, "invalid_request", f"missing {header}")
        return super()._token(rec, m)
