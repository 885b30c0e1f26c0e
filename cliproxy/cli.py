# -*- test-case-name: tests.test_cli -*-
"""The `cliproxy` command: `version`, `check-config`, and (as it lands) `login`.

The daemon itself runs under twistd: `twistd -n cliproxy --config config.yaml`.
"""

from __future__ import annotations

import argparse
import sys

from cliproxy import __version__


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="cliproxy",
        description="cliproxy tools. Run the daemon with: twistd -n cliproxy --config config.yaml",
    )
    sub = p.add_subparsers(dest="command")
    sub.add_parser("version", help="print the version")
    check = sub.add_parser("check-config", help="validate a config file and print its warnings")
    check.add_argument("--config", "-c", default="config.yaml")
    return p


def check_config(path: str) -> int:
    from cliproxy.config import ConfigError, check_exposure, load_config

    try:
        config = load_config(path)
        endpoint = config.listen_endpoint()
        check_exposure(config, endpoint)
    except ConfigError as e:
        print(f"cliproxy: {e}", file=sys.stderr)
        return 1
    for warning in config.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(f"{path}: OK (listen {endpoint})")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "version":
        print(f"cliproxy {__version__}")
        return 0
    if args.command == "check-config":
        return check_config(args.config)
    _parser().print_help()
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
