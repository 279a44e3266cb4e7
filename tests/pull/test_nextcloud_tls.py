"""A Nextcloud behind a certificate of its own CA (a home lab's): AppAPI installs that CA into the image's system
store, and the image points SSL_CERT_FILE at the store; the Nextcloud client must trust it through that variable,
and without it say that the certificate is not trusted and what to set, not merely "cannot reach"."""

from __future__ import annotations

import datetime
import ipaddress
import json
import ssl
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from local_http_server import LocalHttpServer

from quart_app.nextcloud.client import NextcloudClient
from quart_app.nextcloud.errors import NextcloudUnreachableError


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _certificate(
    subject: str, issuer: str, key: ec.EllipticCurvePrivateKey, signer: ec.EllipticCurvePrivateKey, ca: bool
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if not ca:
        san = x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
        builder = builder.add_extension(san, critical=False)
    return builder.sign(signer, hashes.SHA256())


@pytest.fixture
def home_lab_tls(tmp_path: Path) -> tuple[ssl.SSLContext, Path]:
    """(the server's TLS context, a CA bundle holding the home lab's CA)."""
    ca_key, server_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = _certificate("Home Lab CA", "Home Lab CA", ca_key, ca_key, ca=True)
    server = _certificate("nextcloud.home", "Home Lab CA", server_key, ca_key, ca=False)
    pem = serialization.Encoding.PEM
    (tmp_path / "server.pem").write_bytes(server.public_bytes(pem))
    (tmp_path / "server.key").write_bytes(
        server_key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    (tmp_path / "bundle.pem").write_bytes(ca.public_bytes(pem))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "server.pem", tmp_path / "server.key")
    return context, tmp_path / "bundle.pem"


class _Capabilities(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = json.dumps({"ocs": {"meta": {"statuscode": 200}, "data": {"version": {"major": 34}}}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        return None


async def _capabilities(base_url: str) -> object:
    client = NextcloudClient(base_url, app_id="context_chat_backend", app_version="5.5.0", app_secret="s", timeout_s=10)
    try:
        return await client.ocs("GET", "/ocs/v2.php/cloud/capabilities")
    finally:
        await client.aclose()


async def test_the_ca_in_ssl_cert_file_is_trusted(
    home_lab_tls: tuple[ssl.SSLContext, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    context, bundle = home_lab_tls
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))
    with LocalHttpServer(_Capabilities, tls=context) as nextcloud:
        assert await _capabilities(nextcloud.base_url) == {"version": {"major": 34}}


async def test_an_untrusted_certificate_is_named_with_what_to_set(
    home_lab_tls: tuple[ssl.SSLContext, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    context, _bundle = home_lab_tls
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    with LocalHttpServer(_Capabilities, tls=context) as nextcloud, pytest.raises(NextcloudUnreachableError) as error:
        await _capabilities(nextcloud.base_url)
    assert str(error.value) == (
        f"GET /ocs/v2.php/cloud/capabilities: Nextcloud's TLS certificate at {nextcloud.base_url} is not trusted"
        " (unable to get local issuer certificate); AppAPI installs Nextcloud's CA into the image's system store,"
        " which the appliance reads through SSL_CERT_FILE: outside the image, set SSL_CERT_FILE to a CA bundle that"
        " holds it"
    )
