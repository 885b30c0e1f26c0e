# -*- test-case-name: tests.oauth.test_cli -*-
"""The `cliproxy` command: `login`, `check-config`, `store` and `version`.

The daemon itself runs under twistd: `twistd -n cliproxy --config config.yaml` (Debian's
python3-twisted names the command `twistd3`; `--help` names the one installed here).

`cliproxy login claude|codex|gemini|antigravity|kimi|xai` signs in to a subscription account
and saves its token file in `auth-dir`. CLIProxyAPI's spellings work too: `cliproxy
--claude-login`, `--codex-login`, `--login` (Gemini), `--antigravity-login`, `--kimi-login`,
`--xai-login`, with `--project_id`, `--no-browser` and `--oauth-callback-port` (one or two
leading dashes, as Go's flag package allows).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import sys
import threading
from typing import Any

from cliproxy import __version__

#: CLIProxyAPI's login flags -> our provider names
LEGACY_LOGINS = {
    "--claude-login": "claude",
    "--codex-login": "codex",
    "--login": "gemini",
    "--antigravity-login": "antigravity",
    "--kimi-login": "kimi",
    "--xai-login": "xai",
}
#: Go's flag package takes `-name` like `--name`; these are the names we accept that way
_GO_FLAGS = (
    "claude-login",
    "codex-login",
    "login",
    "antigravity-login",
    "kimi-login",
    "xai-login",
    "no-browser",
    "project_id",
    "project-id",
    "oauth-callback-port",
    "config",
    "vertex-import",
    "prefix",
)


def _login_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", "-c", default=None, help="config.yaml (auth-dir, oauth-endpoints)")
    p.add_argument(
        "--no-browser", action="store_true", help="print the sign-in address, do not open it"
    )
    p.add_argument(
        "--oauth-callback-port",
        type=int,
        default=None,
        metavar="PORT",
        help="local port for the sign-in callback (default: the provider's)",
    )
    p.add_argument(
        "--project_id",
        "--project-id",
        dest="project_id",
        default="",
        metavar="ID",
        help="gemini: Google Cloud project id, several comma-separated, or ALL",
    )


#: exit status after Ctrl-C (128 + SIGINT, as shells report it)
EXIT_INTERRUPTED = 130


def twistd_command() -> str:
    """`twistd` as pip installs it, or `twistd3`, the name Debian's python3-twisted uses."""
    if shutil.which("twistd") is None and shutil.which("twistd3") is not None:
        return "twistd3"
    return "twistd"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="cliproxy",
        description="cliproxy tools. Run the daemon with: "
        f"{twistd_command()} -n cliproxy --config config.yaml",
        epilog="Exit status: 0 on success, 1 on an error (an invalid config, a failed login), "
        f"2 on a usage error, {EXIT_INTERRUPTED} when interrupted (Ctrl-C).",
    )
    sub = p.add_subparsers(dest="command")
    sub.add_parser("version", help="print the version")
    check = sub.add_parser("check-config", help="validate a config file and print its warnings")
    check.add_argument("--config", "-c", default="config.yaml")
    login = sub.add_parser(
        "login",
        help="sign in to a Claude, Codex (ChatGPT), Google (Gemini CLI, Antigravity), Kimi or "
        "xAI account, or import a Vertex service account",
        description="Sign in to a subscription account and save its token file in auth-dir. "
        "On a machine without a browser, open the printed address elsewhere and paste the "
        "address the browser ends up on.",
    )
    login.add_argument(
        "provider", choices=("claude", "codex", "gemini", "antigravity", "vertex", "kimi", "xai")
    )
    _login_options(login)
    login.add_argument(
        "--import",
        dest="import_file",
        default="",
        metavar="FILE",
        help="vertex: the service-account key JSON to import",
    )
    login.add_argument("--prefix", default="", help="vertex: a model prefix for this account")
    store = sub.add_parser(
        "store",
        help="copy the auth-dir and config into the PostgreSQL store, or back",
        description="import: FILE's auth-dir and config into the database named by store.dsn "
        "in FILE (or PGSTORE_DSN); export: the database's token files and config back into "
        "FILE's auth-dir and FILE. host, port, listen, tls, store and auth-dir always stay local.",
    )
    store.add_argument("action", choices=("import", "export"))
    store.add_argument("--config", "-c", default="config.yaml")
    store.add_argument(
        "--from-pgstore",
        action="store_true",
        help="import: copy CLIProxyAPI's pgstore tables (auth_store, config_store) instead",
    )
    return p


def _legacy_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="cliproxy", add_help=False)
    group = p.add_mutually_exclusive_group(required=True)
    for flag, provider in LEGACY_LOGINS.items():
        group.add_argument(flag, dest="provider", action="store_const", const=provider)
    group.add_argument("--vertex-import", dest="import_file", metavar="FILE")
    _login_options(p)
    p.add_argument("--prefix", default="")
    return p


def normalize_argv(argv: list[str]) -> list[str]:
    """`-claude-login` -> `--claude-login` (Go flag style), leaving everything else."""
    out = []
    for arg in argv:
        name = arg[1:].split("=", 1)[0]
        if arg.startswith("-") and not arg.startswith("--") and name in _GO_FLAGS:
            arg = "-" + arg
        out.append(arg)
    return out


DAEMON_HINT = (
    "the daemon is started with `{twistd} -n cliproxy --config FILE`; "
    "to check a config file run `cliproxy check-config --config FILE`"
)


def parse_args(argv: list[str]) -> argparse.Namespace:
    """The command and its options (legacy login flags become `login <provider>`)."""
    argv = normalize_argv(argv)
    if argv and argv[0].split("=", 1)[0] in ("--config", "-c", "--listen"):
        # `cliproxy --config FILE` is a natural guess; argparse alone says "invalid choice"
        print(f"cliproxy: {DAEMON_HINT.format(twistd=twistd_command())}", file=sys.stderr)
        raise SystemExit(2)
    if any(a.split("=", 1)[0] in (*LEGACY_LOGINS, "--vertex-import") for a in argv):
        args = _legacy_parser().parse_args(argv)
        args.command = "login"
        if getattr(args, "import_file", None):
            args.provider = "vertex"
        args.import_file = args.import_file or ""
        return args
    return _parser().parse_args(argv)


def check_config(path: str) -> int:
    from cliproxy.config import ConfigError, check_exposure, load_config
    from cliproxy.tap import keys_problem, start_problem

    try:
        config = load_config(path)
        endpoint = config.listen_endpoint()
        problem = start_problem(config, None) or keys_problem(config)
        if problem:
            print(f"cliproxy: {path}: {problem}", file=sys.stderr)
            return 1
        check_exposure(config, endpoint)
    except ConfigError as e:
        print(f"cliproxy: {e}", file=sys.stderr)
        return 1
    for warning in config.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(f"{path}: OK (listen {endpoint})")
    return 0


def store_command(args: argparse.Namespace) -> int:
    """`cliproxy store import|export --config FILE` (cliproxy.store.transfer)."""
    from cliproxy.config import ConfigError, load_config

    try:
        config = load_config(args.config)
        from cliproxy.store.database import StoreUnavailable
        from cliproxy.store.transfer import export_store, import_store
    except ConfigError as e:
        print(f"cliproxy: {e}", file=sys.stderr)
        return 1
    except ImportError:
        print("cliproxy: the store needs psycopg2 (Debian: python3-psycopg2)", file=sys.stderr)
        return 1
    try:
        if args.action == "import":
            return import_store(config, os.environ, print, from_pgstore=args.from_pgstore)
        return export_store(config, os.environ, print)
    except StoreUnavailable as e:
        print(e.message, file=sys.stderr)
        return 1


def login_config(path: str | None) -> Any:
    """The config a login uses: `--config`, else ./config.yaml if present, else defaults.

    Raises:
        ConfigError: the file is missing (when named) or invalid.
    """
    from cliproxy.config import Config, load_config
    from cliproxy.config.model import DEFAULT_AUTH_DIR

    if path is not None:
        return load_config(path)
    if os.path.exists("config.yaml"):
        return load_config("config.yaml")
    return dataclasses.replace(Config(), auth_dir=os.path.expanduser(DEFAULT_AUTH_DIR))


def _read_stdin(reactor: Any, lines: Any) -> None:
    """Feed stdin lines to `lines` from a daemon thread (it never delays the exit)."""

    def read() -> None:
        for line in sys.stdin:
            reactor.callFromThread(lines.feed, line.rstrip("\r\n"))
        reactor.callFromThread(lines.close)

    threading.Thread(target=read, name="cliproxy-login-stdin", daemon=True).start()


def vertex_import(args: argparse.Namespace) -> int:
    """`cliproxy login vertex --import FILE` (CLIProxyAPI: `--vertex-import FILE`)."""
    from cliproxy.config import ConfigError
    from cliproxy.credentials.service_account import ServiceAccountError
    from cliproxy.credentials.vertex_import import import_service_account

    name = "cliproxy login vertex"
    if not args.import_file:
        print(f"{name}: --import FILE (a service-account key JSON) is required", file=sys.stderr)
        return 2
    try:
        config = login_config(args.config)
        path = import_service_account(args.import_file, config.auth_dir, prefix=args.prefix)
    except (ConfigError, ServiceAccountError) as e:
        print(f"{name}: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"{name}: {e.filename or args.import_file}: {e.strerror or e}", file=sys.stderr)
        return 1
    print(f"Vertex credentials imported: {path}")
    return 0


def device_login(args: argparse.Namespace) -> int:
    """`cliproxy login kimi|xai`: a device login (open the address anywhere)."""
    from twisted.internet import defer, task

    from cliproxy.config import ConfigError
    from cliproxy.credentials.oauth.device import DeviceLoginError
    from cliproxy.credentials.oauth.kimi_login import kimi_device_login
    from cliproxy.credentials.oauth.xai_login import xai_device_login

    name = f"cliproxy login {args.provider}"
    try:
        config = login_config(args.config)
    except ConfigError as e:
        print(f"{name}: {e}", file=sys.stderr)
        return 1
    outcome = {"code": 1}

    async def main(reactor: Any) -> None:
        from cliproxy.upstream.http import UpstreamHTTP

        http = UpstreamHTTP(reactor)
        show = lambda text: print(text, flush=True)  # noqa: E731
        endpoints = config.oauth_endpoints
        try:
            if args.provider == "xai":
                path = await xai_device_login(http, reactor, endpoints.xai, config.auth_dir, show)
            else:
                path = await kimi_device_login(http, reactor, endpoints.kimi, config.auth_dir, show)
            print(f"{args.provider} authentication successful: {path}", flush=True)
            outcome["code"] = 0
        except DeviceLoginError as e:
            print(f"{name}: {e}", file=sys.stderr, flush=True)
        finally:
            await http.close()

    try:
        task.react(lambda reactor: defer.ensureDeferred(main(reactor)))
    except SystemExit:
        pass
    return outcome["code"]


def login(args: argparse.Namespace) -> int:
    from cliproxy.config import ConfigError
    from cliproxy.credentials.oauth.login import LoginOptions
    from cliproxy.credentials.oauth.providers import spec_for

    name = f"cliproxy login {args.provider}"
    try:
        config = login_config(args.config)
    except ConfigError as e:
        print(f"{name}: {e}", file=sys.stderr)
        return 1
    port = args.oauth_callback_port
    if port is not None and not 0 < port < 65536:
        print(f"{name}: --oauth-callback-port must be between 1 and 65535", file=sys.stderr)
        return 2
    options = LoginOptions(
        no_browser=args.no_browser, callback_port=port, project_id=args.project_id or ""
    )
    outcome = {"code": 1}

    async def main(reactor: Any) -> None:
        outcome["code"] = await _login_once(reactor, name, spec_for(args.provider), config, options)

    _react_until_done(main)
    return outcome["code"]


async def _login_once(reactor: Any, name: str, spec: Any, config: Any, options: Any) -> int:
    """One login on a running reactor: 0 when saved, 1 on a login error, 130 when stopped."""
    from twisted.internet import defer, task

    from cliproxy.credentials.oauth.callback import LoginError
    from cliproxy.credentials.oauth.login import LineQueue, open_browser, run_login
    from cliproxy.upstream.http import UpstreamHTTP

    http = UpstreamHTTP(reactor)
    lines = LineQueue()
    _read_stdin(reactor, lines)
    try:
        # Begin once the reactor runs: from then on Ctrl-C is the reactor's clean stop.
        await task.deferLater(reactor, 0, lambda: None)
        await run_login(
            spec,
            config=config,
            reactor=reactor,
            http=http,
            out=lambda text: print(text, flush=True),
            lines=lines,
            opener=None if options.no_browser else open_browser,
            options=options,
        )
        return 0
    except LoginError as e:
        print(f"{name}: {e.message}", file=sys.stderr, flush=True)
        return 1
    except defer.CancelledError:
        print(f"\n{name}: interrupted, nothing saved", file=sys.stderr, flush=True)
        return EXIT_INTERRUPTED
    finally:
        await http.close()


def _react_until_done(main: Any) -> None:
    """Run `main(reactor)` under `task.react`; Ctrl-C (SIGINT) or SIGTERM cancels it where it
    waits and lets it close its connections before the reactor goes."""
    from twisted.internet import defer, task

    def start(reactor: Any) -> defer.Deferred[None]:
        d = defer.ensureDeferred(main(reactor))

        def interrupted() -> defer.Deferred[None] | None:
            if d.called:
                return None
            done: defer.Deferred[None] = defer.Deferred()

            def finished(result: Any) -> Any:
                done.callback(None)
                return result

            d.addBoth(finished)
            d.cancel()
            return done

        reactor.addSystemEventTrigger("before", "shutdown", interrupted)
        return d

    try:
        task.react(start)
    except SystemExit:
        pass


def main(argv: list[str] | None = None) -> int:
    """The `cliproxy` command; Ctrl-C outside the login's event loop exits without a traceback."""
    try:
        return _main(argv)
    except KeyboardInterrupt:
        print("\ncliproxy: interrupted", file=sys.stderr, flush=True)
        return EXIT_INTERRUPTED


def _main(argv: list[str] | None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.command == "version":
        print(f"cliproxy {__version__}")
        return 0
    if args.command == "check-config":
        return check_config(args.config)
    if args.command == "login" and args.provider == "vertex":
        return vertex_import(args)
    if args.command == "login" and args.provider in ("kimi", "xai"):
        return device_login(args)
    if args.command == "login":
        return login(args)
    if args.command == "store":
        return store_command(args)
    _parser().print_help()
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
