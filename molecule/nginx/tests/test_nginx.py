"""The nginx role's real behaviour on a systemd host, in front of the scenario's test backends.

The backends (files/test_backend.py, started by prepare.yml) answer on every port of the app
model and name their port in X-Test-Backend-Port, so each test sees which upstream answered.
"""

from __future__ import annotations

import json
import re

import pytest
from shipshape_testing import app_model, curl, molecule_hosts, run_ok

testinfra_hosts = molecule_hosts()
APP = app_model()
SITE = f"/etc/nginx/sites-enabled/{APP['app_name']}.conf"
UNITS = {"k": 1024, "m": 1024**2, "g": 1024**3}
LIMIT = int(APP["app_max_body_size"][:-1]) * UNITS[APP["app_max_body_size"][-1].lower()]
MB = 1024**2
WEB = next(p for p in APP["app_processes"] if p.get("port") and not p.get("proxy_path"))
SOCKET = next(p for p in APP["app_processes"] if p.get("websocket"))


def headers_of(host, url: str, *args: str) -> dict[str, str]:
    out = run_ok(host, f"curl -sS -o /dev/null -D - {' '.join(args)} '{url}'")
    lines = out.strip().splitlines()
    return {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}


def post_bytes(host, size: int) -> tuple[int, str]:
    run_ok(host, f"head -c {size} /dev/urandom > /tmp/body.bin")
    return curl(host, "http://127.0.0.1/upload", "--data-binary", "@/tmp/body.bin")


def test_nginx_runs_from_debian_packages(host):
    assert host.package("nginx").is_installed
    assert host.service("nginx").is_running
    assert host.service("nginx").is_enabled


def test_default_site_removed_and_config_tests_clean(host):
    assert not host.file("/etc/nginx/sites-enabled/default").exists
    assert host.file(SITE).is_file
    assert host.run("nginx -t").rc == 0


def test_listens_on_ipv4_and_ipv6(host):
    assert host.socket("tcp://0.0.0.0:80").is_listening
    assert host.socket("tcp://:::80").is_listening


def test_every_upstream_is_ipv4_loopback_with_keepalive(host):
    config = host.file(SITE).content_string
    upstreams = re.findall(r"upstream (\S+) \{(.*?)\}", config, re.S)
    assert len(upstreams) == len([p for p in APP["app_processes"] if p.get("port")])
    for name, body in upstreams:
        servers = re.findall(r"^\s*server (\S+);", body, re.M)
        assert servers, f"upstream {name} has no server"
        assert all(s.startswith("127.0.0.1:") for s in servers), f"upstream {name}: {servers}"
        assert re.search(r"^\s*keepalive \d+;", body, re.M), f"upstream {name} has no keepalive"
    # Nothing anywhere in the site proxies to a name or to IPv6.
    assert "localhost" not in config and "[::1]" not in config


def test_root_reaches_the_process_without_proxy_path(host):
    status, body = curl(host, "http://127.0.0.1/some/page")
    answer = json.loads(body)
    assert status == 200 and answer["port"] == WEB["port"]
    assert answer["forwarded_for"] == "127.0.0.1"


def test_post_1mb_under_the_limit_reaches_the_backend(host):
    status, body = post_bytes(host, LIMIT - MB)
    assert status == 200, body
    answer = json.loads(body)
    assert answer == {"port": WEB["port"], "received": LIMIT - MB}


def test_post_1mb_over_the_limit_gets_413_with_the_limit(host):
    status, body = post_bytes(host, LIMIT + MB)
    assert status == 413
    assert f"{LIMIT // MB} MB" in body and f"{LIMIT} bytes" in body
    assert "received" not in body  # nginx answered, not the backend


def test_websocket_upgrade_through_proxy_path_echoes_a_frame(host):
    out = run_ok(
        host, f"shipshape-ws-probe 127.0.0.1 80 '{SOCKET['proxy_path']}?EIO=4&transport=websocket' hi"
    )
    answer = json.loads(out)
    assert answer["status"] == 101
    assert answer["accept_ok"]
    assert answer["backend_port"] == str(SOCKET["port"])
    assert answer["echo"] == "hi" and answer["echo_opcode"] == 1


def test_next_static_served_from_disk_with_immutable_cache(host):
    status, body = curl(host, "http://127.0.0.1/_next/static/x.js")
    assert status == 200 and "shipshape static asset" in body
    headers = headers_of(host, "http://127.0.0.1/_next/static/x.js")
    assert "immutable" in headers["cache-control"] and "max-age=31536000" in headers["cache-control"]
    assert "x-test-backend-port" not in headers
    # Security headers are repeated in this location (its add_header replaces the server's).
    assert headers["x-content-type-options"] == "nosniff"
    # A missing asset is a plain 404, never cached.
    missing = headers_of(host, "http://127.0.0.1/_next/static/missing.js")
    assert "cache-control" not in missing


def test_nginx_reads_the_release_tree_through_the_app_group(host):
    assert APP["app_user"] in host.user("www-data").groups
    assert host.file(APP["app_root"]).mode == 0o750


@pytest.mark.parametrize("path", ["/api/health", "/no-such-internal-page"])
def test_no_version_in_server_header_and_security_headers(host, path):
    headers = headers_of(host, f"http://127.0.0.1{path}")
    assert headers["server"] == "nginx"
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["x-frame-options"] == "SAMEORIGIN"
    assert "referrer-policy" in headers


def test_gzip_for_proxied_text(host):
    # The backend echoes the path: a 4 kB one makes a JSON answer worth compressing.
    url = f"http://127.0.0.1/some/page?pad={'a' * 4096}"
    assert headers_of(host, url, "-H 'Accept-Encoding: gzip'").get("content-encoding") == "gzip"
    assert "content-encoding" not in headers_of(host, url)


def test_413_page_is_internal_only(host):
    status, body = curl(host, "http://127.0.0.1/_shipshape/413")
    assert status == 404 and "Request body too large" not in body


def test_access_log_has_upstream_and_timing(host):
    run_ok(host, "curl -sS -o /dev/null http://127.0.0.1/api/health")
    last = host.file(f"/var/log/nginx/{APP['app_name']}.access.log").content_string.strip().splitlines()[-1]
    assert f"upstream=127.0.0.1:{WEB['port']}" in last
    assert re.search(r"upstream_time=\d+\.\d+ request_time=\d+\.\d+", last), last
