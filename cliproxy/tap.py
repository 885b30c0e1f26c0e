# -*- test-case-name: tests.test_daemon -*-
"""`twistd cliproxy`: command-line options and the service maker."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from twisted.application.service import IService
from twisted.internet import endpoints
from twisted.logger import Logger
from twisted.python import usage

from cliproxy import __version__
from cliproxy.config import ConfigError, check_exposure, load_config
from cliproxy.config._parse import MAX_WORKERS
from cliproxy.config.exposure import exposure_notes

log = Logger()


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


def makeService(options: Options, reactor: Any = None) -> IService:
    """Load and check the config, then build the service tree.

    Config errors raise SystemExit with one clear line: twistd would exit 0 on a usage
    error, and systemd must see a failed start.
    """
    if reactor is None:
        from twisted.internet import reactor as default_reactor

        reactor = default_reactor
    from cliproxy.service import build_service

    try:
        config = load_config(options["config"])
        where = options["listen"] or config.listen_endpoint()
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
