"""diagnose.yml's parsers: supervisor's status and log, nginx -T, df, Redis INFO, env file names."""

from __future__ import annotations

import pytest
from diagnose_collect import (
    env_names,
    nginx_app_view,
    parse_df,
    parse_redis_info,
    parse_supervisor_status,
    parse_supervisord_log,
    supervisor_programs,
    tokenize_nginx,
)

PROGRAMS = [
    {"program": "shop-web", "process": "web", "port": 3000},
    {"program": "shop-socket", "process": "socket", "port": 3001},
    {"program": "shop-worker", "process": "worker", "port": None},
]

STATUS = """\
shop:shop-socket                 STOPPED   Nov 22 11:41 PM
shop:shop-web                    RUNNING   pid 4242, uptime 1 day, 2:03:04
shop:shop-worker                 FATAL     Exited too quickly (process log may have details)
"""

LOG = """\
2025-11-22 20:00:00,001 INFO exited: shop-worker (exit status 1; not expected)
2025-11-22 21:00:00,001 CRIT Supervisor is running as root.
2025-11-22 21:00:00,002 INFO supervisord started with pid 1
2025-11-22 21:00:01,000 INFO spawned: 'shop-web' with pid 10
2025-11-22 22:59:00,000 INFO exited: shop-web (exit status 0; expected)
2025-11-22 22:59:10,000 INFO exited: shop-worker (exit status 1; not expected)
2025-11-22 22:59:11,000 INFO exited: shop-worker (exit status 1; not expected)
2025-11-22 22:59:13,000 INFO exited: shop-worker (exit status 1; not expected)
2025-11-22 22:59:14,000 INFO gave up: shop-worker entered FATAL state, too many start retries too quickly
2025-11-22 20:30:00,000 INFO exited: shop-web (terminated by SIGKILL; not expected)
"""


def test_status_lines_become_programs():
    programs = {p["program"]: p for p in parse_supervisor_status(STATUS)}
    assert programs["shop-web"]["state"] == "RUNNING"
    assert programs["shop-web"]["pid"] == 4242
    assert programs["shop-web"]["uptime"] == 86400 + 2 * 3600 + 3 * 60 + 4
    assert programs["shop-worker"]["state"] == "FATAL"
    assert programs["shop-worker"]["pid"] is None
    assert programs["shop-socket"]["group"] == "shop"


def test_status_of_a_missing_group_is_empty():
    assert parse_supervisor_status("shop: ERROR (no such group)\n") == []


def test_log_counts_unexpected_exits_since_supervisord_started():
    signs = parse_supervisord_log(LOG, now="2025-11-22 23:00:00", window=3600)
    assert signs["shop-worker"]["unexpected_exits"] == 3
    assert signs["shop-worker"]["recent_exits"] == 3
    assert signs["shop-worker"]["gave_up"] is True
    assert "exit status 1" in signs["shop-worker"]["last_exit"]
    # Expected exits (a stop) do not count; the SIGKILL one is older than the window.
    assert signs["shop-web"]["unexpected_exits"] == 1
    assert signs["shop-web"]["recent_exits"] == 0


def test_supervisor_programs_lists_every_declared_program():
    programs = supervisor_programs(STATUS, LOG, PROGRAMS, now="2025-11-22 23:00:00")
    assert [p["program"] for p in programs] == ["shop-web", "shop-socket", "shop-worker"]
    assert programs[2]["state"] == "FATAL" and programs[2]["unexpected_exits"] == 3
    assert programs[1]["unexpected_exits"] == 0


def test_a_program_supervisor_does_not_know_is_missing():
    programs = supervisor_programs("shop:shop-web RUNNING pid 1, uptime 0:00:05\n", "", PROGRAMS)
    assert [p["state"] for p in programs] == ["RUNNING", "MISSING", "MISSING"]
    assert programs[1]["configured"] is False


def test_tokenizer_handles_quotes_and_comments():
    text = "add_header X \"a;b{c}\" always; # comment ; {\nreturn 200 'x y';"
    assert tokenize_nginx(text) == ["add_header", "X", "a;b{c}", "always", ";", "return", "200", "x y", ";"]


NGINX_CONF = """\
# configuration file /etc/nginx/nginx.conf:
user www-data;
events {
    worker_connections 1024;
}
http {
    include /etc/nginx/mime.types;
    map $http_upgrade $connection_upgrade {
        default upgrade;
        ''      '';
    }
    include /etc/nginx/conf.d/*.conf;
    include /etc/nginx/sites-enabled/*;
}

# configuration file /etc/nginx/mime.types:
types {
    text/html html htm;
}
"""

SITE = """\
# configuration file /etc/nginx/sites-enabled/shop.conf:
upstream shop_web {
    server 127.0.0.1:3000;
    keepalive 16;
}
upstream shop_socket {
    server 127.0.0.1:3001;
}
server {
    listen 0.0.0.0:80 default_server;
    server_name _;
    client_max_body_size 20m;
    location = /_shipshape/413 {
        internal;
        return 413 "<html>too large; {braces}</html>\\n";
    }
    location ^~ /_next/static/ {
        alias /srv/shop/current/.next/static/;
    }
    location / {
        proxy_pass http://shop_web;
    }
    location /socket.io/ {
        proxy_pass http://shop_socket;
    }
}
"""


def view(site: str, conf: str = NGINX_CONF) -> dict:
    return nginx_app_view(conf + "\n" + site, [3000, 3001])


def test_nginx_view_of_the_rendered_site():
    result = view(SITE)
    assert result["parsed"] and result["routed_ports"] == [3000, 3001]
    by_path = {location["location"]: location for location in result["locations"]}
    assert set(by_path) == {"/", "/socket.io/"}
    assert by_path["/"]["client_max_body_size"] == "20m"
    assert by_path["/"]["client_max_body_bytes"] == 20 * 1024 * 1024
    assert by_path["/"]["limit_from"] == "server"
    assert by_path["/"]["servers"] == ["127.0.0.1:3000"]
    assert by_path["/"]["other_hosts"] == []
    assert by_path["/"]["file"] == "/etc/nginx/sites-enabled/shop.conf"


def test_nginx_view_falls_back_to_nginx_default_of_1m():
    result = view(SITE.replace("    client_max_body_size 20m;\n", ""))
    location = result["locations"][0]
    assert location["client_max_body_size"] == "1m" and location["limit_from"] == "default"


def test_nginx_view_takes_a_location_override_and_the_http_level():
    site = SITE.replace("    client_max_body_size 20m;\n", "").replace(
        "proxy_pass http://shop_web;", "proxy_pass http://shop_web;\n        client_max_body_size 1m;"
    )
    conf = NGINX_CONF.replace("http {\n", "http {\n    client_max_body_size 50m;\n")
    by_path = {loc["location"]: loc for loc in view(site, conf)["locations"]}
    assert by_path["/"]["client_max_body_size"] == "1m" and by_path["/"]["limit_from"] == "location"
    assert by_path["/socket.io/"]["client_max_body_size"] == "50m"
    assert by_path["/socket.io/"]["limit_from"] == "http"


@pytest.mark.parametrize(
    ("server", "other"),
    [("localhost:3000", ["localhost"]), ("[::1]:3000", ["::1"]), ("127.0.0.1:3000", [])],
)
def test_nginx_view_names_upstream_hosts_that_are_not_ipv4_loopback(server, other):
    result = view(SITE.replace("server 127.0.0.1:3000;", f"server {server};"))
    location = next(loc for loc in result["locations"] if loc["location"] == "/")
    assert location["other_hosts"] == other


def test_nginx_view_with_a_direct_proxy_pass():
    site = SITE.replace("proxy_pass http://shop_web;", "proxy_pass http://localhost:3000/;")
    location = next(loc for loc in view(site)["locations"] if loc["location"] == "/")
    assert location["ports"] == [3000] and location["other_hosts"] == ["localhost"]


def test_nginx_view_reports_an_unrouted_port():
    site = SITE.replace("proxy_pass http://shop_socket;", "return 404;")
    assert view(site)["routed_ports"] == [3000]


def test_nginx_view_without_an_http_block():
    assert nginx_app_view("nginx: [emerg] unexpected end of file", [3000])["parsed"] is False


def test_df_data_line():
    text = (
        "Filesystem     1024-blocks     Used Available Capacity Mounted on\n"
        "/dev/sda1         10000000  9600000    400000      96% /\n"
    )
    assert parse_df(text) == {
        "filesystem": "/dev/sda1",
        "total": 10000000,
        "used": 9600000,
        "available": 400000,
        "percent": 96,
        "mount": "/",
    }
    assert parse_df("") is None


def test_df_of_a_filesystem_without_inodes():
    text = "Filesystem Inodes IUsed IFree IUse% Mounted on\noverlay 0 0 0 - /\n"
    assert parse_df(text)["percent"] is None


def test_redis_info_keeps_only_known_fields():
    text = "# Memory\r\nused_memory:1048576\r\nmaxmemory_policy:noeviction\r\nrequirepass:x\r\n"
    text += "aof_enabled:1\r\n"
    assert parse_redis_info(text) == {
        "used_memory": "1048576",
        "maxmemory_policy": "noeviction",
        "aof_enabled": "1",
    }


def test_env_names_from_grep_output():
    assert env_names("REDIS_URL=\nDATABASE_URL=\nREDIS_URL=\n\n") == ["DATABASE_URL", "REDIS_URL"]
