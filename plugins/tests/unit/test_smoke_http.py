"""roles/app/files/smoke_http.py against a small HTTP server that answers as nginx and the app do.

The server is real (loopback, a random port): the script's health, upload and WebSocket checks
send real requests, and a server that misbehaves in one way must fail exactly that check.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import importlib.util
import json
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

SCRIPT = Path(__file__).resolve().parents[3] / "roles/app/files/smoke_http.py"
spec = importlib.util.spec_from_file_location("smoke_http", SCRIPT)
assert spec is not None and spec.loader is not None
smoke_http = importlib.util.module_from_spec(spec)
spec.loader.exec_module(smoke_http)

LIMIT = 1024 * 1024
BUILD = "build-abc"


class App(BaseHTTPRequestHandler):
    """nginx in front of the sample app, with switches to break one behaviour at a time."""

    protocol_version = "HTTP/1.1"
    build_id = BUILD
    health_status = 200
    enforce_limit = True
    right_accept = True
    uploads: Path
    hosts: list[str]

    def log_message(self, *args):
        pass

    def send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        self.hosts.append(self.headers.get("Host", ""))
        if self.path == "/api/health":
            body = json.dumps({"status": "ok", "buildId": self.build_id}).encode()
            self.send(self.health_status, body, {"Content-Type": "application/json"})
        elif self.path.startswith("/socket.io/") and self.headers.get("Upgrade") == "websocket":
            key = self.headers["Sec-WebSocket-Key"] + ("" if self.right_accept else "x")
            digest = hashlib.sha1((key + smoke_http.WEBSOCKET_GUID).encode()).digest()
            accept = base64.b64encode(digest).decode()
            self.send_response(101)
            self.send_header("Upgrade", "websocket")
            self.send_header("Connection", "Upgrade")
            self.send_header("Sec-WebSocket-Accept", accept)
            self.end_headers()
        else:
            self.send(404)

    def do_POST(self):
        length = int(self.headers["Content-Length"])
        if self.enforce_limit and length > LIMIT:
            # As nginx does: answer from the headers, close without reading the body.
            self.send(413, b"too large", {"Connection": "close"})
            self.close_connection = True
            return
        body = self.rfile.read(length)
        if self.path != "/api/upload":
            self.send(404)
            return
        assert b'filename="shipshape-smoke-upload.bin"' in body
        (self.uploads / f"1700000000-ab12-{smoke_http.UPLOAD_NAME}").write_bytes(body)
        self.send(201, b'{"files": []}')


def serve(tmp_path: Path, tls: ssl.SSLContext | None = None):
    uploads = tmp_path / "uploads"
    uploads.mkdir()
    handler = type("TestApp", (App,), {"uploads": uploads, "hosts": []})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    if tls is not None:
        httpd.socket = tls.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    record = tmp_path / "release.json"
    record.write_text(json.dumps({"build_id": BUILD}))
    spec = {
        "url": f"{'https' if tls else 'http'}://127.0.0.1:{httpd.server_port}",
        "record": str(record),
        "health": [["web", "/api/health"]],
        "retries": 1,
        "delay": 0,
        "upload": {"path": "/api/upload", "limit": LIMIT, "strict": True, "stored_in": str(uploads)},
        "websocket": [["socket", "/socket.io/?EIO=4&transport=websocket"]],
    }
    return httpd, handler, spec, uploads


@pytest.fixture
def server(tmp_path):
    httpd, handler, spec, uploads = serve(tmp_path)
    yield handler, spec, uploads
    httpd.shutdown()
    httpd.server_close()


def self_signed(tmp_path: Path, name: str) -> tuple[Path, Path]:
    """A certificate for NAME that no CA signed, as a site's own or a snakeoil one is to a client."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "site.pem", tmp_path / "site.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_file, key_file


@pytest.fixture
def tls_server(tmp_path):
    """The same app behind HTTPS with its own certificate; records the SNI names clients sent."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*self_signed(tmp_path, "shop.example.test"))
    names: list[str | None] = []
    context.sni_callback = lambda _sock, name, _context: names.append(name)
    httpd, handler, spec, uploads = serve(tmp_path, context)
    yield handler, spec, uploads, names
    httpd.shutdown()
    httpd.server_close()


def failed(result: dict) -> list[str]:
    return [check["line"] for check in result["checks"] if not check["ok"]]


def test_a_healthy_app_passes_every_check_and_leaves_no_upload(server):
    _, spec, uploads = server
    result = smoke_http.main(spec)
    assert result["build_id"] == BUILD
    assert failed(result) == []
    lines = [check["line"] for check in result["checks"]]
    assert lines == [
        f"health web /api/health: 200, build {BUILD}",
        f"upload {LIMIT - 65536} bytes, under the limit: 201",
        f"upload {LIMIT + 65536} bytes, over the limit: 413",
        "websocket socket /socket.io/?EIO=4&transport=websocket: 101",
    ]
    assert list(uploads.iterdir()) == []


def test_a_health_answer_with_another_build_fails(server):
    handler, spec, _ = server
    handler.build_id = "stale-build"
    expected = f"health web /api/health: 200, build stale-build, expected {BUILD}"
    assert failed(smoke_http.main(spec)) == [expected]


def test_a_failing_health_path_fails_after_its_retries(server):
    handler, spec, _ = server
    handler.health_status = 503
    assert failed(smoke_http.main(spec)) == ["health web /api/health: 503, build (none)"]


def test_a_body_limit_that_lets_a_larger_upload_through_fails(server):
    handler, spec, _ = server
    handler.enforce_limit = False
    assert failed(smoke_http.main(spec)) == [f"upload {LIMIT + 65536} bytes, over the limit: 201"]


def test_an_upgrade_without_the_right_accept_fails(server):
    handler, spec, _ = server
    handler.right_accept = False
    assert failed(smoke_http.main(spec)) == [
        "websocket socket /socket.io/?EIO=4&transport=websocket: 101 without the right Sec-WebSocket-Accept"
    ]


def test_nothing_listening_is_reported_not_raised(server):
    _, spec, _ = server
    spec = dict(spec, url="http://127.0.0.1:9")
    result = smoke_http.main(spec)
    # Every check fails, and each says there was no answer.
    assert len(failed(result)) == len(result["checks"]) > 0
    assert all(line.split(": ", 1)[1].startswith("no answer") for line in failed(result))


def test_a_lenient_upload_check_accepts_a_page_that_refuses_the_post(server):
    # Without a declared upload endpoint the check posts to the health path: a 4xx that is not
    # 413 means the body got through nginx to the app.
    _, spec, _ = server
    spec = dict(spec, upload=dict(spec["upload"], path="/nowhere", strict=False))
    assert failed(smoke_http.main(spec)) == []
    spec["upload"]["strict"] = True
    assert failed(smoke_http.main(spec)) == [f"upload {LIMIT - 65536} bytes, under the limit: 404"]


@pytest.mark.parametrize("strict", ["False", "true", 0, None])
def test_strict_must_be_a_json_boolean(server, strict):
    _, spec, _ = server
    spec = dict(spec, upload=dict(spec["upload"], strict=strict))
    with pytest.raises(ValueError, match=r"upload\.strict must be true or false"):
        smoke_http.main(spec)


def test_https_with_the_site_name_as_host_and_sni_passes_every_check(tls_server):
    handler, spec, _, names = tls_server
    result = smoke_http.main(dict(spec, server_name="shop.example.test"))
    assert failed(result) == []
    port = spec["url"].rsplit(":", 1)[1]
    assert set(handler.hosts) == {f"shop.example.test:{port}"}
    assert names and set(names) == {"shop.example.test"}


def test_https_for_the_default_server_sends_the_address(tls_server):
    handler, spec, _, names = tls_server
    result = smoke_http.main(dict(spec, server_name=""))
    assert failed(result) == []
    assert set(handler.hosts) == {spec["url"].removeprefix("https://")}
    assert set(names) == {None}


def test_plain_http_to_a_tls_only_port_fails_every_check(tls_server):
    _, spec, _, _ = tls_server
    result = smoke_http.main(dict(spec, url=spec["url"].replace("https://", "http://")))
    assert len(failed(result)) == len(result["checks"]) == 4
