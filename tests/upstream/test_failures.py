"""`describe_failure`: the reason an upstream call failed, against real loopback TLS servers."""

from __future__ import annotations

import datetime

import pytest
import pytest_twisted
from OpenSSL import SSL
from twisted.internet import reactor, ssl
from twisted.internet.error import ConnectingCancelledError, ConnectionLost, ConnectionRefusedError
from twisted.python.failure import Failure
from twisted.web.client import ResponseNeverReceived
from twisted.web.resource import Resource
from twisted.web.server import Site

from cliproxy.upstream.failures import describe_failure
from cliproxy.upstream.http import UpstreamHTTP
from tests.upstream.servers import Origin, other_trust_root


def _cert_for(dns_name: str) -> tuple[bytes, bytes]:
    """(key PEM, cert PEM) of a self-signed certificate naming only `dns_name`."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, dns_name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(dns_name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    return key_pem, cert.public_bytes(serialization.Encoding.PEM)


async def _failure_of(http: UpstreamHTTP, url: str) -> BaseException:
    try:
        await http.request("GET", url, timeout_headers=10)
    except Exception as e:
        return e
    raise AssertionError("the request succeeded")


@pytest_twisted.ensureDeferred
async def test_untrusted_certificate_is_named_as_a_verify_failure():
    origin = Origin(tls=True).listen()
    http = UpstreamHTTP(reactor, trust_root=other_trust_root(), environ={}, connect_timeout=5)
    try:
        error = await _failure_of(http, origin.url + "/x?key=sk-secret-value")
    finally:
        await http.close()
        await origin.stop()
    assert isinstance(error, ResponseNeverReceived)  # what callers catch today is unchanged
    text = describe_failure(error)
    assert text == "TLS certificate verify failed"
    assert describe_failure(Failure(error)) == text


@pytest_twisted.ensureDeferred
async def test_certificate_for_another_name_is_named_as_a_host_name_mismatch():
    key_pem, cert_pem = _cert_for("other.test")
    options = ssl.PrivateCertificate.loadPEM(key_pem + cert_pem).options()
    port = reactor.listenSSL(0, Site(Resource()), options, interface="127.0.0.1")
    # the certificate is trusted; only the name it was issued to is wrong
    trusted = ssl.Certificate.loadPEM(cert_pem)
    http = UpstreamHTTP(reactor, trust_root=trusted, environ={}, connect_timeout=5)
    try:
        error = await _failure_of(http, f"https://127.0.0.1:{port.getHost().port}/v1/messages")
    finally:
        await http.close()
        await port.stopListening()
    text = describe_failure(error)
    assert text == "TLS certificate is not valid for 127.0.0.1 (host name mismatch)"


@pytest_twisted.ensureDeferred
async def test_refused_connection_keeps_twisted_wording():
    probe = reactor.listenTCP(0, Site(Resource()), interface="127.0.0.1")
    port = probe.getHost().port
    await probe.stopListening()  # nothing listens there now
    http = UpstreamHTTP(reactor, environ={}, connect_timeout=5)
    try:
        error = await _failure_of(http, f"http://127.0.0.1:{port}/")
    finally:
        await http.close()
    assert isinstance(error, ConnectionRefusedError)
    assert describe_failure(error).startswith("ConnectionRefusedError: Connection was refused")


def test_a_cause_is_preferred_over_the_connection_lost_it_led_to():
    wrapped = ResponseNeverReceived(
        [
            Failure(ConnectionLost("gone")),
            Failure(SSL.Error([("SSL routines", "", "wrong version number")])),
        ]
    )
    assert describe_failure(wrapped) == "TLS wrong version number"
    assert describe_failure(ResponseNeverReceived([Failure(ConnectionLost())])).startswith(
        "ConnectionLost"
    )
    assert describe_failure(ResponseNeverReceived([])) == "ResponseNeverReceived"


@pytest.mark.parametrize(
    "error, expected",
    [
        (ConnectingCancelledError(None), "the connection attempt was given up"),
        (
            ValueError("bad https://h/x?key=AIzaSECRET&alt=sse"),
            "ValueError: bad https://h/x?key=***&alt=sse",
        ),
        (RuntimeError(), "RuntimeError"),
    ],
)
def test_plain_errors_are_named_without_secrets(error, expected):
    assert describe_failure(error).startswith(expected)
    assert "SECRET" not in describe_failure(error)


def test_very_long_messages_are_clipped():
    assert len(describe_failure(RuntimeError("x" * 5000))) <= 201
