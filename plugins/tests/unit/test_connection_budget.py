from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import pytest
from ansible.errors import AnsibleFilterError
from app_env import service_url
from connection_budget import (
    ENV_SHOWN_VALUES,
    PGBOUNCER_DEFAULTS,
    URL_POOL_SHOWN,
    FilterModule,
    app_env_expected,
    app_process_env,
    connection_budget,
    connection_demand,
    database_url_with_pool,
    db_connect_port,
    fitting_pools,
    parse_pgbouncer,
    parse_processes,
    pgbouncer_settings,
    process_env_pool,
    redact_url,
)

SHOP = [
    {"name": "web", "command": "node server.js", "port": 3000, "db_pool": 10},
    {"name": "socket", "command": "node socket-server.js", "port": 3001, "db_pool": 2},
    {"name": "worker", "command": "node worker.js", "db_pool": 5, "instances": 2},
    {"name": "cron", "command": "node cron.js"},
]


@pytest.mark.parametrize(
    ("app_hosts", "max_connections", "reserved", "headroom", "demand", "available", "fits"),
    [
        (1, 100, 3, 5, 22, 92, True),
        (3, 100, 3, 5, 66, 92, True),
        (4, 100, 3, 5, 88, 92, True),
        (5, 100, 3, 5, 110, 92, False),
        # exactly at the limit fits; one more does not
        (1, 30, 3, 5, 22, 22, True),
        (1, 29, 3, 5, 22, 21, False),
        (2, 100, 0, 0, 44, 100, True),
    ],
)
def test_budget_arithmetic(
    app_hosts: int,
    max_connections: int,
    reserved: int,
    headroom: int,
    demand: int,
    available: int,
    fits: bool,
) -> None:
    result = connection_budget(SHOP, app_hosts, max_connections, reserved, headroom)
    assert (result["demand"], result["available"], result["fits"]) == (demand, available, fits)
    assert result["over_by"] == max(0, demand - available)
    assert result["app_hosts"] == app_hosts
    assert sum(row["total"] for row in result["rows"]) == demand


def test_rows_carry_each_process() -> None:
    result = connection_budget(SHOP, app_hosts=2)
    assert result["rows"] == [
        {"process": "web", "db_pool": 10, "instances": 1, "hosts": 2, "total": 20},
        {"process": "socket", "db_pool": 2, "instances": 1, "hosts": 2, "total": 4},
        {"process": "worker", "db_pool": 5, "instances": 2, "hosts": 2, "total": 20},
        {"process": "cron", "db_pool": 0, "instances": 1, "hosts": 2, "total": 0},
    ]
    assert result["pgbouncer"] is None


def test_table_when_it_fits_shows_limit_and_spare() -> None:
    table = connection_budget(SHOP, app_hosts=2)["table"]
    assert "FITS: 44 of 92 connections, 48 to spare." in table
    assert "OVER BUDGET" not in table
    lines = table.splitlines()
    web = next(line for line in lines if line.startswith("web "))
    assert web.split() == ["web", "10", "1", "2", "20"]
    header = next(line for line in lines if line.startswith("process"))
    # numbers are right-aligned under their header
    assert web.index("20") + 2 == header.index("connections") + len("connections")


def test_table_when_over_names_the_fixes() -> None:
    processes = [
        {"name": "web", "db_pool": 40},
        {"name": "worker", "db_pool": 10},
        {"name": "socket", "db_pool": 2},
    ]
    result = connection_budget(processes, app_hosts=2, max_connections=100)
    assert not result["fits"]
    assert result["over_by"] == 12
    table = result["table"]
    assert "OVER BUDGET by 12: the app asks for 104 connections, PostgreSQL can give it 92." in table
    assert "web: db_pool 40 -> 34" in table
    assert "worker:" not in table and "socket:" not in table
    assert "raise max_connections from 100 to at least 112" in table
    assert "enable PgBouncer" in table


def test_table_when_even_pools_of_one_are_too_many() -> None:
    processes = [{"name": f"p{index}", "db_pool": 3} for index in range(10)]
    table = connection_budget(processes, app_hosts=1, max_connections=15)["table"]
    assert "lowering db_pool cannot fit" in table
    assert "raise max_connections from 15 to at least 38" in table


@pytest.mark.parametrize(
    ("pools", "available", "expected"),
    [
        ({"web": 10, "worker": 5}, 100, {}),
        ({"web": 40, "worker": 10, "socket": 2}, 46, {"web": 34}),
        # the biggest come down first, to the same level; small pools are left alone
        ({"web": 40, "worker": 30, "socket": 2}, 42, {"web": 20, "worker": 20}),
        ({"web": 5, "worker": 5}, 2, {"web": 1, "worker": 1}),
        ({"web": 5, "worker": 5}, 1, None),
        ({"web": 0, "worker": 4}, 3, {"worker": 3}),
    ],
)
def test_fitting_pools(pools: dict[str, int], available: int, expected: dict[str, int] | None) -> None:
    rows = parse_processes([{"name": name, "db_pool": pool} for name, pool in pools.items()], app_hosts=1)
    assert fitting_pools(rows, available) == expected


def test_fitting_pools_counts_instances_and_hosts() -> None:
    rows = parse_processes(
        [{"name": "web", "db_pool": 10, "instances": 2}, {"name": "worker", "db_pool": 10}], 3
    )
    pools = fitting_pools(rows, 60)
    assert pools is not None
    assert sum(pools.get(row.process, row.db_pool) * row.instances * row.hosts for row in rows) <= 60
    assert pools == {"web": 5}


def test_connection_demand_is_every_pool_on_every_host() -> None:
    """What a managed database must allow (no db group): web 10 x 2 instances + worker 3, on three hosts."""
    processes = [
        {"name": "web", "db_pool": 10, "instances": 2},
        {"name": "worker", "db_pool": 3},
        {"name": "ws"},
    ]
    assert connection_demand(processes, 3) == 69
    assert connection_demand([{"name": "ws"}]) == 0
    with pytest.raises(AnsibleFilterError, match="app_hosts"):
        connection_demand(processes, 0)


PGBOUNCER = {"enabled": True, "default_pool_size": 20, "max_client_conn": 100}


@pytest.mark.parametrize(
    ("app_hosts", "pgbouncer", "demand", "client_demand", "client_capacity", "fits"),
    [
        (2, PGBOUNCER, 20, 44, 100, True),
        (5, PGBOUNCER, 20, 110, 100, False),
        (2, {**PGBOUNCER, "reserve_pool_size": 5, "instances": 2}, 50, 44, 200, True),
        (2, {**PGBOUNCER, "default_pool_size": 90}, 90, 44, 100, True),
        (2, {**PGBOUNCER, "default_pool_size": 93}, 93, 44, 100, False),
    ],
)
def test_budget_through_pgbouncer(
    app_hosts: int,
    pgbouncer: dict[str, Any],
    demand: int,
    client_demand: int,
    client_capacity: int,
    fits: bool,
) -> None:
    result = connection_budget(SHOP, app_hosts, 100, 3, 5, pgbouncer)
    assert result["demand"] == demand
    assert result["pgbouncer"]["client_demand"] == client_demand
    assert result["pgbouncer"]["client_capacity"] == client_capacity
    assert result["fits"] is fits


def test_pgbouncer_tables_name_the_side_that_is_over() -> None:
    client_over = connection_budget(SHOP, 5, 100, 3, 5, PGBOUNCER)["table"]
    assert "the app pools ask PgBouncer for 110 connections, it accepts 100" in client_over
    assert "raise pgbouncer.max_client_conn to at least 110" in client_over
    server_over = connection_budget(SHOP, 2, 90, 3, 5, {**PGBOUNCER, "default_pool_size": 90})["table"]
    assert "PgBouncer's server pools ask PostgreSQL for 90 connections, it can give 82" in server_over
    assert "lower pgbouncer.default_pool_size from 90 to 82 or less" in server_over
    assert "enable PgBouncer" not in server_over


def test_pgbouncer_disabled_is_the_plain_budget() -> None:
    plain = connection_budget(SHOP, 2)
    off = connection_budget(SHOP, 2, pgbouncer={"enabled": False, "default_pool_size": 1})
    assert off == plain


@pytest.mark.parametrize(
    ("processes", "kwargs", "message"),
    [
        ({"name": "web"}, {}, "app_processes must be a list"),
        ("web", {}, "app_processes must be a list"),
        ([{"name": "web", "db_pool": -1}], {}, "app_processes[0] (web).db_pool is -1; it must be at least 0"),
        ([{"name": "web", "db_pool": "ten"}], {}, "app_processes[0] (web).db_pool must be a whole number"),
        ([{"name": "web", "db_pool": 2.5}], {}, "app_processes[0] (web).db_pool must be a whole number"),
        ([{"name": "web", "db_pool": True}], {}, "app_processes[0] (web).db_pool must be a whole number"),
        ([{"name": "web", "instances": 0}], {}, "app_processes[0] (web).instances is 0"),
        ([{"name": "web"}, {"name": "web"}], {}, "the name 'web' is used by entries 0 and 1"),
        ([{"db_pool": 3}], {}, "app_processes[0].name is missing"),
        (["web"], {}, "app_processes[0] must be a dict"),
        ([], {"app_hosts": 0}, "app_hosts is 0"),
        ([], {"max_connections": "lots"}, "max_connections must be a whole number"),
        ([], {"superuser_reserved": -2}, "superuser_reserved is -2"),
        ([], {"max_connections": 3, "superuser_reserved": 3}, "must be less than max_connections"),
        ([], {"max_connections": 10, "admin_headroom": 8}, "nothing is left for the app"),
        ([], {"pgbouncer": "yes"}, "pgbouncer must be null or a dict"),
        ([], {"pgbouncer": {"default_pool_size": 10}}, "pgbouncer.enabled must be true or false"),
        (
            [],
            {"pgbouncer": {"enabled": True, "max_client_conn": 10}},
            "pgbouncer.default_pool_size is required",
        ),
        ([], {"pgbouncer": {**PGBOUNCER, "instances": 0}}, "pgbouncer.instances is 0"),
        ([], {"pgbouncer": {**PGBOUNCER, "session_pool_size": -1}}, "pgbouncer.session_pool_size is -1"),
    ],
)
def test_bad_input_names_the_variable(processes: Any, kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(AnsibleFilterError) as raised:
        connection_budget(processes, **kwargs)
    assert message in str(raised.value)


@pytest.mark.parametrize(("value", "expected"), [("10", 10), (" 7 ", 7), (3, 3)])
def test_digit_text_from_extra_vars_counts(value: Any, expected: int) -> None:
    assert connection_budget([{"name": "web", "db_pool": value}])["demand"] == expected


@pytest.mark.parametrize(
    ("url", "pool", "kwargs", "expected"),
    [
        (
            "postgresql://u:p@db:5432/shop",
            10,
            {},
            "postgresql://u:p@db:5432/shop?connection_limit=10&pool_timeout=10",
        ),
        (
            "postgresql://u:p@db/shop?schema=public&sslmode=require",
            5,
            {"pool_timeout": 20},
            "postgresql://u:p@db/shop?schema=public&sslmode=require&connection_limit=5&pool_timeout=20",
        ),
        (
            "postgres://u:p@db/shop?connection_limit=99&schema=public&pool_timeout=1",
            3,
            {},
            "postgres://u:p@db/shop?connection_limit=3&schema=public&pool_timeout=10",
        ),
        # a duplicated parameter is collapsed to one
        (
            "postgresql://db/shop?connection_limit=1&connection_limit=2",
            4,
            {},
            "postgresql://db/shop?connection_limit=4&pool_timeout=10",
        ),
        # encoded password, encoded values and the fragment are kept byte for byte
        (
            "postgresql://app:p%40ss%2Fw%3Frd@db/shop?options=-c%20search_path%3Dx#frag",
            2,
            {"pgbouncer": True},
            "postgresql://app:p%40ss%2Fw%3Frd@db/shop?options=-c%20search_path%3Dx"
            "&connection_limit=2&pool_timeout=10&pgbouncer=true#frag",
        ),
        (
            "postgresql://db/shop?pgbouncer=true",
            2,
            {},
            "postgresql://db/shop?connection_limit=2&pool_timeout=10",
        ),
        (
            "postgresql://u@/shop?host=/run/postgresql",
            2,
            {},
            "postgresql://u@/shop?host=/run/postgresql&connection_limit=2&pool_timeout=10",
        ),
    ],
)
def test_database_url_with_pool(url: str, pool: int, kwargs: dict[str, Any], expected: str) -> None:
    assert database_url_with_pool(url, pool, **kwargs) == expected


@pytest.mark.parametrize(
    ("url", "pool", "message"),
    [
        ("mysql://u:secret@db/shop", 5, "must start with postgresql://"),
        ("", 5, "empty"),
        (None, 5, "empty"),
        ("postgresql://db/shop", 0, "db_pool 0 has no database URL"),
        ("postgresql://db/shop", -3, "is -3"),
    ],
)
def test_database_url_with_pool_refuses(url: Any, pool: Any, message: str) -> None:
    with pytest.raises(AnsibleFilterError) as raised:
        database_url_with_pool(url, pool)
    assert message in str(raised.value)


def test_errors_never_show_the_password() -> None:
    with pytest.raises(AnsibleFilterError) as raised:
        database_url_with_pool("mysql://app:hunter2@db/shop", 5)
    assert "hunter2" not in str(raised.value)
    assert "app:***@db" in str(raised.value)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql://app:hunter2@db/shop", "postgresql://app:***@db/shop"),
        ("postgresql://app@db/shop", "postgresql://app@db/shop"),
        ("postgresql://db/shop", "postgresql://db/shop"),
    ],
)
def test_redact_url(url: str, expected: str) -> None:
    assert redact_url(url) == expected


@pytest.mark.parametrize(
    ("process", "expected"),
    [
        (
            {"name": "web", "db_pool": 10},
            {
                "DATABASE_URL": "postgresql://db/shop?connection_limit=10&pool_timeout=10",
                "DATABASE_POOL_MAX": "10",
            },
        ),
        ({"name": "cron"}, {}),
        ({"name": "cron", "db_pool": 0}, {}),
    ],
)
def test_process_env_pool(process: dict[str, Any], expected: dict[str, str]) -> None:
    assert process_env_pool(process, "postgresql://db/shop") == expected


def test_process_env_pool_through_pgbouncer() -> None:
    """The URL the app role builds when the db host runs PgBouncer: its port, and pgbouncer=true.

    Prisma then runs without prepared statements, which transaction pooling cannot keep across
    transactions; the pool size is still each process's own.
    """
    url = service_url("postgresql", "10.0.1.5", 6432, "p@ss:w/rd", "shop", "shop")
    env = process_env_pool({"name": "web", "db_pool": 10}, url, 10, True)
    assert env == {
        "DATABASE_URL": "postgresql://shop:p%40ss%3Aw%2Frd@10.0.1.5:6432/shop"
        "?connection_limit=10&pool_timeout=10&pgbouncer=true",
        "DATABASE_POOL_MAX": "10",
    }
    assert urlsplit(env["DATABASE_URL"]).port == 6432


def test_process_env_pool_gives_migrations_a_direct_url() -> None:
    direct = service_url("postgresql", "10.0.1.5", 6432, "pw", "shop", "shop_session")
    env = process_env_pool({"name": "web", "db_pool": 10}, "postgresql://db/shop", 10, True, direct)
    # As given: no pool parameters, which would make Prisma's migrate engine pool too.
    assert env["DIRECT_URL"] == "postgresql://shop:pw@10.0.1.5:6432/shop_session"
    assert process_env_pool({"name": "cron"}, "postgresql://db/shop", 10, True, direct) == {}


def test_process_env_pool_names_the_program_to_postgresql() -> None:
    env = process_env_pool({"name": "worker", "db_pool": 2}, "postgresql://db/shop", 10, False, None, "shop")
    assert env["PGAPPNAME"] == "shop-worker"
    assert (
        process_env_pool({"name": "w", "db_pool": 1}, "postgresql://db/x", app_name="a" * 70)["PGAPPNAME"]
        == "a" * 63
    )
    assert process_env_pool({"name": "cron"}, "postgresql://db/shop", app_name="shop") == {}


SECRET = "vault-value-never-shown"
DB_URL = f"postgresql://shop:{SECRET}@db1:5432/shop"


def test_app_process_env_is_the_common_environment_over_each_processs_pool() -> None:
    env = app_process_env(
        SHOP[:1] + SHOP[3:],
        "shop",
        "/srv/shop",
        20971520,
        {"FEATURE": True},
        {"SESSION_SECRET": SECRET},
        database_url=DB_URL,
        direct_url=DB_URL,
        redis_url=f"redis://:{SECRET}@redis1:6379/0",
    )
    common = {
        "NODE_ENV": "production",
        "APP_NAME": "shop",
        "UPLOAD_DIR": "/srv/shop/shared/uploads",
        "UPLOAD_MAX_BYTES": "20971520",
        "REDIS_URL": f"redis://:{SECRET}@redis1:6379/0",
        "FEATURE": True,
        "SESSION_SECRET": SECRET,
    }
    assert env == {
        "web": {
            "DATABASE_URL": f"{DB_URL}?connection_limit=10&pool_timeout=10",
            "DATABASE_POOL_MAX": "10",
            "DIRECT_URL": DB_URL,
            "PGAPPNAME": "shop-web",
            **common,
        },
        "cron": common,
    }


def test_expected_env_holds_names_and_derived_values_only() -> None:
    got = app_env_expected(
        SHOP,
        "shop",
        "/srv/shop",
        20971520,
        {"FEATURE": "app-env-value"},
        {"SESSION_SECRET": SECRET},
        True,
        True,
        pool_timeout=7,
    )
    assert got["processes"]["web"] == {
        "names": [
            "APP_NAME",
            "DATABASE_POOL_MAX",
            "DATABASE_URL",
            "DIRECT_URL",
            "FEATURE",
            "NODE_ENV",
            "PGAPPNAME",
            "REDIS_URL",
            "SESSION_SECRET",
            "UPLOAD_DIR",
            "UPLOAD_MAX_BYTES",
        ],
        "values": {
            "APP_NAME": "shop",
            "DATABASE_POOL_MAX": "10",
            # Prisma's pool, the parameters of the DATABASE_URL the model renders: never the URL.
            "DATABASE_URL?connection_limit": "10",
            "DATABASE_URL?pool_timeout": "7",
            "NODE_ENV": "production",
            "PGAPPNAME": "shop-web",
            "UPLOAD_DIR": "/srv/shop/shared/uploads",
            "UPLOAD_MAX_BYTES": "20971520",
        },
    }
    # cron has no pool: no database names; worker's pool is its own.
    assert "DATABASE_URL" not in got["processes"]["cron"]["names"]
    assert "DATABASE_URL?connection_limit" not in got["processes"]["cron"]["values"]
    assert got["processes"]["worker"]["values"]["DATABASE_POOL_MAX"] == "5"
    assert got["processes"]["worker"]["values"]["DATABASE_URL?connection_limit"] == "5"
    # With a db and a redis group and nothing set by the inventory, every one of them is derived.
    pool_params = [f"DATABASE_URL?{param}" for param in URL_POOL_SHOWN]
    assert got["values_read"] == sorted([*ENV_SHOWN_VALUES, *pool_params])
    assert SECRET not in repr(got) and "app-env-value" not in repr(got)


def test_expected_env_of_a_managed_database_and_redis_seed_000() -> None:
    """No db or redis group: DATABASE_URL and REDIS_URL come from app_secret_env (given as its names),
    in every process; no pool variable, and a value the inventory sets is never one to compare."""
    got = app_env_expected(
        SHOP,
        "shop",
        "/srv/shop",
        1048576,
        [],
        ["DATABASE_URL", "REDIS_URL", "APP_NAME"],
        has_db=False,
        has_redis=False,
    )
    for process in ("web", "cron"):
        assert got["processes"][process]["names"] == [
            "APP_NAME",
            "DATABASE_URL",
            "NODE_ENV",
            "REDIS_URL",
            "UPLOAD_DIR",
            "UPLOAD_MAX_BYTES",
        ]
    assert got["values_read"] == ["NODE_ENV", "UPLOAD_DIR", "UPLOAD_MAX_BYTES"]


def test_diagnose_reads_back_the_url_parameters_app_state_may_return() -> None:
    """app_state refuses any other parameter of a URL (it cannot import this filter): the two lists agree."""
    import app_state

    assert app_state.URL_PARAMS_SHOWN == URL_POOL_SHOWN


def test_role_defaults_budget_what_pgbouncer_is_configured_with() -> None:
    """postgresql's PgBouncer defaults: PostgreSQL must hold default + reserve (the max_db_connections
    pgbouncer.ini.j2 writes) plus the session-mode pool; the clients it accepts are max_client_conn."""
    defaults = {
        "enabled": True,
        "default_pool_size": 20,
        "reserve_pool_size": 5,
        "max_client_conn": 500,
        "session_pool_size": 2,
    }
    result = connection_budget(SHOP, 1, 100, 3, 5, defaults)
    assert result["demand"] == 27
    assert result["pgbouncer"]["client_capacity"] == 500
    assert result["pgbouncer"]["session_pool_size"] == 2
    assert "(20 + 5 + 2) x 1" in result["table"]
    assert "= demand on PostgreSQL" in result["table"]


def test_session_pool_counts_and_the_advice_leaves_room_for_it() -> None:
    over = connection_budget(
        SHOP, 2, 90, 3, 5, {**PGBOUNCER, "default_pool_size": 80, "session_pool_size": 4}
    )
    assert (over["demand"], over["fits"]) == (84, False)
    # 82 available, 4 of them for the session pool: the transaction pool may have 78.
    assert "lower pgbouncer.default_pool_size from 80 to 78 or less" in over["table"]
    assert connection_budget(SHOP, 2, pgbouncer={**PGBOUNCER, "session_pool_size": 0})["demand"] == 20


def test_filters_are_registered() -> None:
    assert set(FilterModule().filters()) == {
        "app_env_expected",
        "app_process_env",
        "connection_budget",
        "connection_demand",
        "database_url_with_pool",
        "process_env_pool",
        "pgbouncer_settings",
        "db_connect_port",
    }


def test_pgbouncer_settings_read_the_db_hosts_variables_with_the_roles_defaults() -> None:
    assert pgbouncer_settings({}) is None
    assert (
        pgbouncer_settings({"postgresql_pgbouncer_enabled": "no", "postgresql_pgbouncer_port": 7000}) is None
    )
    settings = pgbouncer_settings(
        {"postgresql_pgbouncer_enabled": "yes", "postgresql_pgbouncer_max_client_conn": 900}
    )
    assert settings == {"enabled": True, **PGBOUNCER_DEFAULTS, "max_client_conn": 900}
    # What connection_budget takes as its pgbouncer argument.
    assert parse_pgbouncer(settings) is not None
    with pytest.raises(AnsibleFilterError, match="pgbouncer_settings needs the db host's variables"):
        pgbouncer_settings(None)


def test_db_connect_port_is_pgbouncers_when_it_is_on() -> None:
    assert db_connect_port({}, 5433) == 5433
    assert db_connect_port({"postgresql_pgbouncer_enabled": True}, 5433) == 6432
    assert (
        db_connect_port({"postgresql_pgbouncer_enabled": True, "postgresql_pgbouncer_port": 6543}, 5433)
        == 6543
    )
