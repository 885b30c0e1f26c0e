# -*- test-case-name: tests.test_tap -*-
"""`twistd cliproxy`: command-line options and the service maker."""

from __future__ import annotations

from typing import Any

from twisted.application.service import IService
from twisted.logger import Logger
from twisted.python import usage

from cliproxy import __version__

log = Logger()


class Options(usage.Options):
    synopsis = "[--config FILE] [--listen ENDPOINT]"
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
    ]

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
    from cliproxy.config import ConfigError, check_exposure, load_config
    from cliproxy.service import build_service

    try:
        config = load_config(options["config"])
        endpoint = options["listen"] or config.listen_endpoint()
        check_exposure(config, endpoint)
    except ConfigError as e:
        raise SystemExit(f"cliproxy: {e}")
    for warning in config.warnings:
        log.warn("config: {warning}", warning=warning)
    log.info("cliproxy {version} listening on {endpoint}", version=__version__, endpoint=endpoint)
    service = build_service(config, endpoint, reactor)
    service.watcher.install_sighup(reactor)  # type: ignore[attr-defined]
    return service
