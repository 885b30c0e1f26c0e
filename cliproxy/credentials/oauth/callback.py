# -*- test-case-name: tests.oauth.test_login -*-
"""The local page the browser is sent back to after consent (one login, one use).

It listens on 127.0.0.1 only. The first request to the callback path settles the
login: a code with the right state, a provider error (e.g. consent denied), or a wrong
state. Later requests get "already used". Parsing of what comes back (from the browser
or pasted by the user) lives here too.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

from twisted.internet import defer
from twisted.internet.address import IPv4Address
from twisted.internet.error import CannotListenError
from twisted.internet.interfaces import IListeningPort, IReactorTCP
from twisted.web.resource import Resource
from twisted.web.server import Request, Site

from cliproxy.credentials.oauth.pkce import same_secret

__all__ = ["CallbackServer", "LoginError", "Redirect", "parse_pasted", "split_code"]


class LoginError(Exception):
    """A login that cannot go on; the message tells the user what happened and what to do."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class Redirect:
    """What came back from the provider: a code (and state), or an error."""

    code: str = ""
    state: str | None = None
    error: str = ""
    error_description: str = ""
    via: str = "callback"


def _first(query: dict[str, list[str]], name: str) -> str | None:
    values = query.get(name)
    return values[0] if values else None


def split_code(code: str, state: str | None) -> tuple[str, str | None]:
    """Claude hands out `code#state`: the part after `#` is the state (core.md §3.4)."""
    if "#" in code:
        code, _, tail = code.partition("#")
        state = tail or state
    return code, state


def redirect_from_query(query: dict[str, list[str]], via: str) -> Redirect:
    code, state = split_code((_first(query, "code") or "").strip(), _first(query, "state"))
    return Redirect(
        code=code,
        state=state,
        error=(_first(query, "error") or "").strip(),
        error_description=(_first(query, "error_description") or "").strip(),
        via=via,
    )


def parse_pasted(text: str) -> Redirect | None:
    """What the user pasted: the final redirect URL, its query, or the bare code.

    Claude's page shows `code#state`; a bare code has no state (PKCE still binds it to
    this login). Returns None for a line that holds nothing usable.
    """
    text = text.strip().strip("'\"<>")
    if not text:
        return None
    if "://" in text or text.startswith(("/", "?")) or "code=" in text or "error=" in text:
        parts = urlsplit(text if "://" in text or text.startswith("/") else "x:" + text)
        query = parse_qs(parts.query or text.lstrip("?"), keep_blank_values=True)
        if parts.fragment and "=" in parts.fragment:  # some providers answer in the fragment
            for key, values in parse_qs(parts.fragment).items():
                query.setdefault(key, values)
        elif parts.fragment and "code" in query:  # `?code=abc#state`, Claude's way
            query["code"] = [query["code"][0] + "#" + parts.fragment]
        found = redirect_from_query(query, "paste")
        return found if (found.code or found.error) else None
    if any(c.isspace() for c in text):
        return None
    code, state = split_code(text, None)
    return Redirect(code=code, state=state, via="paste") if code else None


_PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>cliproxy login</title></head>
<body style="font-family: sans-serif; margin: 3em"><h2>{title}</h2><p>{text}</p></body></html>"""


def _page(request: Request, status: int, title: str, text: str) -> bytes:
    request.setResponseCode(status)
    request.setHeader(b"content-type", b"text/html; charset=utf-8")
    request.setHeader(b"cache-control", b"no-store")
    return _PAGE.format(title=html.escape(title), text=html.escape(text)).encode("utf-8")


class _Callback(Resource):
    isLeaf = True

    def __init__(self, login: CallbackServer) -> None:
        Resource.__init__(self)  # by name: untyped_calls_exclude does not see through super()
        self.login = login

    def render_GET(self, request: Request) -> bytes:
        server = self.login
        path = request.path.decode("latin-1")
        if path != server.path:
            return _page(request, 404, "Not found", "This is not the login callback.")
        if server.result.called:
            return _page(
                request,
                410,
                "Already used",
                "This login callback was already used. Start a new login if you need one.",
            )
        query = {
            k.decode("utf-8", "replace"): [v.decode("utf-8", "replace") for v in vs]
            for k, vs in request.args.items()
        }
        got = redirect_from_query(query, "callback")
        problem = server.check(got)
        if problem is not None:
            server.result.errback(LoginError(problem))
            return _page(request, 400, "Login failed", problem)
        server.result.callback(got)
        return _page(
            request,
            200,
            "Login received",
            "cliproxy has the sign-in. You can close this tab and return to the terminal.",
        )

    def render_POST(self, request: Request) -> bytes:
        return _page(request, 405, "Method not allowed", "Open this page with GET.")


class CallbackServer:
    """A one-shot HTTP server for the OAuth redirect.

    Args:
        reactor: `IReactorTCP`.
        path: the redirect URI's path (e.g. `/callback`).
        state: the state this login sent; anything else is refused.
        provider: the provider's title, for messages.

    Attributes:
        result: Deferred[Redirect] fired by the first callback request (or errback'd
            with `LoginError` for a denied consent or a wrong state).
    """

    def __init__(self, reactor: IReactorTCP, path: str, state: str, provider: str) -> None:
        self.reactor = reactor
        self.path = path
        self.state = state
        self.provider = provider
        self.result: defer.Deferred[Redirect] = defer.Deferred()
        self._port: IListeningPort | None = None

    def check(self, got: Redirect) -> str | None:
        """Why `got` cannot be used, or None."""
        if got.error:
            if got.error == "access_denied":
                what = f"{self.provider} sign-in was cancelled or consent was denied"
            else:
                what = f"{self.provider} sign-in failed with error '{got.error}'"
            detail = f": {got.error_description}" if got.error_description else ""
            return f"{what}{detail}. Run the login again to retry."
        if got.state is not None and not same_secret(got.state, self.state):
            return (
                "the sign-in came back with a state that does not belong to this login "
                "(an old or forged link?). Nothing was saved; run the login again."
            )
        if not got.code:
            return "the sign-in came back without an authorization code. Run the login again."
        if got.state is None and got.via == "callback":
            return "the sign-in came back without a state. Nothing was saved; run the login again."
        return None

    def listen(self, port: int) -> int:
        """Start listening on 127.0.0.1:`port` (0: any free port); the port used.

        Raises:
            LoginError: the port is taken or not allowed.
        """
        site = Site(_Callback(self))
        site.displayTracebacks = False
        site.noisy = False
        try:
            # Twisted 26 types the factory as ServerFactory[_ProtoWithFactory], which its
            # own Site (an HTTPFactory) does not match
            listening = self.reactor.listenTCP(port, site, interface="127.0.0.1")  # type: ignore[arg-type]
        except CannotListenError as e:
            raise LoginError(
                f"cannot listen on 127.0.0.1:{port} for the sign-in callback "
                f"({e.socketError}); is another login running? Choose another port with "
                "--oauth-callback-port (the sign-in still returns to the registered port: "
                "forward it there), or paste the final URL instead"
            ) from None
        self._port = listening
        address = listening.getHost()
        assert isinstance(address, IPv4Address)  # listenTCP on 127.0.0.1
        return int(address.port)

    def stop(self) -> defer.Deferred[None]:
        port, self._port = self._port, None
        if port is None:
            return defer.succeed(None)
        try:
            stopped = port.stopListening()
        except Exception:
            return defer.fail()
        return stopped if stopped is not None else defer.succeed(None)
