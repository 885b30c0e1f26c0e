# -*- test-case-name: tests.oauth.test_login -*-
"""`cliproxy login claude|codex|gemini`: sign in once, save the token file (core.md §3.1-3.4).

The flow: a fresh state and PKCE S256 pair; a one-shot callback server on 127.0.0.1;
the authorize URL printed (and opened in a browser where there is one); then whichever
comes first of the browser's redirect, a pasted redirect URL or code (for machines the
browser cannot reach), or the timeout. The code is exchanged, the account identified,
and the file written to `auth-dir` with mode 0600. Every step says what it is doing and
every failure says what happened and what to do next. Tokens are never printed.
"""

from __future__ import annotations

import os
import sys
import webbrowser
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from twisted.internet import defer
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

from cliproxy.config.model import Config
from cliproxy.credentials.net import HTTPRequester, IClientReactor
from cliproxy.credentials.oauth import antigravity, google
from cliproxy.credentials.oauth.callback import CallbackServer, LoginError, Redirect, parse_pasted
from cliproxy.credentials.oauth.pkce import PKCE, new_state
from cliproxy.credentials.oauth.providers import ANTIGRAVITY, CLAUDE, CODEX, ProviderSpec
from cliproxy.credentials.oauth.records import (
    claude_record,
    codex_identity,
    codex_record,
    gemini_record,
)
from cliproxy.credentials.oauth.tokens import OAuthError, token_request
from cliproxy.credentials.store import (
    TOKEN_FIELDS,
    AuthFileError,
    filename_for,
    read_auth_file,
    write_auth_file,
)

__all__ = [
    "LineQueue",
    "LoginError",
    "LoginFlow",
    "LoginOptions",
    "LoginResult",
    "open_browser",
    "run_login",
]

log = Logger()

_T = TypeVar("_T")

#: how long a login waits for the browser or a paste
LOGIN_TIMEOUT = 300.0
#: record fields a new login replaces; the user's own keys (prefix, priority...) stay
_LOGIN_FIELDS = TOKEN_FIELDS | {"project_id", "auto", "checked"}


@dataclass
class LoginOptions:
    """What the command line asked for.

    Attributes:
        no_browser: only print the URL.
        callback_port: the local callback port (None: the provider's; 0: any free port).
        project_id: Gemini: a project id, several comma-separated, or `ALL`.
        timeout: seconds to wait for the sign-in.
    """

    no_browser: bool = False
    callback_port: int | None = None
    project_id: str = ""
    timeout: float = LOGIN_TIMEOUT


@dataclass(frozen=True)
class LoginResult:
    path: str
    email: str
    record: dict[str, Any]


class LineQueue:
    """Lines typed or pasted by the user, handed out one `next_line()` Deferred at a time.

    The command wires stdin into `feed`/`close`; tests feed it directly.
    """

    def __init__(self) -> None:
        self._lines: deque[str] = deque()
        self._waiting: deque[defer.Deferred[str | None]] = deque()
        self.closed = False

    def feed(self, line: str) -> None:
        while self._waiting:
            d = self._waiting.popleft()
            if not d.called:
                d.callback(line)
                return
        self._lines.append(line)

    def close(self) -> None:
        self.closed = True
        while self._waiting:
            d = self._waiting.popleft()
            if not d.called:
                d.callback(None)

    def next_line(self) -> defer.Deferred[str | None]:
        """Deferred[str | None]: the next line, or None once input has ended."""
        if self._lines:
            return defer.succeed(self._lines.popleft())
        if self.closed:
            return defer.succeed(None)
        d: defer.Deferred[str | None] = defer.Deferred(lambda d: self._waiting.remove(d))
        self._waiting.append(d)
        return d


def headless() -> bool:
    """No display to open a browser on (an SSH session or a server)."""
    if sys.platform.startswith(("win", "darwin")):
        return False
    return not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def open_browser(url: str) -> bool:
    """Open `url` in a graphical browser if this machine has one; True if it did."""
    if headless():
        return False  # webbrowser would start lynx/w3m in this very terminal
    try:
        return bool(webbrowser.open(url, new=2))
    except Exception:
        return False


def _first_of(*ds: defer.Deferred[_T]) -> defer.Deferred[_T]:
    """Fires with the first result or failure of `ds`; later outcomes are dropped."""
    out: defer.Deferred[_T] = defer.Deferred()

    def ok(result: _T) -> None:
        if not out.called:
            out.callback(result)

    def bad(failure: Failure) -> None:
        if not out.called:
            out.errback(failure)

    for d in ds:
        d.addCallbacks(ok, bad)
    return out


class LoginFlow:
    """One login's steps for `spec` (authorize URL, callback or paste, code exchange, token
    file): `run_login` drives it from the CLI, the management API from its endpoints."""

    def __init__(
        self,
        spec: ProviderSpec,
        *,
        config: Config,
        reactor: IClientReactor,
        http: HTTPRequester,
        out: Callable[[str], object],
        lines: LineQueue | None,
        opener: Callable[[str], bool] | None,
        options: LoginOptions,
        clock: IReactorTime | None,
    ) -> None:
        self.spec = spec
        self.config = config
        self.reactor = reactor
        self.http = http
        self.out = out
        self.lines = lines
        self.opener = opener
        self.options = options
        self.clock: IReactorTime = clock or reactor
        self.proxy = getattr(config, "proxy_url", "") or None

    # -- the browser part ----------------------------------------------------------------

    async def wait_for_code(self, state: str, pkce: PKCE) -> tuple[Redirect, str]:
        spec = self.spec
        server = CallbackServer(self.reactor, spec.callback_path, state, spec.title)
        port, listening = self._listen(server)
        # the provider accepts only its registered redirect (OpenAI: localhost:1455), so the
        # URI keeps the provider's port whatever port the callback server listens on
        redirect_uri = spec.redirect_uri()
        url = spec.authorize_url(
            self.config.oauth_endpoints,
            redirect_uri=redirect_uri,
            state=state,
            challenge=pkce.challenge,
        )
        self._tell_where_to_sign_in(url, redirect_uri, port, listening)
        got = await self._first_sign_in(server, listening)
        self.out(
            "Sign-in received from the browser."
            if got.via == "callback"
            else "Sign-in code received."
        )
        return got, redirect_uri

    def _listen(self, server: CallbackServer) -> tuple[int, bool]:
        """(port, listening): a port taken is only a warning while a paste can still come."""
        spec = self.spec
        port = (
            spec.callback_port if self.options.callback_port is None else self.options.callback_port
        )
        try:
            return server.listen(port), True
        except LoginError as e:
            if self.lines is None:
                raise
            self.out(f"warning: {e.message}")
            return port, False

    def _tell_where_to_sign_in(
        self, url: str, redirect_uri: str, port: int, listening: bool
    ) -> None:
        self.out(f"Signing in to {self.spec.title}.")
        self.out("Open this address in a browser and sign in:")
        self.out("")
        self.out(f"  {url}")
        self.out("")
        if not self.options.no_browser and self.opener is not None:
            opened = self.opener(url)
            self.out(
                "A browser window was opened." if opened else "No browser here: open it elsewhere."
            )
        minutes = self.options.timeout / 60.0
        if listening:
            self.out(
                f"Waiting up to {minutes:g} minutes for the browser to come back to "
                f"{redirect_uri} ..."
            )
            if port != self.spec.callback_port:
                self.out(
                    f"The callback listens on 127.0.0.1:{port}, not on the registered port "
                    f"{self.spec.callback_port}: forward it (ssh -L "
                    f"{self.spec.callback_port}:127.0.0.1:{port} <this machine>) or paste "
                    "the final address."
                )
        if self.lines is not None:
            self.out(
                "If the browser runs on another machine, it ends on a page that does not "
                f"load ({redirect_uri}?code=...): copy that whole address from its address "
                "bar, paste it here and press Enter (the code alone works too)."
            )
            if listening:
                self.out(
                    "Or forward the port first: ssh -L "
                    f"{self.spec.callback_port}:127.0.0.1:{port} <this machine>"
                )

    async def _first_sign_in(self, server: CallbackServer, listening: bool) -> Redirect:
        """The browser's redirect or a paste, whichever comes first, within the timeout."""
        sources: list[defer.Deferred[Redirect]] = []
        if listening:
            sources.append(server.result)
        paste = defer.ensureDeferred(self._paste_loop(server)) if self.lines is not None else None
        if paste is not None:
            sources.append(paste)
        if not sources:
            raise LoginError("no way to receive the sign-in (no callback port and no input)")
        minutes = self.options.timeout / 60.0
        timeout: defer.Deferred[Redirect] = defer.Deferred()
        timer = self.clock.callLater(
            self.options.timeout,
            lambda: timeout.errback(
                LoginError(
                    f"no sign-in arrived within {minutes:g} minutes; nothing was saved. "
                    "Run the login again (use --no-browser and paste the final address "
                    "on a machine without a browser)."
                )
            ),
        )
        try:
            return await _first_of(*sources, timeout)
        finally:
            if timer.active():
                timer.cancel()
            if paste is not None and not paste.called:
                paste.cancel()
            if not server.result.called:
                server.result.addErrback(lambda _: None)
                server.result.cancel()
            await server.stop()

    async def _paste_loop(self, server: CallbackServer) -> Redirect:
        assert self.lines is not None
        while True:
            line = await self.lines.next_line()
            if line is None:
                never: defer.Deferred[None] = defer.Deferred()
                await never  # input ended: only the callback can finish now
                continue
            got = parse_pasted(line)
            if got is None:
                if line.strip():
                    self.out(
                        "That is not the sign-in address or code. Paste the whole address "
                        "from the browser's address bar (it contains code=...)."
                    )
                continue
            problem = server.check(got)
            if problem is not None:
                raise LoginError(problem)
            return got

    # -- after the browser ---------------------------------------------------------------

    async def exchange(
        self, got: Redirect, state: str, pkce: PKCE, redirect_uri: str
    ) -> dict[str, Any]:
        spec = self.spec
        endpoints = spec.endpoints(self.config.oauth_endpoints)
        self.out("Exchanging the code for tokens ...")
        fields = spec.exchange_fields(
            code=got.code,
            state=got.state or state,
            redirect_uri=redirect_uri,
            verifier=pkce.verifier,
        )
        try:
            return await token_request(
                self.http,
                endpoints.token_url,
                fields,
                json_body=spec.json_token_body,
                proxy_url=self.proxy,
                what="exchanging the sign-in code",
            )
        except OAuthError as e:
            hint = "Run the login again"
            if e.error == "invalid_grant":
                hint = "The code was already used or has expired; run the login again"
            raise LoginError(f"{e.message}. {hint}.") from None

    async def record(self, answer: dict[str, Any]) -> tuple[dict[str, Any], str]:
        now = self.reactor.seconds()
        try:
            if self.spec is CLAUDE:
                return claude_record(answer, now), ""
            if self.spec is CODEX:
                record = codex_record(answer, now)
                return record, codex_identity(record["id_token"])["plan_type"]
            if self.spec is ANTIGRAVITY:
                return await self._antigravity(answer, now), ""
            return await self._gemini(answer, now), ""
        except OAuthError as e:
            raise LoginError(e.message) from None
        except google.GoogleError as e:
            raise LoginError(f"{e.message}. Nothing was saved.") from None

    async def _gemini(self, answer: dict[str, Any], now: float) -> dict[str, Any]:
        ep = self.config.oauth_endpoints.gemini
        token = str(answer["access_token"])
        email = await google.fetch_email(self.http, ep.userinfo_url, token, self.proxy)
        self.out(f"Signed in to Google as {email}.")
        requested = self.options.project_id.strip()
        if not requested:
            projects, auto = [await self._discover_project(token, email)], True
        else:
            projects, auto = await self._set_up_projects(token, email, requested), False
        return gemini_record(
            answer,
            now,
            spec=self.spec,
            token_url=ep.token_url,
            email=email,
            project_id=",".join(projects),
            auto=auto,
            checked=True,
        )

    async def _antigravity(self, answer: dict[str, Any], now: float) -> dict[str, Any]:
        ep = self.config.oauth_endpoints.antigravity
        token = str(answer["access_token"])
        email = await google.fetch_email(self.http, ep.userinfo_url, token, self.proxy)
        self.out(f"Signed in to Google as {email}.")
        self.out("Looking up your Antigravity project ...")
        project = await antigravity.discover_project(self.http, ep, token, self.clock, self.proxy)
        self.out(f"Using project {project}.")
        return antigravity.antigravity_record(answer, now, email, project)

    async def _discover_project(self, token: str, email: str) -> str:
        """The Code Assist project Google picks for this account (no --project_id)."""
        ep = self.config.oauth_endpoints.gemini
        http, proxy = self.http, self.proxy
        self.out("Looking up your Gemini Code Assist project ...")
        project = await google.discover_project(http, ep.code_assist_url, token, self.clock, proxy)
        if not project:
            try:
                known = await google.list_projects(http, ep.resource_manager_url, token, proxy)
            except google.GoogleError:
                known = []
            listed = f" (your projects: {', '.join(known[:10])})" if known else ""
            raise LoginError(
                f"no Gemini Code Assist project is set up for {email}; run the login again "
                f"with --project_id <project id>{listed}, or ALL for every project"
            )
        self.out(f"Using project {project}.")
        return project

    async def _set_up_projects(self, token: str, email: str, requested: str) -> list[str]:
        """Onboard each project `--project_id` names (`ALL`: every project); those in use."""
        ep = self.config.oauth_endpoints.gemini
        http, proxy = self.http, self.proxy
        if requested.upper() == "ALL":
            wanted = await google.list_projects(http, ep.resource_manager_url, token, proxy)
            if not wanted:
                raise LoginError(f"--project_id ALL: {email} has no Google Cloud projects")
        else:
            wanted = [p.strip() for p in requested.split(",") if p.strip()]
        projects: list[str] = []
        for wanted_id in wanted:
            self.out(f"Setting up Gemini Code Assist on project {wanted_id} ...")
            tier, _ = await google.load_code_assist(
                http, ep.code_assist_url, token, wanted_id, proxy
            )
            got = await google.onboard_user(
                http,
                ep.code_assist_url,
                token,
                tier,
                wanted_id,
                self.clock,
                poll=google.ONBOARD_POLL,
                proxy_url=proxy,
            )
            if got != wanted_id:
                self.out(f"Code Assist uses project {got} for {wanted_id}.")
            try:
                await google.enable_service(http, ep.service_usage_url, token, got, proxy)
            except google.GoogleError as e:  # optional: Code Assist may work without it
                self.out(
                    f"warning: {e}; continuing. If requests fail, enable "
                    f"{google.SERVICE} for {got} in the Google Cloud console."
                )
            if got not in projects:
                projects.append(got)
        return projects

    def save(self, record: dict[str, Any], plan: str) -> str:
        directory = os.path.expanduser(self.config.auth_dir)
        path = os.path.join(directory, filename_for(record, plan))
        if os.path.exists(path):
            try:
                existing = read_auth_file(path).record
            except AuthFileError as e:
                raise LoginError(
                    f"{path} already exists and {e}; it was left as it is. Move it away "
                    "and run the login again."
                ) from None
            kept = {k: v for k, v in existing.items() if k not in _LOGIN_FIELDS}
            if kept:
                self.out(
                    f"Keeping your settings from the existing file: {', '.join(sorted(kept))}."
                )
            record = {**record, **kept}
        try:
            write_auth_file(path, record)
        except OSError as e:
            raise LoginError(
                f"could not write {path}: {e.strerror or e}. Check that auth-dir is writable."
            ) from None
        return path


async def run_login(
    spec: ProviderSpec,
    *,
    config: Config,
    reactor: IClientReactor,
    http: HTTPRequester,
    out: Callable[[str], object],
    lines: LineQueue | None = None,
    opener: Callable[[str], bool] | None = open_browser,
    options: LoginOptions | None = None,
    clock: IReactorTime | None = None,
) -> LoginResult:
    """Run one interactive login and save its token file.

    Args:
        spec: the provider (`CLAUDE`, `CODEX`, `GEMINI`).
        config: the loaded config (auth-dir, oauth-endpoints, proxy-url).
        reactor: for the callback server and the exchange.
        http: the HTTP client (an `UpstreamHTTP`).
        out: prints one line for the user.
        lines: pasted input (None: the callback is the only way back).
        opener: opens a URL in a browser, True on success (None: never).
        options: command-line choices.
        clock: `IReactorTime` for the timeout and polls (default: `reactor`).

    Raises:
        LoginError: with the message to show.
    """
    options = options or LoginOptions()
    flow = LoginFlow(
        spec,
        config=config,
        reactor=reactor,
        http=http,
        out=out,
        lines=lines,
        opener=opener,
        options=options,
        clock=clock,
    )
    state, pkce = new_state(), PKCE.new()
    got, redirect_uri = await flow.wait_for_code(state, pkce)
    answer = await flow.exchange(got, state, pkce, redirect_uri)
    record, plan = await flow.record(answer)
    path = flow.save(record, plan)
    email = str(record.get("email") or "")
    extra = f", project {record['project_id']}" if record.get("project_id") else ""
    extra += f", plan {plan}" if plan else ""
    out(f"Signed in as {email}{extra}.")
    out(f"Saved {path} (mode 0600). A running cliproxy picks it up within seconds.")
    log.info("login saved {path}", path=path)
    return LoginResult(path, email, record)


#: the former private name, for code written against it
_Flow = LoginFlow
