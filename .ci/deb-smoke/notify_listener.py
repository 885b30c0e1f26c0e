#!/usr/bin/python3
"""Stand in for systemd's notification socket on machines without systemd as PID 1.

Binds an AF_UNIX datagram socket (`@name`: abstract, reachable by any user) and appends
one line per notification to LOG: its fields joined by `;`, then `port=open` or
`port=closed`, whether 127.0.0.1:PORT accepted a connection at the moment the message
arrived (READY=1 must come only once the daemon's listener is bound).

Usage: notify_listener.py SOCKET PORT LOG
"""

from __future__ import annotations

import socket
import sys


def port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            return True
    except OSError:
        return False


def main() -> int:
    name, port, log = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    address = b"\0" + name[1:].encode() if name.startswith("@") else name
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(address)
    with open(log, "a", encoding="utf-8") as out:
        out.write("listening\n")
        out.flush()
        while True:
            message = sock.recv(4096).decode(errors="replace")
            state = "open" if port_open(port) else "closed"
            out.write(f"{';'.join(message.splitlines())} port={state}\n")
            out.flush()


if __name__ == "__main__":
    sys.exit(main())
