# -*- test-case-name: tests.test_daemon -*-
"""`twistd cliproxy`: command-line options and the service maker."""

from __future__ import annotations

from typing import Any

from twisted.application.service import IService
from twisted.internet import endpoints
from twisted.logger import Logger
from twisted.python import usage

from cliproxy import __version__
from cliproxy.config import ConfigError, check_exposure, load_config
from cliproxy.config.exposure import exposure_notes

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
    from cliproxy.service import build_service

    try:
        config = load_config(options["config"])
        where = options["listen"] or config.listen_endpoint()
        check_exposure(config, where)
    except ConfigError as e:
        raise SystemExit(f"cliproxy: {e}")
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
    return daemon.service
