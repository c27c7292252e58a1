#!/usr/bin/env python3
"""The deploy's smoke tests that go through nginx, in one process: health, body limit, WebSocket.

Usage: smoke_http.py SPEC_JSON. SPEC_JSON (built by roles/app/tasks/smoke.yml from the app model):
  url          nginx's address as the host sees it: http://127.0.0.1, or https://127.0.0.1:443 when
               the site has a certificate (its plain-HTTP server only redirects then)
  server_name  the name sent as Host (and as TLS SNI): the site's first server name, or "" for the
               default server. The certificate is not verified: the smoke tests prove the app
               through the local nginx, and a certificate's validity is monitoring's to watch
  record       the release record of current; its build_id is what every health path must report
  health       [[name, path]]: each must answer 200 with that buildId (retried while not 200)
  retries, delay   of the health checks: the app may still be opening its database pool
  upload       {path, limit, strict, stored_in} or null: a multipart body 64 KiB under `limit` must
               not get 413 nor a 5xx (nor a 3xx/4xx when `strict`, a real upload endpoint), one 64 KiB
               over it must get 413; what the app stored of it under `stored_in` is removed
  websocket    [[name, path]]: an upgrade must get 101 with the Sec-WebSocket-Accept of RFC 6455

Prints {"build_id": ..., "checks": [{check, name, ok, detail, line}]} and exits 0 even when a check
fails: the task reads the result and names what failed. One script instead of one Ansible task
per check: a module task costs a third of a second before it does anything.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import socket
import ssl
import sys
import time
from pathlib import Path
from typing import NamedTuple
from urllib.parse import urlsplit

WEBSOCKET_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
MARGIN = 65536
# The app stores uploads under their own name: smoke uploads are found, and removed, by it.
UPLOAD_NAME = "shipshape-smoke-upload.bin"
TIMEOUT = 10


class Site(NamedTuple):
    """nginx as the host reaches it (url), and the name it is asked for (server_name)."""

    url: str
    server_name: str = ""


def connect(site: Site, path: str) -> tuple[socket.socket, str, str]:
    """A connection to the site's nginx; the request target and the Host header."""
    parts = urlsplit(site.url.rstrip("/") + path)
    secure = parts.scheme == "https"
    port = parts.port or (443 if secure else 80)
    sock = socket.create_connection((parts.hostname, port), timeout=TIMEOUT)
    if secure:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        sock = context.wrap_socket(sock, server_hostname=site.server_name or None)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    host = parts.netloc
    if site.server_name:
        host = site.server_name + ("" if parts.port in (None, 443 if secure else 80) else f":{parts.port}")
    return sock, target, host


def read_head(sock: socket.socket) -> tuple[str, dict[str, str], bytes]:
    """Status, headers and whatever of the body came with them."""
    data = b""
    while b"\r\n\r\n" not in data and len(data) < 65536:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = lines[0].split()
    fields = (line.partition(":") for line in lines[1:])
    headers = {name.strip().lower(): value.strip() for name, _, value in fields}
    return (status[1] if len(status) > 1 else "no answer"), headers, rest


def get(site: Site, path: str) -> tuple[str, bytes]:
    sock, target, host = connect(site, path)
    with sock:
        sock.sendall(f"GET {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        status, headers, body = read_head(sock)
        length = int(headers.get("content-length", "-1"))
        while length < 0 or len(body) < length:
            chunk = sock.recv(65536)
            if not chunk:
                break
            body += chunk
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = unchunk(body)
    return status, body


def unchunk(body: bytes) -> bytes:
    out = b""
    while body:
        size_line, _, body = body.partition(b"\r\n")
        size = int(size_line.split(b";")[0] or b"0", 16)
        if size == 0:
            break
        out, body = out + body[:size], body[size + 2 :]
    return out


def result(check: str, name: str, ok: bool, detail: str) -> dict:
    line = f"{check} {name}: {detail}"
    return {"check": check, "name": name, "ok": ok, "detail": detail, "line": line}


def check_health(site: Site, paths: list[list[str]], build_id: str, retries: int, delay: float) -> list[dict]:
    checks = []
    for name, path in paths:
        for attempt in range(retries + 1):
            try:
                status, body = get(site, path)
            except OSError as err:
                status, body = f"no answer ({err})", b""
            if status == "200" or attempt == retries:
                break
            time.sleep(delay)
        served = ""
        if status == "200":
            try:
                served = str(json.loads(body).get("buildId", ""))
            except ValueError:
                served = "(not JSON)"
        ok = status == "200" and served == build_id
        detail = f"{status}, build {served or '(none)'}"
        if status == "200" and not ok:
            detail += f", expected {build_id}"
        checks.append(result("health", f"{name} {path}", ok, detail))
    return checks


def post_upload(site: Site, path: str, size: int) -> str:
    """POST a multipart body with a file of SIZE bytes; the status nginx or the app answered."""
    boundary = "shipshape" + os.urandom(8).hex()
    before = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{UPLOAD_NAME}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    after = f"\r\n--{boundary}--\r\n".encode()
    sock, target, host = connect(site, path)
    with sock:
        sock.sendall(
            f"POST {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n"
            f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
            f"Content-Length: {len(before) + size + len(after)}\r\n\r\n".encode()
        )
        # nginx answers 413 as soon as it has read the headers and may close before the body is
        # sent: stop sending then, and read what it said. Over TLS the closed connection shows as
        # an SSL error (an EOF in violation of the protocol), not a broken pipe.
        try:
            sock.sendall(before)
            chunk, left = bytes(65536), size
            while left > 0:
                sock.sendall(chunk[: min(left, len(chunk))])
                left -= len(chunk)
            sock.sendall(after)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            pass
        try:
            return read_head(sock)[0]
        except (ConnectionResetError, ssl.SSLError):
            return "connection reset"


def check_upload(site: Site, upload: dict) -> list[dict]:
    limit, strict = int(upload["limit"]), upload["strict"]
    # A JSON true or false: bool() would read the string "False" as true.
    if not isinstance(strict, bool):
        raise ValueError(f"upload.strict must be true or false, not {strict!r}")
    under, over = limit - MARGIN, limit + MARGIN
    checks = []
    try:
        status = post_upload(site, upload["path"], under)
    except OSError as err:
        status = f"no answer ({err})"
    code = int(status) if status.isdigit() else 0
    ok = code != 0 and code != 413 and code < 500 and (not strict or code < 300)
    checks.append(result("upload", f"{under} bytes, under the limit", ok, status))
    try:
        status = post_upload(site, upload["path"], over)
    except OSError as err:
        status = f"no answer ({err})"
    checks.append(result("upload", f"{over} bytes, over the limit", status == "413", status))
    stored = Path(upload["stored_in"])
    if stored.is_dir():
        for leftover in stored.rglob(f"*{UPLOAD_NAME}*"):
            leftover.unlink()
    return checks


def websocket_status(site: Site, path: str) -> str:
    sock, target, host = connect(site, path)
    key = base64.b64encode(os.urandom(16)).decode()
    with sock:
        sock.sendall(
            f"GET {target} HTTP/1.1\r\nHost: {host}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
            f"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {key}\r\n\r\n".encode()
        )
        status, headers, _ = read_head(sock)
    expected = base64.b64encode(hashlib.sha1((key + WEBSOCKET_GUID).encode()).digest()).decode()
    if status == "101" and headers.get("sec-websocket-accept") != expected:
        return "101 without the right Sec-WebSocket-Accept"
    return status


def check_websockets(site: Site, paths: list[list[str]]) -> list[dict]:
    checks = []
    for name, path in paths:
        try:
            status = websocket_status(site, path)
        except OSError as err:
            status = f"no answer ({err})"
        checks.append(result("websocket", f"{name} {path}", status == "101", status))
    return checks


def main(spec: dict) -> dict:
    build_id = json.loads(Path(spec["record"]).read_text())["build_id"]
    site = Site(spec["url"], spec.get("server_name") or "")
    checks = check_health(site, spec["health"], build_id, int(spec["retries"]), float(spec["delay"]))
    if spec.get("upload"):
        checks += check_upload(site, spec["upload"])
    checks += check_websockets(site, spec["websocket"])
    return {"build_id": build_id, "checks": checks}


if __name__ == "__main__":
    print(json.dumps(main(json.loads(sys.argv[1]))))
