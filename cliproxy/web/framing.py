# -*- test-case-name: tests.security.test_smuggling -*-
"""Request framing rules twisted.web does not enforce on every supported version.

RFC 9112 asks a server to reject, not guess, when a request's length is ambiguous: more
than one `Transfer-Encoding` header or a coding list other than exactly `chunked` (6.1),
`Transfer-Encoding` together with `Content-Length` (6.1), obsolete line folding (5.2) and
header names that are not tokens (5.1). Twisted 22.4 and 26.x differ on several of these
(22.4 takes any header name, both take a second `Transfer-Encoding: identity` and folded
lines), so `LimitedHTTPChannel` feeds each raw header line through `HeaderFraming` before
Twisted sees it, and answers 400 itself.
"""

from __future__ import annotations

import re

#: RFC 9110 5.6.2 token
_TOKEN = re.compile(rb"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")


class HeaderFraming:
    """The framing facts of one request's header block, checked line by line."""

    __slots__ = ("transfer_encodings", "content_length")

    def __init__(self) -> None:
        self.transfer_encodings = 0
        self.content_length = False

    def problem(self, line: bytes) -> str | None:
        """Why this raw header line (no CRLF) must be refused, or None."""
        if line[:1] in (b" ", b"\t"):
            return "obsolete line folding (a header line starting with whitespace) is not accepted"
        name, colon, value = line.partition(b":")
        if not colon or not _TOKEN.match(name):
            return "a header name is not a valid token"
        lower = name.lower()
        if lower == b"transfer-encoding":
            self.transfer_encodings += 1
            if self.transfer_encodings > 1:
                return "more than one Transfer-Encoding header"
            if value.strip(b" \t").lower() != b"chunked":
                return "Transfer-Encoding other than exactly 'chunked'"
        elif lower == b"content-length":
            self.content_length = True
        if self.transfer_encodings and self.content_length:
            return "both Transfer-Encoding and Content-Length"
        return None


__all__ = ["HeaderFraming"]
