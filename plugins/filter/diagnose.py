"""diagnose.yml's core: turn what was collected on a host into findings, each named by its incident id.

The playbook collects with read-only commands and the app_listeners and deploy_lock modules; the text it
gets is turned into data by the diagnose_collect filters; this file decides what is wrong. A finding is
``{id, severity, title, evidence, fix}``: ``id`` is an incident id of docs/incidents.md (I1..I12) or one of
the host checks below (H1..H6: not outages of the table, but what an operator looks at next), ``evidence`` is
what was read on the host, ``fix`` says what to run.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ansible.errors import AnsibleFilterError

SEVERITIES = ("critical", "warning", "info")
# Host checks outside the incident table, for the report's legend.
HOST_CHECKS = {
    "H1": "PostgreSQL, or PgBouncer in front of it, does not answer",
    "H2": "Redis does not answer, or is set up so that queued jobs can be lost",
    "H3": "the app's filesystem is (nearly) full",
    "H4": "nginx's configuration does not pass nginx -t",
    "H5": "no current release, or it has no release record",
    "H6": "a health endpoint fails for a reason the other checks do not name",
}
INCIDENTS = {
    "I1": "orphaned or duplicate node processes",
    "I2": "Prisma client missing or stale",
    "I3": "database connections exhausted",
    "I4": "nginx body limit below the app's",
    "I5": "crash loop, FATAL programs",
    "I6": "app port held outside supervisor",
    "I7": "app not reachable on IPv4 127.0.0.1",
    "I8": "stale build in current",
    "I9": "no graceful shutdown",
    "I10": "a declared process is not running",
    "I11": "stuck records, deploy lock",
    "I12": "environment incomplete",
}
RUNNING_STATES = ("RUNNING",)
CRASH_STATES = ("FATAL", "BACKOFF")
# A program that has been up less than this after restarting is still settling, or still looping.
SETTLE_SECONDS = 60
# Unexpected exits in the restart window that make a crash loop, whatever the uptime now: seed 002's
# 183 restarts never went FATAL (each start outlived startsecs), so FATAL alone misses them.
CRASH_LOOP_WARNING = 3
CRASH_LOOP_CRITICAL = 10
# The findings that can make a health endpoint fail: a failing one next to them is explained by them.
# The others (a body limit, a stale build, a lock, disk) leave the health endpoint answering.
HEALTH_BREAKERS = frozenset({"I1", "I2", "I3", "I5", "I6", "I7", "I10", "I12", "H1", "H2", "H5"})
DISK_WARNING = 85
DISK_CRITICAL = 95
REDIS_MEMORY_WARNING = 90
PG_WARNING = 80
# Seconds a client may wait in PgBouncer for a server connection before the wait is critical, when
# the facts do not carry diagnose_pgbouncer_max_wait.
PGBOUNCER_MAX_WAIT = 5
# A value from an env file shown as it is; any other is quoted.
PLAIN_VALUE_RE = re.compile(r"[A-Za-z0-9_./:@%+,=-]+")


def finding(id_: str, severity: str, title: str, evidence: Iterable[str], fix: str) -> dict[str, Any]:
    if severity not in SEVERITIES:
        raise ValueError(f"severity {severity!r} is not one of {SEVERITIES}")
    return {"id": id_, "severity": severity, "title": title, "evidence": list(evidence), "fix": fix}


def _playbook(options: Mapping[str, Any], playbook: str, extra: str = "") -> str:
    """The command line an operator runs, with the inventory and host of this run."""
    command = str(options.get("ansible_playbook") or "ansible-playbook")
    limit = f"--limit {options['limit']}" if options.get("limit") else ""
    return " ".join(part for part in (command, f"playbooks/{playbook}", limit, extra) if part)


def _recover(options: Mapping[str, Any], extra: str = "") -> str:
    return _playbook(options, "recover.yml", extra)


def supervisor_findings(facts: Mapping[str, Any], options: Mapping[str, Any]) -> list[dict[str, Any]]:
    supervisor = facts.get("supervisor") or {}
    group = facts.get("app", {}).get("name", "")
    if not supervisor.get("ok", False):
        return [
            finding(
                "I10",
                "critical",
                "supervisord does not answer: no program of the app is supervised",
                [str(supervisor.get("error") or "supervisorctl status failed")],
                f"systemctl status supervisor; journalctl -u supervisor -n 50; then {_recover(options)}",
            )
        ]
    found = []
    for program in supervisor.get("programs", []):
        name, state = program["program"], program["state"]
        log_hint = f"supervisorctl tail -5000 {group}:{name} stderr"
        exits = program.get("unexpected_exits", 0)
        restarts = (
            f"{exits} unexpected exit(s) since supervisord started or last stopped it "
            f"({program.get('recent_exits', 0)} in the last hour)"
            + (f", the last one {program['last_exit']}" if program.get("last_exit") else "")
        )
        if state == "MISSING":
            found.append(
                finding(
                    "I10",
                    "critical",
                    f"program {name} is not configured in supervisor",
                    [f"`supervisorctl status {group}:` does not list {name}"],
                    "Render the programs from the app model: run deploy.yml or recover.yml.",
                )
            )
        elif state in CRASH_STATES:
            found.append(
                finding(
                    "I5",
                    "critical",
                    f"program {name} is {state}: it crash-loops"
                    + (" and supervisor gave up" if state == "FATAL" else ""),
                    [f"{name}: {state} {program.get('description', '')}".strip(), restarts],
                    f"Read why it exits: {log_hint}. Once the cause is fixed: {_recover(options)} "
                    f"(or supervisorctl start {group}:{name}).",
                )
            )
        elif state not in RUNNING_STATES and state != "STARTING":
            found.append(
                finding(
                    "I10",
                    "critical",
                    f"program {name} is {state}: the {program.get('process')} process is not running",
                    [f"{name}: {state} {program.get('description', '')}".strip()],
                    f"{_recover(options)} (or supervisorctl start {group}:{name})",
                )
            )
        elif program.get("recent_exits", 0) > 0:
            found.append(_restart_finding(program, restarts, log_hint, group))
    return found


def _restart_finding(program: Mapping[str, Any], restarts: str, log_hint: str, group: str) -> dict[str, Any]:
    """A program that is up but exited unexpectedly in the restart window: graded by how often."""
    name, recent, uptime = program["program"], program["recent_exits"], program.get("uptime") or 0
    watch = f"Watch it: supervisorctl status {group}:{name}; read why it exits: {log_hint}."
    if recent >= CRASH_LOOP_WARNING:
        return finding(
            "I5",
            "critical" if recent >= CRASH_LOOP_CRITICAL else "warning",
            f"program {name} crash-loops: {recent} unexpected exits in the last hour, up {uptime} s now",
            [restarts, f"up {uptime} s with pid {program.get('pid')}"],
            f"{watch} Each restart drops its requests and jobs; fix the cause, then "
            f"supervisorctl restart {group}:{name}.",
        )
    if uptime < SETTLE_SECONDS:
        return finding(
            "I5",
            "warning",
            f"program {name} restarted {recent} time(s) recently and has been up {uptime} s",
            [restarts],
            watch,
        )
    return finding(
        "I5",
        "info",
        f"program {name} is running, but exited unexpectedly {recent} time(s) in the last hour",
        [restarts, f"up {uptime} s with pid {program.get('pid')}"],
        f"Read why it exited: {log_hint}.",
    )


# The addresses a listener may hold: loopback, as the smoke tests accept (roles/app/tasks/smoke.yml).
LOOPBACK_ADDRESSES = frozenset({"127.0.0.1", "::1", "::ffff:127.0.0.1"})


def listener_findings(facts: Mapping[str, Any], options: Mapping[str, Any]) -> list[dict[str, Any]]:
    listeners = facts.get("listeners") or {}
    if listeners.get("error"):
        return [
            finding(
                "I6",
                "warning",
                "could not read who listens on the app ports",
                [str(listeners["error"])],
                "Run diagnose.yml with become (as root).",
            )
        ]
    supervisor = facts.get("supervisor") or {}
    declared = (
        supervisor.get("programs") if supervisor.get("ok") else (facts.get("app") or {}).get("programs")
    )
    programs = {p.get("port"): p for p in declared or [] if p.get("port")}
    found = []
    for port in listeners.get("ports", []):
        number = port["port"]
        program = programs.get(number, {})
        owner = program.get("program", f"the program on {number}")
        entries = port.get("listeners", [])
        described = [
            f"{entry.get('address')}:{number} ({entry.get('family')}) pid {entry.get('pid')} "
            f"user {entry.get('user')} `{entry.get('cmdline')}` "
            + (
                "supervised"
                if entry.get("supervised")
                else "NOT supervised"
                if entry.get("supervised") is False
                else ""
            )
            for entry in entries
        ]
        if not port.get("listening"):
            # A stopped or crashing program, or supervisord down, is reported by supervisor_findings.
            if supervisor.get("ok") and program.get("state") in (None, "RUNNING", "STARTING", "MISSING"):
                found.append(
                    finding(
                        "I10",
                        "critical",
                        f"nothing listens on port {number} ({owner})",
                        [
                            f"no listening socket on port {number}",
                            f"{owner}: {program.get('state', 'unknown')}",
                        ],
                        f"Read the program's log (supervisorctl tail {owner} stderr), then "
                        f"{_recover(options)}",
                    )
                )
            continue
        if not port.get("ipv4_loopback") and port.get("connect_ipv4") is not True:
            found.append(
                finding(
                    "I7",
                    "critical",
                    f"port {number} does not accept IPv4 connections to 127.0.0.1: nginx gets "
                    "connection refused",
                    described,
                    "Make the program listen on 127.0.0.1 (HOSTNAME=127.0.0.1, from the app model; remove "
                    f"any hand edit of its env file): {_recover(options)} re-renders the env files and "
                    "restarts it.",
                )
            )
        elif port.get("connect_ipv4") is False:
            found.append(
                finding(
                    "I10",
                    "critical",
                    f"port {number} listens on IPv4 but does not accept connections (hung, or backlog full)",
                    described,
                    f"Read the program's log (supervisorctl tail {owner} stderr), then {_recover(options)}",
                )
            )
        # Reachable, but not only from nginx: the smoke tests refuse this, so say it before a deploy does.
        exposed = [entry for entry in entries if entry.get("address") not in LOOPBACK_ADDRESSES]
        if exposed:
            found.append(
                finding(
                    "I7",
                    "warning",
                    f"port {number} listens beyond loopback: reachable from the network, past nginx",
                    [
                        f"{entry.get('address')}:{number} ({entry.get('family')}) pid {entry.get('pid')} "
                        f"`{entry.get('cmdline')}`"
                        for entry in exposed
                    ],
                    "Make the program bind HOSTNAME (127.0.0.1, set by supervisor) instead of every address "
                    "(seed 002's 0.0.0.0 fix): the smoke tests of deploy.yml and recover.yml fail until it "
                    "does, and until then its body limit and timeouts are not nginx's.",
                )
            )
        unknown = [entry for entry in entries if entry.get("pid") is None]
        if unknown:
            found.append(
                finding(
                    "I6",
                    "warning",
                    f"could not tell which process holds port {number}",
                    [
                        f"{entry.get('address')}:{number} owned by user {entry.get('user')}"
                        for entry in unknown
                    ],
                    "Run diagnose.yml as root (become) where root may read other users' /proc/PID/fd "
                    "(CAP_SYS_PTRACE; a container may lack it).",
                )
            )
        strangers = [entry for entry in entries if entry.get("supervised") is False]
        for entry in strangers:
            found.append(
                finding(
                    "I6",
                    "critical",
                    f"pid {entry.get('pid')} holds app port {number} outside supervisor",
                    [
                        f"pid {entry.get('pid')} user {entry.get('user')} `{entry.get('cmdline')}` "
                        f"listens on {entry.get('address')}:{number}",
                        f"{owner}: {program.get('state', 'unknown')}",
                    ],
                    f"{_recover(options)} ends it (TERM, then KILL) and starts {owner}.",
                )
            )
        if port.get("duplicate"):
            found.append(
                finding(
                    "I1",
                    "critical",
                    f"more than one process tree listens on port {number}",
                    described,
                    f"{_recover(options)} ends the ones outside supervisor.",
                )
            )
    for orphan in listeners.get("orphans", []):
        origin = _orphan_origin(orphan)
        fix = f"{_recover(options)} ends it (TERM, then KILL after app_reap_timeout)."
        if origin:
            fix += (
                f" If it comes back after every recovery, what starts it again ({'; '.join(origin)}) runs "
                "outside supervisor, such as PM2, a unit with Restart=, a cron job or a shell loop: stop and "
                "disable that first."
            )
        found.append(
            finding(
                "I1",
                "critical" if orphan.get("ports") else "warning",
                f"pid {orphan.get('pid')} is an app process outside supervisor",
                [
                    f"pid {orphan.get('pid')} user {orphan.get('user')} `{orphan.get('cmdline')}`: "
                    f"{orphan.get('reason')}",
                    *origin,
                ],
                fix,
            )
        )
    return found


def _orphan_origin(orphan: Mapping[str, Any]) -> list[str]:
    """Who started an orphan, as app_listeners read it: its parent, unless that is init (pid 1 adopts
    every orphan, so it tells nothing), and its systemd unit. Empty when neither is known."""
    origin = []
    if orphan.get("parent_pid") not in (None, 1):
        command = orphan.get("parent_cmdline")
        origin.append(f"started by pid {orphan['parent_pid']}" + (f" (`{command}`)" if command else ""))
    if orphan.get("unit"):
        origin.append(f"systemd unit {orphan['unit']}")
    return origin


def release_findings(facts: Mapping[str, Any], options: Mapping[str, Any]) -> list[dict[str, Any]]:
    release = facts.get("release") or {}
    root = facts.get("app", {}).get("root", "")
    current = f"{root}/current"
    if not release.get("current"):
        return [
            finding(
                "H5",
                "critical",
                "no release is current",
                [f"{current} is not a symlink to a release"],
                f"Deploy: {_playbook(options, 'deploy.yml')}",
            )
        ]
    found = []
    name = release["current"]
    if not release.get("node_modules"):
        found.append(
            finding(
                "I2",
                "critical",
                f"current ({name}) has no node_modules",
                [f"{current}/node_modules does not exist"],
                _recover(options, "-e recover_rebuild=true"),
            )
        )
    elif release.get("prisma_schema"):
        client, schema = release.get("prisma_client_sha"), release.get("prisma_schema_sha")
        client_dir = release.get("prisma_client_dir", "node_modules/.prisma/client")
        schema_path = release.get("prisma_schema_path", "prisma/schema.prisma")
        if not release.get("prisma_client_entry") or not client:
            found.append(
                finding(
                    "I2",
                    "critical",
                    f"the generated Prisma client is missing in current ({name})",
                    [
                        f"{current}/{client_dir}"
                        f"{'/schema.prisma' if release.get('prisma_client_entry') else ''} does not exist",
                        "every query through Prisma fails until `prisma generate` runs",
                    ],
                    f"{_recover(options)} regenerates it (npx prisma generate --schema {schema_path} "
                    "as the app user in current).",
                )
            )
        # A multi-file schema (a folder) is not compared: Prisma 6 writes into the client a merge of the
        # folder's .prisma files that it has reformatted (alignment, blank lines, trailing spaces), which no
        # hash of the files as they are matches; a stale client would be a false finding on every such app.
        elif not release.get("prisma_schema_folder") and client != schema:
            found.append(
                finding(
                    "I2",
                    "critical",
                    f"the generated Prisma client in current ({name}) is stale: it was generated from "
                    "another schema",
                    [
                        f"{schema_path} sha1 {schema}",
                        f"{client_dir}/schema.prisma sha1 {client}",
                    ],
                    f"{_recover(options)} regenerates it.",
                )
            )
    record_id = release.get("record_build_id")
    build_id = release.get("next_build_id")
    if not release.get("record"):
        found.append(
            finding(
                "H5",
                "warning",
                f"current ({name}) has no release record: which build should serve cannot be checked",
                [f"{current}/.shipshape-release.json is missing or unreadable"],
                "Deploy with deploy.yml: it records every release's build id.",
            )
        )
    elif not build_id:
        found.append(
            finding(
                "I8",
                "critical",
                f"current ({name}) has no Next.js build",
                [f"{current}/.next/BUILD_ID does not exist", f"the release record says build {record_id}"],
                _recover(options, "-e recover_rebuild=true"),
            )
        )
    elif record_id != build_id:
        found.append(
            finding(
                "I8",
                "critical",
                f"current ({name}) holds a .next from another build: stale code may be served",
                [f".next/BUILD_ID is {build_id}", f".shipshape-release.json says build {record_id}"],
                f"{_recover(options, '-e recover_rebuild=true')} (a clean build of its source as a new "
                "release), or "
                f"{_recover(options, '-e recover_rollback=true')}",
            )
        )
    return found


# What a failing health endpoint says, lower-cased, and the outage it names. PostgreSQL's and
# node-postgres's texts, and PgBouncer's: its pool full ("no more connections allowed
# (max_client_conn)", "query_wait_timeout": a client waited its whole query_wait_timeout for a
# server connection), and PostgreSQL behind it not answering.
HEALTH_CAUSES = (
    ("I2", ("prisma", "did not initialize", "generate")),
    (
        "I3",
        (
            "too many",
            "remaining connection slots",
            "connection limit",
            "timeout exceeded when trying to connect",
            "no more connections allowed",
            "query_wait_timeout",
        ),
    ),
    (
        "H1",
        (
            "database system is",
            "password authentication",
            "pgbouncer cannot connect to server",
            "server login has been failing",
        ),
    ),
)


def _health_cause(text: str, db_port: Any) -> str | None:
    """The outage a health error names: by its text, or a refused connection to the database's port."""
    cause = next((id_ for id_, needles in HEALTH_CAUSES if any(n in text for n in needles)), None)
    # node-postgres says "connect ECONNREFUSED 10.0.0.5:6432": the port the app's DATABASE_URL
    # names (PgBouncer's when it is on). Another port refused is another service (Redis: H2).
    if cause is None and re.search(rf"econnrefused \S+:{int(db_port)}\b", text):
        cause = "H1"
    return cause


def health_findings(facts: Mapping[str, Any], options: Mapping[str, Any]) -> list[dict[str, Any]]:
    found = []
    record_id = (facts.get("release") or {}).get("record_build_id")
    for health in facts.get("health") or []:
        status = health.get("status")
        body = health.get("json") or {}
        checks = body.get("checks") if isinstance(body, Mapping) else None
        evidence = [f"GET {health.get('url')} -> {status}"]
        if isinstance(checks, Mapping):
            evidence += [f"{name}: {value}" for name, value in sorted(checks.items())]
        elif health.get("error"):
            evidence.append(str(health["error"]))
        served = body.get("buildId") if isinstance(body, Mapping) else None
        if status == 200 and record_id and served and served != record_id:
            found.append(
                finding(
                    "I8",
                    "critical",
                    f"{health.get('process')} serves build {served}, not the build of current ({record_id})",
                    evidence,
                    f"{_recover(options)} restarts it on current; if current's .next is stale too: "
                    f"{_recover(options, '-e recover_rebuild=true')}",
                )
            )
        if status == 200:
            continue
        text = " ".join(evidence).lower()
        cause = _health_cause(text, (facts.get("app") or {}).get("db_port") or 5432)
        if cause is None and isinstance(checks, Mapping) and str(checks.get("redis", "ok")) != "ok":
            cause = "H2"
        found.append(
            finding(
                cause or "H6",
                "critical",
                f"the health endpoint of {health.get('process')} fails ({status or 'no answer'})",
                evidence,
                _recover(options),
            )
        )
    return found


def _shown(value: str) -> str:
    """A value from an env file as evidence: plain when it is a plain word, else quoted (a stray space
    or \\r is what differs)."""
    return value if PLAIN_VALUE_RE.fullmatch(value) else json.dumps(value)


def _value_finding(
    env: Mapping[str, Any], path: str, name: str, found: str, wanted: str, app: Mapping[str, Any], fix: str
) -> dict[str, Any]:
    """A derived variable whose value in the env file is not the one the app model renders. A name
    NAME?PARAM is one query parameter of a URL variable (app_state reads it, never the URL)."""
    process = env["process"]
    variable, _, param = name.partition("?")
    # A parameter the file's URL lacks reads as "" (app_state).
    value = _shown(found) if found or not param else "not set"
    said = f"the model renders {_shown(wanted)}, the file says {value}"
    line = (
        f"{path}: {param} of {variable} is {value} (of the URL, with its password, only this is read)"
        if param
        else f"{path}: {name}={_shown(found)}"
    )
    if name == "DATABASE_URL?connection_limit":
        return finding(
            "I3",
            "critical",
            f"{process}'s Prisma pool is {value}, not the connection budget's {_shown(wanted)}: "
            f"connection_limit in DATABASE_URL in {path}",
            [
                line,
                f"{said} (db_pool of {process} in app_processes, which the connection budget counts)",
                "a smaller pool starves the process of connections (seed 001: a pool of 2); without one, "
                "Prisma opens twice the cores plus one, which the budget does not count",
            ],
            fix,
        )
    if param:
        return finding(
            "I12",
            "warning",
            f"{param} in {variable} of {process} is {value}, not {_shown(wanted)}",
            [line, said],
            fix,
        )
    if name == "DATABASE_POOL_MAX":
        return finding(
            "I3",
            "critical",
            f"{process}'s database pool is {_shown(found)}, not the connection budget's {_shown(wanted)}: "
            f"DATABASE_POOL_MAX in {path}",
            [
                line,
                f"{said} (db_pool of {process} in app_processes, which the connection budget counts)",
                "a smaller pool starves the process of connections (seed 001: a pool of 2), a larger one "
                "opens more than the budget counts",
            ],
            fix,
        )
    if name == "UPLOAD_MAX_BYTES":
        return finding(
            "I4",
            "critical",
            f"{process} limits uploads to {_shown(found)} bytes, not the model's {_shown(wanted)}: "
            f"UPLOAD_MAX_BYTES in {path}",
            [
                line,
                f"{said} (app_max_body_size {app.get('max_body_size')}, which nginx enforces too)",
                "the app and nginx disagree on the largest upload (seed 002: uploads over 1 MB failed)",
            ],
            fix,
        )
    return finding(
        "I12", "warning", f"{name} of {process} is {_shown(found)}, not {_shown(wanted)}", [line, said], fix
    )


def env_findings(facts: Mapping[str, Any], options: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Each env file against what the app role renders for its process: the names (a missing one is
    I12), and the values of the derived, non-secret variables (a pool, I3; the upload limit, I4;
    another, an I12 warning). A name of app_required_env that the model renders for no process is
    missing from the inventory: every process is asked for it."""
    app = facts.get("app") or {}
    root = app.get("root", "")
    entries = facts.get("env") or []
    rendered = {name for env in entries for name in env.get("expected_names") or []}
    unrendered = [name for name in app.get("required_env") or [] if name not in rendered]
    render = f"{_recover(options)} re-renders the env files from the app model and restarts the programs."
    found = []
    for env in entries:
        process = env["process"]
        path = f"{root}/shared/env/{process}.env"
        if not env.get("exists"):
            found.append(
                finding(
                    "I12",
                    "critical",
                    f"the env file of {process} is missing",
                    [f"{path} does not exist"],
                    f"{_recover(options)} renders it from the app model.",
                )
            )
            continue
        if env.get("error"):
            found.append(
                finding(
                    "I12",
                    "warning",
                    f"the env file of {process} could not be read",
                    [f"{path}: {env['error']}"],
                    "Run diagnose.yml with become (as root).",
                )
            )
            continue
        if env.get("syntax_error"):
            found.append(
                finding(
                    "I12",
                    "critical",
                    f"the env file of {process} stops sh: {env['syntax_error']}",
                    [
                        f"{path}: {env['syntax_error']}",
                        "supervisor sources it with sh: the program cannot start",
                    ],
                    render,
                )
            )
            continue
        names = set(env.get("names") or [])
        expected = list(env.get("expected_names") or [])
        expected += [name for name in unrendered if name not in expected]
        missing = [name for name in expected if name not in names]
        if missing:
            absent = [name for name in missing if name in unrendered]
            found.append(
                finding(
                    "I12",
                    "critical",
                    f"{process}'s environment lacks {', '.join(missing)}",
                    [
                        f"{path} has no line for {', '.join(missing)} (its names are read; of its values, "
                        "only those of derived, non-secret variables)"
                    ],
                    f"Put {', '.join(absent)} in the inventory (app_env, or app_secret_env from the vault), "
                    f"then {render}"
                    if absent
                    else render,
                )
            )
        values = env.get("values") or {}
        for name, wanted in sorted((env.get("expected_values") or {}).items()):
            if name in (env.get("expanded") or []):
                found.append(
                    finding(
                        "I12",
                        "warning",
                        f"{process}'s env file computes {name} with a shell expansion: the model renders "
                        f"{_shown(wanted)}",
                        [f"{path}: the value of {name} is a shell expansion, which diagnose does not run"],
                        render,
                    )
                )
            elif name in values and values[name] != wanted:
                found.append(_value_finding(env, path, name, values[name], wanted, app, render))
    return found


def nginx_findings(facts: Mapping[str, Any], options: Mapping[str, Any]) -> list[dict[str, Any]]:
    nginx = facts.get("nginx") or {}
    app = facts.get("app") or {}
    found = []
    if not nginx.get("test_ok", False):
        found.append(
            finding(
                "H4",
                "critical",
                "nginx's configuration does not pass nginx -t",
                [line for line in str(nginx.get("test_output", "")).splitlines() if line.strip()][-5:],
                f"Fix the file nginx -t names; shipshape's own files are re-rendered by {_recover(options)}.",
            )
        )
    view = nginx.get("view") or {}
    if not view.get("parsed"):
        return found
    wanted = app.get("max_body_bytes")
    for location in view.get("locations", []):
        limit, limit_bytes = location.get("client_max_body_size"), location.get("client_max_body_bytes")
        server = location.get("server_name") or "_"
        where = f"location {location['location']} of server {server} ({location.get('file')})"
        # 0 turns nginx's check off: every size passes.
        if wanted and limit_bytes is not None and limit_bytes != 0 and limit_bytes < int(wanted):
            found.append(
                finding(
                    "I4",
                    "critical",
                    f"nginx refuses request bodies over {limit}; the app model allows "
                    f"{app.get('max_body_size')}",
                    [
                        f"{where}: client_max_body_size {limit}"
                        + (
                            " (nginx's default: no directive sets it)"
                            if location.get("limit_from") == "default"
                            else f" (set at {location.get('limit_from')} level)"
                        ),
                        f"app_max_body_size: {app.get('max_body_size')}",
                    ],
                    f"{_recover(options)} re-renders the nginx site from the app model and reloads nginx.",
                )
            )
        others = location.get("other_hosts") or []
        if others:
            found.append(
                finding(
                    "I7",
                    "critical" if {"localhost", "::1"} & set(others) else "warning",
                    f"nginx proxies {location['location']} to {', '.join(others)}, not 127.0.0.1",
                    [
                        f"{where}: proxy_pass {location.get('proxy_pass')} -> "
                        f"{', '.join(location.get('servers', []))}",
                        "localhost may resolve to ::1 while the app listens on 127.0.0.1 (seed 002)",
                    ],
                    f"{_recover(options)} re-renders the site with 127.0.0.1 upstreams.",
                )
            )
    unrouted = [port for port in app.get("ports", []) if port not in view.get("routed_ports", [])]
    if unrouted:
        found.append(
            finding(
                "I10",
                "critical",
                f"nginx does not route to app port(s) {', '.join(map(str, unrouted))}",
                [f"no location proxies to 127.0.0.1:{port}" for port in unrouted],
                f"{_recover(options)} re-renders the nginx site from the app model.",
            )
        )
    return found


def postgres_findings(facts: Mapping[str, Any], options: Mapping[str, Any]) -> list[dict[str, Any]]:
    pg = facts.get("postgres")
    if pg is None:
        return []
    if not pg.get("ok"):
        return [
            finding(
                "H1",
                "critical",
                "PostgreSQL does not answer",
                [str(pg.get("error") or "psql failed")],
                f"systemctl status postgresql; {_recover(options)} restarts it when it does not answer.",
            )
        ]
    found = []
    sessions = pg.get("sessions") or []
    total = sum(int(s.get("count", 0)) for s in sessions)
    max_connections = int(pg.get("max_connections") or 0)
    reserved = int(pg.get("reserved") or 0)
    role = pg.get("role")
    role_limit = pg.get("role_limit")
    role_used = sum(int(s.get("count", 0)) for s in sessions if s.get("usename") == role)
    by_name: dict[str, int] = {}
    for session in sessions:
        key = (
            f"{session.get('application_name') or '(no application_name)'} as {session.get('usename') or '?'}"
        )
        by_name[key] = by_name.get(key, 0) + int(session.get("count", 0))
    table = [f"{count:>4}  {name}" for name, count in sorted(by_name.items(), key=lambda item: -item[1])]
    usable = max_connections - reserved
    evidence = [
        f"{total} of max_connections {max_connections} in use ({reserved} reserved for superusers)",
        *(
            [f"role {role}: {role_used} of its CONNECTION LIMIT {role_limit}"]
            if role_limit is not None and int(role_limit) >= 0
            else []
        ),
        *table,
    ]
    exhausted = usable > 0 and total >= usable
    role_exhausted = role_limit is not None and int(role_limit) >= 0 and role_used >= int(role_limit)
    fix = (
        f"{_recover(options)} stops the app and ends the idle sessions of role {role}; find who opened the "
        "others in the table (application_name) and lower their pools (db_pool in app_processes)."
    )
    if exhausted or role_exhausted:
        found.append(
            finding(
                "I3",
                "critical",
                "PostgreSQL has no connection left for the app"
                if exhausted
                else f"role {role} holds every connection its CONNECTION LIMIT allows",
                evidence,
                fix,
            )
        )
    elif usable > 0 and total * 100 >= usable * PG_WARNING:
        found.append(
            finding(
                "I3",
                "warning",
                f"PostgreSQL connections at {total * 100 // usable}% of what non-superusers may use",
                evidence,
                fix,
            )
        )
    return found


def _pool_line(pool: Mapping[str, Any]) -> str:
    """One pool of PgBouncer's SHOW POOLS and SHOW DATABASES, for evidence."""
    size = (
        f"pool_size {pool['pool_size']} + reserve_pool {pool.get('reserve_pool') or 0}"
        + (f", max_db_connections {pool['max_db_connections']}" if pool.get("max_db_connections") else "")
        if pool.get("pool_size") is not None
        else "pool size not shown"
    )
    idle = sum(int(pool.get(key) or 0) for key in ("sv_idle", "sv_used", "sv_tested"))
    return (
        f"pool {pool.get('database')}/{pool.get('user')} ({pool.get('pool_mode') or '?'}): "
        f"clients {pool.get('cl_active', 0)} active, {pool.get('cl_waiting', 0)} waiting, the longest "
        f"{float(pool.get('maxwait') or 0):.1f} s; server connections {pool.get('sv_active', 0)} in use, "
        f"{idle} idle, {pool.get('sv_login', 0)} logging in, of {size}"
    )


def pgbouncer_findings(facts: Mapping[str, Any], options: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Clients queue inside PgBouncer, where pg_stat_activity does not see them: its pools say so."""
    bouncer = facts.get("pgbouncer")
    if bouncer is None:
        return []
    host = bouncer.get("host") or "the db host"
    if not bouncer.get("ok"):
        look = (
            f"On {host}: systemctl status pgbouncer; journalctl -u pgbouncer -n 50; "
            "tail -n 50 /var/log/postgresql/pgbouncer.log."
        )
        if bouncer.get("down"):
            return [
                finding(
                    "H1",
                    "critical",
                    "PgBouncer does not answer: the app cannot reach PostgreSQL through it",
                    [str(bouncer.get("error") or "psql to PgBouncer's admin console failed")],
                    f"{look} {_recover(options)} restarts it (after PostgreSQL, when that does not answer "
                    "either); bootstrap.yml re-renders a broken configuration.",
                )
            ]
        return [
            finding(
                "H1",
                "warning",
                "PgBouncer's admin console answered, but its pools could not be read",
                [str(bouncer.get("error") or "psql to PgBouncer's admin console failed")],
                f"{look} diagnose logs in as the user pgbouncer over the Unix socket, as postgres.",
            )
        ]
    max_wait = float(PGBOUNCER_MAX_WAIT if bouncer.get("max_wait") is None else bouncer["max_wait"])
    pools = bouncer.get("pools") or []
    evidence = [_pool_line(pool) for pool in pools]
    found = []
    for pool in pools:
        waiting, longest = int(pool.get("cl_waiting") or 0), float(pool.get("maxwait") or 0)
        if not waiting and longest <= max_wait:
            continue
        name = f"{pool.get('database')}/{pool.get('user')}"
        found.append(
            finding(
                "I3",
                "critical" if longest > max_wait else "warning",
                f"{waiting} client(s) wait in PgBouncer for a connection of pool {name}, the longest "
                f"{longest:.1f} s",
                [*evidence, f"a wait over {max_wait:g} s is critical (diagnose_pgbouncer_max_wait)"],
                "Every server connection of the pool is busy. Find what holds them: long queries and "
                "transactions of the app role in pg_stat_activity (in transaction mode a client holds its "
                "server connection until its transaction ends). If the load is real, raise "
                "postgresql_pgbouncer_default_pool_size (the connection budget checks it) and run "
                f"{_playbook({**options, 'limit': bouncer.get('host')}, 'bootstrap.yml')}.",
            )
        )
    return found


def redis_findings(facts: Mapping[str, Any], options: Mapping[str, Any]) -> list[dict[str, Any]]:
    redis = facts.get("redis")
    if redis is None:
        return []
    if not redis.get("ok"):
        return [
            finding(
                "H2",
                "critical",
                "Redis does not answer with the app's password",
                [str(redis.get("error") or "redis-cli failed")],
                f"systemctl status redis-server; {_recover(options)} restarts it when it does not answer.",
            )
        ]
    info = redis.get("info") or {}
    found = []
    policy = info.get("maxmemory_policy")
    if policy and policy != "noeviction":
        found.append(
            finding(
                "H2",
                "warning",
                f"Redis evicts keys under memory pressure (maxmemory-policy {policy}): queued jobs can "
                "vanish",
                [f"maxmemory_policy: {policy}", "BullMQ needs noeviction"],
                "Set maxmemory-policy noeviction (the redis role's setting) and re-run bootstrap.yml.",
            )
        )
    used, maximum = int(info.get("used_memory") or 0), int(info.get("maxmemory") or 0)
    if maximum and used * 100 >= maximum * REDIS_MEMORY_WARNING:
        found.append(
            finding(
                "H2",
                "critical" if used >= maximum else "warning",
                f"Redis uses {used * 100 // maximum}% of its maxmemory",
                [f"used_memory {info.get('used_memory_human')} of maxmemory {info.get('maxmemory_human')}"],
                "Find what fills it (redis-cli --bigkeys); raise maxmemory or drain the queues.",
            )
        )
    if info.get("aof_enabled") == "0":
        found.append(
            finding(
                "H2",
                "info",
                "Redis's append-only file is off: jobs queued since the last snapshot are lost if it "
                "restarts",
                ["aof_enabled: 0"],
                "Turn on appendonly in the redis role if the queues must survive a restart.",
            )
        )
    return found


def disk_findings(facts: Mapping[str, Any], options: Mapping[str, Any]) -> list[dict[str, Any]]:
    disk = facts.get("disk") or {}
    found = []
    for kind, label in (("blocks", "space"), ("inodes", "inodes")):
        usage = disk.get(kind)
        if not usage or usage.get("percent") is None:
            continue
        percent = usage["percent"]
        if percent >= DISK_WARNING:
            found.append(
                finding(
                    "H3",
                    "critical" if percent >= DISK_CRITICAL else "warning",
                    f"{usage['mount']} is {percent}% full ({label})",
                    [
                        f"{usage['mount']}: {percent}% of {label} used, "
                        f"{usage['available']} {'KiB' if kind == 'blocks' else 'inodes'} free",
                        f"it holds {disk.get('path')}",
                    ],
                    f"Free space: old releases (deploy.yml prunes to app_releases_keep), "
                    f"{disk.get('path')}/shared/npm-cache, logs (du -xsh {disk.get('path')}/*); "
                    f"on the db host, the deploys' database dumps (app_db_backup_dir, app_db_backup_keep).",
                )
            )
    return found


def lock_findings(facts: Mapping[str, Any], options: Mapping[str, Any]) -> list[dict[str, Any]]:
    lock = facts.get("lock") or {}
    found_lock = lock.get("found")
    if not found_lock:
        return []
    if lock.get("stale"):
        return [
            finding(
                "I11",
                "warning",
                "a stale deploy lock is left on the host",
                [str(lock.get("msg"))],
                f"{_recover(options)} takes it over (the next deploy would too).",
            )
        ]
    return [
        finding(
            "I11",
            "info",
            f"a {found_lock.get('purpose', 'deploy')} holds the deploy lock right now",
            [str(lock.get("msg"))],
            "Wait for it to finish before deploying or recovering; the lock names who runs it.",
        )
    ]


def stuck_findings(facts: Mapping[str, Any], options: Mapping[str, Any]) -> list[dict[str, Any]]:
    found = []
    database_down = (facts.get("postgres") or {}).get("ok") is False
    for check in facts.get("stuck") or []:
        if check.get("error") and database_down:
            continue  # H1 says it
        if check.get("error"):
            found.append(
                finding(
                    "I11",
                    "warning",
                    f"stuck-record check '{check['name']}' could not run",
                    [str(check["error"])],
                    "Fix its sql in app_stuck_checks (it runs read-only on the app's database).",
                )
            )
            continue
        rows = check.get("rows") or []
        # rows holds at most diagnose_stuck_rows of them; count is how many the check found.
        count = int(check.get("count") or len(rows))
        if not count:
            continue
        shown = [str(row) for row in rows[:10]] + ([f"... and {count - 10} more"] if count > 10 else [])
        found.append(
            finding(
                "I11",
                "warning",
                f"{count} record(s) found by '{check['name']}'",
                shown,
                _recover(options, "-e recover_fix_stuck=true") + " applies its fix_sql"
                if check.get("has_fix")
                else "This check has no fix_sql: fix the records by hand.",
            )
        )
    return found


CHECKS = (
    supervisor_findings,
    listener_findings,
    release_findings,
    health_findings,
    env_findings,
    nginx_findings,
    postgres_findings,
    pgbouncer_findings,
    redis_findings,
    disk_findings,
    lock_findings,
    stuck_findings,
)


def _id_order(id_: str) -> tuple[int, int]:
    return (0 if id_.startswith("I") else 1, int(id_[1:]) if id_[1:].isdigit() else 99)


def _explained_health_failures_as_info(found: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """H6 is a failing health endpoint no other check explains. When another check found something
    critical that can break health (the web program not running, I10; not on 127.0.0.1, I7; its env
    incomplete, I12), that is most likely why: the failure is kept as evidence, at info level, and
    the summary names only the real cause. A body limit (I4) or a stale build (I8) explains no 502."""
    causes = sorted(
        {f["id"] for f in found if f["severity"] == "critical" and f["id"] in HEALTH_BREAKERS}, key=_id_order
    )
    if not causes:
        return found
    return [
        dict(f, severity="info", title=f"{f['title']}, likely because of {', '.join(causes)}")
        if f["id"] == "H6"
        else f
        for f in found
    ]


def diagnose_findings(facts: Any, options: Any = None) -> list[dict[str, Any]]:
    """Every finding for one host, critical first, then by incident id."""
    if not isinstance(facts, Mapping):
        raise AnsibleFilterError(
            f"diagnose_findings expects the collected facts (a dict), got {type(facts).__name__}."
        )
    options = options if isinstance(options, Mapping) else {}
    found = _explained_health_failures_as_info([item for check in CHECKS for item in check(facts, options)])
    return sorted(found, key=lambda item: (SEVERITIES.index(item["severity"]), _id_order(item["id"])))


def diagnose_summary(findings: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Counts per severity and the incident ids found, for the short summary and for monitoring."""
    counts = {severity: sum(1 for f in findings if f["severity"] == severity) for severity in SEVERITIES}
    ids = sorted({f["id"] for f in findings if f["severity"] != "info"}, key=_id_order)
    status = "critical" if counts["critical"] else "warning" if counts["warning"] else "ok"
    return {"status": status, "counts": counts, "ids": ids}


def diagnose_legend(findings: Sequence[Mapping[str, Any]] | None = None) -> dict[str, str]:
    """What each id means: every id, or those of the findings given."""
    legend = {**INCIDENTS, **HOST_CHECKS}
    if findings is None:
        return legend
    return {f["id"]: legend[f["id"]] for f in findings if f["id"] in legend}


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {
            "diagnose_findings": diagnose_findings,
            "diagnose_summary": diagnose_summary,
            "diagnose_legend": diagnose_legend,
        }
