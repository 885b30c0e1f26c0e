"""cliproxy/twisted_compat.py on whichever Twisted is installed (both CI lines run this):
if Twisted moves what it relies on, this fails instead of production."""

from __future__ import annotations

import inspect

from twisted.internet import reactor
from twisted.web import http, server
from twisted.web.test.requesthelper import DummyChannel

from cliproxy import twisted_compat
from cliproxy.web.http import CliproxyRequest
from tests.web.httpwire import Wire, request_bytes


def test_form_flag_matches_this_twisted():
    params = inspect.signature(http.Request.__init__).parameters
    assert twisted_compat.FORM_PARSING_FLAG == ("parsePOSTFormSubmission" in params)
    kwargs = twisted_compat.request_init_kwargs()
    request = server.Request(DummyChannel(), **kwargs)  # accepted by this Twisted
    assert request.method is not None


def test_form_bodies_are_not_parsed_into_args():
    request = CliproxyRequest(DummyChannel())
    request.requestHeaders.setRawHeaders(b"content-type", [b"application/x-www-form-urlencoded"])
    request.gotLength(9)
    request.handleContentChunk(b"a=1&b=two")
    request.requestReceived(b"POST", b"/v1/x?q=1", b"HTTP/1.1")
    if twisted_compat.FORM_PARSING_FLAG:
        # turned off through the public constructor argument: only the query is there
        assert request.args == {b"q": [b"1"]}
    else:
        # Twisted 22.4: no switch exists and the body is parsed, as it always was there
        assert request.args[b"q"] == [b"1"] and request.args[b"a"] == [b"1"]


def test_pipelined_bytes_are_what_the_channel_holds_past_a_request():
    from cliproxy.app import build_app
    from cliproxy.config import parse_config

    site = build_app(parse_config("host: 127.0.0.1\n"), reactor).site
    wire = Wire(site)
    # a request whose answer is pending (a POST the router has not answered), then more bytes
    wire.send(
        request_bytes("POST", "/v1/chat/completions", {"content-type": "application/json"}, b"{}")
    )
    channel = wire.channel
    assert twisted_compat.pipelined_bytes(channel) == b""
    wire.send(b"\x81\x05hello")
    held = twisted_compat.pipelined_bytes(channel)
    assert held in (b"\x81\x05hello", b"")  # held for the next request, or already parsed
    assert twisted_compat.pipelined_bytes(object()) == b""  # type: ignore[arg-type]
    wire.close()


def test_a_dead_pooled_connection_leaves_the_pool_without_a_logged_traceback(tmp_path):
    from twisted.enterprise import adbapi

    pool = adbapi.ConnectionPool("sqlite3", str(tmp_path / "db"), check_same_thread=False)
    pool.connectionFactory = twisted_compat.QuietDBConnection
    conn = twisted_compat.QuietDBConnection(pool)
    dead = conn._connection
    assert list(pool.connections.values()) == [dead]
    dead.close()  # as psycopg2 does when the server drops the connection
    conn.rollback()  # no exception: adbapi logs "Rollback failed" only when this raises
    assert pool.connections == {}
