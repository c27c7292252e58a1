"""diagnose_findings: a healthy host has no finding; each outage is named by its incident id."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from ansible.errors import AnsibleFilterError
from diagnose import SEVERITIES, diagnose_findings, diagnose_legend, diagnose_summary

OPTIONS = {"ansible_playbook": "ansible-playbook -i inv", "limit": "shop1"}
RECOVER = "ansible-playbook -i inv playbooks/recover.yml --limit shop1"


def listener(port: int, pid: int, address: str = "127.0.0.1", family: str = "ipv4", **extra: Any) -> dict:
    return {
        "port": port,
        "listening": True,
        "ipv4_loopback": family != "ipv6",
        "connect_ipv4": family != "ipv6",
        "duplicate": False,
        "listeners": [
            {
                "address": address,
                "family": family,
                "pid": pid,
                "cmdline": "node server.js",
                "user": "shop",
                "supervised": True,
            }
        ],
        "problems": [],
        **extra,
    }


def program(name: str, process: str, port: int | None, state: str = "RUNNING", **extra: Any) -> dict:
    return {
        "program": name,
        "process": process,
        "port": port,
        "configured": True,
        "state": state,
        "pid": 100 if state == "RUNNING" else None,
        "uptime": 3600 if state == "RUNNING" else None,
        "description": "",
        "unexpected_exits": 0,
        "recent_exits": 0,
        "gave_up": False,
        "last_exit": None,
        **extra,
    }


# What the app role renders into each env file (app_env_expected): names, and the derived values.
RENDERED_NAMES = [
    "DATABASE_POOL_MAX",
    "DATABASE_URL",
    "NODE_ENV",
    "REDIS_URL",
    "SESSION_SECRET",
    "UPLOAD_MAX_BYTES",
]
RENDERED_VALUES = {
    "DATABASE_POOL_MAX": "10",
    "NODE_ENV": "production",
    "UPLOAD_MAX_BYTES": str(20 * 1024 * 1024),
}


def env_file(process: str, **changes: Any) -> dict[str, Any]:
    """An env file as app_state read it, as the app role rendered it, beside the model's expectation."""
    return {
        "process": process,
        "exists": True,
        "names": list(RENDERED_NAMES),
        "values": dict(RENDERED_VALUES),
        "expanded": [],
        "expected_names": list(RENDERED_NAMES),
        "expected_values": dict(RENDERED_VALUES),
        **changes,
    }


def healthy() -> dict[str, Any]:
    return {
        "host": "shop1",
        "app": {
            "name": "shop",
            "root": "/srv/shop",
            "max_body_size": "20m",
            "max_body_bytes": 20 * 1024 * 1024,
            "ports": [3000, 3001],
            "required_env": ["DATABASE_URL", "REDIS_URL", "SESSION_SECRET"],
        },
        "supervisor": {
            "ok": True,
            "programs": [
                program("shop-web", "web", 3000),
                program("shop-socket", "socket", 3001),
                program("shop-worker", "worker", None),
            ],
        },
        "listeners": {"ports": [listener(3000, 100), listener(3001, 101)], "orphans": [], "problems": []},
        "release": {
            "current": "20251122T230000Z-abc",
            "record": True,
            "record_build_id": "build-1",
            "next_build_id": "build-1",
            "node_modules": True,
            "prisma_schema": True,
            "prisma_schema_sha": "aaa",
            "prisma_client_entry": True,
            "prisma_client_sha": "aaa",
            "prisma_client_dir": "node_modules/.prisma/client",
            "prisma_schema_path": "prisma/schema.prisma",
            "prisma_schema_folder": False,
        },
        "health": [
            {
                "process": "web",
                "url": "http://127.0.0.1/api/health",
                "status": 200,
                "json": {"status": "ok", "buildId": "build-1", "checks": {"database": "ok", "redis": "ok"}},
            }
        ],
        "env": [env_file("web"), env_file("worker")],
        "nginx": {
            "test_ok": True,
            "test_output": "",
            "view": {
                "parsed": True,
                "routed_ports": [3000, 3001],
                "locations": [
                    {
                        "location": "/",
                        "server_name": "_",
                        "file": "/etc/nginx/sites-enabled/shop.conf",
                        "client_max_body_size": "20m",
                        "client_max_body_bytes": 20 * 1024 * 1024,
                        "limit_from": "server",
                        "proxy_pass": "http://shop_web",
                        "servers": ["127.0.0.1:3000"],
                        "other_hosts": [],
                        "ports": [3000],
                    }
                ],
            },
        },
        "postgres": {
            "ok": True,
            "max_connections": 100,
            "reserved": 3,
            "role": "shop",
            "role_limit": 92,
            "sessions": [
                {"application_name": "app-web", "usename": "shop", "state": "idle", "count": 3},
                {"application_name": "psql", "usename": "postgres", "state": "active", "count": 1},
            ],
        },
        "redis": {
            "ok": True,
            "info": {
                "maxmemory_policy": "noeviction",
                "used_memory": "1000",
                "maxmemory": "0",
                "aof_enabled": "1",
            },
        },
        "disk": {
            "path": "/srv/shop",
            "blocks": {"filesystem": "/dev/sda1", "percent": 40, "available": 1000, "mount": "/"},
            "inodes": {"filesystem": "/dev/sda1", "percent": 3, "available": 1000, "mount": "/"},
        },
        "lock": {"found": None, "held": False, "stale": False, "msg": "No deploy lock."},
        "stuck": [{"name": "campaigns stuck in SENDING", "rows": [], "has_fix": True}],
    }


def ids(facts: dict[str, Any], severity: str | None = None) -> set[str]:
    return {
        f["id"] for f in diagnose_findings(facts, OPTIONS) if severity is None or f["severity"] == severity
    }


def test_a_healthy_host_has_no_finding():
    assert diagnose_findings(healthy(), OPTIONS) == []
    assert diagnose_summary([]) == {"status": "ok", "counts": dict.fromkeys(SEVERITIES, 0), "ids": []}


def test_findings_need_the_collected_facts():
    with pytest.raises(AnsibleFilterError):
        diagnose_findings(["not", "a", "dict"])


def test_rogue_process_on_the_web_port_is_i6_and_i1():
    facts = healthy()
    facts["supervisor"]["programs"][0] = program("shop-web", "web", 3000, state="STOPPED")
    rogue = listener(3000, 666)
    rogue["listeners"][0].update(supervised=False, cmdline="node -e rogue")
    facts["listeners"]["ports"][0] = rogue
    facts["listeners"]["orphans"] = [
        {
            "pid": 666,
            "cmdline": "node -e rogue",
            "ports": [3000],
            "reason": "holds app port 3000",
            "user": "shop",
        }
    ]
    found = diagnose_findings(facts, OPTIONS)
    assert {"I1", "I6", "I10"} <= {f["id"] for f in found}
    i6 = next(f for f in found if f["id"] == "I6")
    assert i6["severity"] == "critical"
    assert any("666" in line and "node -e rogue" in line for line in i6["evidence"])
    assert RECOVER in i6["fix"]


def test_duplicate_listeners_are_i1():
    facts = healthy()
    facts["listeners"]["ports"][0]["duplicate"] = True
    assert ids(facts, "critical") == {"I1"}


def test_app_process_outside_supervisor_without_a_port_is_an_i1_warning():
    facts = healthy()
    facts["listeners"]["orphans"] = [
        {"pid": 7, "cmdline": "node worker.js", "ports": [], "reason": "node in the app tree", "user": "shop"}
    ]
    assert [(f["id"], f["severity"]) for f in diagnose_findings(facts, OPTIONS)] == [("I1", "warning")]


@pytest.mark.parametrize(
    ("origin", "evidence", "restarts"),
    [
        (
            {"parent_pid": 4100, "parent_cmdline": "PM2 v5.3.0: God Daemon", "unit": "pm2-root.service"},
            ["started by pid 4100 (`PM2 v5.3.0: God Daemon`)", "systemd unit pm2-root.service"],
            True,
        ),
        (
            {"parent_pid": 1, "parent_cmdline": "/sbin/init", "unit": "shop-next.service"},
            ["systemd unit shop-next.service"],
            True,
        ),
        ({"parent_pid": 90, "parent_cmdline": None, "unit": None}, ["started by pid 90"], True),
        ({"parent_pid": 1, "parent_cmdline": "/sbin/init", "unit": None}, [], False),  # init only adopted it
        ({}, [], False),  # collected before app_listeners named parents
    ],
    ids=["pm2", "systemd-restart", "parent-exited-since", "adopted-by-init", "not-collected"],
)
def test_an_orphan_names_who_started_it(origin: dict[str, Any], evidence: list[str], restarts: bool) -> None:
    facts = healthy()
    facts["listeners"]["orphans"] = [
        {
            "pid": 7,
            "cmdline": "node worker.js",
            "ports": [],
            "reason": "node in the app tree",
            "user": "shop",
            **origin,
        }
    ]
    [found] = diagnose_findings(facts, OPTIONS)
    assert found["id"] == "I1"
    assert found["evidence"] == ["pid 7 user shop `node worker.js`: node in the app tree", *evidence]
    assert found["fix"].startswith(f"{RECOVER} ends it")
    assert ("If it comes back after every recovery" in found["fix"]) is restarts
    for line in evidence:
        assert (line.split(" (`")[0] in found["fix"]) is restarts


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"prisma_client_entry": False, "prisma_client_sha": None}, "missing"),
        ({"prisma_client_sha": "bbb"}, "stale"),
        ({"node_modules": False}, "no node_modules"),
    ],
)
def test_prisma_client_missing_or_stale_is_i2(change, expected):
    facts = healthy()
    facts["release"].update(change)
    found = diagnose_findings(facts, OPTIONS)
    assert [f["id"] for f in found] == ["I2"]
    assert expected in found[0]["title"]


def test_a_stale_client_names_the_schema_it_was_compared_with():
    facts = healthy()
    facts["release"].update(prisma_schema_path="db/schema.prisma", prisma_client_sha="bbb")
    found = diagnose_findings(facts, OPTIONS)
    assert [f["id"] for f in found] == ["I2"]
    assert found[0]["evidence"] == [
        "db/schema.prisma sha1 aaa",
        "node_modules/.prisma/client/schema.prisma sha1 bbb",
    ]


def test_a_missing_client_is_regenerated_from_the_schema_named():
    facts = healthy()
    facts["release"].update(prisma_schema_path="db/schema.prisma", prisma_client_sha=None)
    (found,) = diagnose_findings(facts, OPTIONS)
    assert found["id"] == "I2" and "missing" in found["title"]
    assert "npx prisma generate --schema db/schema.prisma as the app user" in found["fix"]


def test_a_schema_folder_is_not_compared_with_the_client():
    """Prisma keeps a reformatted merge of a multi-file schema in the client: its sha1 never equals
    the folder's, and that is no stale client."""
    facts = healthy()
    facts["release"].update(
        prisma_schema_path="prisma/schema", prisma_schema_folder=True, prisma_client_sha="bbb"
    )
    assert diagnose_findings(facts, OPTIONS) == []


def test_a_schema_folder_without_a_client_is_still_a_missing_client():
    facts = healthy()
    facts["release"].update(
        prisma_schema_path="prisma/schema",
        prisma_schema_folder=True,
        prisma_client_entry=False,
        prisma_client_sha=None,
    )
    found = diagnose_findings(facts, OPTIONS)
    assert [(f["id"], f["severity"]) for f in found] == [("I2", "critical")]
    assert "missing" in found[0]["title"]


def test_no_schema_no_prisma_check():
    facts = healthy()
    facts["release"].update(prisma_schema=False, prisma_client_entry=False, prisma_client_sha=None)
    assert diagnose_findings(facts, OPTIONS) == []


def test_connections_exhausted_is_i3_with_the_table_per_application_name():
    facts = healthy()
    facts["postgres"]["sessions"] = [
        {"application_name": "", "usename": "shop", "state": "idle", "count": 80},
        {"application_name": "app-web", "usename": "shop", "state": "idle", "count": 12},
    ]
    found = diagnose_findings(facts, OPTIONS)
    assert [(f["id"], f["severity"]) for f in found] == [("I3", "critical")]
    assert "role shop: 92 of its CONNECTION LIMIT 92" in found[0]["evidence"]
    assert any("80  (no application_name) as shop" in line for line in found[0]["evidence"])


def test_connections_near_the_limit_are_an_i3_warning():
    facts = healthy()
    facts["postgres"]["role_limit"] = -1
    facts["postgres"]["sessions"] = [
        {"application_name": "app-web", "usename": "shop", "state": "idle", "count": 80}
    ]
    assert [(f["id"], f["severity"]) for f in diagnose_findings(facts, OPTIONS)] == [("I3", "warning")]


def test_nginx_body_limit_below_the_model_is_i4():
    facts = healthy()
    location = facts["nginx"]["view"]["locations"][0]
    location.update(client_max_body_size="1m", client_max_body_bytes=1024 * 1024)
    found = diagnose_findings(facts, OPTIONS)
    assert [f["id"] for f in found] == ["I4"]
    assert "client_max_body_size 1m" in found[0]["evidence"][0]


def test_nginx_body_limit_off_is_fine():
    facts = healthy()
    facts["nginx"]["view"]["locations"][0].update(client_max_body_size="0", client_max_body_bytes=0)
    assert diagnose_findings(facts, OPTIONS) == []


def test_fatal_program_is_i5_with_its_restarts():
    facts = healthy()
    facts["supervisor"]["programs"][2] = program(
        "shop-worker", "worker", None, state="FATAL", unexpected_exits=4, recent_exits=4, gave_up=True
    )
    found = diagnose_findings(facts, OPTIONS)
    assert [(f["id"], f["severity"]) for f in found] == [("I5", "critical")]
    assert "4 unexpected exit(s)" in found[0]["evidence"][1]


def test_a_program_that_just_restarted_is_an_i5_warning_and_an_old_one_info():
    facts = healthy()
    facts["supervisor"]["programs"][0].update(recent_exits=3, uptime=5)
    facts["supervisor"]["programs"][2].update(recent_exits=1, uptime=1200)
    found = [(f["id"], f["severity"]) for f in diagnose_findings(facts, OPTIONS)]
    assert found == [("I5", "warning"), ("I5", "info")]


@pytest.mark.parametrize(
    ("recent", "uptime", "severity"),
    [
        (40, 300, "critical"),
        (10, 3000, "critical"),
        (3, 3000, "warning"),
        (2, 30, "warning"),
        (2, 300, "info"),
    ],
)
def test_a_running_program_is_graded_by_its_recent_exits_whatever_its_uptime(recent, uptime, severity):
    # Seed 002: 183 restarts, never FATAL; each start outlived startsecs.
    facts = healthy()
    facts["supervisor"]["programs"][0].update(recent_exits=recent, unexpected_exits=recent, uptime=uptime)
    found = diagnose_findings(facts, OPTIONS)
    assert [(f["id"], f["severity"]) for f in found] == [("I5", severity)]
    assert str(recent) in found[0]["title"]
    if severity == "critical":
        assert diagnose_summary(found)["status"] == "critical"


def test_ipv6_only_listener_is_i7():
    facts = healthy()
    facts["listeners"]["ports"][0] = listener(3000, 100, address="::1", family="ipv6")
    found = diagnose_findings(facts, OPTIONS)
    assert [f["id"] for f in found] == ["I7"]
    assert "::1:3000 (ipv6)" in found[0]["evidence"][0]


@pytest.mark.parametrize(
    ("address", "family"), [("0.0.0.0", "ipv4"), ("::", "ipv6"), ("203.0.113.7", "ipv4")]
)
def test_a_listener_beyond_loopback_is_an_i7_warning(address, family):
    """Seed 002's own fix, listen(port) on every address: nginx reaches it, so does everyone else."""
    facts = healthy()
    facts["listeners"]["ports"][0] = listener(3000, 100, address=address, family="ipv4")
    facts["listeners"]["ports"][0]["listeners"][0]["family"] = family
    found = diagnose_findings(facts, OPTIONS)
    assert [(f["id"], f["severity"]) for f in found] == [("I7", "warning")]
    assert "listens beyond loopback" in found[0]["title"]
    assert found[0]["evidence"] == [f"{address}:3000 ({family}) pid 100 `node server.js`"]


@pytest.mark.parametrize("address", ["127.0.0.1", "::ffff:127.0.0.1"])
def test_a_loopback_listener_is_no_finding(address):
    facts = healthy()
    facts["listeners"]["ports"][0] = listener(3000, 100, address=address)
    assert diagnose_findings(facts, OPTIONS) == []


def test_localhost_upstream_is_i7():
    facts = healthy()
    facts["nginx"]["view"]["locations"][0].update(servers=["localhost:3000"], other_hosts=["localhost"])
    assert [(f["id"], f["severity"]) for f in diagnose_findings(facts, OPTIONS)] == [("I7", "critical")]


@pytest.mark.parametrize(
    ("next_build_id", "title"), [("build-0", "another build"), (None, "no Next.js build")]
)
def test_stale_or_missing_next_build_is_i8(next_build_id, title):
    facts = healthy()
    facts["release"]["next_build_id"] = next_build_id
    found = diagnose_findings(facts, OPTIONS)
    assert [f["id"] for f in found] == ["I8"]
    assert title in found[0]["title"]
    assert "recover_rebuild=true" in found[0]["fix"]


def test_health_serving_another_build_is_i8():
    facts = healthy()
    facts["health"][0]["json"]["buildId"] = "build-0"
    assert ids(facts) == {"I8"}


def test_stopped_socket_program_is_i10_once():
    facts = healthy()
    facts["supervisor"]["programs"][1] = program("shop-socket", "socket", 3001, state="STOPPED")
    facts["listeners"]["ports"][1] = {
        "port": 3001,
        "listening": False,
        "ipv4_loopback": False,
        "connect_ipv4": False,
        "duplicate": False,
        "listeners": [],
        "problems": [],
    }
    found = diagnose_findings(facts, OPTIONS)
    assert [f["id"] for f in found] == ["I10"]
    assert "shop-socket is STOPPED" in found[0]["title"]


def test_nothing_on_a_port_of_a_running_program_is_i10():
    facts = healthy()
    facts["listeners"]["ports"][1].update(listening=False, listeners=[])
    assert ids(facts) == {"I10"}


def test_supervisord_down_is_one_i10():
    facts = healthy()
    facts["supervisor"] = {"ok": False, "error": "unix:///var/run/supervisor.sock no such file"}
    for port in facts["listeners"]["ports"]:
        port.update(listening=False, listeners=[])
    found = diagnose_findings(facts, OPTIONS)
    assert [f["id"] for f in found] == ["I10"]
    assert "supervisord does not answer" in found[0]["title"]


def test_a_program_supervisor_does_not_know_is_i10():
    facts = healthy()
    facts["supervisor"]["programs"][2] = program(
        "shop-worker", "worker", None, state="MISSING", configured=False
    )
    assert ids(facts) == {"I10"}


def test_stuck_records_and_a_stale_lock_are_i11():
    facts = healthy()
    facts["stuck"][0]["rows"] = [{"id": "c1"}]
    facts["lock"] = {
        "found": {"owner": "bob@gone", "purpose": "deploy"},
        "stale": True,
        "msg": "stale since 1h",
    }
    found = diagnose_findings(facts, OPTIONS)
    assert [(f["id"], f["severity"]) for f in found] == [("I11", "warning"), ("I11", "warning")]
    assert any("recover_fix_stuck=true" in f["fix"] for f in found)
    assert any("{'id': 'c1'}" in f["evidence"] for f in found)


def test_a_held_lock_is_information_and_a_failed_check_a_warning():
    facts = healthy()
    facts["lock"] = {"found": {"owner": "alice", "purpose": "deploy"}, "stale": False, "msg": "held by alice"}
    facts["stuck"][0] = {"name": "bad", "error": 'relation "Campaign" does not exist', "has_fix": False}
    assert [(f["id"], f["severity"]) for f in diagnose_findings(facts, OPTIONS)] == [
        ("I11", "warning"),
        ("I11", "info"),
    ]


def test_missing_required_env_names_are_i12_names_only():
    facts = healthy()
    facts["env"][0]["names"] = ["DATABASE_URL", "REDIS_URL"]
    found = diagnose_findings(facts, OPTIONS)
    assert [f["id"] for f in found] == ["I12"]
    assert "SESSION_SECRET" in found[0]["title"] and "web" in found[0]["title"]


def test_database_names_are_not_required_of_a_process_the_model_gives_no_pool():
    # DATABASE_URL is required (app_required_env) and rendered for web, which has a db_pool: the worker,
    # which has none, gets no DATABASE_URL from the app role and is not asked for one.
    facts = healthy()
    names = ["NODE_ENV", "REDIS_URL", "SESSION_SECRET", "UPLOAD_MAX_BYTES"]
    values = {"NODE_ENV": "production", "UPLOAD_MAX_BYTES": str(20 * 1024 * 1024)}
    facts["env"][1] = env_file(
        "worker", names=names, values=values, expected_names=names, expected_values=values
    )
    assert diagnose_findings(facts, OPTIONS) == []


def test_a_managed_databases_url_missing_from_the_env_file_is_i12_seed_000():
    """No db group: DATABASE_URL comes from app_secret_env, and the app role renders it into every env
    file. A file without it is the outage of seed 000, whatever app_required_env says."""
    facts = healthy()
    facts["app"]["required_env"] = []
    names = ["DATABASE_URL", "NODE_ENV", "UPLOAD_MAX_BYTES"]
    values = {"NODE_ENV": "production", "UPLOAD_MAX_BYTES": str(20 * 1024 * 1024)}
    for index, process in enumerate(("web", "worker")):
        facts["env"][index] = env_file(
            process, names=names, values=values, expected_names=names, expected_values=values
        )
    facts["env"][0]["names"] = ["NODE_ENV", "UPLOAD_MAX_BYTES"]
    found = diagnose_findings(facts, OPTIONS)
    assert [(f["id"], f["severity"]) for f in found] == [("I12", "critical")]
    assert found[0]["title"] == "web's environment lacks DATABASE_URL"
    assert (
        found[0]["fix"] == f"{RECOVER} re-renders the env files from the app model and restarts the programs."
    )


def test_a_required_name_the_model_renders_nowhere_is_asked_of_the_inventory():
    facts = healthy()
    facts["app"]["required_env"] = ["SESSION_SECRET", "MAILER_API_KEY"]
    found = diagnose_findings(facts, OPTIONS)
    assert [(f["id"], f["title"]) for f in found] == [
        ("I12", "web's environment lacks MAILER_API_KEY"),
        ("I12", "worker's environment lacks MAILER_API_KEY"),
    ]
    assert found[0]["fix"].startswith("Put MAILER_API_KEY in the inventory (app_env, or app_secret_env")
    assert RECOVER + " re-renders the env files" in found[0]["fix"]


def test_a_pool_set_by_hand_in_the_env_file_is_i3_with_both_values_seed_001():
    facts = healthy()
    facts["env"][0]["values"]["DATABASE_POOL_MAX"] = "2"
    found = diagnose_findings(facts, OPTIONS)
    assert [(f["id"], f["severity"]) for f in found] == [("I3", "critical")]
    assert "web's database pool is 2, not the connection budget's 10" in found[0]["title"]
    assert "/srv/shop/shared/env/web.env" in found[0]["title"]
    assert "/srv/shop/shared/env/web.env: DATABASE_POOL_MAX=2" in found[0]["evidence"]
    assert any("the model renders 10, the file says 2" in line for line in found[0]["evidence"])
    assert (
        found[0]["fix"] == f"{RECOVER} re-renders the env files from the app model and restarts the programs."
    )


def test_a_prisma_pool_set_by_hand_in_database_url_is_i3_seed_001():
    """A Prisma app's pool is connection_limit in DATABASE_URL: app_state reads that parameter only."""
    facts = healthy()
    for env in facts["env"]:
        env["expected_values"]["DATABASE_URL?connection_limit"] = "10"
        env["values"]["DATABASE_URL?connection_limit"] = "10"
    facts["env"][0]["values"]["DATABASE_URL?connection_limit"] = "2"
    found = diagnose_findings(facts, OPTIONS)
    assert [(f["id"], f["severity"]) for f in found] == [("I3", "critical")]
    assert found[0]["title"] == (
        "web's Prisma pool is 2, not the connection budget's 10: connection_limit in DATABASE_URL in "
        "/srv/shop/shared/env/web.env"
    )
    assert found[0]["evidence"][0].startswith(
        "/srv/shop/shared/env/web.env: connection_limit of DATABASE_URL is 2"
    )
    assert "the model renders 10, the file says 2" in found[0]["evidence"][1]
    assert "re-renders the env files" in found[0]["fix"]

    # Taken out of the URL: Prisma's own default pool, which the budget does not count.
    facts["env"][0]["values"]["DATABASE_URL?connection_limit"] = ""
    [missing] = diagnose_findings(facts, OPTIONS)
    assert missing["title"].startswith("web's Prisma pool is not set, not the connection budget's 10")
    assert "the model renders 10, the file says not set" in missing["evidence"][1]


def test_a_pool_timeout_changed_in_database_url_is_an_i12_warning():
    facts = healthy()
    facts["env"][1]["expected_values"]["DATABASE_URL?pool_timeout"] = "10"
    facts["env"][1]["values"]["DATABASE_URL?pool_timeout"] = "1"
    found = diagnose_findings(facts, OPTIONS)
    assert [(f["id"], f["severity"], f["title"]) for f in found] == [
        ("I12", "warning", "pool_timeout in DATABASE_URL of worker is 1, not 10")
    ]


def test_an_upload_limit_set_by_hand_in_the_env_file_is_i4_seed_002():
    facts = healthy()
    facts["env"][1]["values"]["UPLOAD_MAX_BYTES"] = "1048576"
    found = diagnose_findings(facts, OPTIONS)
    assert [(f["id"], f["severity"]) for f in found] == [("I4", "critical")]
    assert found[0]["title"].startswith("worker limits uploads to 1048576 bytes, not the model's 20971520")
    assert any("the model renders 20971520, the file says 1048576" in line for line in found[0]["evidence"])
    assert "re-renders the env files" in found[0]["fix"] and found[0]["fix"].startswith(RECOVER)


def test_another_derived_value_that_drifted_is_an_i12_warning_shown_quoted_when_odd():
    facts = healthy()
    facts["env"][0]["values"]["NODE_ENV"] = "production\r"
    found = diagnose_findings(facts, OPTIONS)
    assert [(f["id"], f["severity"]) for f in found] == [("I12", "warning")]
    assert found[0]["title"] == 'NODE_ENV of web is "production\\r", not production'
    assert "re-renders the env files" in found[0]["fix"]


def test_a_derived_value_the_shell_computes_cannot_be_compared():
    facts = healthy()
    del facts["env"][0]["values"]["DATABASE_POOL_MAX"]
    facts["env"][0]["expanded"] = ["DATABASE_POOL_MAX"]
    found = diagnose_findings(facts, OPTIONS)
    assert [(f["id"], f["severity"]) for f in found] == [("I12", "warning")]
    assert "shell expansion" in found[0]["title"]


def test_an_env_file_sh_stops_on_is_a_critical_i12():
    facts = healthy()
    facts["env"][0]["syntax_error"] = "unterminated ' quote opened on line 4"
    found = diagnose_findings(facts, OPTIONS)
    assert [(f["id"], f["severity"]) for f in found] == [("I12", "critical")]
    assert found[0]["title"] == "the env file of web stops sh: unterminated ' quote opened on line 4"


def test_a_missing_env_file_is_i12():
    facts = healthy()
    facts["env"][1] = {"process": "worker", "exists": False, "names": []}
    assert ids(facts) == {"I12"}


@pytest.mark.parametrize(
    ("section", "change", "expected"),
    [
        ("postgres", {"ok": False, "error": "connection refused"}, ("H1", "critical")),
        ("redis", {"ok": False, "error": "NOAUTH"}, ("H2", "critical")),
        ("redis", {"info": {"maxmemory_policy": "allkeys-lru"}}, ("H2", "warning")),
        ("redis", {"info": {"maxmemory_policy": "noeviction", "aof_enabled": "0"}}, ("H2", "info")),
        ("nginx", {"test_ok": False, "test_output": "nginx: [emerg] unexpected ;"}, ("H4", "critical")),
    ],
)
def test_host_checks(section, change, expected):
    facts = healthy()
    facts[section].update(change)
    assert [(f["id"], f["severity"]) for f in diagnose_findings(facts, OPTIONS)] == [expected]


@pytest.mark.parametrize(("percent", "severity"), [(84, None), (85, "warning"), (97, "critical")])
def test_disk_use(percent, severity):
    facts = healthy()
    facts["disk"]["inodes"]["percent"] = percent
    found = diagnose_findings(facts, OPTIONS)
    assert [f["severity"] for f in found] == ([severity] if severity else [])


def test_no_current_release_is_h5():
    facts = healthy()
    facts["release"] = {"current": ""}
    found = diagnose_findings(facts, OPTIONS)
    assert [f["id"] for f in found] == ["H5"]
    assert found[0]["fix"] == "Deploy: ansible-playbook -i inv playbooks/deploy.yml --limit shop1"


def test_stuck_checks_are_not_reported_again_when_postgresql_is_down():
    facts = healthy()
    facts["postgres"] = {"ok": False, "error": "connection refused"}
    facts["stuck"] = [{"name": "x", "error": "connection refused", "has_fix": True}]
    assert ids(facts) == {"H1"}


@pytest.mark.parametrize(
    ("checks", "expected"),
    [
        ({"database": "error: Prisma client is not usable", "redis": "ok"}, "I2"),
        ({"database": "error: sorry, too many clients already", "redis": "ok"}, "I3"),
        ({"database": "ok", "redis": "error: timeout"}, "H2"),
        ({"database": "ok", "redis": "ok"}, "H6"),
        # PgBouncer's own texts: its pool full, and PostgreSQL behind it not answering.
        ({"database": "error: no more connections allowed (max_client_conn)", "redis": "ok"}, "I3"),
        ({"database": "error: query_wait_timeout", "redis": "ok"}, "I3"),
        ({"database": "error: pgbouncer cannot connect to server", "redis": "ok"}, "H1"),
        # A refused connection names the tier by its port: the database's (5432 unless told) or not.
        ({"database": "error: connect ECONNREFUSED 127.0.0.1:5432", "redis": "ok"}, "H1"),
        ({"database": "ok", "redis": "error: connect ECONNREFUSED 127.0.0.1:6379"}, "H2"),
    ],
)
def test_a_failing_health_endpoint_names_its_likely_cause(checks, expected):
    facts = healthy()
    facts["health"][0].update(status=503, json={"status": "error", "buildId": "build-1", "checks": checks})
    assert ids(facts) == {expected}


@pytest.mark.parametrize(
    ("error", "db_port", "expected"),
    [
        ("connect ECONNREFUSED 10.0.0.5:6432", 6432, "H1"),
        ("connect ECONNREFUSED [::1]:6432", 6432, "H1"),
        # With PgBouncer on, PostgreSQL's own port is not what the app connects to.
        ("connect ECONNREFUSED 127.0.0.1:5432", 6432, "H6"),
        ("connect ECONNREFUSED 127.0.0.1:64320", 6432, "H6"),
    ],
)
def test_a_refused_connection_is_h1_on_the_port_the_app_connects_to(error, db_port, expected):
    facts = healthy()
    facts["app"]["db_port"] = db_port
    facts["health"][0].update(status=503, json={"status": "error", "checks": {"database": f"error: {error}"}})
    assert ids(facts) == {expected}


def test_findings_are_sorted_critical_first_then_by_id():
    facts = healthy()
    facts["lock"] = {"found": {"owner": "alice", "purpose": "deploy"}, "stale": False, "msg": "held"}
    facts["env"][0]["names"] = []
    facts["release"]["next_build_id"] = "other"
    facts["disk"]["blocks"]["percent"] = 90
    order = [(f["severity"], f["id"]) for f in diagnose_findings(facts, OPTIONS)]
    assert order == [("critical", "I8"), ("critical", "I12"), ("warning", "H3"), ("info", "I11")]


def test_summary_counts_and_ids():
    facts = healthy()
    facts["env"][0]["names"] = []
    facts["disk"]["blocks"]["percent"] = 90
    summary = diagnose_summary(diagnose_findings(facts, OPTIONS))
    assert summary == {
        "status": "critical",
        "counts": {"critical": 1, "warning": 1, "info": 0},
        "ids": ["I12", "H3"],
    }


def test_every_finding_has_the_report_fields_and_a_known_id():
    facts = healthy()
    broken = copy.deepcopy(facts)
    broken["supervisor"] = {"ok": False}
    broken["postgres"] = {"ok": False}
    broken["redis"] = {"ok": False}
    broken["release"]["next_build_id"] = None
    legend = diagnose_legend()
    for item in diagnose_findings(broken, OPTIONS):
        assert set(item) == {"id", "severity", "title", "evidence", "fix"}
        assert item["id"] in legend and item["severity"] in SEVERITIES
        assert item["evidence"] and all(isinstance(line, str) for line in item["evidence"])


def test_a_port_whose_owner_cannot_be_read_is_an_i6_warning():
    facts = healthy()
    facts["listeners"]["ports"][0]["listeners"][0].update(pid=None, supervised=None, cmdline=None)
    found = diagnose_findings(facts, OPTIONS)
    assert [(f["id"], f["severity"]) for f in found] == [("I6", "warning")]
    assert "CAP_SYS_PTRACE" in found[0]["fix"]


def test_a_health_failure_another_check_explains_is_kept_as_info_not_as_h6():
    facts = healthy()
    facts["health"][0].update(status=502, json=None)
    assert [(f["id"], f["severity"]) for f in diagnose_findings(facts, OPTIONS)] == [("H6", "critical")]
    facts["env"][0]["exists"] = False
    found = diagnose_findings(facts, OPTIONS)
    assert [(f["id"], f["severity"]) for f in found] == [("I12", "critical"), ("H6", "info")]
    assert found[1]["title"].endswith("likely because of I12")
    assert diagnose_summary(found)["ids"] == ["I12"]


def test_a_health_failure_is_not_blamed_on_a_finding_that_cannot_break_health():
    facts = healthy()
    facts["health"][0].update(status=502, json=None)
    facts["nginx"]["view"]["locations"][0].update(
        client_max_body_size="1m", client_max_body_bytes=1024 * 1024
    )
    found = diagnose_findings(facts, OPTIONS)
    assert [(f["id"], f["severity"]) for f in found] == [("I4", "critical"), ("H6", "critical")]
    assert "likely because" not in found[1]["title"]
    assert diagnose_summary(found)["ids"] == ["I4", "H6"]


def test_stuck_records_are_counted_by_the_check_not_by_the_rows_shown():
    facts = healthy()
    facts["stuck"][0].update(count=183, rows=[{"id": f"c{n}"} for n in range(20)])
    found = diagnose_findings(facts, OPTIONS)
    assert [f["title"] for f in found] == ["183 record(s) found by 'campaigns stuck in SENDING'"]
    assert found[0]["evidence"][-1] == "... and 173 more"


def pool(database: str = "shop", waiting: int = 0, maxwait: float = 0.0, mode: str = "transaction") -> dict:
    return {
        "database": database,
        "user": "shop",
        "pool_mode": mode,
        "cl_active": 2,
        "cl_waiting": waiting,
        "sv_active": 2,
        "sv_idle": 0,
        "sv_used": 0,
        "sv_tested": 0,
        "sv_login": 0,
        "maxwait": maxwait,
        "pool_size": 2,
        "reserve_pool": 0,
        "max_db_connections": 2,
    }


def with_pgbouncer(*pools: dict, max_wait: int | None = 5) -> dict[str, Any]:
    facts = healthy()
    facts["pgbouncer"] = {"ok": True, "host": "db1", "max_wait": max_wait, "pools": list(pools)}
    return facts


@pytest.mark.parametrize(
    ("pools", "max_wait", "expected"),
    [
        ([pool(waiting=8, maxwait=12.5), pool("shop_session", mode="session")], 5, [("I3", "critical")]),
        ([pool(waiting=3, maxwait=0.4), pool("shop_session", mode="session")], 5, [("I3", "warning")]),
        ([pool("shop_session", waiting=1, maxwait=2.0, mode="session")], 0, [("I3", "critical")]),
        ([pool(waiting=1, maxwait=2.0)], None, [("I3", "warning")]),
        ([pool(), pool("shop_session", mode="session")], 5, []),
        ([], 5, []),
    ],
    ids=[
        "waiting long",
        "waiting briefly",
        "any wait critical",
        "default threshold",
        "none waiting",
        "no pool",
    ],
)
def test_clients_waiting_in_pgbouncer_are_i3_on_their_pool(pools, max_wait, expected):
    found = diagnose_findings(with_pgbouncer(*pools, max_wait=max_wait), OPTIONS)
    assert [(f["id"], f["severity"]) for f in found] == expected
    for item in found:
        waiting = next(p for p in pools if p["cl_waiting"])
        assert f"pool {waiting['database']}/shop" in item["title"]
        assert any(
            line.startswith(f"pool {waiting['database']}/shop") and f"{waiting['cl_waiting']} waiting" in line
            for line in item["evidence"]
        )
        assert "pool_size 2 + reserve_pool 0, max_db_connections 2" in item["evidence"][0]
        assert "playbooks/bootstrap.yml --limit db1" in item["fix"]


@pytest.mark.parametrize(
    ("bouncer", "expected"),
    [
        ({"ok": False, "down": True, "error": "No such file or directory"}, ("H1", "critical")),
        ({"ok": False, "down": False, "error": "psql printed no SHOW POOLS table"}, ("H1", "warning")),
    ],
    ids=["pgbouncer down", "pools unreadable"],
)
def test_pgbouncer_that_does_not_answer_is_h1(bouncer, expected):
    facts = healthy()
    facts["pgbouncer"] = {"host": "db1", "max_wait": 5, **bouncer}
    found = diagnose_findings(facts, OPTIONS)
    assert [(f["id"], f["severity"]) for f in found] == [expected]
    assert found[0]["evidence"] == [bouncer["error"]]
    assert "On db1: systemctl status pgbouncer" in found[0]["fix"]


def test_pgbouncer_off_changes_nothing():
    facts = healthy()
    facts["pgbouncer"] = None
    assert diagnose_findings(facts, OPTIONS) == []
