# -*- test-case-name: tests.management.test_oauth -*-
"""OAuth logins started from the management API (core.md §6.3).

`GET /anthropic-auth-url`, `/codex-auth-url`, `/gemini-cli-auth-url` (`?project_id=`) start
a login: a fresh state and PKCE pair, the provider's authorize URL in the answer, and a
one-shot callback server on the provider's usual loopback port when it is free (as the CLI
login does). The login completes when that server receives the redirect or when
`POST /oauth-callback` brings it (`redirect_url`, or `code`/`state`/`error`), for a browser
on another machine. The code exchange, account lookup and token file are the CLI login's
own steps (`cliproxy.credentials.oauth.login`); the new file is picked up at once.
`GET /get-auth-status?state=` says wait, ok or error. A login not completed within
`LOGIN_TIMEOUT` is forgotten. `/antigravity-auth-url` is the same browser flow with
Antigravity's client.

`GET /kimi-auth-url` and `/xai-auth-url` start a device login instead (as CLIProxyAPI):
the answer carries the verification `url` (and `user_code`) with `"flow": "device"`;
cliproxy polls the token endpoint in the background and saves the file once the user
approves; `/get-auth-status?state=` follows it the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from twisted.internet import defer
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request

from cliproxy.config.watcher import ConfigStore
from cliproxy.credentials.net import HTTPRequester, IClientReactor
from cliproxy.credentials.oauth.callback import (
    CallbackServer,
    LoginError,
    Redirect,
    parse_pasted,
    redirect_from_query,
)
from cliproxy.credentials.oauth.device import MAX_WAIT, DeviceGrant, DeviceLoginError
from cliproxy.credentials.oauth.kimi_login import kimi_device_grant
from cliproxy.credentials.oauth.login import LOGIN_TIMEOUT, LoginFlow, LoginOptions
from cliproxy.credentials.oauth.pkce import PKCE, new_state
from cliproxy.credentials.oauth.providers import ANTIGRAVITY, CLAUDE, CODEX, GEMINI, ProviderSpec
from cliproxy.credentials.oauth.xai_login import xai_device_grant
from cliproxy.management.resource import BadRequest, Endpoint, answer, error, query, read_json

log = Logger()

START = {
    "anthropic-auth-url": CLAUDE,
    "codex-auth-url": CODEX,
    "gemini-cli-auth-url": GEMINI,
    "antigravity-auth-url": ANTIGRAVITY,
}
#: device logins: endpoint -> provider
DEVICE_START = {"kimi-auth-url": "kimi", "xai-auth-url": "xai"}
NAMES = {
    "antigravity": ANTIGRAVITY,
    "anthropic": CLAUDE,
    "claude": CLAUDE,
    "codex": CODEX,
    "openai": CODEX,
    "gemini": GEMINI,
    "gemini-cli": GEMINI,
    "google": GEMINI,
}


@dataclass
class Pending:
    spec: ProviderSpec
    state: str
    pkce: PKCE
    project_id: str
    server: CallbackServer
    status: str = "wait"
    error: str = ""
    running: bool = False
    timer: Any = field(default=None, repr=False)


@dataclass
class DevicePending:
    provider: str
    status: str = "wait"
    error: str = ""
    polling: Any = field(default=None, repr=False)
    timer: Any = field(default=None, repr=False)


class OAuthLogins:
    """The logins under way, by state."""

    def __init__(
        self,
        store: ConfigStore,
        reactor: IClientReactor,
        http: HTTPRequester,
        saved: Callable[[], object],
        clock: IReactorTime | None = None,
    ) -> None:
        self.store = store
        self.reactor = reactor
        #: paces device-login polls (the reactor unless given)
        self.clock: IReactorTime = clock or reactor
        self.http = http
        self.saved = saved
        self.pending: dict[str, Pending] = {}
        self.devices: dict[str, DevicePending] = {}

    async def start_device(self, provider: str) -> tuple[DeviceGrant, str]:
        """(device grant, state) of a new device login, polled in the background.

        Raises:
            DeviceLoginError: the provider handed out no device code.
        """
        config = self.store.current
        if provider == "xai":
            grant = await xai_device_grant(self.http, config.oauth_endpoints.xai, config.auth_dir)
        else:
            grant = await kimi_device_grant(self.http, config.oauth_endpoints.kimi, config.auth_dir)
        state = f"{provider}-{new_state()}"
        p = self.devices[state] = DevicePending(provider)
        p.polling = defer.ensureDeferred(grant.finish(self.http, self.clock))
        p.polling.addCallbacks(
            lambda path: self._device_saved(p, path), lambda f: self._device_failed(p, f)
        )
        p.timer = self.clock.callLater(MAX_WAIT + LOGIN_TIMEOUT, self.devices.pop, state, None)
        return grant, state

    def _device_saved(self, p: DevicePending, path: str) -> None:
        log.info("management {provider} login saved {path}", provider=p.provider, path=path)
        p.status = "ok"
        self.saved()

    def _device_failed(self, p: DevicePending, failure: Failure) -> None:
        if failure.check(defer.CancelledError):
            p.error = "login cancelled"
        elif isinstance(failure.value, DeviceLoginError):
            p.error = str(failure.value)
        else:
            log.failure("management device login failed", failure)
            p.error = f"login failed: {failure.getErrorMessage()}"
        p.status = "error"

    def start(self, spec: ProviderSpec, project_id: str) -> tuple[str, str]:
        """(authorize URL, state) of a new login."""
        state, pkce = new_state(), PKCE.new()
        server = CallbackServer(self.reactor, spec.callback_path, state, spec.title)
        p = self.pending[state] = Pending(spec, state, pkce, project_id, server)
        try:
            server.listen(spec.callback_port)
            server.result.addCallbacks(
                lambda got: self.complete(state, got), lambda f: self._fail(p, f)
            )
        except LoginError as e:
            log.info("management login: {why}; waiting for /oauth-callback", why=e.message)
        p.timer = self.reactor.callLater(LOGIN_TIMEOUT, self._expire, state)
        url = spec.authorize_url(
            self.store.current.oauth_endpoints,
            redirect_uri=spec.redirect_uri(),
            state=state,
            challenge=pkce.challenge,
        )
        return url, state

    def complete(self, state: str, got: Redirect) -> int:
        """Take the redirect of a pending login: 200, 404 (unknown/expired) or 409."""
        p = self.pending.get(state)
        if p is None:
            return 404
        if p.running or p.status != "wait":
            return 409
        why = p.server.check(got)
        if why is not None:
            p.status, p.error = "error", why
            self._close(p)
            return 200
        p.running = True
        d = defer.ensureDeferred(self._finish(p, got))
        d.addErrback(lambda f: self._fail(p, f))
        return 200

    async def _finish(self, p: Pending, got: Redirect) -> None:
        flow = LoginFlow(
            p.spec,
            config=self.store.current,
            reactor=self.reactor,
            http=self.http,
            out=lambda line: log.info("management login: {line}", line=line),
            lines=None,
            opener=None,
            options=LoginOptions(project_id=p.project_id),
            clock=None,
        )
        answer = await flow.exchange(got, p.state, p.pkce, p.spec.redirect_uri())
        record, plan = await flow.record(answer)
        path = flow.save(record, plan)
        log.info("management login saved {path}", path=path)
        p.status = "ok"
        self._close(p)
        self.saved()

    def _fail(self, p: Pending, failure: Failure) -> None:
        if isinstance(failure.value, LoginError):
            p.error = failure.value.message
        else:
            log.failure("management login failed", failure)
            p.error = f"login failed: {failure.getErrorMessage()}"
        p.status = "error"
        self._close(p)

    def _close(self, p: Pending) -> None:
        p.running = False
        p.server.stop()

    def _expire(self, state: str) -> None:
        p = self.pending.pop(state, None)
        if p is not None:
            p.server.stop()

    def status(self, state: str) -> dict[str, str] | None:
        p: Pending | DevicePending | None = self.pending.get(state) or self.devices.get(state)
        if p is None:
            return None
        if p.status == "error":
            return {"status": "error", "error": p.error}
        return {"status": p.status}

    def stop(self) -> None:
        for state in list(self.pending):
            p = self.pending.pop(state)
            if p.timer is not None and p.timer.active():
                p.timer.cancel()
            p.server.stop()
        for state in list(self.devices):
            d = self.devices.pop(state)
            for call in (d.timer,):
                if call is not None and call.active():
                    call.cancel()
            if d.polling is not None and not d.polling.called:
                d.polling.cancel()


class AuthURL(Endpoint):
    def __init__(self, logins: OAuthLogins, spec: ProviderSpec) -> None:
        super().__init__()
        self.logins, self.spec = logins, spec

    def render_GET(self, request: Request) -> bytes:
        url, state = self.logins.start(self.spec, (query(request, "project_id") or "").strip())
        return answer(request, {"status": "ok", "url": url, "state": state})


class DeviceAuthURL(Endpoint):
    def __init__(self, logins: OAuthLogins, provider: str) -> None:
        super().__init__()
        self.logins, self.provider = logins, provider

    def render_GET(self, request: Request) -> int:
        def started(result: tuple[DeviceGrant, str]) -> None:
            grant, state = result
            body = {"status": "ok", "url": grant.url, "state": state, "flow": "device"}
            if grant.code.get("user_code"):
                body["user_code"] = str(grant.code["user_code"])
            _finish(request, answer(request, body))

        def failed(failure: Failure) -> None:
            if not isinstance(failure.value, DeviceLoginError):
                log.failure("management {provider} login", failure, provider=self.provider)
            else:
                log.warn(
                    "management {provider} login: {e}", provider=self.provider, e=failure.value
                )
            _finish(request, error(request, 500, "failed to generate authorization url"))

        d = defer.ensureDeferred(self.logins.start_device(self.provider))
        d.addCallbacks(started, failed)
        return NOT_DONE_YET


def _finish(request: Request, body: bytes) -> None:
    if request.finished or request.channel is None:
        return  # the client went away meanwhile
    request.write(body)
    request.finish()


def _redirect_of(body: dict[str, Any]) -> Redirect:
    url = body.get("redirect_url")
    if isinstance(url, str) and url.strip():
        got = parse_pasted(url)
        if got is None:
            raise BadRequest("invalid redirect_url")
        return Redirect(got.code, got.state, got.error, got.error_description, "callback")
    fields = {k: [str(body[k])] for k in ("code", "state", "error") if body.get(k)}
    if not fields:
        raise BadRequest("missing code or redirect_url")
    return redirect_from_query(fields, "callback")


class OAuthCallback(Endpoint):
    def __init__(self, logins: OAuthLogins) -> None:
        super().__init__()
        self.logins = logins

    def render_POST(self, request: Request) -> bytes:
        body = read_json(request)
        if not isinstance(body, dict) or str(body.get("provider", "")).lower() not in NAMES:
            raise BadRequest("invalid provider")
        got = _redirect_of(body)
        if not got.state:
            raise BadRequest("missing state")
        status = self.logins.complete(got.state, got)
        if status == 404:
            raise BadRequest("unknown or expired state", 404)
        if status == 409:
            raise BadRequest("login is not pending", 409)
        return answer(request, {"status": "ok"})


class AuthStatus(Endpoint):
    def __init__(self, logins: OAuthLogins) -> None:
        super().__init__()
        self.logins = logins

    def render_GET(self, request: Request) -> bytes:
        found = self.logins.status((query(request, "state") or "").strip())
        if found is None:
            raise BadRequest("unknown or expired state", 404)
        return answer(request, found)


def oauth_children(node: Resource, logins: OAuthLogins) -> None:
    for name, spec in START.items():
        node.putChild(name.encode("ascii"), AuthURL(logins, spec))
    for name, provider in DEVICE_START.items():
        node.putChild(name.encode("ascii"), DeviceAuthURL(logins, provider))
    node.putChild(b"oauth-callback", OAuthCallback(logins))
    node.putChild(b"get-auth-status", AuthStatus(logins))


__all__ = ["OAuthLogins", "oauth_children"]
