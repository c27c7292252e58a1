#!/usr/bin/env python3
"""WebSocket probe for the nginx scenario: handshake through nginx, send one frame, read the echo.

Prints JSON: the status line's code, whether Sec-WebSocket-Accept matches the key, the
backend port that answered and the echoed text. Python's standard library only.

Usage: ws_probe.py HOST PORT PATH MESSAGE
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import socket
import struct
import sys

WEBSOCKET_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def read_exact(sock: socket.socket, count: int) -> bytes:
    data = b""
    while len(data) < count:
        chunk = sock.recv(count - len(data))
        if not chunk:
            raise ConnectionError(f"connection closed after {len(data)} of {count} bytes")
        data += chunk
    return data


def probe(host: str, port: int, path: str, message: str) -> dict[str, object]:
    key = base64.b64encode(os.urandom(16)).decode()
    expected = base64.b64encode(hashlib.sha1((key + WEBSOCKET_GUID).encode()).digest()).decode()
    with socket.create_connection((host, port), timeout=10) as sock:
        sock.sendall(
            (
                f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        head = b""
        while b"\r\n\r\n" not in head:
            head += read_exact(sock, 1)
        lines = head.decode().split("\r\n")
        headers = {
            k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)
        }
        result: dict[str, object] = {
            "status": int(lines[0].split()[1]),
            "accept_ok": headers.get("sec-websocket-accept") == expected,
            "backend_port": headers.get("x-test-backend-port"),
            "echo": None,
        }
        if result["status"] != 101:
            return result
        # Clients mask their frames (RFC 6455 5.3).
        mask = os.urandom(4)
        payload = message.encode()
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        sock.sendall(struct.pack("!BB", 0x81, 0x80 | len(payload)) + mask + masked)
        first, second = read_exact(sock, 2)
        result["echo_opcode"] = first & 0x0F
        result["echo"] = read_exact(sock, second & 0x7F).decode()
        return result


if __name__ == "__main__":
    host, port, path, message = sys.argv[1:5]
    print(json.dumps(probe(host, int(port), path, message[:100])))
