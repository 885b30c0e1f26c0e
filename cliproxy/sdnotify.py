# -*- test-case-name: tests.test_sdnotify -*-
"""Tell systemd (`Type=notify`) when the daemon serves and when it stops.

The protocol is one datagram of `KEY=VALUE` lines to the AF_UNIX socket named in
`$NOTIFY_SOCKET` (sd_notify(3)); a name starting with `@` is in the abstract namespace.
Without `$NOTIFY_SOCKET` (not under systemd, or not `Type=notify`) nothing is sent.

`ReadyWhenListening` wraps the listening endpoint: READY=1 goes out only once the port is
bound, so a busy port or a failed start never reads as "started" to `systemctl start`.
`StoppingNotifier` sends STOPPING=1 when the service tree stops (SIGTERM).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Mapping

from twisted.application.service import Service
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IListeningPort, IProtocolFactory, IStreamServerEndpoint
from twisted.logger import Logger
from zope.interface import implementer

log = Logger()

#: sends one notification; returns whether it went anywhere
Notify = Callable[[str], bool]


def notify_address(env: Mapping[str, str] | None = None) -> str | bytes | None:
    """The socket address `$NOTIFY_SOCKET` names, or None when there is none.

    `@name` is the abstract socket `\\0name`; anything else must be an absolute path.
    """
    name = (os.environ if env is None else env).get("NOTIFY_SOCKET", "")
    if name.startswith("@") and len(name) > 1:
        return b"\0" + name[1:].encode()
    if name.startswith("/"):
        return name
    return None


def notify(state: str, env: Mapping[str, str] | None = None) -> bool:
    """Send `state` (e.g. "READY=1") to systemd's notification socket.

    Returns:
        True if the datagram was sent, False when there is no socket to send it to or
        sending failed (a notification must never take the daemon down).
    """
    address = notify_address(env)
    if address is None:
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.sendto(state.encode(), address)
    except OSError as e:
        log.warn("sd_notify {state!r} failed: {error}", state=state, error=e)
        return False
    return True


def _describe(port: IListeningPort) -> str:
    host = port.getHost()
    ip, number = getattr(host, "host", None), getattr(host, "port", None)
    if ip is not None and number is not None:
        return f"{ip}:{number}"
    return str(host)


@implementer(IStreamServerEndpoint)
class ReadyWhenListening:
    """An endpoint that sends READY=1 (and a STATUS= line) once `listen` has bound.

    If `listen` fails, nothing is sent: systemd then sees the process exit before it is
    ready and fails the start.
    """

    def __init__(self, endpoint: IStreamServerEndpoint, notify: Notify = notify) -> None:
        self._endpoint = endpoint
        self._notify = notify

    def listen(self, protocolFactory: IProtocolFactory) -> Deferred[IListeningPort]:
        d: Deferred[IListeningPort] = self._endpoint.listen(protocolFactory)

        def ready(port: IListeningPort) -> IListeningPort:
            self._notify(f"READY=1\nSTATUS=listening on {_describe(port)}")
            return port

        d.addCallback(ready)
        return d


class StoppingNotifier(Service):
    """Sends STOPPING=1 when the service tree starts to stop (before requests drain)."""

    name = "sd-notify-stopping"

    def __init__(self, notify: Notify = notify) -> None:
        self._notify = notify

    def stopService(self) -> None:
        Service.stopService(self)
        self._notify("STOPPING=1")
