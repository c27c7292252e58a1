"""Validation of the app model: the rules that span variables, in one place for every role.

Types and choices are checked by each role's meta/argument_specs.yml. What a spec cannot say
(a name with a slash, two processes on one port, `localhost` as an upstream host, a body size
nginx cannot parse) is checked here, and every role asserts that this list is empty before it
changes a host. Each message names the variable and says what to do.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable, Mapping
from typing import Any

from ansible.errors import AnsibleFilterError

NAME_RE = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
# nginx size syntax: a number with an optional k/m/g suffix (either case).
SIZE_RE = re.compile(r"^([0-9]+)([kKmMgG]?)$")
SIZE_FACTORS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}
PROCESS_KEYS = {
    "name",
    "command",
    "port",
    "instances",
    "health_path",
    "proxy_path",
    "websocket",
    "db_pool",
    "host",
    "stopwaitsecs",
    # Path (and query) the smoke test upgrades to a WebSocket; proxy_path when unset.
    "smoke_path",
    # True lets this process's stopwaitsecs be under MIN_DRAIN_SECONDS (app_drain_problems).
    "short_drain",
}
# Hosts an nginx upstream may not name: `localhost` resolves to ::1 first on current
# distributions, and a node server bound to 127.0.0.1 then refuses nginx (seed 002, I7).
LOOPBACK_V4 = "127.0.0.1"
# Accounts a Debian or Ubuntu host (or a service this toolkit installs) already has: the base
# role would rewrite such an account's shell, home and groups, and chown app_root to it.
# fmt: off
SYSTEM_ACCOUNTS = frozenset({
    "root", "daemon", "bin", "sys", "sync", "games", "man", "lp", "mail", "news", "uucp", "proxy",
    "www-data", "backup", "list", "irc", "gnats", "nobody", "nogroup", "messagebus", "sshd", "syslog",
    "uuidd", "tss", "tcpdump", "dnsmasq", "landscape", "pollinate", "polkitd", "ntp", "ntpsec",
    "chrony", "postgres", "redis", "nginx", "supervisor", "pgbouncer", "admin",
    "sudo", "adm", "staff", "users", "shadow", "utmp", "tty", "disk", "kmem", "dialout", "cdrom",
    "floppy", "audio", "video", "plugdev", "netdev", "systemd",
})
# fmt: on
# Trees app_root may not be in: base chowns app_root to the app user, mode 0750.
# fmt: off
SYSTEM_TREES = (
    "/bin", "/boot", "/dev", "/etc", "/lib", "/lib32", "/lib64", "/libx32", "/proc", "/root", "/run",
    "/sbin", "/sys", "/tmp", "/usr", "/var/tmp", "/var/run", "/var/lock", "/var/log", "/var/cache",
    "/var/spool", "/var/mail", "/var/backups",
)
# fmt: on
# Commands that start node through a launcher supervisor would signal instead of node.
PACKAGE_MANAGERS = frozenset({"npm", "npx", "yarn", "pnpm", "pnpx", "bun", "bunx", "corepack"})
SHELLS = frozenset({"sh", "bash", "dash", "zsh"})
# Variables supervisor sets for each program (programs.conf.j2); the env file is sourced after
# them, so the same name in app_env or app_secret_env would silently win (seed 002, I6 and I7).
SUPERVISOR_ENV = ("PORT", "HOSTNAME", "NODE_ENV")
# The smoke tests send a body this far under app_max_body_size, and one this far over it (I4): the
# limit must leave a body under it (roles/app/files/smoke_http.py, MARGIN).
SMOKE_BODY_MARGIN = 64 * 1024
MIN_BODY_SIZE = 2 * SMOKE_BODY_MARGIN
# Characters a proxy_path may hold: a plain URL path, nothing nginx's config parser reads as
# syntax (spaces, ';', '{', '}', '#', quotes).
PROXY_PATH_RE = re.compile(r"^/[A-Za-z0-9._~!$&()*+,=:@%/-]*$")


def name_problems(variable: str, value: Any) -> list[str]:
    """Problems with a name used for a Unix user, a supervisor group or a database."""
    if not isinstance(value, str) or not value:
        return [f"{variable} must be a non-empty string, got {value!r}."]
    if not NAME_RE.match(value):
        return [
            f"{variable}={value!r} is not a valid name: use 1 to 32 lowercase letters, digits, '-' or '_', "
            "starting with a letter (no spaces, slashes or dots)."
        ]
    return []


def path_problems(variable: str, value: Any, own_names: Iterable[str] = ()) -> list[str]:
    """Problems with app_root: absolute, plain, and not a system directory or inside one.

    Under /var/lib and /home only a directory named after the app (`own_names`) is the app's own.
    """
    if not isinstance(value, str) or not value.startswith("/"):
        return [f"{variable}={value!r} must be an absolute path such as /srv/shop."]
    parts = value.split("/")
    if ".." in parts or "." in parts or any(c.isspace() for c in value):
        return [f"{variable}={value!r} must not contain '.', '..' or spaces."]
    path = value.rstrip("/")
    if path in ("", "/usr", "/etc", "/var", "/home", "/root", "/srv", "/opt", "/tmp", "/var/lib", "/var/www"):
        return [f"{variable}={value!r} is a system directory; use a directory of its own such as /srv/shop."]
    inside = next((tree for tree in SYSTEM_TREES if path.startswith(tree + "/")), None)
    if inside is None:
        for shared in ("/var/lib", "/home"):
            if path.startswith(shared + "/") and path.split("/")[len(shared.split("/"))] not in own_names:
                inside = shared
    if inside is not None:
        return [
            f"{variable}={value!r} is inside {inside}, which belongs to the system or to other services: "
            "the base role would give it to the app user (mode 0750). Use a directory of its own such as "
            "/srv/shop."
        ]
    return []


def release_path_problems(value: Any, variable: str, example: str = "prisma/schema.prisma") -> list[str]:
    """Problems with a path inside the release (app_prisma_schema, diagnose's Prisma paths): the build,
    recover.yml and diagnose look for it from the release's top, so it must stay inside the release."""
    example = f"such as {example}"
    if not isinstance(value, str) or not value.strip():
        return [f"{variable} must name a path relative to the release, {example}; got {value!r}."]
    if value.startswith("/"):
        return [
            f"{variable}={value!r} is an absolute path: give it relative to the release's top, {example}."
        ]
    if ".." in value.split("/"):
        return [
            f"{variable}={value!r} has a '..' component: it must name a path inside the release, {example}."
        ]
    return []


def _launcher_words(command: str) -> list[str]:
    """The words of `command` after unwrapping `env [VAR=value ...]` and `sh -c '...'`."""
    words = shlex.split(command)
    while words:
        first = words[0].rsplit("/", 1)[-1]
        if first == "env":
            words = words[1:]
            while words and (words[0].startswith("-") or "=" in words[0]):
                words = words[1:]
        elif first in SHELLS and len(words) > 2 and words[1] == "-c":
            words = shlex.split(words[2])
        elif first == "exec":
            words = words[1:]
        else:
            return words
    return words


def _command_problems(where: str, command: str) -> list[str]:
    try:
        words = _launcher_words(command)
    except ValueError as exc:
        return [
            f"{where}.command={command!r} is not a command line supervisor can split ({exc}); "
            "check its quotes."
        ]
    first = words[0].rsplit("/", 1)[-1] if words else ""
    if first in PACKAGE_MANAGERS:
        return [
            f"{where}.command={command!r} runs node through the package manager {first}: supervisor would "
            f"signal {first}, not "
            "node, and leave node orphaned (seed 000, I1). Run node directly, e.g. 'node server.js'."
        ]
    return []


def env_problems(
    app_env: Any, app_secret_env: Any, derived_env: Mapping[str, str] | None = None
) -> list[str]:
    """Names in app_env or app_secret_env that would override what supervisor gives each program, or
    what the app role derives (derived_env: name -> what it is derived from)."""
    problems = []
    for variable, env in (("app_env", app_env), ("app_secret_env", app_secret_env)):
        for name, source in (derived_env or {}).items():
            if isinstance(env, Mapping) and name in env:
                problems.append(
                    f"{variable} sets {name}, which shipshape derives from {source}; the value set here "
                    f"would replace it in every env file. Remove {name} from {variable}."
                )
        for name in SUPERVISOR_ENV:
            if isinstance(env, Mapping) and name in env:
                problems.append(
                    f"{variable} sets {name}, which supervisor sets for each program (PORT from "
                    "app_processes, HOSTNAME=127.0.0.1, NODE_ENV=production); the env file would override "
                    f"it. Remove {name} from {variable}; set a port in app_processes."
                )
        # Exported after the env file, so a value there would be silently ignored.
        if isinstance(env, Mapping) and "APP_RELEASE" in env:
            problems.append(
                f"{variable} sets APP_RELEASE, which each program gets from the release it starts in "
                f"(the id of the release current points to); a value in the env file is ignored. "
                f"Remove APP_RELEASE from {variable}."
            )
    return problems


def service_port_problems(app_processes: Any, service_ports: Mapping[str, Any]) -> list[str]:
    """App ports that a service on the same host (PostgreSQL, PgBouncer, Redis) listens on.

    `service_ports` maps each service's port variable to its value, so a message can name it. A value
    may be a string of digits: `-e redis_port=6379` gives one, and the service listens on it all the same.
    """
    owners = {
        port: f"app_processes[{index}] ({process.get('name')!r})"
        for index, process in _routed_processes(app_processes)
        for port in process_ports(process)
    }
    numbers = {variable: _port_number(port) for variable, port in service_ports.items()}
    return [
        f"{owners[port]} takes port {port}, which is {variable} on this host: one of them would fail with "
        "EADDRINUSE (seed 002, I6). Give the process another port."
        for variable, port in numbers.items()
        if port in owners
    ]


def _port_number(value: Any) -> int | None:
    """A port given as an int or as a string of digits; None for anything else."""
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def size_to_bytes(size: Any) -> int:
    """Bytes in an nginx size (`20m` -> 20971520). Raises AnsibleFilterError if nginx would refuse it."""
    match = SIZE_RE.match(str(size).strip())
    if not match:
        raise AnsibleFilterError(
            f"{size!r} is not a size nginx understands: write a number with an optional k, m or g suffix, "
            "such as 512k, 20m or 1g."
        )
    return int(match.group(1)) * SIZE_FACTORS[match.group(2).lower()]


PROXY_TIMEOUT_FLOOR = 120
PROXY_TIMEOUT_RATE = 256 * 1024


def proxy_timeout(size: Any) -> int:
    """nginx's proxy timeouts for a body limit (I4): two minutes (seed 002's, for 20 MB), or a second per
    256 KiB of the limit when that is longer. A size nginx would refuse gives the two minutes: the
    validation names it, and a default computed from it must not fail before the validation runs."""
    try:
        return max(PROXY_TIMEOUT_FLOOR, size_to_bytes(size) // PROXY_TIMEOUT_RATE)
    except AnsibleFilterError:
        return PROXY_TIMEOUT_FLOOR


def model_file_name(path: str, programs_file: str, site_file: str, record: str) -> str:
    """What a file of the rendered app model is, for a person reading a failed deploy's report."""
    if path == programs_file:
        return "the supervisor programs"
    if path == site_file:
        return "the nginx site"
    if path == record:
        return "the smoke tests' record of the model"
    name = path.rsplit("/", 1)[-1]
    return f"the env file of {name.removesuffix('.env')}" if name.endswith(".env") else path


def _process_problems(index: int, process: Any) -> list[str]:
    where = f"app_processes[{index}]"
    if not isinstance(process, Mapping):
        return [f"{where} must be a mapping with at least name and command, got {process!r}."]
    problems = name_problems(f"{where}.name", process.get("name"))
    if not process.get("command"):
        problems.append(
            f"{where}.command is required: the command supervisor runs, such as 'node server.js'."
        )
    else:
        problems += _command_problems(where, str(process["command"]))
    unknown = sorted(set(process) - PROCESS_KEYS)
    if unknown:
        problems.append(f"{where} has unknown keys {unknown}; allowed keys are {sorted(PROCESS_KEYS)}.")
    port = process.get("port")
    if port is not None and (
        not isinstance(port, int) or isinstance(port, bool) or not 1024 <= port <= 65535
    ):
        problems.append(f"{where}.port={port!r} must be an integer from 1024 to 65535.")
    host = process.get("host", LOOPBACK_V4)
    if host != LOOPBACK_V4:
        problems.append(
            f"{where}.host={host!r}: upstreams must be {LOOPBACK_V4}. 'localhost' may resolve to ::1 and "
            "a hostname may resolve anywhere; the app is told HOSTNAME=127.0.0.1 (seed 002, I7)."
        )
    instances = process.get("instances", 1)
    if not isinstance(instances, int) or isinstance(instances, bool) or instances < 1:
        problems.append(f"{where}.instances={instances!r} must be an integer of at least 1.")
    elif _valid_port(port) and port + instances - 1 > 65535:
        problems.append(
            f"{where}.port={port} with instances={instances} needs ports up to {port + instances - 1}, "
            "past 65535 (instances take consecutive ports). Lower the port or the instances."
        )
    for path_key in ("health_path", "proxy_path"):
        value = process.get(path_key)
        if value is not None and (not isinstance(value, str) or not value.startswith("/")):
            problems.append(f"{where}.{path_key}={value!r} must be a URL path starting with '/'.")
    if process.get("proxy_path") and port is None:
        problems.append(f"{where}.proxy_path needs a port to proxy to.")
    if process.get("websocket") and not process.get("proxy_path"):
        problems.append(f"{where}.websocket is true but no proxy_path says where nginx routes it.")
    db_pool = process.get("db_pool", 0)
    if not isinstance(db_pool, int) or isinstance(db_pool, bool) or db_pool < 0:
        problems.append(f"{where}.db_pool={db_pool!r} must be an integer of 0 (no database) or more.")
    return problems


def process_ports(process: Mapping[str, Any]) -> list[int]:
    """Ports a process listens on: `instances` consecutive ports from `port`."""
    if process.get("port") is None:
        return []
    return [process["port"] + i for i in range(process.get("instances", 1))]


def _ports_problems(processes: Iterable[Mapping[str, Any]]) -> list[str]:
    owner: dict[int, str] = {}
    problems = []
    for process in processes:
        for port in process_ports(process):
            if port in owner:
                problems.append(
                    f"app_processes: port {port} is used by both {owner[port]!r} and {process['name']!r} "
                    "(instances take consecutive ports); two programs on one port crash-loop on EADDRINUSE "
                    "(seed 002, I6). Give each a port range of its own."
                )
            owner[port] = process["name"]
    return problems


def app_model_problems(
    app_name: Any,
    app_user: Any = None,
    app_root: Any = None,
    app_processes: Any = None,
    app_max_body_size: Any = None,
    app_env: Any = None,
    app_secret_env: Any = None,
    derived_env: Mapping[str, str] | None = None,
) -> list[str]:
    """Every problem found in the app model, as sentences for the operator; empty when valid.

    app_env and app_secret_env are checked by their names only; their values never reach a message.
    derived_env names the variables the app role derives itself (name -> from what), which neither may set.
    """
    problems = name_problems("app_name", app_name)
    if app_user is not None:
        problems += name_problems("app_user", app_user)
        if app_user == "root":
            problems.append("app_user must not be root: the app never runs as root.")
        elif app_user in SYSTEM_ACCOUNTS:
            problems.append(
                f"app_user={app_user!r} is a system account: the base role would change its shell, home and "
                "groups, and give it app_root. Use a user of the app's own, such as its app_name."
            )
    if app_root is not None:
        problems += path_problems("app_root", app_root, {app_name, app_user})
    problems += env_problems(app_env, app_secret_env, derived_env)
    if app_max_body_size is not None:
        try:
            body_size = size_to_bytes(app_max_body_size)
        except AnsibleFilterError as exc:
            problems.append(f"app_max_body_size: {exc.message}")
        else:
            if body_size < MIN_BODY_SIZE:
                problems.append(
                    f"app_max_body_size: {app_max_body_size!r} is under {MIN_BODY_SIZE // 1024}k. 0 would "
                    "turn nginx's limit off, and the smoke tests send a body 64 KiB under the limit and one "
                    "64 KiB over it (I4). Uploads need a real limit, such as 20m."
                )
    if app_processes is not None:
        if not isinstance(app_processes, list) or not app_processes:
            return [*problems, "app_processes must be a non-empty list of processes."]
        process_problems = [p for i, proc in enumerate(app_processes) for p in _process_problems(i, proc)]
        problems += process_problems
        if not process_problems:
            names = [p["name"] for p in app_processes]
            duplicates = sorted({n for n in names if names.count(n) > 1})
            if duplicates:
                problems.append(
                    f"app_processes: names {duplicates} appear more than once; names must be unique."
                )
            problems += _ports_problems(app_processes)
    return problems


def app_program_instances(app_name: str, app_processes: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One entry per supervisor program instance: name, process, port (or None), index."""
    instances = []
    for process in app_processes:
        count = process.get("instances", 1)
        ports = process_ports(process) or [None] * count
        for index, port in enumerate(ports):
            suffix = f"-{index}" if count > 1 else ""
            instances.append(
                {
                    "program": f"{app_name}-{process['name']}{suffix}",
                    "process": process["name"],
                    "port": port,
                    "index": index,
                }
            )
    return instances


def _valid_port(port: Any) -> bool:
    return isinstance(port, int) and not isinstance(port, bool) and 1 <= port <= 65535


def _routed_processes(app_processes: Any) -> list[tuple[int, Mapping[str, Any]]]:
    """(index, process) of each process nginx routes to: a mapping with a valid port."""
    if not isinstance(app_processes, list):
        return []
    return [
        (index, process)
        for index, process in enumerate(app_processes)
        if isinstance(process, Mapping) and _valid_port(process.get("port"))
    ]


def _route_problems(app_processes: Any) -> list[str]:
    """Each routed process needs a location of its own: one serves '/', the others their proxy_path."""
    problems = []
    owner: dict[str, int] = {}
    for index, process in _routed_processes(app_processes):
        proxy_path = process.get("proxy_path")
        if isinstance(proxy_path, str) and proxy_path and not PROXY_PATH_RE.match(proxy_path):
            problems.append(
                f"app_processes[{index}].proxy_path={proxy_path!r} is not a plain URL path: nginx would read "
                "its spaces, ';', '{', '}', '#' or quotes as config syntax. Use letters, digits and '/._-~'."
            )
            continue
        location = proxy_path or "/"
        if location in owner:
            first = owner[location]
            if not proxy_path:
                problems.append(
                    f"app_processes[{index}].proxy_path is missing: app_processes[{first}] already serves "
                    "'/' (a process with a port and no proxy_path serves '/', and only one may). "
                    f"Give app_processes[{index}] a proxy_path such as '/{process.get('name')}/'."
                )
            else:
                problems.append(
                    f"app_processes[{index}].proxy_path={location!r} is also the proxy_path of "
                    f"app_processes[{first}]; nginx can route a path to one process only."
                )
            continue
        owner[location] = index
    return problems


def _listen_problems(listen_ports: Mapping[str, Any], app_processes: Any) -> list[str]:
    """nginx's ports must be valid, distinct, and not an app port (EADDRINUSE, seed 002)."""
    problems = []
    app_ports = {
        port: process.get("name")
        for _, process in _routed_processes(app_processes)
        for port in process_ports(process)
    }
    seen: dict[int, str] = {}
    for variable, port in listen_ports.items():
        if not _valid_port(port):
            problems.append(f"{variable}={port!r} must be an integer from 1 to 65535.")
            continue
        if port in app_ports:
            problems.append(
                f"{variable}={port} is the port of app process {app_ports[port]!r}: nginx and the app "
                "cannot both listen on it (EADDRINUSE, seed 002). Pick another port for one of them."
            )
        if port in seen:
            problems.append(f"{variable}={port} is also {seen[port]}; nginx needs a port for each.")
        seen.setdefault(port, variable)
    return problems


def nginx_site_problems(
    app_processes: Any,
    listen_ports: Mapping[str, Any],
    tls_certificate: Any = "",
    tls_certificate_key: Any = "",
) -> list[str]:
    """Problems with the nginx site the app model and the nginx_* settings describe; empty when valid.

    `listen_ports` maps each nginx port variable to its value, so a message can name it. Checks that
    need a valid app model (its types) are left to app_model_problems, which the nginx role asserts too.
    """
    problems = _route_problems(app_processes) + _listen_problems(listen_ports, app_processes)
    if bool(tls_certificate) != bool(tls_certificate_key):
        given, missing = (
            ("nginx_tls_certificate", "nginx_tls_certificate_key")
            if tls_certificate
            else ("nginx_tls_certificate_key", "nginx_tls_certificate")
        )
        problems.append(
            f"{given} is set but {missing} is not: TLS needs both (paths on the host), "
            "or neither for HTTP only."
        )
    return problems


def app_nginx_routes(app_name: str, app_processes: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One route per process with a port: its upstream (every instance's 127.0.0.1:port) and location.

    A process without a proxy_path serves '/'. Call it on a model app_model_problems and
    nginx_site_problems found valid.
    """
    return [
        {
            "process": process["name"],
            "upstream": f"{app_name}_{process['name']}",
            "servers": [f"{process.get('host', LOOPBACK_V4)}:{port}" for port in process_ports(process)],
            "location": process.get("proxy_path") or "/",
            "websocket": bool(process.get("websocket", False)),
        }
        for _, process in _routed_processes(app_processes)
    ]


# Seconds a stop of the supervisor service must leave after the longest drain: supervisord
# sends its last SIGKILL at the end of a drain and needs a moment to exit before systemd kills.
DRAIN_MARGIN_SECONDS = 10
# The drain every program gets unless its process says short_drain: true (seed 002, I9): in-flight
# requests, Socket.IO connections and jobs finish before SIGKILL.
MIN_DRAIN_SECONDS = 30


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def app_drain_problems(app_processes: Any, stopwaitsecs: Any, service_stop_timeout: Any) -> list[str]:
    """Problems with the drain times of the app's supervisor programs; empty when valid.

    A process drains (SIGTERM, then SIGKILL to its group after this many seconds) for its own
    `stopwaitsecs`, else for `stopwaitsecs` (supervisor_stopwaitsecs), at least MIN_DRAIN_SECONDS
    unless the process says `short_drain: true`. Every drain must end
    DRAIN_MARGIN_SECONDS before `service_stop_timeout` (supervisor_service_stop_timeout), or a stop
    of the supervisor service (a reboot, an upgrade) kills node mid-drain (seed 002, I9).
    """
    problems = []
    drains: list[tuple[str, int]] = []
    default_used = False
    for index, process in enumerate(app_processes if isinstance(app_processes, list) else []):
        if not isinstance(process, Mapping):
            continue
        if "stopwaitsecs" not in process:
            default_used = True
            continue
        value = process["stopwaitsecs"]
        variable = f"app_processes[{index}].stopwaitsecs"
        short_drain = process.get("short_drain", False)
        if not isinstance(short_drain, bool):
            problems.append(f"app_processes[{index}].short_drain={short_drain!r} must be true or false.")
        elif _positive_int(value) and value < MIN_DRAIN_SECONDS and not short_drain:
            problems.append(
                f"{variable}={value} is under the {MIN_DRAIN_SECONDS} s drain a program needs to finish its "
                "requests and jobs before SIGKILL (seed 002, I9). Raise it to "
                f"{MIN_DRAIN_SECONDS} or more, or set app_processes[{index}].short_drain: true for a "
                "process that has nothing to drain."
            )
        if _positive_int(value):
            drains.append((variable, value))
        else:
            problems.append(
                f"{variable}={value!r} must be an integer of at least 1: the seconds supervisor waits "
                "after SIGTERM before it kills the program's process group."
            )
    if not _positive_int(stopwaitsecs):
        problems.append(
            f"supervisor_stopwaitsecs={stopwaitsecs!r} must be an integer of at least 1: the seconds "
            "supervisor waits after SIGTERM before it kills a program's process group."
        )
    elif stopwaitsecs < MIN_DRAIN_SECONDS:
        problems.append(
            f"supervisor_stopwaitsecs={stopwaitsecs} is under the {MIN_DRAIN_SECONDS} s drain every program "
            f"needs to finish its requests and jobs before SIGKILL (seed 002, I9). Raise it to "
            f"{MIN_DRAIN_SECONDS} or more; a process with nothing to drain can set its own stopwaitsecs "
            "with short_drain: true."
        )
    elif default_used:
        drains.append(("supervisor_stopwaitsecs", stopwaitsecs))
    if not _positive_int(service_stop_timeout):
        return [
            *problems,
            f"supervisor_service_stop_timeout={service_stop_timeout!r} must be an integer of at least 1.",
        ]
    for variable, drain in drains:
        if drain + DRAIN_MARGIN_SECONDS > service_stop_timeout:
            problems.append(
                f"{variable}={drain} leaves less than {DRAIN_MARGIN_SECONDS} s of "
                f"supervisor_service_stop_timeout={service_stop_timeout}: a stop of the supervisor service "
                "(a reboot, an upgrade) would kill node mid-drain. Raise supervisor_service_stop_timeout to "
                f"{drain + DRAIN_MARGIN_SECONDS} or more, or shorten the drain."
            )
    return problems


# The keys each kind of source takes: anything else (say `ref:` for `version:`) would be
# silently ignored and deploy something else than meant (HEAD).
SOURCE_KEYS = {"archive": ("type", "path"), "git": ("type", "repo", "version")}
# A URL with credentials in it: any user part of an http(s) URL (a token is often given as the
# user), or a user:password part with any scheme. ssh://git@host/x and git@host:x carry none.
CREDENTIAL_URL_RE = re.compile(r"^(?:https?://[^/@]*@|[a-z][a-z0-9+.-]*://[^/@:]*:[^/@]*@)", re.IGNORECASE)


def app_source_problems(app_source: Any) -> list[str]:
    """What is wrong with app_source; never repeats a repo URL, which may carry a secret."""
    usage = "{type: archive, path: DIR-OR-TARBALL} or {type: git, repo: URL, version: REF}"
    if not isinstance(app_source, Mapping):
        return [f"app_source must be {usage}; got a {type(app_source).__name__}."]
    kind = app_source.get("type")
    if kind not in SOURCE_KEYS:
        return [f"app_source.type must be archive or git ({usage}); got {kind!r}."]
    unknown = sorted(str(key) for key in app_source if key not in SOURCE_KEYS[kind])
    if unknown:
        return [
            f"app_source has {', '.join(unknown)}, which {'an' if kind == 'archive' else 'a'} {kind} source "
            f"does not take; its keys are {', '.join(SOURCE_KEYS[kind])}."
        ]
    if kind == "archive":
        path = app_source.get("path")
        if not isinstance(path, str) or not path:
            return ["app_source.path must name a directory or a tarball on the controller."]
        return []
    repo, version = app_source.get("repo"), app_source.get("version", "HEAD")
    if not isinstance(repo, str) or not repo:
        return ["app_source.repo must be the URL of the git repository to deploy."]
    if CREDENTIAL_URL_RE.match(repo):
        return [
            "app_source.repo carries credentials in its URL (a user or password before '@'): they would "
            "be kept in each release's .git/config and release record and shown in Ansible's output. "
            "Give the app user an SSH deploy key or a git credential helper, and a URL without them."
        ]
    if not isinstance(version, str) or not version or version.startswith("-"):
        return [
            f"app_source.version must be a branch, tag or commit name, as a string (quote a number in "
            f"YAML); got {version!r}."
        ]
    return []


# The refs a version may name, in the order git itself tries them (gitrevisions(7), "<refname>"):
# the name as given (HEAD, refs/heads/main), then under refs/, refs/tags/, refs/heads/.
GIT_REF_CANDIDATES = ("{}", "refs/{}", "refs/tags/{}", "refs/heads/{}")
GIT_COMMIT_RE = re.compile(r"^[0-9a-fA-F]{7,40}$")


def git_version_commit(ls_remote_lines: Iterable[str], version: str) -> dict[str, str]:
    """The commit a git version names, from `git ls-remote REPO VERSION VERSION^{}`.

    ls-remote matches a pattern against the tail of every ref: `main` also lists
    refs/heads/feature/main, which sorts first. Only a ref the version names exactly counts, and
    an annotated tag counts as the commit it points to (its peeled `^{}` line). A version no ref
    matches is a commit id, or a mistake. Returns the commit, the ref that named it ('' for a
    commit id) and the problem ('' when there is none).
    """
    refs: dict[str, str] = {}
    for line in ls_remote_lines:
        fields = line.split()
        if len(fields) == 2:
            refs[fields[1]] = fields[0]
    for pattern in GIT_REF_CANDIDATES:
        ref = pattern.format(version)
        if ref in refs:
            return {"commit": refs.get(ref + "^{}", refs[ref]), "ref": ref, "problem": ""}
    if GIT_COMMIT_RE.match(version):
        return {"commit": version.lower(), "ref": "", "problem": ""}
    near = sorted(name for name in refs if not name.endswith("^{}"))[:5]
    return {
        "commit": "",
        "ref": "",
        "problem": (
            f"app_source.version {version!r} is no branch or tag of the repository, nor a commit id "
            f"(7 to 40 hex digits)"
            + (f"; refs ending in it: {', '.join(near)}: name one of them in full." if near else ".")
        ),
    }


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {
            "app_source_problems": app_source_problems,
            "app_release_path_problems": release_path_problems,
            "app_git_version_commit": git_version_commit,
            "app_model_problems": app_model_problems,
            "app_program_instances": app_program_instances,
            "nginx_size_to_bytes": size_to_bytes,
            "nginx_proxy_timeout": proxy_timeout,
            "model_file_name": model_file_name,
            "app_process_ports": process_ports,
            "app_nginx_routes": app_nginx_routes,
            "nginx_site_problems": nginx_site_problems,
            "app_drain_problems": app_drain_problems,
            "app_service_port_problems": service_port_problems,
        }
