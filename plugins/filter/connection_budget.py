"""Connection budget filters (outage I3, seed 001).

A pool of 2 starved production; the opposite mistake, 10 per process over many processes and hosts,
exhausts PostgreSQL. The budget is the arithmetic that decides: every process's pool times its instances
times the app hosts must fit under ``max_connections`` minus the superuser reserve and an admin headroom
(or, with PgBouncer, under PgBouncer's client limit, with PgBouncer's own server pools, the transaction pool
and the session-mode one for migrations, fitting PostgreSQL).

Filters:
  connection_budget(app_processes, app_hosts=1, max_connections=100, superuser_reserved=3, admin_headroom=5,
                    pgbouncer=None) -> dict with fits, demand, available, rows and a table for people
  database_url_with_pool(url, pool, pool_timeout=10, pgbouncer=False) -> DATABASE_URL with Prisma's pool
                    parameters
  process_env_pool(process, database_url, pool_timeout=10, pgbouncer=False) -> env vars for one process
  app_process_env(app_processes, app_name, app_root, upload_max_bytes, ...) -> {process: environment}, what
                    each env file holds (the app role renders it)
  app_env_expected(app_processes, app_name, app_root, upload_max_bytes, ...) -> the names of each env file and
                    the values of its derived, non-secret variables (diagnose compares the files with them)
  pgbouncer_settings(db_host_vars) -> the db host's PgBouncer as its clients see it, or None when it is off
  db_connect_port(db_host_vars, db_port) -> the port DATABASE_URL names: PgBouncer's, else db_port
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote_plus, urlsplit, urlunsplit

from ansible.errors import AnsibleFilterError
from ansible.module_utils.parsing.convert_bool import boolean

_INT_TEXT = re.compile(r"[+-]?[0-9]+")
# Query parameters this toolkit owns in DATABASE_URL; any existing value is replaced.
_POOL_PARAMS = ("connection_limit", "pool_timeout", "pgbouncer")
# Those of them diagnose reads back from an env file's DATABASE_URL, as app_state's NAME?PARAM
# (its URL_PARAMS_SHOWN: the same two): a Prisma app's pool is connection_limit, not DATABASE_POOL_MAX.
URL_POOL_SHOWN = ("connection_limit", "pool_timeout")
_POSTGRES_SCHEMES = ("postgresql", "postgres")


@dataclass(frozen=True)
class BudgetRow:
    process: str
    db_pool: int
    instances: int
    hosts: int

    @property
    def total(self) -> int:
        return self.db_pool * self.instances * self.hosts


@dataclass(frozen=True)
class PgBouncer:
    default_pool_size: int
    reserve_pool_size: int
    max_client_conn: int
    instances: int
    # A second pool in session mode, for what transaction pooling breaks (migrations' session
    # advisory locks); its server connections count against PostgreSQL too.
    session_pool_size: int = 0

    @property
    def server_demand(self) -> int:
        return (self.default_pool_size + self.reserve_pool_size + self.session_pool_size) * self.instances

    @property
    def client_capacity(self) -> int:
        return self.max_client_conn * self.instances


def whole_number(value: Any, variable: str, minimum: int, hint: str = "") -> int:
    """Return value as an int, or raise naming the variable.

    Digit strings are accepted because ``-e name=10`` on the command line arrives as text; booleans and floats
    are refused (``True`` would silently count as 1, ``2.5`` connections do not exist).
    """
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise AnsibleFilterError(
            f"{variable} must be a whole number, got {value!r} ({type(value).__name__}). {hint}".rstrip()
        )
    if isinstance(value, str):
        if not _INT_TEXT.fullmatch(value.strip()):
            raise AnsibleFilterError(
                f"{variable} must be a whole number, got the text {value!r}. {hint}".rstrip()
            )
        value = int(value.strip())
    number = int(value)
    if number < minimum:
        raise AnsibleFilterError(f"{variable} is {number}; it must be at least {minimum}. {hint}".rstrip())
    return number


def parse_processes(app_processes: Any, app_hosts: int) -> list[BudgetRow]:
    """Validate app_processes and turn each entry into a budget row."""
    if isinstance(app_processes, (str, bytes, Mapping)) or not isinstance(app_processes, Sequence):
        raise AnsibleFilterError(
            "app_processes must be a list of processes such as [{name: web, db_pool: 10}], "
            f"got {type(app_processes).__name__}."
        )
    rows: list[BudgetRow] = []
    first_index: dict[str, int] = {}
    for index, process in enumerate(app_processes):
        where = f"app_processes[{index}]"
        if not isinstance(process, Mapping):
            raise AnsibleFilterError(f"{where} must be a dict with at least a name, got {process!r}.")
        name = process.get("name")
        if not isinstance(name, str) or not name.strip():
            raise AnsibleFilterError(f"{where}.name is missing or empty; every process needs a unique name.")
        if name in first_index:
            raise AnsibleFilterError(
                f"app_processes: the name {name!r} is used by entries {first_index[name]} and {index}; "
                "each process becomes its own supervisor program, so names must be unique."
            )
        first_index[name] = index
        where = f"app_processes[{index}] ({name})"
        db_pool = whole_number(
            process.get("db_pool", 0),
            f"{where}.db_pool",
            0,
            "Use 0 for a process that does not use the database.",
        )
        instances = whole_number(
            process.get("instances", 1), f"{where}.instances", 1, "Remove the process if it should not run."
        )
        rows.append(BudgetRow(process=name, db_pool=db_pool, instances=instances, hosts=app_hosts))
    return rows


def parse_pgbouncer(pgbouncer: Any) -> PgBouncer | None:
    """Validate the pgbouncer setting; None when PgBouncer is off."""
    if pgbouncer is None:
        return None
    if not isinstance(pgbouncer, Mapping):
        raise AnsibleFilterError(
            "pgbouncer must be null or a dict such as "
            f"{{enabled: true, default_pool_size: 20, max_client_conn: 500}}, got {pgbouncer!r}."
        )
    enabled = pgbouncer.get("enabled")
    if not isinstance(enabled, bool):
        raise AnsibleFilterError(
            f"pgbouncer.enabled must be true or false, got {enabled!r}; the budget is computed differently "
            "when PgBouncer is on, so it has to be said."
        )
    if not enabled:
        return None
    for required in ("default_pool_size", "max_client_conn"):
        if required not in pgbouncer:
            raise AnsibleFilterError(f"pgbouncer.{required} is required when pgbouncer.enabled is true.")
    return PgBouncer(
        default_pool_size=whole_number(pgbouncer["default_pool_size"], "pgbouncer.default_pool_size", 1),
        reserve_pool_size=whole_number(
            pgbouncer.get("reserve_pool_size", 0), "pgbouncer.reserve_pool_size", 0
        ),
        max_client_conn=whole_number(pgbouncer["max_client_conn"], "pgbouncer.max_client_conn", 1),
        session_pool_size=whole_number(
            pgbouncer.get("session_pool_size", 0), "pgbouncer.session_pool_size", 0
        ),
        instances=whole_number(
            pgbouncer.get("instances", 1),
            "pgbouncer.instances",
            1,
            "It is 1 for one PgBouncer in front of PostgreSQL, the number of app hosts for one on each.",
        ),
    )


# The postgresql role's PgBouncer defaults (roles/postgresql/defaults/main.yml; a unit test holds
# them equal). The app and diagnose roles read the db host's variables, which carry only what the
# inventory sets: that role's defaults are not visible outside it.
PGBOUNCER_DEFAULTS = {
    "port": 6432,
    "default_pool_size": 20,
    "reserve_pool_size": 5,
    "max_client_conn": 500,
    "session_pool_size": 2,
}


def pgbouncer_settings(db_host_vars: Any) -> dict[str, Any] | None:
    """The db host's PgBouncer (its postgresql_pgbouncer_* variables) as the app and diagnose see it.

    A dict for connection_budget's pgbouncer argument, with the port clients connect to; None when
    PgBouncer is off or there is no db host (db_host_vars empty).
    """
    if not isinstance(db_host_vars, Mapping):
        raise AnsibleFilterError(f"pgbouncer_settings needs the db host's variables, got {db_host_vars!r}.")
    if not boolean(db_host_vars.get("postgresql_pgbouncer_enabled", False), strict=False):
        return None
    return {"enabled": True} | {
        name: db_host_vars.get(f"postgresql_pgbouncer_{name}", default)
        for name, default in PGBOUNCER_DEFAULTS.items()
    }


def db_connect_port(db_host_vars: Any, db_port: Any) -> Any:
    """The port in the app's DATABASE_URL: PgBouncer's when it is on, else db_port (PostgreSQL's)."""
    pgbouncer = pgbouncer_settings(db_host_vars)
    return pgbouncer["port"] if pgbouncer else db_port


def fitting_pools(rows: Sequence[BudgetRow], available: int) -> dict[str, int] | None:
    """Smallest change to db_pool that fits: cap every process at the same number of connections.

    The biggest consumers come down first and no pool goes below 1 (seed 001: a pool of 2 was already too
    small). Returns {process: new db_pool} for the processes that change, {} when everything already fits,
    None when even a pool of 1 everywhere is too much.
    """
    users = [row for row in rows if row.db_pool > 0]

    def capped(cap: int) -> dict[str, int]:
        return {row.process: max(1, min(row.db_pool, cap // (row.instances * row.hosts))) for row in users}

    def demand(pools: Mapping[str, int]) -> int:
        return sum(pools[row.process] * row.instances * row.hosts for row in users)

    if demand(capped(0)) > available:
        return None
    low, high = 0, max((row.total for row in users), default=0)
    while low < high:
        middle = (low + high + 1) // 2
        if demand(capped(middle)) <= available:
            low = middle
        else:
            high = middle - 1
    pools = capped(low)
    return {row.process: pools[row.process] for row in users if pools[row.process] != row.db_pool}


def _align(lines: Sequence[Sequence[str]], numeric_from: int) -> list[str]:
    widths = [max(len(line[column]) for line in lines) for column in range(len(lines[0]))]
    out = []
    for line in lines:
        cells = [
            cell.rjust(widths[column]) if column >= numeric_from else cell.ljust(widths[column])
            for column, cell in enumerate(line)
        ]
        out.append("  ".join(cells).rstrip())
    return out


def _process_table(rows: Sequence[BudgetRow], label: str) -> list[str]:
    header = ["process", "db_pool", "instances", "hosts", label]
    rule = ["-" * len(cell) for cell in header]
    body = [
        [row.process, str(row.db_pool), str(row.instances), str(row.hosts), str(row.total)] for row in rows
    ]
    total = ["total", "", "", "", str(sum(row.total for row in rows))]
    return _align([header, rule, *body, rule, total], numeric_from=1)


def _pool_advice(rows: Sequence[BudgetRow], limit: int) -> list[str]:
    pools = fitting_pools(rows, limit)
    if pools is None:
        return ["  - lowering db_pool cannot fit: even 1 connection per process is over the limit."]
    lines = ["  - lower db_pool of the biggest consumers in app_processes; for example this fits:"]
    for row in rows:
        if row.process in pools:
            lines.append(f"      {row.process}: db_pool {row.db_pool} -> {pools[row.process]}")
    return lines


def budget_table(
    rows: Sequence[BudgetRow],
    max_connections: int,
    reserved: int,
    headroom: int,
    pgbouncer: PgBouncer | None,
) -> str:
    """The budget as plain text for a person: who asks for what, against which limit, and what to change."""
    available = max_connections - reserved - headroom
    app_demand = sum(row.total for row in rows)
    lines = ["PostgreSQL connection budget", ""]
    lines += _process_table(rows, "connections" if pgbouncer is None else "to PgBouncer")
    lines.append("")
    limits = [
        ["max_connections", str(max_connections)],
        ["- superuser_reserved_connections", str(reserved)],
        ["- admin headroom", str(headroom)],
        ["= available to the app", str(available)],
    ]
    if pgbouncer is None:
        server_demand = app_demand
        lines += _align([*limits, ["demand", str(app_demand)]], numeric_from=1)
    else:
        server_demand = pgbouncer.server_demand
        lines += _align(
            [
                [
                    "PgBouncer max_client_conn x instances",
                    f"{pgbouncer.max_client_conn} x {pgbouncer.instances}",
                ],
                ["= app connections PgBouncer accepts", str(pgbouncer.client_capacity)],
                ["app pools into PgBouncer", str(app_demand)],
                ["", ""],
                *limits,
                [
                    "PgBouncer (default_pool_size + reserve_pool_size + session_pool_size) x instances",
                    f"({pgbouncer.default_pool_size} + {pgbouncer.reserve_pool_size}"
                    f" + {pgbouncer.session_pool_size}) x {pgbouncer.instances}",
                ],
                ["= demand on PostgreSQL", str(server_demand)],
            ],
            numeric_from=1,
        )
    lines.append("")
    problems: list[str] = []
    if pgbouncer is not None and app_demand > pgbouncer.client_capacity:
        over = app_demand - pgbouncer.client_capacity
        problems += [
            f"OVER BUDGET by {over}: the app pools ask PgBouncer for {app_demand} connections, "
            f"it accepts {pgbouncer.client_capacity}. Change one of:",
            *_pool_advice(rows, pgbouncer.client_capacity),
            f"  - raise pgbouncer.max_client_conn to at least {-(-app_demand // pgbouncer.instances)}",
        ]
    if server_demand > available:
        if problems:
            problems.append("")
        over = server_demand - available
        needed = server_demand + reserved + headroom
        raise_line = (
            f"  - raise max_connections from {max_connections} to at least {needed} "
            "(each connection costs PostgreSQL memory: check work_mem and shared_buffers)"
        )
        if pgbouncer is None:
            problems += [
                f"OVER BUDGET by {over}: the app asks for {server_demand} connections, "
                f"PostgreSQL can give it {available}. Change one of:",
                *_pool_advice(rows, available),
                raise_line,
                "  - enable PgBouncer (pgbouncer.enabled: true) so the app pools share a smaller server pool",
            ]
        else:
            fitting_size = (
                available // pgbouncer.instances - pgbouncer.reserve_pool_size - pgbouncer.session_pool_size
            )
            problems += [
                f"OVER BUDGET by {over}: PgBouncer's server pools ask PostgreSQL for {server_demand} "
                f"connections, it can give {available}. Change one of:",
                f"  - lower pgbouncer.default_pool_size from {pgbouncer.default_pool_size} "
                f"to {fitting_size} or less"
                if fitting_size >= 1
                else "  - lower pgbouncer.reserve_pool_size, session_pool_size or instances",
                raise_line,
            ]
    if problems:
        lines += problems
    else:
        spare = available - server_demand
        lines.append(f"FITS: {server_demand} of {available} connections, {spare} to spare.")
    return "\n".join(lines)


def connection_budget(
    app_processes: Any,
    app_hosts: Any = 1,
    max_connections: Any = 100,
    superuser_reserved: Any = 3,
    admin_headroom: Any = 5,
    pgbouncer: Any = None,
) -> dict[str, Any]:
    """Check that every process's pool, on every app host, fits the database.

    Without PgBouncer, demand is the sum of db_pool x instances x app_hosts and it must fit under
    max_connections - superuser_reserved - admin_headroom. With PgBouncer on, that sum must fit under
    max_client_conn x instances, and demand (on PostgreSQL) is PgBouncer's server pool.
    """
    hosts = whole_number(
        app_hosts,
        "app_hosts",
        1,
        "It is the number of hosts that run the app; check the inventory's app group.",
    )
    maximum = whole_number(max_connections, "max_connections", 1)
    reserved = whole_number(superuser_reserved, "superuser_reserved", 0)
    headroom = whole_number(admin_headroom, "admin_headroom", 0)
    if reserved >= maximum:
        raise AnsibleFilterError(
            f"superuser_reserved ({reserved}) must be less than max_connections ({maximum}); "
            "PostgreSQL refuses to start otherwise."
        )
    available = maximum - reserved - headroom
    if available < 0:
        raise AnsibleFilterError(
            f"superuser_reserved ({reserved}) + admin_headroom ({headroom}) is more than max_connections "
            f"({maximum}): nothing is left for the app. Lower admin_headroom or raise max_connections."
        )
    rows = parse_processes(app_processes, hosts)
    bouncer = parse_pgbouncer(pgbouncer)
    app_demand = sum(row.total for row in rows)
    demand = app_demand if bouncer is None else bouncer.server_demand
    fits = demand <= available and (bouncer is None or app_demand <= bouncer.client_capacity)
    result: dict[str, Any] = {
        "fits": fits,
        "demand": demand,
        "available": available,
        "over_by": max(0, demand - available),
        "max_connections": maximum,
        "reserved": reserved,
        "headroom": headroom,
        "app_hosts": hosts,
        "rows": [
            {
                "process": row.process,
                "db_pool": row.db_pool,
                "instances": row.instances,
                "hosts": row.hosts,
                "total": row.total,
            }
            for row in rows
        ],
        "pgbouncer": None,
        "table": budget_table(rows, maximum, reserved, headroom, bouncer),
    }
    if bouncer is not None:
        result["pgbouncer"] = {
            "instances": bouncer.instances,
            "default_pool_size": bouncer.default_pool_size,
            "reserve_pool_size": bouncer.reserve_pool_size,
            "max_client_conn": bouncer.max_client_conn,
            "session_pool_size": bouncer.session_pool_size,
            "client_demand": app_demand,
            "client_capacity": bouncer.client_capacity,
            "client_fits": app_demand <= bouncer.client_capacity,
        }
    return result


def redact_url(url: str) -> str:
    """The URL with its password replaced, for error messages (DATABASE_URL carries a secret)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    userinfo, _, hostinfo = parts.netloc.rpartition("@")
    user = userinfo.split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{hostinfo}"))


def database_url_with_pool(url: Any, pool: Any, pool_timeout: Any = 10, pgbouncer: Any = False) -> str:
    """Set Prisma's connection_limit and pool_timeout (and pgbouncer=true) in a PostgreSQL URL.

    Other query parameters, the password and the fragment are kept byte for byte; only this toolkit's own
    parameters are replaced, at their first position, or appended.
    """
    if not isinstance(url, str) or not url.strip():
        raise AnsibleFilterError("database_url_with_pool: the database URL is empty or not a string.")
    try:
        parts = urlsplit(url.strip())
    except ValueError as error:
        raise AnsibleFilterError(
            f"database_url_with_pool: cannot parse the database URL ({error})."
        ) from None
    if parts.scheme not in _POSTGRES_SCHEMES:
        raise AnsibleFilterError(
            f"database_url_with_pool: the database URL {redact_url(url)!r} must start with postgresql:// "
            "(Prisma's pool settings only apply to PostgreSQL)."
        )
    size = whole_number(
        pool, "pool (the process's db_pool)", 1, "A process with db_pool 0 has no database URL."
    )
    timeout = whole_number(
        pool_timeout, "pool_timeout", 0, "Prisma waits forever at 0; 10 seconds is its default."
    )
    if not isinstance(pgbouncer, bool):
        raise AnsibleFilterError(
            f"database_url_with_pool: pgbouncer must be true or false, got {pgbouncer!r}."
        )
    wanted = {"connection_limit": str(size), "pool_timeout": str(timeout)}
    if pgbouncer:
        wanted["pgbouncer"] = "true"
    kept: list[str] = []
    placed: set[str] = set()
    for pair in parts.query.split("&") if parts.query else []:
        key = unquote_plus(pair.split("=", 1)[0])
        if key not in _POOL_PARAMS:
            kept.append(pair)
        elif key in wanted and key not in placed:
            kept.append(f"{key}={wanted[key]}")
            placed.add(key)
    kept += [f"{key}={value}" for key, value in wanted.items() if key not in placed]
    return urlunsplit(parts._replace(query="&".join(kept)))


def process_env_pool(
    process: Any,
    database_url: Any,
    pool_timeout: Any = 10,
    pgbouncer: Any = False,
    direct_url: Any = None,
    app_name: Any = None,
) -> dict[str, str]:
    """The pool variables for one process's environment; {} for a process with db_pool 0.

    DATABASE_URL carries Prisma's connection_limit; DATABASE_POOL_MAX is for pg, drizzle and postgres.js,
    which take the pool size from code (``max: Number(process.env.DATABASE_POOL_MAX)``). DIRECT_URL,
    when given, is where migrations connect (Prisma's ``directUrl``): a connection that keeps its
    session, which PgBouncer's transaction pool behind DATABASE_URL does not. PGAPPNAME, with
    app_name, is ``<app>-<process>``: libpq and node-postgres send it as the application_name that
    pg_stat_activity shows, so diagnose counts connections per program (I3) when the app names none.
    """
    if not isinstance(process, Mapping) or not isinstance(process.get("name"), str):
        raise AnsibleFilterError(
            f"process_env_pool: expected one app_processes entry with a name, got {process!r}."
        )
    name = process["name"]
    db_pool = whole_number(process.get("db_pool", 0), f"app_processes ({name}).db_pool", 0)
    if db_pool == 0:
        return {}
    env = {
        "DATABASE_URL": database_url_with_pool(database_url, db_pool, pool_timeout, pgbouncer),
        "DATABASE_POOL_MAX": str(db_pool),
    }
    if direct_url:
        env["DIRECT_URL"] = str(direct_url)
    if app_name:
        # PostgreSQL keeps the first 63 bytes of an application_name.
        env["PGAPPNAME"] = f"{app_name}-{name}"[:63]
    return env


# The variables of an env file whose values diagnose may read and show (app_state's env_values):
# derived from the app model, and no secret. DATABASE_URL, DIRECT_URL and REDIS_URL carry passwords;
# the values of app_env and app_secret_env are the inventory's, and never shown, whatever their name.
# The budget's pool size and timeout in DATABASE_URL (database_url_with_pool) are read as its
# parameters only (URL_POOL_SHOWN), never the URL.
ENV_SHOWN_VALUES = (
    "APP_NAME",
    "DATABASE_POOL_MAX",
    "NODE_ENV",
    "PGAPPNAME",
    "UPLOAD_DIR",
    "UPLOAD_MAX_BYTES",
)
# What app_env_expected gives app_process_env for the URLs: they decide which names a file holds, and
# their values are never compared, so diagnose needs neither the addresses nor the passwords.
_NAMES_ONLY_URL = "postgresql://names-only.invalid/names-only"


def app_process_env(
    app_processes: Any,
    app_name: Any,
    app_root: Any,
    upload_max_bytes: Any,
    app_env: Any = None,
    app_secret_env: Any = None,
    database_url: Any = "",
    direct_url: Any = "",
    redis_url: Any = "",
    pool_timeout: Any = 10,
    pgbouncer: Any = False,
) -> dict[str, dict[str, Any]]:
    """{process name: environment}: what roles/app/templates/process.env.j2 writes into each env file.

    Every process gets NODE_ENV, APP_NAME, UPLOAD_DIR and UPLOAD_MAX_BYTES (``app_max_body_size`` in
    bytes, I4), REDIS_URL when there is a redis host (``redis_url``), then app_env and app_secret_env;
    with a database (``database_url``: empty without a db group, a managed database's DATABASE_URL then
    comes from app_secret_env) each process with a db_pool gets its pool from the budget
    (process_env_pool), under that common environment.
    """
    if isinstance(app_processes, (str, bytes, Mapping)) or not isinstance(app_processes, Sequence):
        raise AnsibleFilterError(f"app_process_env: app_processes must be a list, got {app_processes!r}.")
    common: dict[str, Any] = {
        "NODE_ENV": "production",
        "APP_NAME": app_name,
        "UPLOAD_DIR": f"{app_root}/shared/uploads",
        "UPLOAD_MAX_BYTES": str(upload_max_bytes),
    }
    if redis_url:
        common["REDIS_URL"] = redis_url
    for extra in (app_env, app_secret_env):
        if extra is not None and not isinstance(extra, Mapping):
            raise AnsibleFilterError(f"app_env and app_secret_env must be dicts, got {type(extra).__name__}.")
        common.update(extra or {})
    environments = {}
    for process in app_processes:
        if not isinstance(process, Mapping) or not isinstance(process.get("name"), str):
            raise AnsibleFilterError(f"app_process_env: every process needs a name, got {process!r}.")
        pool = (
            process_env_pool(process, database_url, pool_timeout, pgbouncer, direct_url, app_name)
            if database_url
            else {}
        )
        environments[process["name"]] = {**pool, **common}
    return environments


def app_env_expected(
    app_processes: Any,
    app_name: Any,
    app_root: Any,
    upload_max_bytes: Any,
    app_env: Any = None,
    app_secret_env: Any = None,
    has_db: Any = False,
    has_redis: Any = False,
    pool_timeout: Any = 10,
) -> dict[str, Any]:
    """What diagnose expects of each env file: the names app_process_env renders for the process, and
    the values of those of ENV_SHOWN_VALUES that the model derives (not set by app_env or app_secret_env).
    Of a DATABASE_URL the model derives, the pool parameters too (URL_POOL_SHOWN, as
    ``DATABASE_URL?connection_limit``): their values only, never the URL.

    app_env and app_secret_env may be given as dicts or as their names: only the names are used, so no
    value of the inventory reaches the result. ``values_read`` is every name whose value diagnose may
    read on the host (app_state's env_values).
    """
    inventory_names = set()
    for extra in (app_env, app_secret_env):
        if extra is not None and (isinstance(extra, (str, bytes)) or not isinstance(extra, Iterable)):
            raise AnsibleFilterError(
                "app_env_expected: app_env and app_secret_env must be dicts or lists of names, "
                f"got {type(extra).__name__}."
            )
        inventory_names.update(str(name) for name in extra or ())
    with_db = boolean(has_db, strict=False)
    environments = app_process_env(
        app_processes,
        app_name,
        app_root,
        upload_max_bytes,
        dict.fromkeys(inventory_names, ""),
        database_url=_NAMES_ONLY_URL if with_db else "",
        direct_url=_NAMES_ONLY_URL if with_db else "",
        redis_url=_NAMES_ONLY_URL if boolean(has_redis, strict=False) else "",
        pool_timeout=pool_timeout,
    )
    processes = {
        process: {
            "names": sorted(env),
            "values": {
                name: str(env[name])
                for name in ENV_SHOWN_VALUES
                if name in env and name not in inventory_names
            }
            | _url_pool_values(env, inventory_names),
        }
        for process, env in environments.items()
    }
    shown = sorted({name for expected in processes.values() for name in expected["values"]})
    return {"processes": processes, "values_read": shown}


def _url_pool_values(env: Mapping[str, Any], inventory_names: set[str]) -> dict[str, str]:
    """The pool parameters of the DATABASE_URL the model derives for a process, as app_state names them."""
    if "DATABASE_URL" not in env or "DATABASE_URL" in inventory_names:
        return {}
    query = parse_qs(urlsplit(str(env["DATABASE_URL"])).query)
    return {f"DATABASE_URL?{param}": query[param][-1] for param in URL_POOL_SHOWN if param in query}


def connection_demand(app_processes: Any, app_hosts: Any = 1) -> int:
    """The connections the app's pools open at most, over every instance on every web host: what a
    database whose limit shipshape cannot read (a managed one, no db group) must still allow."""
    hosts = whole_number(app_hosts, "app_hosts", 1)
    return sum(row.total for row in parse_processes(app_processes, hosts))


class FilterModule:
    """shipshape connection budget filters."""

    def filters(self) -> dict[str, Any]:
        return {
            "connection_budget": connection_budget,
            "connection_demand": connection_demand,
            "database_url_with_pool": database_url_with_pool,
            "process_env_pool": process_env_pool,
            "app_process_env": app_process_env,
            "app_env_expected": app_env_expected,
            "pgbouncer_settings": pgbouncer_settings,
            "db_connect_port": db_connect_port,
        }
