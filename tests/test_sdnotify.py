"""cliproxy.sdnotify against a real notification socket, the way systemd listens."""

from __future__ import annotations

import socket
import uuid

import pytest
import pytest_twisted
from twisted.application.internet import StreamServerEndpointService
from twisted.application.service import MultiService
from twisted.internet import endpoints, error, reactor
from twisted.internet.interfaces import IStreamServerEndpoint
from twisted.internet.protocol import Factory, Protocol

from cliproxy import sdnotify


class NotifyListener:
    """A bound AF_UNIX datagram socket, as systemd's $NOTIFY_SOCKET."""

    def __init__(self, sock: socket.socket, env_value: str) -> None:
        self.sock = sock
        self.env = {"NOTIFY_SOCKET": env_value}
        sock.settimeout(5)

    def receive(self) -> str:
        return self.sock.recv(4096).decode()

    def pending(self) -> list[str]:
        self.sock.setblocking(False)
        out = []
        try:
            while True:
                out.append(self.sock.recv(4096).decode())
        except BlockingIOError:
            pass
        finally:
            self.sock.settimeout(5)
        return out


@pytest.fixture
def path_listener(tmp_path):
    path = str(tmp_path / "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    yield NotifyListener(sock, path)
    sock.close()


@pytest.fixture
def abstract_listener():
    name = f"cliproxy-test-{uuid.uuid4().hex}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(b"\0" + name.encode())
    yield NotifyListener(sock, "@" + name)
    sock.close()


@pytest.fixture(params=["path", "abstract"])
def listener(request, path_listener, abstract_listener):
    return path_listener if request.param == "path" else abstract_listener


def test_notify_sends_one_datagram_to_the_socket(listener):
    assert sdnotify.notify("READY=1\nSTATUS=serving", listener.env) is True
    assert listener.receive() == "READY=1\nSTATUS=serving"


def test_notify_reads_notify_socket_from_the_environment(listener, monkeypatch):
    monkeypatch.setenv("NOTIFY_SOCKET", listener.env["NOTIFY_SOCKET"])
    assert sdnotify.notify("STOPPING=1") is True
    assert listener.receive() == "STOPPING=1"


@pytest.mark.parametrize("value", [None, "", "@", "relative/path"])
def test_without_a_usable_notify_socket_nothing_is_sent(value):
    env = {} if value is None else {"NOTIFY_SOCKET": value}
    assert sdnotify.notify_address(env) is None
    assert sdnotify.notify("READY=1", env) is False


def test_a_socket_nobody_listens_on_is_not_fatal(tmp_path):
    assert sdnotify.notify("READY=1", {"NOTIFY_SOCKET": str(tmp_path / "gone")}) is False


def test_abstract_names_map_to_a_leading_nul():
    assert sdnotify.notify_address({"NOTIFY_SOCKET": "@x/y"}) == b"\0x/y"
    assert sdnotify.notify_address({"NOTIFY_SOCKET": "/run/s"}) == "/run/s"


def _service_tree(listener: NotifyListener, port: int) -> MultiService:
    """The shape build_service has: a "listener" endpoint service plus the notifier."""

    def send(state: str) -> bool:
        return sdnotify.notify(state, listener.env)

    top = MultiService()
    endpoint = endpoints.TCP4ServerEndpoint(reactor, port, interface="127.0.0.1")
    service = StreamServerEndpointService(
        sdnotify.ReadyWhenListening(endpoint, send), Factory.forProtocol(Protocol)
    )
    service.setName("listener")
    service.setServiceParent(top)
    sdnotify.StoppingNotifier(send).setServiceParent(top)
    return top


@pytest_twisted.ensureDeferred
async def test_ready_comes_only_after_the_port_is_bound_and_stopping_on_stop(path_listener):
    top = _service_tree(path_listener, 0)
    top.startService()
    message = path_listener.receive()
    assert message.startswith("READY=1\nSTATUS=listening on 127.0.0.1:")
    bound = int(message.rsplit(":", 1)[1])
    # By the time READY was sent, the port accepted connections.
    with socket.create_connection(("127.0.0.1", bound), timeout=5):
        pass
    assert path_listener.pending() == []
    await top.stopService()
    assert path_listener.pending() == ["STOPPING=1"]


@pytest_twisted.ensureDeferred
async def test_no_ready_when_the_port_is_taken(path_listener):
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    sent = []
    endpoint = endpoints.TCP4ServerEndpoint(reactor, taken.getsockname()[1], interface="127.0.0.1")
    wrapped = sdnotify.ReadyWhenListening(endpoint, sent.append)
    try:
        with pytest.raises(error.CannotListenError):
            await wrapped.listen(Factory.forProtocol(Protocol))
    finally:
        taken.close()
    assert sent == []


def test_the_endpoint_wrapper_provides_the_endpoint_interface():
    endpoint = endpoints.TCP4ServerEndpoint(reactor, 0)
    assert IStreamServerEndpoint.providedBy(sdnotify.ReadyWhenListening(endpoint))
