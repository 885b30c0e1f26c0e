"""Header-time admission (cliproxy.web.admission): key guessing lockout driven by a clock."""

from __future__ import annotations

from twisted.internet.task import Clock
from twisted.web.http_headers import Headers

from cliproxy.config import parse_config
from cliproxy.web.admission import Admission, Admitted, RequestHead

CONFIG = parse_config("api-keys: [sk-right-1]\nlimits:\n  key-failures-per-minute: 3\n")


def head(key: str | None, path: bytes = b"/v1/chat/completions", body: bool = True):
    headers = Headers({b"host": [b"localhost"]})
    if key is not None:
        headers.setRawHeaders(b"authorization", [b"Bearer " + key.encode()])
    return RequestHead(b"POST", path, headers, "10.0.0.9", True, False, body)


def test_a_burst_of_wrong_keys_locks_the_peer_out_then_it_may_try_again():
    clock = Clock()
    gate = Admission(lambda: CONFIG, clock)
    assert isinstance(gate.check(head("sk-right-1")), Admitted)
    for _ in range(3):
        refused = gate.check(head("sk-guess"))
        assert not isinstance(refused, Admitted) and refused.status == 401
    locked = gate.check(head("sk-right-1"))
    assert not isinstance(locked, Admitted) and locked.status == 429
    assert dict(locked.headers)[b"retry-after"] == b"60"
    clock.advance(59)
    locked = gate.check(head("sk-right-1", body=False))
    assert not isinstance(locked, Admitted) and dict(locked.headers)[b"retry-after"] == b"1"
    clock.advance(1)
    assert isinstance(gate.check(head("sk-right-1")), Admitted)


def test_successes_and_missing_keys_are_never_counted():
    gate = Admission(lambda: CONFIG, Clock())
    for _ in range(50):
        assert isinstance(gate.check(head("sk-right-1")), Admitted)
        assert gate.check(head(None)).status == 401  # type: ignore[union-attr]
    assert isinstance(gate.check(head("sk-right-1")), Admitted)


def test_failures_older_than_a_minute_are_forgotten():
    clock = Clock()
    gate = Admission(lambda: CONFIG, clock)
    for _ in range(10):
        gate.check(head("sk-guess"))
        gate.check(head("sk-guess"))
        clock.advance(61)
    assert isinstance(gate.check(head("sk-right-1")), Admitted)


def test_requests_without_a_body_are_left_to_the_tree():
    gate = Admission(lambda: CONFIG, Clock())
    assert isinstance(gate.check(head(None, body=False)), Admitted)
    assert isinstance(gate.check(head(None, path=b"/healthz")), Admitted)
