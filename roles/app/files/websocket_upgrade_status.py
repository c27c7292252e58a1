#!/usr/bin/env python3
"""Print the status a WebSocket upgrade request to URL gets, then hang up (the deploy's smoke test).

Prints 101 only for a complete handshake: status 101 and the Sec-WebSocket-Accept that RFC 6455
derives from the key sent. curl, which the smoke test used before, has no way to hang up after the
status line and waited out its --max-time on every upgrade that succeeded.
"""

import base64
import hashlib
import os
import socket
import ssl
import sys
from urllib.parse import urlsplit

WEBSOCKET_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def main(url: str) -> str:
    parts = urlsplit(url)
    secure = parts.scheme == "https"
    sock = socket.create_connection((parts.hostname, parts.port or (443 if secure else 80)), timeout=10)
    if secure:
        sock = ssl.create_default_context().wrap_socket(sock, server_hostname=parts.hostname)
    key = base64.b64encode(os.urandom(16)).decode()
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    request = (
        f"GET {target} HTTP/1.1\r\nHost: {parts.netloc}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
        f"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {key}\r\n\r\n"
    )
    sock.sendall(request.encode())
    head = b""
    while b"\r\n\r\n" not in head and len(head) < 65536:
        chunk = sock.recv(4096)
        if not chunk:
            break
        head += chunk
    sock.close()
    lines = head.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
    status = lines[0].split()
    if len(status) < 2:
        return "no answer"
    fields = (line.partition(":") for line in lines[1:])
    headers = {name.strip().lower(): value.strip() for name, _, value in fields}
    expected = base64.b64encode(hashlib.sha1((key + WEBSOCKET_GUID).encode()).digest()).decode()
    if status[1] == "101" and headers.get("sec-websocket-accept") != expected:
        return "101 without the right Sec-WebSocket-Accept"
    return status[1]


if __name__ == "__main__":
    print(main(sys.argv[1]))
