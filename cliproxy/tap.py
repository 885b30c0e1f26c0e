# -*- test-case-name: tests.test_daemon -*-
"""`twistd cliproxy`: command-line options and the service maker."""

from __future__ import annotations

import gc
import ipaddress
from dataclasses import replace
from typing import Any

from twisted.application.service import IService
from twisted.internet import endpoints
from twisted.logger import Logger
from twisted.python import usage

from cliproxy import __version__
from cliproxy.config import Config, ConfigError, check_exposure, load_config
from cliproxy.config._parse import MAX_WORKERS
from cliproxy.config.exposure import endpoint_interface, exposure_notes, split_endpoint

log = Logger()

_ENDPOINT_KINDS = ("tcp", "tcp6", "ssl", "unix", "systemd")
_LISTEN_EXAMPLE = "e.g. tcp:8317:interface=127.0.0.1"


def listen_problem(where: str, flag: str = "--listen") -> str | None:
    """What is wrong with a listen endpoint string, before exposure is judged from it."""
    args, _ = split_endpoint(where)
    kind = args[0].strip().lower() if args else ""
    if kind not in _ENDPOINT_KINDS:
        return (
            f"{flag} {where!r}: unknown endpoint kind {kind!r}; use one of "
            f"{', '.join(_ENDPOINT_KINDS)} ({_LISTEN_EXAMPLE})"
        )
    interface = endpoint_interface(where)
    if interface and interface.strip("[]") != "localhost":
        try:
            ipaddress.ip_address(interface.strip("[]"))
        except ValueError:
            return (
                f"{flag} {where!r}: interface {interface!r} is not an IP address "
                f"({_LISTEN_EXAMPLE})"
            )
    return None


def keys_problem(config: Config) -> str | None:
    """A client key that can never match: clients send keys in HTTP headers, as ASCII."""
    for i, key in enumerate(config.api_keys):
        if not key.isascii() or not key.isprintable():
            return (
                f"api-keys[{i}] contains non-ASCII or control characters, so no client can "
                "ever send it in a header; use ASCII letters, digits, '-' and '_' only"
            )
    return None


def start_problem(config: Config, listen: str | None) -> str | None:
    """Why the daemon cannot listen as configured (or None); client keys come after."""
    if listen:
        return listen_problem(listen)
    if config.listen:
        return listen_problem(config.listen, "listen")
    return tls_problem(config)


def tls_problem(config: Config) -> str | None:
    """Why the configured TLS files cannot be used, naming the key and the fix."""
    if not config.tls.enable or config.listen:
        return None
    for name, path in (("cert", config.tls.cert), ("key", config.tls.key)):
        if not path:
            return (
                f"tls.enable is true but tls.{name} is empty: set tls.{name} to the "
                f"{'certificate' if name == 'cert' else 'private key'} file (PEM), "
                "or set tls.enable: false"
            )
        try:
            with open(path, "rb"):
                pass
        except OSError as e:
            why = e.strerror or str(e)
            return f"tls.{name}: cannot read {path}: {why}; fix the path or its permissions"
    return None


class Options(usage.Options):
    synopsis = "[--config FILE] [--listen ENDPOINT] [--workers N]"
    longdesc = "Run the cliproxy daemon: OpenAI, Claude, Gemini and Amp APIs on your own accounts."
    optParameters = [
        ["config", "c", "config.yaml", "Path to config.yaml."],
        [
            "listen",
            "l",
            None,
            "Twisted endpoint string to listen on, overriding host/port/tls from the config "
            "(e.g. tcp:8317:interface=127.0.0.1).",
        ],
        ["workers", "w", None, "Processes serving the port, overriding `workers` in the config."],
        # internal: set by the parent on the workers it starts (the shared socket's number)
        ["worker-fd", None, None, None],
    ]

    def postOptions(self) -> None:
        for key in ("workers", "worker-fd"):
            value = self[key]
            if value is None:
                continue
            try:
                number = int(value)
            except ValueError:
                number = -1
            if number < (1 if key == "workers" else 0) or number > MAX_WORKERS:
                raise SystemExit(f"cliproxy: --{key} must be a number from 1 to {MAX_WORKERS}")
            self[key] = number

    def opt_version(self) -> None:
        print(f"cliproxy {__version__}")
        raise SystemExit(0)


def _freeze_startup_heap() -> None:
    """Once running: everything alive after startup (modules, config, translators) is
    moved out of the cyclic collector's sight, so its full collections walk only what
    requests allocate (bench/RESULTS.md: per-request cost at concurrency)."""
    gc.collect()
    gc.freeze()


def makeService(options: Options, reactor: Any = None) -> IService:
    """Load and check the config, then build the service tree.

    Config errors raise SystemExit with one clear line: twistd would exit 0 on a usage
    error, and systemd must see a failed start.
    """
    if reactor is None:
        from twisted.internet import reactor as default_reactor

        reactor = default_reactor
    from cliproxy.service import build_service

    reactor.callWhenRunning(_freeze_startup_heap)

    try:
        config = load_config(options["config"])
        where = options["listen"] or config.listen_endpoint()
        problem = start_problem(config, options["listen"]) or keys_problem(config)
        if problem:
            raise SystemExit(f"cliproxy: {problem}")
        check_exposure(config, where)
    except ConfigError as e:
        raise SystemExit(f"cliproxy: {e}")
    if options["workers"] is not None:
        config = replace(config, workers=options["workers"])
    if options["worker-fd"] is not None:
        from cliproxy.workers import worker_service

        return worker_service(config, where, options["worker-fd"], reactor)
    try:
        endpoint = endpoints.serverFromString(reactor, where)
    except (ValueError, KeyError, OSError) as e:
        # a mistyped --listen, or TLS files that cannot be read
        raise SystemExit(f"cliproxy: cannot listen on {where!r}: {e}")
    for warning in config.warnings:
        log.warn("config: {warning}", warning=warning)
    for note in exposure_notes(config, where):
        log.warn("{note}", note=note)
    log.info("cliproxy {version} listening on {endpoint}", version=__version__, endpoint=where)
    daemon = build_service(config, endpoint, reactor, where=where)
    daemon.watcher.install_sighup(reactor)
    if config.workers > 1:
        from cliproxy.workers import add_workers

        add_workers(daemon, config, options, where, reactor)
    return daemon.service
