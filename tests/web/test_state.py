"""Per-request state rides on the request as a component, never as new attributes."""

from __future__ import annotations

from twisted.web.server import Request
from twisted.web.test.requesthelper import DummyChannel

from cliproxy.web.http import CliproxyRequest
from cliproxy.web.state import IRequestState, RequestState, client_gone, state_of


def test_state_is_a_component_made_once():
    request = Request(DummyChannel())
    state = state_of(request)
    assert isinstance(state, RequestState) and state_of(request) is state
    assert request.getComponent(IRequestState) is state
    assert not hasattr(request, "client_key")


def test_cliproxy_requests_start_with_an_id_and_a_start_time():
    a, b = CliproxyRequest(DummyChannel()), CliproxyRequest(DummyChannel())
    assert state_of(a).request_id != state_of(b).request_id
    assert a.request_id == state_of(a).request_id


def test_client_gone_follows_the_connection():
    from twisted.internet.error import ConnectionLost
    from twisted.python.failure import Failure

    request = CliproxyRequest(DummyChannel())
    assert not client_gone(request)
    request.connectionLost(Failure(ConnectionLost()))
    assert client_gone(request) and state_of(request).gone


def test_finished_requests_count_as_gone():
    request = CliproxyRequest(DummyChannel())
    request.finished = True
    assert client_gone(request)
