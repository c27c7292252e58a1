"""diagnose.yml's parsers: what a host prints, as data. Pure functions, parametrized by pytest.

diagnose.yml collects with read-only commands and hands their text here: ``supervisorctl status`` and
supervisord's log (supervisor keeps no restart counter, its log does), ``nginx -T`` (every file nginx reads,
so the body limit and upstreams nginx really uses are found, whichever file sets them), ``df``, Redis's
INFO, PgBouncer's SHOW POOLS and SHOW DATABASES, and the env files (their names, and the values of the
derived, non-secret variables only: app_state returns no other). The findings are made from this data by
the diagnose filter (diagnose.py).
"""

from __future__ import annotations

import csv
import datetime
import fnmatch
import json
import posixpath
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ansible.errors import AnsibleFilterError

NGINX_DEFAULT_BODY_SIZE = "1m"
SIZE_RE = re.compile(r"^([0-9]+)([kKmMgG]?)$")
SIZE_FACTORS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}
LOOPBACK_V4 = "127.0.0.1"
# supervisorctl status: "shop:shop-web   RUNNING   pid 812, uptime 0:03:10"
STATUS_RE = re.compile(r"^(?P<name>\S+)\s+(?P<state>[A-Z]+)\s*(?P<description>.*)$")
UPTIME_RE = re.compile(
    r"pid (?P<pid>\d+), uptime (?:(?P<days>\d+) days?, )?(?P<h>\d+):(?P<m>\d\d):(?P<s>\d\d)"
)
# supervisord.log: "2025-11-22 23:10:01,123 INFO exited: shop-web (exit status 1; not expected)"
LOG_TIME_RE = re.compile(r"^(?P<time>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)")
EXITED_RE = re.compile(r"exited: (?P<name>\S+) \((?P<how>[^)]*)\)")
GAVE_UP_RE = re.compile(r"gave up: (?P<name>\S+) entered FATAL state")
# "stopped: shop-web (terminated by SIGTERM)": supervisor stopped it, as asked (deploy and recover do).
STOPPED_RE = re.compile(r"stopped: (?P<name>\S+) \(")
SPAWNED_RE = re.compile(r"spawned: '(?P<name>[^']+)'")
SUPERVISORD_START = "supervisord started with pid"
NO_SIGNS: Mapping[str, Any] = {"unexpected_exits": 0, "recent_exits": 0, "gave_up": False, "last_exit": None}
# diagnose's PgBouncer probe prints each SHOW table as CSV after a "[name]" line (psql's \echo).
PGBOUNCER_SECTION_RE = re.compile(r"^\[(?P<name>[a-z_]+)\]$")
# The admin console's own pseudo-database: its pool is diagnose's probe, not the app's.
PGBOUNCER_ADMIN_DATABASE = "pgbouncer"
PGBOUNCER_COUNTS = ("cl_active", "cl_waiting", "sv_active", "sv_idle", "sv_used", "sv_tested", "sv_login")
# What psql says when nothing listens on PgBouncer's socket, or nothing answers on it in time.
PGBOUNCER_DOWN_SIGNS = ("no such file or directory", "connection refused", "timeout expired")


def size_to_bytes(size: Any) -> int:
    match = SIZE_RE.match(str(size).strip())
    if not match:
        raise ValueError(f"{size!r} is not an nginx size")
    return int(match.group(1)) * SIZE_FACTORS[match.group(2).lower()]


# supervisor


def parse_supervisor_status(text: str) -> list[dict[str, Any]]:
    """Each line of ``supervisorctl status GROUP:``: name, group, program, state, pid, uptime, description."""
    programs = []
    for line in text.splitlines():
        match = STATUS_RE.match(line.strip())
        if not match or match.group("state") == "ERROR" or "no such" in line:
            continue
        full = match.group("name")
        group, _, program = full.rpartition(":")
        uptime = UPTIME_RE.search(match.group("description"))
        seconds = None
        if uptime:
            seconds = (
                int(uptime.group("days") or 0) * 86400
                + int(uptime.group("h")) * 3600
                + int(uptime.group("m")) * 60
                + int(uptime.group("s"))
            )
        programs.append(
            {
                "name": full,
                "group": group or None,
                "program": program,
                "state": match.group("state"),
                "pid": int(uptime.group("pid")) if uptime else None,
                "uptime": seconds,
                "description": match.group("description").strip(),
            }
        )
    return programs


def parse_log_time(line: str) -> datetime.datetime | None:
    match = LOG_TIME_RE.match(line)
    if not match:
        return None
    return datetime.datetime.strptime(match.group("time"), "%Y-%m-%d %H:%M:%S")


def parse_supervisord_log(text: str, now: str | None = None, window: int = 3600) -> dict[str, dict[str, Any]]:
    """Crash signs per program since supervisord last started, from its log.

    supervisor keeps no restart counter: every unexpected exit is an ``exited: NAME (...; not expected)``
    line, and giving up is ``gave up: NAME entered FATAL state``. ``now`` is the host's local time as
    ``YYYY-MM-DD HH:MM:SS`` (the log's clock); ``recent_exits`` counts the exits in the last ``window`` s.
    A program's counters start again where it was stopped (``stopped: NAME``, as deploy and recover stop
    it), or started again after it gave up (only a person or a playbook starts a FATAL program): the
    exits before are of a run that ended, and a recovered program would look like a crash loop for an hour.
    """
    lines = text.splitlines()
    for index in range(len(lines) - 1, -1, -1):
        if SUPERVISORD_START in lines[index]:
            lines = lines[index + 1 :]
            break
    reference = datetime.datetime.strptime(now, "%Y-%m-%d %H:%M:%S") if now else None
    signs: dict[str, dict[str, Any]] = {}

    def entry(name: str) -> dict[str, Any]:
        return signs.setdefault(name, dict(NO_SIGNS))

    for line in lines:
        stopped, spawned = STOPPED_RE.search(line), SPAWNED_RE.search(line)
        started = stopped or spawned
        if started and (stopped or signs.get(started.group("name"), NO_SIGNS)["gave_up"]):
            signs[started.group("name")] = dict(NO_SIGNS)
            continue
        exited = EXITED_RE.search(line)
        if exited and "not expected" in exited.group("how"):
            sign = entry(exited.group("name"))
            sign["unexpected_exits"] += 1
            when = parse_log_time(line)
            sign["last_exit"] = f"{exited.group('how')} at {when}" if when else exited.group("how")
            if reference is None or (when is not None and (reference - when).total_seconds() <= window):
                sign["recent_exits"] += 1
            continue
        gave_up = GAVE_UP_RE.search(line)
        if gave_up:
            entry(gave_up.group("name"))["gave_up"] = True
    return signs


def supervisor_programs(
    status_text: str,
    log_text: str,
    expected: Sequence[Mapping[str, Any]],
    now: str | None = None,
    window: int = 3600,
) -> list[dict[str, Any]]:
    """One entry per program the app model declares, with what supervisor says about it."""
    status = {entry["program"]: entry for entry in parse_supervisor_status(status_text)}
    signs = parse_supervisord_log(log_text, now, window)
    programs = []
    for declared in expected:
        name = declared["program"]
        found = status.get(name)
        sign = signs.get(name, NO_SIGNS)
        programs.append(
            {
                "program": name,
                "process": declared.get("process"),
                "port": declared.get("port"),
                "configured": found is not None,
                "state": found["state"] if found else "MISSING",
                "pid": found["pid"] if found else None,
                "uptime": found["uptime"] if found else None,
                "description": found["description"] if found else "",
                **sign,
            }
        )
    return programs


# nginx


def tokenize_nginx(text: str) -> list[str]:
    """nginx config tokens: words (quotes removed), ';', '{' and '}'. Comments are dropped."""
    tokens: list[str] = []
    index, length = 0, len(text)
    while index < length:
        char = text[index]
        if char.isspace():
            index += 1
        elif char == "#":
            while index < length and text[index] != "\n":
                index += 1
        elif char in ";{}":
            tokens.append(char)
            index += 1
        elif char in "\"'":
            end = index + 1
            word = []
            while end < length and text[end] != char:
                if text[end] == "\\" and end + 1 < length:
                    end += 1
                word.append(text[end])
                end += 1
            tokens.append("".join(word))
            index = end + 1
        else:
            end = index
            while end < length and not text[end].isspace() and text[end] not in ";{}\"'":
                if text[end] == "#" and end > index:
                    break
                end += 1
            tokens.append(text[index:end])
            index = end
    return tokens


@dataclass
class Directive:
    name: str
    args: list[str]
    block: list[Directive] | None = None
    file: str = ""


def parse_nginx_block(tokens: list[str], file: str, position: int = 0) -> tuple[list[Directive], int]:
    """Directives up to the matching '}' (or the end), and the position after it."""
    directives: list[Directive] = []
    words: list[str] = []
    while position < len(tokens):
        token = tokens[position]
        position += 1
        if token == ";":
            if words:
                directives.append(Directive(words[0], words[1:], None, file))
            words = []
        elif token == "{":
            block, position = parse_nginx_block(tokens, file, position)
            directives.append(Directive(words[0] if words else "", words[1:], block, file))
            words = []
        elif token == "}":
            return directives, position
        else:
            words.append(token)
    return directives, position


def split_nginx_dump(text: str) -> list[tuple[str, str]]:
    """``nginx -T`` output as [(path, content)], in the order nginx read them."""
    files: list[tuple[str, str]] = []
    marker = re.compile(r"^# configuration file (?P<path>.+):$", re.MULTILINE)
    matches = list(marker.finditer(text))
    for index, match in enumerate(matches):
        end = matches[index + 1].start() if index + 1 < len(matches) else len(text)
        files.append((match.group("path"), text[match.end() : end]))
    return files


def _expand(
    directives: list[Directive], files: Mapping[str, list[Directive]], prefix: str, depth: int = 0
) -> None:
    """Replace include directives by the directives of the files they name (as nginx -T listed them)."""
    if depth > 10:
        return
    index = 0
    while index < len(directives):
        directive = directives[index]
        if directive.name == "include" and directive.block is None and directive.args:
            pattern = directive.args[0]
            if not pattern.startswith("/"):
                pattern = posixpath.join(prefix, pattern)
            included: list[Directive] = []
            for path in sorted(files):
                if fnmatch.fnmatchcase(path, pattern):
                    copy = [Directive(d.name, list(d.args), d.block, d.file) for d in files[path]]
                    _expand(copy, files, prefix, depth + 1)
                    included += copy
            directives[index : index + 1] = included
            index += len(included)
            continue
        if directive.block is not None:
            _expand(directive.block, files, prefix, depth + 1)
        index += 1


def parse_nginx_dump(text: str) -> list[Directive]:
    """The main configuration with every include expanded."""
    files = split_nginx_dump(text)
    if not files:
        return []
    parsed = {path: parse_nginx_block(tokenize_nginx(content), path)[0] for path, content in files}
    main_path = files[0][0]
    main = parsed[main_path]
    _expand(main, parsed, posixpath.dirname(main_path))
    return main


def _first(directives: Sequence[Directive], name: str) -> Directive | None:
    return next((d for d in directives if d.name == name and d.block is None), None)


def _host_port(address: str) -> tuple[str, int | None]:
    """'127.0.0.1:3000' -> ('127.0.0.1', 3000), '[::1]:3000' -> ('::1', 3000), 'localhost' -> (.., 80)."""
    if address.startswith("unix:"):
        return address, None
    if address.startswith("["):
        host, _, rest = address[1:].partition("]")
        port = rest.lstrip(":")
        return host, int(port) if port.isdigit() else 80
    host, _, port = address.rpartition(":")
    if not host:
        return address, 80
    return host, int(port) if port.isdigit() else None


def _size_bytes(size: str) -> int | None:
    try:
        return size_to_bytes(size)
    except ValueError:
        return None


def nginx_app_view(text: str, ports: Sequence[int]) -> dict[str, Any]:
    """What nginx does with the app's ports: each location that proxies to one, its body limit, its servers.

    The body limit of a location is its own client_max_body_size, else its server's, else http's, else
    nginx's default of 1m (``limit_from`` says which). A location proxies to an app port when proxy_pass
    names an upstream with a server on that port, or names host:port itself. ``other_hosts`` lists the
    servers that are not 127.0.0.1 (``localhost`` may resolve to ::1: seed 002, I7).
    """
    main = parse_nginx_dump(text)
    http = next((d for d in main if d.name == "http" and d.block is not None), None)
    if http is None:
        return {"parsed": False, "locations": [], "routed_ports": []}
    upstreams: dict[str, list[str]] = {}
    for directive in http.block or []:
        if directive.name == "upstream" and directive.block is not None and directive.args:
            upstreams[directive.args[0]] = [
                d.args[0] for d in directive.block if d.name == "server" and d.args
            ]
    wanted = set(ports)
    locations: list[dict[str, Any]] = []

    def limit_of(block: Sequence[Directive], level: str, inherited: tuple[str, str]) -> tuple[str, str]:
        own = _first(block, "client_max_body_size")
        return (own.args[0], level) if own and own.args else inherited

    def visit(
        block: Sequence[Directive], inherited: tuple[str, str], server: Directive, path: str, level: str
    ) -> None:
        limit = limit_of(block, level, inherited)
        proxy = _first(block, "proxy_pass")
        if proxy and proxy.args:
            target = re.sub(r"^[a-z]+://", "", proxy.args[0]).split("/", 1)[0]
            servers = upstreams.get(target, [target])
            hosts = [_host_port(server_address) for server_address in servers]
            app_ports = sorted({port for _, port in hosts if port in wanted})
            if app_ports:
                names = _first(server.block or [], "server_name")
                locations.append(
                    {
                        "location": path,
                        "server_name": " ".join(names.args) if names else "",
                        "listen": [" ".join(d.args) for d in server.block or [] if d.name == "listen"],
                        "file": server.file,
                        "client_max_body_size": limit[0],
                        "client_max_body_bytes": _size_bytes(limit[0]),
                        "limit_from": limit[1],
                        "proxy_pass": proxy.args[0],
                        "servers": servers,
                        "other_hosts": sorted({host for host, _ in hosts if host != LOOPBACK_V4}),
                        "ports": app_ports,
                    }
                )
        for child in block:
            if child.name == "location" and child.block is not None:
                visit(child.block, limit, server, " ".join(child.args), "location")

    http_limit = limit_of(http.block or [], "http", (NGINX_DEFAULT_BODY_SIZE, "default"))
    for server in (d for d in http.block or [] if d.name == "server" and d.block is not None):
        visit(server.block or [], http_limit, server, "(server)", "server")
    routed = sorted({port for location in locations for port in location["ports"]})
    return {"parsed": True, "locations": locations, "routed_ports": routed}


# Redis


REDIS_FIELDS = (
    "redis_version",
    "uptime_in_seconds",
    "used_memory",
    "used_memory_human",
    "maxmemory",
    "maxmemory_human",
    "maxmemory_policy",
    "aof_enabled",
    "rdb_last_bgsave_status",
    "aof_last_write_status",
    "connected_clients",
    "evicted_keys",
)


def parse_redis_info(text: str) -> dict[str, str]:
    """The fields of Redis's INFO that diagnose reports (never anything secret: INFO has no passwords)."""
    info = {}
    for line in text.splitlines():
        key, sep, value = line.strip().partition(":")
        if sep and key in REDIS_FIELDS:
            info[key] = value
    return info


# PgBouncer


def parse_pgbouncer_show(text: str) -> dict[str, list[dict[str, str]]]:
    """psql --csv output of SHOW commands, each table after a ``[name]`` line: {name: rows}."""
    sections: dict[str, list[str]] = {}
    lines: list[str] | None = None
    for line in text.splitlines():
        marker = PGBOUNCER_SECTION_RE.match(line.strip())
        if marker:
            lines = sections.setdefault(marker.group("name"), [])
        elif lines is not None and line.strip():
            lines.append(line)
    return {name: list(csv.DictReader(rows)) for name, rows in sections.items()}


def _count(row: Mapping[str, Any], key: str) -> int:
    try:
        return int(row.get(key) or 0)
    except ValueError:
        return 0


def pgbouncer_pools(text: str) -> list[dict[str, Any]] | None:
    """Each pool of SHOW POOLS but the admin console's, with its database's sizes from SHOW DATABASES.

    ``maxwait`` is the seconds the oldest waiting client has waited (PgBouncer's maxwait and maxwait_us
    together); ``pool_size`` and ``reserve_pool`` are the server connections the pool may open, and
    ``max_db_connections`` caps every pool of the database together (0: no cap). None when the text
    holds no SHOW POOLS table: psql did not get one.
    """
    tables = parse_pgbouncer_show(text)
    if "pools" not in tables:
        return None
    databases = {row.get("name"): row for row in tables.get("databases", [])}
    pools = []
    for row in tables["pools"]:
        name = row.get("database") or ""
        if name == PGBOUNCER_ADMIN_DATABASE:
            continue
        database = databases.get(name, {})
        pools.append(
            {
                "database": name,
                "user": row.get("user") or "",
                "pool_mode": row.get("pool_mode") or database.get("pool_mode") or "",
                **{key: _count(row, key) for key in PGBOUNCER_COUNTS},
                "maxwait": _count(row, "maxwait") + _count(row, "maxwait_us") / 1_000_000,
                "pool_size": _count(database, "pool_size") if database else None,
                # PgBouncer 1.24 (Debian 13) calls the column reserve_pool_size; 1.18 reserve_pool.
                "reserve_pool": _count(
                    database, "reserve_pool_size" if "reserve_pool_size" in database else "reserve_pool"
                )
                if database
                else None,
                "max_db_connections": _count(database, "max_connections") if database else None,
            }
        )
    return pools


# Everything together: the results diagnose's tasks registered, as the facts diagnose_findings reads.


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except (TypeError, ValueError):
        return None


def _error(result: Mapping[str, Any]) -> str:
    """What a failed command said, last lines first-class: for evidence."""
    text = "\n".join(part for part in (result.get("stderr"), result.get("stdout"), result.get("msg")) if part)
    lines = [line for line in text.splitlines() if line.strip()]
    said = " / ".join(lines[-3:]) or f"exit status {result.get('rc')}"
    # A delegated probe to a host Ansible cannot reach (ignore_unreachable): the service's host is down.
    return f"its host is unreachable: {said}" if result.get("unreachable") else said


def _ran(result: Any) -> bool:
    """Whether the task ran; one that could not even start (become failed) ran and failed."""
    return isinstance(result, Mapping) and bool(result) and not result.get("skipped")


def collect_supervisor(state: Mapping[str, Any], app: Mapping[str, Any]) -> dict[str, Any]:
    status = state.get("supervisor") or {}
    text = str(status.get("stdout", ""))
    answered = "no such group" in text or any(
        STATUS_RE.match(line.strip()) and ":" in line.split()[0] for line in text.splitlines() if line.strip()
    )
    if not answered:
        return {"ok": False, "error": _error(status)}
    log = state.get("supervisord_log") or {}
    programs = supervisor_programs(
        text,
        "\n".join(log.get("lines") or []),
        app.get("programs", []),
        log.get("now"),
        int(app.get("restart_window", 3600)),
    )
    return {"ok": True, "programs": programs, "log_error": log.get("error")}


def collect_listeners(raw: Mapping[str, Any]) -> dict[str, Any]:
    result = raw.get("listeners") or {}
    if result.get("failed") or "ports" not in result:
        return {"error": result.get("msg") or "app_listeners did not run"}
    return {key: result.get(key, []) for key in ("ports", "orphans", "problems", "unreadable_pids")}


def collect_release(state: Mapping[str, Any], app: Mapping[str, Any]) -> dict[str, Any]:
    current = state.get("current") or {}
    if not current.get("exists"):
        return {"current": ""}
    release = state.get("release") or {}
    record = release.get("record")
    return {
        "current": current.get("release") or "",
        "target": current.get("target"),
        "record": isinstance(record, Mapping),
        "record_build_id": record.get("build_id") if isinstance(record, Mapping) else None,
        "record_built_at": record.get("built_at") if isinstance(record, Mapping) else None,
        "next_build_id": release.get("build_id"),
        "node_modules": bool(release.get("node_modules")),
        "prisma_schema": release.get("prisma_schema_sha1") is not None,
        "prisma_schema_sha": release.get("prisma_schema_sha1"),
        "prisma_schema_path": app.get("prisma_schema", "prisma/schema.prisma"),
        "prisma_schema_folder": bool(release.get("prisma_schema_folder")),
        "prisma_client_dir": app.get("prisma_client_dir", "node_modules/.prisma/client"),
        "prisma_client_entry": bool(release.get("prisma_client_dir")),
        "prisma_client_sha": release.get("prisma_client_schema_sha1"),
    }


def collect_env(state: Mapping[str, Any], app: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Each env file as app_state read it, beside what the app role renders for its process
    (app.expected_env, from the app_env_expected filter): ``expected_names``, and ``expected_values``
    for the derived, non-secret variables whose values app_state returned."""
    expected = app.get("expected_env") or {}
    entries = []
    for env in state.get("env") or []:
        model = expected.get(env.get("process")) or {}
        entries.append(
            {
                **env,
                "expected_names": list(model.get("names") or []),
                "expected_values": dict(model.get("values") or {}),
            }
        )
    return entries


def collect_health(raw: Mapping[str, Any]) -> list[dict[str, Any]]:
    checks = []
    for result in (raw.get("health") or {}).get("results", []):
        if result.get("skipped"):
            continue
        body = result.get("json")
        if body is None and result.get("content"):
            body = _json(result["content"])
        status = result.get("status")
        checks.append(
            {
                "process": (result.get("item") or {}).get("name"),
                "url": result.get("url") or result.get("invocation", {}).get("module_args", {}).get("url"),
                "status": status if isinstance(status, int) and status > 0 else None,
                "json": body if isinstance(body, Mapping) else None,
                "error": None if isinstance(status, int) and status > 0 else result.get("msg"),
            }
        )
    return checks


def collect_nginx(state: Mapping[str, Any], app: Mapping[str, Any]) -> dict[str, Any]:
    result = state.get("nginx") or {}
    ok = result.get("rc") == 0
    view = nginx_app_view(str(result.get("stdout", "")), app.get("ports", [])) if ok else {"parsed": False}
    return {"test_ok": ok, "test_output": _error(result) if not ok else "", "view": view}


def collect_postgres(raw: Mapping[str, Any]) -> dict[str, Any] | None:
    result = raw.get("postgres") or {}
    if not _ran(result):
        return None
    data = _json(result.get("stdout", "")) if result.get("rc") == 0 else None
    if not isinstance(data, Mapping):
        return {"ok": False, "error": _error(result)}
    return {"ok": True, **data}


def collect_pgbouncer(raw: Mapping[str, Any], app: Mapping[str, Any]) -> dict[str, Any] | None:
    """PgBouncer's pools as its admin console showed them; None when PgBouncer is off (probe skipped).

    ``down`` tells PgBouncer not answering (nothing on its socket, no answer in time, its host
    unreachable) from a console that answered but could not be read.
    """
    result = raw.get("pgbouncer") or {}
    if not _ran(result):
        return None
    where = {"host": app.get("db_host"), "max_wait": app.get("pgbouncer_max_wait")}
    if result.get("rc") == 124:
        return {"ok": False, "down": True, "error": "no answer (timeout)", **where}
    if result.get("rc") != 0:
        said = _error(result)
        down = bool(result.get("unreachable")) or any(sign in said.lower() for sign in PGBOUNCER_DOWN_SIGNS)
        return {"ok": False, "down": down, "error": said, **where}
    pools = pgbouncer_pools(str(result.get("stdout", "")))
    if pools is None:
        return {"ok": False, "down": False, "error": "psql printed no SHOW POOLS table", **where}
    return {"ok": True, "pools": pools, **where}


def collect_stuck(raw: Mapping[str, Any]) -> list[dict[str, Any]]:
    checks = []
    for result in (raw.get("stuck") or {}).get("results", []):
        item = result.get("item") or {}
        entry = {"name": item.get("name"), "has_fix": bool(item.get("fix_sql"))}
        if result.get("skipped"):
            continue
        data = _json(result.get("stdout", "")) if result.get("rc") == 0 else None
        if isinstance(data, Mapping):
            entry.update(count=data.get("count", 0), rows=data.get("rows") or [])
        else:
            entry["error"] = _error(result)
        checks.append(entry)
    return checks


def collect_redis(raw: Mapping[str, Any]) -> dict[str, Any] | None:
    result = raw.get("redis") or {}
    if not _ran(result):
        return None
    info = parse_redis_info(str(result.get("stdout", "")))
    if result.get("rc") != 0 or "redis_version" not in info:
        # redis-cli prints the server's error (NOAUTH, WRONGPASS) on stdout; never the password.
        return {"ok": False, "error": _error(result) if result.get("rc") != 124 else "no answer (timeout)"}
    return {"ok": True, "info": info}


def collect_disk(state: Mapping[str, Any]) -> dict[str, Any]:
    disk = dict(state.get("disk") or {})
    for kind in ("blocks", "inodes"):
        if isinstance(disk.get(kind), Mapping):
            disk[kind] = {**disk[kind], "mount": disk.get("mount")}
    return disk


def collect_lock(raw: Mapping[str, Any]) -> dict[str, Any]:
    result = raw.get("lock") or {}
    if result.get("failed"):
        return {"found": None, "error": result.get("msg")}
    return {key: result.get(key) for key in ("found", "held", "stale", "age", "msg")}


def diagnose_facts(raw: Any, app: Any) -> dict[str, Any]:
    """The facts of one host: from what diagnose's tasks registered (raw) and the app model (app).

    raw holds the results of the app_state, app_listeners and deploy_lock modules (state, listeners, lock),
    the health requests (health), and the psql and redis-cli commands (postgres, pgbouncer, stuck, redis).
    """
    if not isinstance(raw, Mapping) or not isinstance(app, Mapping):
        raise AnsibleFilterError("diagnose_facts expects the registered results and the app model, as dicts.")
    state = raw.get("state") or {}
    return {
        "app": {
            key: app.get(key)
            for key in (
                "name",
                "root",
                "max_body_size",
                "max_body_bytes",
                "ports",
                "programs",
                "required_env",
                "db_port",
            )
        },
        "supervisor": collect_supervisor(state, app),
        "listeners": collect_listeners(raw),
        "release": collect_release(state, app),
        "health": collect_health(raw),
        "env": collect_env(state, app),
        "nginx": collect_nginx(state, app),
        "postgres": collect_postgres(raw),
        "pgbouncer": collect_pgbouncer(raw, app),
        "redis": collect_redis(raw),
        "disk": collect_disk(state),
        "lock": collect_lock(raw),
        "stuck": collect_stuck(raw),
    }


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {
            "supervisor_programs": supervisor_programs,
            "nginx_app_view": nginx_app_view,
            "redis_info": parse_redis_info,
            "diagnose_facts": diagnose_facts,
        }
