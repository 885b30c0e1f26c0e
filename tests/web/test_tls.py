"""`tls.enable`: the daemon's endpoint string serves HTTPS with the configured cert and key."""

from __future__ import annotations

import datetime
import http.client
import ssl

import pytest_twisted
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from twisted.internet import endpoints, reactor
from twisted.internet.threads import deferToThread

from cliproxy.app import build_app
from cliproxy.config import parse_config
from cliproxy.config.watcher import ConfigStore


def self_signed(tmp_path):
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    cert_path = tmp_path / "cert.pem"
    key_path = tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@pytest_twisted.ensureDeferred
async def test_tls_enable_serves_https(tmp_path):
    cert, key = self_signed(tmp_path)
    config = parse_config(
        f"host: 127.0.0.1\nport: 8317\napi-keys: [k-tls-1]\n"
        f"tls:\n  enable: true\n  cert: {cert}\n  key: {key}\n"
    )
    endpoint = config.listen_endpoint()
    assert endpoint.startswith("ssl:")
    assert "port=8317" in endpoint
    endpoint = endpoint.replace("port=8317", "port=0")  # any free port for the test
    store = ConfigStore(config)
    app = build_app(store, reactor)
    site = app.site
    port = await endpoints.serverFromString(reactor, endpoint).listen(site)
    try:
        number = port.getHost().port
        ctx = ssl.create_default_context(cafile=str(cert))

        def get():
            conn = http.client.HTTPSConnection("localhost", number, context=ctx, timeout=10)
            conn.request("GET", "/healthz")
            r = conn.getresponse()
            return r.status, r.read()

        status, body = await deferToThread(get)
        assert (status, body) == (200, b'{"status":"ok"}')
    finally:
        await port.stopListening()
        await app.http.close()
