#!/usr/bin/env python3
"""Stand-in for the app's node processes in the nginx scenario: one HTTP server per port.

Every port, on 127.0.0.1 only (as the app is told HOSTNAME=127.0.0.1), answers:
  GET  /api/health                 200 {"status": "ok", "port": N}
  POST any path                    200 {"port": N, "received": <body bytes read>}
  GET  with Upgrade: websocket     101 (RFC 6455 handshake), then echoes every frame
  GET  any other path              200 {"port": N, "path": ..., "host": ..., "forwarded_for": ...}
Each answer names its port in X-Test-Backend-Port, so a test sees which upstream answered.

Usage: test_backend.py PORT [PORT ...]
"""

from __future__ import annotations

import base64
import hashlib
import json
import struct
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, BinaryIO

WEBSOCKET_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
OPCODE_CLOSE, OPCODE_PING, OPCODE_PONG = 0x8, 0x9, 0xA


def websocket_accept(key: str) -> str:
    return base64.b64encode(hashlib.sha1((key + WEBSOCKET_GUID).encode()).digest()).decode()


def read_frame(stream: BinaryIO) -> tuple[int, bytes] | None:
    """(opcode, unmasked payload) of the next frame, or None when the peer is gone."""
    head = stream.read(2)
    if len(head) < 2:
        return None
    opcode, length = head[0] & 0x0F, head[1] & 0x7F
    if length == 126:
        (length,) = struct.unpack("!H", stream.read(2))
    elif length == 127:
        (length,) = struct.unpack("!Q", stream.read(8))
    mask = stream.read(4) if head[1] & 0x80 else b"\0\0\0\0"
    payload = stream.read(length)
    return opcode, bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def write_frame(stream: BinaryIO, opcode: int, payload: bytes) -> None:
    """A final, unmasked frame (servers do not mask)."""
    length = len(payload)
    if length < 126:
        header = struct.pack("!BB", 0x80 | opcode, length)
    elif length < 1 << 16:
        header = struct.pack("!BBH", 0x80 | opcode, 126, length)
    else:
        header = struct.pack("!BBQ", 0x80 | opcode, 127, length)
    stream.write(header + payload)


class Handler(BaseHTTPRequestHandler):
    # HTTP/1.1, so nginx's upstream keepalive connections are kept.
    protocol_version = "HTTP/1.1"

    def _port(self) -> int:
        return self.server.server_address[1]

    def _json(self, payload: dict[str, Any]) -> None:
        body = (json.dumps({"port": self._port(), **payload}) + "\n").encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Test-Backend-Port", str(self._port()))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        if self.headers.get("Upgrade", "").lower() == "websocket":
            self._websocket()
        elif self.path.split("?")[0] == "/api/health":
            self._json({"status": "ok"})
        else:
            self._json(
                {
                    "path": self.path,
                    "host": self.headers.get("Host"),
                    "forwarded_for": self.headers.get("X-Forwarded-For"),
                }
            )

    def do_POST(self) -> None:
        remaining = int(self.headers.get("Content-Length") or 0)
        received = 0
        while remaining > 0:
            chunk = self.rfile.read(min(remaining, 1 << 16))
            if not chunk:
                break
            received += len(chunk)
            remaining -= len(chunk)
        self.log_message("POST %s: received %d bytes", self.path, received)
        self._json({"received": received})

    def _websocket(self) -> None:
        self.send_response(101, "Switching Protocols")
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        self.send_header("Sec-WebSocket-Accept", websocket_accept(self.headers["Sec-WebSocket-Key"]))
        self.send_header("X-Test-Backend-Port", str(self._port()))
        self.end_headers()
        self.close_connection = True
        while (frame := read_frame(self.rfile)) is not None:
            opcode, payload = frame
            if opcode == OPCODE_CLOSE:
                write_frame(self.wfile, OPCODE_CLOSE, payload[:2])
                return
            write_frame(self.wfile, OPCODE_PONG if opcode == OPCODE_PING else opcode, payload)


def main(ports: list[int]) -> None:
    servers = [ThreadingHTTPServer(("127.0.0.1", port), Handler) for port in ports]
    threads = [threading.Thread(target=server.serve_forever, daemon=True) for server in servers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


if __name__ == "__main__":
    main([int(port) for port in sys.argv[1:]])
