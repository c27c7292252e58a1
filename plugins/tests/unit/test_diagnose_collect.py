"""diagnose.yml's parsers: supervisor's status and log, nginx -T, df, Redis INFO, env file names."""

from __future__ import annotations

import json

import pytest
from ansible.errors import AnsibleFilterError
from diagnose import diagnose_findings
from diagnose_collect import (
    NO_SIGNS,
    diagnose_facts,
    nginx_app_view,
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


def test_a_stop_starts_a_programs_count_again():
    # deploy and recover stop the programs first: the exits before are of a run that ended.
    log = LOG + (
        "2025-11-22 22:59:20,000 INFO exited: shop-web (exit status 1; not expected)\n"
        "2025-11-22 22:59:30,000 INFO stopped: shop-web (terminated by SIGTERM)\n"
        "2025-11-22 22:59:31,000 INFO spawned: 'shop-web' with pid 12\n"
        "2025-11-22 22:59:40,000 INFO exited: shop-web (exit status 1; not expected)\n"
    )
    signs = parse_supervisord_log(log, now="2025-11-22 23:00:00", window=3600)
    assert signs["shop-web"]["unexpected_exits"] == 1 and signs["shop-web"]["recent_exits"] == 1
    assert "22:59:40" in signs["shop-web"]["last_exit"]
    assert signs["shop-worker"]["unexpected_exits"] == 3


def test_a_start_after_giving_up_starts_the_count_again():
    # supervisor does not stop a FATAL program: recover's start of it is where its new run begins.
    signs = parse_supervisord_log(
        LOG + "2025-11-22 22:59:50,000 INFO spawned: 'shop-worker' with pid 13\n", now="2025-11-22 23:00:00"
    )
    assert signs["shop-worker"] == dict(NO_SIGNS)


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


def test_redis_info_keeps_only_known_fields():
    text = "# Memory\r\nused_memory:1048576\r\nmaxmemory_policy:noeviction\r\nrequirepass:x\r\n"
    text += "aof_enabled:1\r\n"
    assert parse_redis_info(text) == {
        "used_memory": "1048576",
        "maxmemory_policy": "noeviction",
        "aof_enabled": "1",
    }


APP = {
    "name": "shop",
    "root": "/srv/shop",
    "max_body_size": "20m",
    "max_body_bytes": 20 * 1024 * 1024,
    "ports": [3000, 3001],
    "programs": PROGRAMS,
    "processes": [{"name": "web", "db_pool": 10}, {"name": "socket"}, {"name": "worker", "db_pool": 5}],
    "required_env": ["DATABASE_URL"],
    "prisma_client_dir": "node_modules/.prisma/client",
    "restart_window": 3600,
    "expected_env": {
        "web": {
            "names": ["DATABASE_POOL_MAX", "DATABASE_URL", "NODE_ENV"],
            "values": {"DATABASE_POOL_MAX": "10"},
        },
        "socket": {"names": ["NODE_ENV"], "values": {"NODE_ENV": "production"}},
    },
}


def raw_results() -> dict:
    """What diagnose's tasks register on a host with a FATAL worker and a stopped socket program."""
    return {
        "state": {
            "current": {"exists": True, "target": "releases/r2", "release": "r2"},
            "release": {
                "node_modules": True,
                "prisma_schema_sha1": "aaa",
                "prisma_client_dir": True,
                "prisma_client_schema_sha1": "aaa",
                "build_id": "b2",
                "record": {"id": "r2", "build_id": "b2", "built_at": "2025-11-22T22:00:00Z"},
            },
            "env": [
                {
                    "process": "web",
                    "exists": True,
                    "names": ["DATABASE_URL"],
                    "values": {"DATABASE_POOL_MAX": "2"},
                },
                {"process": "socket", "exists": True, "names": []},
                {"process": "worker", "exists": False, "names": []},
            ],
            "disk": {
                "path": "/srv/shop",
                "mount": "/",
                "blocks": {"percent": 40},
                "inodes": {"percent": None},
            },
            "supervisor": {"rc": 3, "stdout": STATUS, "stderr": ""},
            "supervisord_log": {"now": "2025-11-22 23:00:00", "lines": LOG.splitlines()},
            "nginx": {
                "rc": 0,
                "stdout": NGINX_CONF + SITE,
                "stderr": "nginx: configuration file test is successful",
            },
        },
        "listeners": {"changed": False, "ports": [], "orphans": [], "problems": []},
        "health": {
            "results": [
                {
                    "item": {"name": "web", "health_path": "/api/health"},
                    "url": "http://127.0.0.1/api/health",
                    "status": 200,
                    "json": {"status": "ok", "buildId": "b2"},
                }
            ]
        },
        "postgres": {
            "rc": 0,
            "stdout": json.dumps(
                {"max_connections": 100, "reserved": 3, "role": "shop", "role_limit": 92, "sessions": []}
            ),
        },
        "stuck": {
            "results": [
                {
                    "item": {"name": "stuck", "sql": "SELECT 1", "fix_sql": "UPDATE x"},
                    "rc": 0,
                    "stdout": '{"count": 1, "rows": [{"id": "c1"}]}',
                },
                {
                    "item": {"name": "broken", "sql": "SELECT x"},
                    "rc": 3,
                    "stdout": "",
                    "stderr": 'ERROR:  column "x" does not exist',
                },
            ]
        },
        "redis": {"rc": 0, "stdout": "redis_version:7.0.15\r\nmaxmemory_policy:noeviction\r\n"},
        "lock": {"found": None, "held": False, "stale": False, "age": None, "msg": "No deploy lock."},
    }


def test_diagnose_facts_from_what_the_tasks_registered():
    facts = diagnose_facts(raw_results(), APP)
    assert facts["app"]["ports"] == [3000, 3001]
    assert [p["state"] for p in facts["supervisor"]["programs"]] == ["RUNNING", "STOPPED", "FATAL"]
    assert facts["release"]["current"] == "r2" and facts["release"]["record_build_id"] == "b2"
    assert facts["release"]["prisma_client_sha"] == facts["release"]["prisma_schema_sha"]
    assert facts["release"]["prisma_schema_path"] == "prisma/schema.prisma"
    assert facts["release"]["prisma_schema_folder"] is False
    # Each env file beside what the app role renders for its process (none is known for worker here).
    assert [(e["process"], e["expected_names"], e["expected_values"]) for e in facts["env"]] == [
        ("web", ["DATABASE_POOL_MAX", "DATABASE_URL", "NODE_ENV"], {"DATABASE_POOL_MAX": "10"}),
        ("socket", ["NODE_ENV"], {"NODE_ENV": "production"}),
        ("worker", [], {}),
    ]
    assert facts["nginx"]["test_ok"] and facts["nginx"]["view"]["routed_ports"] == [3000, 3001]
    assert facts["postgres"]["ok"] and facts["postgres"]["role_limit"] == 92
    assert facts["stuck"][0] == {"name": "stuck", "has_fix": True, "count": 1, "rows": [{"id": "c1"}]}
    assert "does not exist" in facts["stuck"][1]["error"]
    assert facts["redis"] == {
        "ok": True,
        "info": {"redis_version": "7.0.15", "maxmemory_policy": "noeviction"},
    }
    assert facts["health"][0]["status"] == 200
    assert facts["disk"]["blocks"]["mount"] == "/"


def test_the_schema_diagnose_was_given_and_whether_it_is_a_folder_reach_the_facts():
    raw = raw_results()
    raw["state"]["release"].update(prisma_schema_sha1="fff", prisma_schema_folder=True)
    release = diagnose_facts(raw, {**APP, "prisma_schema": "prisma/schema"})["release"]
    assert release["prisma_schema_path"] == "prisma/schema"
    assert release["prisma_schema_folder"] is True and release["prisma_schema_sha"] == "fff"


def test_a_pool_app_state_read_against_the_pool_the_model_renders_is_named():
    """From app_state's entry to the finding: web's file says 2 (seed 001), the model renders 10."""
    found = [f for f in diagnose_findings(diagnose_facts(raw_results(), APP), {}) if f["id"] == "I3"]
    assert len(found) == 1 and "the model renders 10, the file says 2" in " ".join(found[0]["evidence"])


def test_diagnose_facts_when_services_do_not_answer():
    raw = raw_results()
    raw["state"]["supervisor"] = {
        "rc": 4,
        "stdout": "unix:///var/run/supervisor.sock no such file",
        "stderr": "",
    }
    raw["state"]["nginx"] = {"rc": 1, "stdout": "", "stderr": "nginx: [emerg] unexpected ; in /etc/nginx/x:3"}
    raw["state"]["current"] = {"exists": False}
    raw["postgres"] = {"rc": 2, "stdout": "", "stderr": "psql: error: connection refused"}
    raw["redis"] = {"rc": 0, "stdout": "NOAUTH Authentication required.", "stderr": ""}
    raw["listeners"] = {"failed": True, "msg": "permission denied"}
    raw["health"] = {"results": [{"item": {"name": "web"}, "status": -1, "msg": "Connection refused"}]}
    facts = diagnose_facts(raw, APP)
    assert facts["supervisor"] == {"ok": False, "error": "unix:///var/run/supervisor.sock no such file"}
    assert facts["nginx"]["test_ok"] is False and "emerg" in facts["nginx"]["test_output"]
    assert facts["release"] == {"current": ""}
    assert facts["postgres"] == {"ok": False, "error": "psql: error: connection refused"}
    assert facts["redis"]["ok"] is False and "NOAUTH" in facts["redis"]["error"]
    assert facts["listeners"] == {"error": "permission denied"}
    assert facts["health"][0]["status"] is None and facts["health"][0]["error"] == "Connection refused"


def test_skipped_service_checks_are_absent():
    raw = raw_results()
    raw["postgres"] = {"skipped": True}
    raw["redis"] = {"skipped": True}
    raw["stuck"] = {"skipped": True, "results": []}
    facts = diagnose_facts(raw, APP)
    assert facts["postgres"] is None and facts["redis"] is None and facts["stuck"] == []


def test_diagnose_facts_needs_dicts():
    with pytest.raises(AnsibleFilterError):
        diagnose_facts(None, APP)


def test_a_probe_that_could_not_start_is_an_error():
    raw = raw_results()
    raw["postgres"] = {"failed": True, "msg": "Failed to set permissions on the temporary files"}
    assert diagnose_facts(raw, APP)["postgres"] == {
        "ok": False,
        "error": "Failed to set permissions on the temporary files",
    }


def test_a_service_host_that_cannot_be_reached_is_a_service_that_does_not_answer():
    # The delegated probes run with ignore_unreachable: the web host's report is still written.
    raw = raw_results()
    unreachable = {"unreachable": True, "changed": False, "msg": "Failed to connect to the host via ssh"}
    raw["postgres"] = dict(unreachable)
    raw["redis"] = dict(unreachable)
    raw["stuck"] = {"results": [{**unreachable, "item": {"name": "stuck", "fix_sql": "UPDATE x"}}]}
    facts = diagnose_facts(raw, APP)
    assert facts["postgres"] == {"ok": False, "error": f"its host is unreachable: {unreachable['msg']}"}
    assert facts["redis"]["ok"] is False and "unreachable" in facts["redis"]["error"]
    assert "unreachable" in facts["stuck"][0]["error"]
    found = {(f["id"], f["severity"]) for f in diagnose_findings(facts, {})}
    assert {("H1", "critical"), ("H2", "critical")} <= found and not {f[0] for f in found} & {"I11"}


# What diagnose's PgBouncer probe prints (psql --csv, PgBouncer 1.18): the app's pool with clients
# queued behind its 2 server connections, the session-mode pool idle, the admin console's own pool.
POOLS_HEADER = (
    "database,user,cl_active,cl_waiting,cl_active_cancel_req,cl_waiting_cancel_req,sv_active,"
    "sv_active_cancel,sv_being_canceled,sv_idle,sv_used,sv_tested,sv_login,maxwait,maxwait_us,pool_mode"
)
DATABASES_HEADER = (
    "name,host,port,database,force_user,pool_size,min_pool_size,reserve_pool,pool_mode,max_connections,"
    "current_connections,paused,disabled"
)


def pgbouncer_output(shop_pool: str) -> str:
    return "\n".join(
        [
            "[pools]",
            POOLS_HEADER,
            shop_pool,
            "shop_session,shop,0,0,0,0,0,0,0,1,0,0,0,0,0,session",
            "pgbouncer,pgbouncer,1,0,0,0,0,0,0,0,0,0,0,0,0,statement",
            "[databases]",
            DATABASES_HEADER,
            "pgbouncer,,6432,pgbouncer,pgbouncer,2,0,0,statement,0,0,0,0",
            "shop,127.0.0.1,5432,shop,,2,0,0,,2,2,0,0",
            "shop_session,127.0.0.1,5432,shop,,2,0,0,session,0,1,0,0",
            "",
        ]
    )


@pytest.mark.parametrize(
    ("result", "expected"),
    [
        (
            {"rc": 0, "stdout": pgbouncer_output("shop,shop,2,8,0,0,2,0,0,0,0,0,0,12,500000,transaction")},
            {"cl_active": 2, "cl_waiting": 8, "sv_active": 2, "maxwait": 12.5},
        ),
        (
            {"rc": 0, "stdout": pgbouncer_output("shop,shop,3,0,0,0,1,0,0,1,0,0,0,0,0,transaction")},
            {"cl_active": 3, "cl_waiting": 0, "sv_active": 1, "sv_idle": 1, "maxwait": 0.0},
        ),
    ],
    ids=["clients waiting", "none waiting"],
)
def test_pgbouncer_pools_with_their_database_sizes(result, expected):
    facts = diagnose_facts({**raw_results(), "pgbouncer": result}, {**APP, "db_host": "db1"})
    bouncer = facts["pgbouncer"]
    assert bouncer["ok"] and bouncer["host"] == "db1"
    # The admin console's own pool is diagnose's probe, not the app's.
    assert [(p["database"], p["user"]) for p in bouncer["pools"]] == [
        ("shop", "shop"),
        ("shop_session", "shop"),
    ]
    shop = bouncer["pools"][0]
    assert {key: shop[key] for key in expected} == expected
    assert (shop["pool_size"], shop["reserve_pool"], shop["max_db_connections"]) == (2, 0, 2)
    assert shop["pool_mode"] == "transaction" and bouncer["pools"][1]["pool_mode"] == "session"


def test_pgbouncer_1_24_sizes_read_from_its_renamed_columns():
    """PgBouncer 1.24 (Debian 13) calls SHOW DATABASES' reserve_pool reserve_pool_size, and adds columns."""
    output = "\n".join(
        [
            "[pools]",
            POOLS_HEADER + ",load_balance_hosts",
            "shop,shop,25,16,0,0,25,0,0,0,0,0,0,5,300000,transaction,",
            "[databases]",
            "name,host,port,database,force_user,pool_size,min_pool_size,reserve_pool_size,server_lifetime,"
            "pool_mode,load_balance_hosts,max_connections,current_connections,max_client_connections,"
            "current_client_connections,paused,disabled",
            "shop,127.0.0.1,5432,shop,,20,0,5,3600,,,25,25,0,41,0,0",
            "",
        ]
    )
    facts = diagnose_facts(
        {**raw_results(), "pgbouncer": {"rc": 0, "stdout": output}}, {**APP, "db_host": "db1"}
    )
    [shop] = facts["pgbouncer"]["pools"]
    assert (shop["pool_size"], shop["reserve_pool"], shop["max_db_connections"]) == (20, 5, 25)
    assert (shop["cl_waiting"], shop["maxwait"]) == (16, 5.3)


@pytest.mark.parametrize(
    ("result", "expected"),
    [
        (
            {
                "rc": 2,
                "stdout": "",
                "stderr": 'psql: error: connection to server on socket "/var/run/postgresql/.s.PGSQL.6432" '
                "failed: No such file or directory",
            },
            {"ok": False, "down": True},
        ),
        (
            {"rc": 124, "stdout": "", "stderr": ""},
            {"ok": False, "down": True, "error": "no answer (timeout)"},
        ),
        ({"unreachable": True, "msg": "Failed to connect to the host via ssh"}, {"ok": False, "down": True}),
        (
            {"rc": 2, "stdout": "", "stderr": 'psql: error: FATAL:  no such user: "pgbouncer"'},
            {"ok": False, "down": False},
        ),
        ({"rc": 0, "stdout": "", "stderr": ""}, {"ok": False, "down": False}),
        ({"rc": 0, "stdout": "[pools]\n[databases]\n", "stderr": ""}, {"ok": True, "pools": []}),
    ],
    ids=[
        "pgbouncer down",
        "no answer in time",
        "db host unreachable",
        "login refused",
        "empty output",
        "no pool",
    ],
)
def test_pgbouncer_that_does_not_answer_or_shows_nothing(result, expected):
    bouncer = diagnose_facts({**raw_results(), "pgbouncer": result}, APP)["pgbouncer"]
    assert {key: bouncer.get(key) for key in expected} == expected
    assert bouncer["ok"] or bouncer["error"]


def test_pgbouncer_off_is_absent():
    assert diagnose_facts({**raw_results(), "pgbouncer": {"skipped": True}}, APP)["pgbouncer"] is None
    assert diagnose_facts(raw_results(), APP)["pgbouncer"] is None
