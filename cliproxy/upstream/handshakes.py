# -*- test-case-name: tests.upstream.test_handshakes -*-
"""Proxy handshakes as small byte-in, byte-out state machines (no I/O).

`HTTPConnectHandshake` opens an HTTP/1.1 `CONNECT` tunnel; `Socks5Handshake` speaks
RFC 1928 with RFC 1929 username/password authentication. Both follow one shape:
`start()` gives the first bytes to send; `receive(data)` gives `(to_send, leftover)`,
where `leftover` is `None` until the tunnel is open and then holds any bytes that
arrived after the handshake (they belong to the tunnelled protocol).
"""

from __future__ import annotations

import base64
import ipaddress
import struct


class ProxyError(Exception):
    """The proxy refused or botched the handshake; the message names no credentials."""


def basic_proxy_authorization(username: str, password: str | None) -> bytes:
    """`Proxy-Authorization` value for HTTP proxies (Basic, RFC 7617)."""
    token = f"{username}:{password or ''}".encode()
    return b"Basic " + base64.b64encode(token)


def _authority(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class HTTPConnectHandshake:
    """`CONNECT host:port` through an HTTP proxy; any 2xx opens the tunnel."""

    #: a proxy answer bigger than this is not an HTTP proxy talking
    MAX_RESPONSE_HEAD = 64 * 1024

    def __init__(
        self, host: str, port: int, username: str | None = None, password: str | None = None
    ) -> None:
        self._target = _authority(host, port)
        self._auth = basic_proxy_authorization(username, password) if username is not None else None
        self._buf = b""
        self.done = False

    def start(self) -> bytes:
        target = self._target.encode("idna" if not self._target.isascii() else "ascii")
        lines = [b"CONNECT " + target + b" HTTP/1.1", b"Host: " + target]
        if self._auth is not None:
            lines.append(b"Proxy-Authorization: " + self._auth)
        return b"\r\n".join(lines) + b"\r\n\r\n"

    def receive(self, data: bytes) -> tuple[bytes, bytes | None]:
        self._buf += data
        end = self._buf.find(b"\r\n\r\n")
        if end < 0:
            if len(self._buf) > self.MAX_RESPONSE_HEAD:
                raise ProxyError("HTTP proxy sent an oversized answer to CONNECT")
            return b"", None
        head, leftover = self._buf[:end], self._buf[end + 4 :]
        self._buf = b""
        status_line = head.split(b"\r\n", 1)[0].decode("latin-1")
        parts = status_line.split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
            raise ProxyError(f"HTTP proxy sent a malformed answer to CONNECT: {status_line[:80]!r}")
        code = int(parts[1])
        if not 200 <= code < 300:
            reason = parts[2] if len(parts) > 2 else ""
            hint = " (check the proxy-url credentials)" if code == 407 else ""
            raise ProxyError(
                f"HTTP proxy refused CONNECT {self._target}: {code} {reason}".rstrip() + hint
            )
        self.done = True
        return b"", leftover


_SOCKS_REPLIES = {
    1: "general SOCKS server failure",
    2: "connection not allowed by ruleset",
    3: "network unreachable",
    4: "host unreachable",
    5: "connection refused",
    6: "TTL expired",
    7: "command not supported",
    8: "address type not supported",
}


class Socks5Handshake:
    """SOCKS5 `CONNECT` (RFC 1928) with optional username/password auth (RFC 1929).

    `host` is sent as a domain name unless it is an IP literal; for `socks5://`
    (local DNS) the caller resolves the name first and passes the address.
    """

    def __init__(
        self, host: str, port: int, username: str | None = None, password: str | None = None
    ) -> None:
        self._host = host
        self._port = port
        self._user = username.encode("utf-8") if username is not None else None
        self._pass = (password or "").encode("utf-8")
        if self._user is not None and (len(self._user) > 255 or len(self._pass) > 255):
            raise ProxyError("SOCKS5 username and password must be at most 255 bytes each")
        self._state = "greeting"
        self._buf = b""
        self.done = False

    def start(self) -> bytes:
        methods = b"\x00\x02" if self._user is not None else b"\x00"
        return b"\x05" + bytes([len(methods)]) + methods

    def _connect_request(self) -> bytes:
        try:
            ip = ipaddress.ip_address(self._host)
        except ValueError:
            ip = None
        if ip is None:
            name = self._host.encode("idna")
            if len(name) > 255:
                raise ProxyError("target host name too long for SOCKS5")
            addr = b"\x03" + bytes([len(name)]) + name
        elif ip.version == 4:
            addr = b"\x01" + ip.packed
        else:
            addr = b"\x04" + ip.packed
        return b"\x05\x01\x00" + addr + struct.pack("!H", self._port)

    def receive(self, data: bytes) -> tuple[bytes, bytes | None]:
        self._buf += data
        out = b""
        while True:
            if self._state == "greeting":
                step = self._on_greeting()
            elif self._state == "auth":
                step = self._on_auth()
            elif self._state == "reply":
                return self._on_reply(out)
            else:
                return out, b""
            if step is None:  # wait for more bytes
                return out, None
            out += step

    def _on_greeting(self) -> bytes | None:
        """The proxy's choice of auth method; what we send next."""
        if len(self._buf) < 2:
            return None
        ver, method = self._buf[0], self._buf[1]
        self._buf = self._buf[2:]
        if ver != 5:
            raise ProxyError("proxy does not speak SOCKS5")
        if method == 0x00:
            self._state = "reply"
            return self._connect_request()
        if method == 0x02 and self._user is not None:
            self._state = "auth"
            return (
                b"\x01"
                + bytes([len(self._user)])
                + self._user
                + bytes([len(self._pass)])
                + self._pass
            )
        if method == 0xFF:
            raise ProxyError(
                "SOCKS5 proxy accepts none of our auth methods"
                + ("" if self._user is not None else " (does it need a username?)")
            )
        raise ProxyError(f"SOCKS5 proxy chose an auth method we did not offer ({method})")

    def _on_auth(self) -> bytes | None:
        """The username/password verdict; then the CONNECT request."""
        if len(self._buf) < 2:
            return None
        status = self._buf[1]
        self._buf = self._buf[2:]
        if status != 0:
            raise ProxyError("SOCKS5 proxy rejected the username/password")
        self._state = "reply"
        return self._connect_request()

    def _on_reply(self, out: bytes) -> tuple[bytes, bytes | None]:
        """The CONNECT reply: the tunnel is open once its bound address has arrived."""
        if len(self._buf) < 5:
            return out, None
        ver, rep, atyp = self._buf[0], self._buf[1], self._buf[3]
        if ver != 5:
            raise ProxyError("proxy does not speak SOCKS5")
        if rep != 0:
            why = _SOCKS_REPLIES.get(rep, f"error {rep}")
            raise ProxyError(
                f"SOCKS5 proxy could not connect to {_authority(self._host, self._port)}: {why}"
            )
        if atyp == 1:
            size = 4 + 4 + 2
        elif atyp == 4:
            size = 4 + 16 + 2
        elif atyp == 3:
            size = 4 + 1 + self._buf[4] + 2
        else:
            raise ProxyError(f"SOCKS5 proxy sent an unknown address type {atyp}")
        if len(self._buf) < size:
            return out, None
        leftover = self._buf[size:]
        self._buf = b""
        self._state = "open"
        self.done = True
        return out, leftover
