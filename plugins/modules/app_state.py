#!/usr/bin/python
"""Read in one pass what diagnose.yml needs from an app host: release, env names, disk, supervisor, nginx."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: app_state
short_description: Read the state of an app host for diagnose (release, env names, disk, supervisor, nginx)
description:
  - Read-only; changes nothing, in or out of check mode. One module call instead of a dozen tasks, so that
    diagnose.yml takes seconds on a host that is on fire.
  - The current release (C(app_root/current)) and what it needs to run, for outages I2 and I8 of
    docs/incidents.md - C(node_modules), the Prisma schema and the generated client's copy of it (their
    sha1 tell a stale client from a fresh one), C(.next/BUILD_ID) and the release record
    C(.shipshape-release.json).
  - The variable names in each process's env file, C(app_root/shared/env/<process>.env) (outage I12). Only
    the names leave the host; values are never returned.
  - Space and inodes used on the filesystem that holds O(app_root).
  - The output of C(supervisorctl status <app_name>:) and the lines of supervisord's log that show starts,
    stops, unexpected exits and FATAL states since supervisord last started (outage I5; supervisor keeps no
    restart counter).
  - The output of C(nginx -T) (its configuration test and every file it reads), for outages I4 and I7.
  - Interpreting all this is the diagnose filters' job (plugins/filter/diagnose_collect.py).
version_added: "0.1.0"
options:
  app_root:
    description: The app's directory (releases, shared, current).
    type: path
    required: true
  app_name:
    description: The app's name, which is its supervisor group.
    type: str
    required: true
  processes:
    description: Names of the app's processes; each has an env file C(app_root/shared/env/<name>.env).
    type: list
    elements: str
    default: []
  prisma_client_dir:
    description: Where Prisma generates its client, relative to the release.
    type: str
    default: node_modules/.prisma/client
  supervisord_log:
    description: supervisord's own log file.
    type: path
    default: /var/log/supervisor/supervisord.log
  log_lines:
    description: At most this many matching lines of supervisord's log are returned (the newest).
    type: int
    default: 5000
  nginx:
    description: Run C(nginx -T) and return its output.
    type: bool
    default: true
  timeout:
    description: Seconds C(supervisorctl) and C(nginx) may take.
    type: int
    default: 10
notes:
  - Supports check mode; it never changes anything.
  - Run it with become, as root; env files are readable only by the app user, nginx -T needs root.
author: shipshape
"""

EXAMPLES = r"""
- name: Read the state of the app host
  app_state:
    app_root: /srv/shop
    app_name: shop
    processes: [web, socket, worker]
  become: true
  register: app_state_result
"""

RETURN = r"""
current:
  description: The current symlink.
  returned: always
  type: dict
  contains:
    exists: {description: Whether current is a symlink., type: bool}
    target: {description: Where it points (releases/<id>)., type: str}
    release: {description: The release id (the last part of the target)., type: str}
release:
  description: What the current release needs to run; empty when there is no current release.
  returned: always
  type: dict
  contains:
    node_modules: {description: Whether node_modules is a directory., type: bool}
    prisma_schema_sha1: {description: sha1 of prisma/schema.prisma; null when there is none., type: str}
    prisma_client_dir: {description: Whether the generated client's directory exists., type: bool}
    prisma_client_schema_sha1:
      description: sha1 of the schema copy Prisma writes into the generated client; null when it is missing.
      type: str
    build_id: {description: The content of .next/BUILD_ID; null when it is missing., type: str}
    record: {description: The release record (.shipshape-release.json) or null., type: dict}
env:
  description: One entry per process.
  returned: always
  type: list
  elements: dict
  sample: [{process: web, exists: true, names: [DATABASE_URL, NODE_ENV, REDIS_URL]}]
disk:
  description: Use of the filesystem that holds app_root, as df counts it.
  returned: always
  type: dict
  sample:
    path: /srv/shop
    mount: /
    blocks: {total: 10000000, used: 4000000, available: 6000000, percent: 40}
    inodes: {total: 655360, used: 20000, available: 635360, percent: 4}
supervisor:
  description: rc, stdout and stderr of C(supervisorctl status <app_name>:).
  returned: always
  type: dict
supervisord_log:
  description: The host's local time (the log's clock) and the log lines since supervisord last started.
  returned: always
  type: dict
  sample: {now: "2025-11-22 23:00:00", lines: ["2025-11-22 22:59:10,000 INFO exited: shop-worker (...)"]}
nginx:
  description: rc, stdout and stderr of C(nginx -T); null when O(nginx) is false.
  returned: always
  type: dict
"""

import hashlib
import json
import math
import os
import re
import stat
import subprocess
import time
from collections.abc import Sequence
from typing import Any

from ansible.module_utils.basic import AnsibleModule

# Names only: a line NAME=... or export NAME=...; the value is never captured.
ENV_NAME_RE = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=")
# A stop, and a start after giving up, begin a program's count again (diagnose_collect.py).
LOG_MATCH = ("supervisord started with pid", "exited: ", "gave up: ", "stopped: ", "spawned: ")
SUPERVISORD_START = "supervisord started with pid"
RECORD_MAX_BYTES = 65536


def sha1_of(path: str) -> str | None:
    digest = hashlib.sha1()  # a fingerprint to compare two files, as Ansible's stat module gives
    try:
        with open(path, "rb") as handle:
            for chunk in iter(lambda: handle.read(65536), b""):
                digest.update(chunk)
    except OSError:
        return None
    return digest.hexdigest()


def read_small(path: str, limit: int = RECORD_MAX_BYTES) -> str | None:
    """The start of a regular file, or None. diagnose runs as root and a release is the app user's:
    a symlink there (to a key, /etc/shadow) is not followed into the report, nor a FIFO waited on."""
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    with os.fdopen(descriptor, encoding="utf-8", errors="replace") as handle:
        try:
            if not stat.S_ISREG(os.fstat(descriptor).st_mode):
                return None
            return handle.read(limit)
        except OSError:
            return None


def release_state(release_dir: str, prisma_client_dir: str) -> dict[str, Any]:
    client = os.path.join(release_dir, prisma_client_dir)
    record_text = read_small(os.path.join(release_dir, ".shipshape-release.json"))
    try:
        record = json.loads(record_text) if record_text is not None else None
    except ValueError:
        record = None
    build_id = read_small(os.path.join(release_dir, ".next", "BUILD_ID"), 256)
    return {
        "node_modules": os.path.isdir(os.path.join(release_dir, "node_modules")),
        "prisma_schema_sha1": sha1_of(os.path.join(release_dir, "prisma", "schema.prisma")),
        "prisma_client_dir": os.path.isdir(client),
        "prisma_client_schema_sha1": sha1_of(os.path.join(client, "schema.prisma")),
        "build_id": (build_id or "").strip() or None,
        "record": record if isinstance(record, dict) else None,
    }


def current_state(app_root: str) -> dict[str, Any]:
    current = os.path.join(app_root, "current")
    if not os.path.islink(current):
        return {"exists": False, "target": None, "release": None}
    target = os.readlink(current)
    return {"exists": True, "target": target, "release": os.path.basename(target.rstrip("/"))}


def env_names(text: str) -> list[str]:
    r"""The names set in an env file; the values are not kept.

    Lines end at "\n" only, as for the shell that loads the file. str.splitlines() also splits at \r,
    \x0b, \x0c, \x1c-\x1e, \x85, \u2028 and \u2029, which a quoted value may hold: part of a secret
    would come back as a name.
    """
    names = set()
    for line in text.split("\n"):
        match = ENV_NAME_RE.match(line)
        if match:
            names.add(match.group(1))
    return sorted(names)


def env_state(app_root: str, processes: Sequence[str]) -> list[dict[str, Any]]:
    entries = []
    for process in processes:
        path = os.path.join(app_root, "shared", "env", f"{process}.env")
        try:
            # newline="": universal newlines would turn a \r inside a value into a line end
            with open(path, encoding="utf-8", errors="replace", newline="") as handle:
                names = env_names(handle.read())
            entries.append({"process": process, "exists": True, "names": names})
        except FileNotFoundError:
            entries.append({"process": process, "exists": False, "names": []})
        except OSError as error:
            entries.append({"process": process, "exists": True, "names": [], "error": error.strerror})
    return entries


def mount_point(path: str) -> str:
    path = os.path.realpath(path)
    while not os.path.ismount(path):
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    return path


def percent_used(used: int, available: int) -> int | None:
    """df's Use%: used over what non-root users could have, rounded up."""
    if used + available <= 0:
        return None
    return math.ceil(used * 100 / (used + available))


def disk_state(path: str) -> dict[str, Any]:
    existing = path
    while not os.path.exists(existing) and os.path.dirname(existing) != existing:
        existing = os.path.dirname(existing)
    try:
        stats = os.statvfs(existing)
    except OSError as error:
        return {"path": path, "error": error.strerror}
    used_blocks = (stats.f_blocks - stats.f_bfree) * stats.f_frsize // 1024
    available_blocks = stats.f_bavail * stats.f_frsize // 1024
    used_inodes = stats.f_files - stats.f_ffree
    return {
        "path": path,
        "mount": mount_point(existing),
        "blocks": {
            "total": stats.f_blocks * stats.f_frsize // 1024,
            "used": used_blocks,
            "available": available_blocks,
            "percent": percent_used(used_blocks, available_blocks),
        },
        "inodes": {
            "total": stats.f_files,
            "used": used_inodes,
            "available": stats.f_favail,
            "percent": percent_used(used_inodes, stats.f_favail) if stats.f_files else None,
        },
    }


def log_since_start(lines: Sequence[str], limit: int) -> list[str]:
    """The lines that matter to crash counting, since supervisord last started, at most limit of them."""
    start = 0
    for index in range(len(lines) - 1, -1, -1):
        if SUPERVISORD_START in lines[index]:
            start = index
            break
    wanted = [line.rstrip("\n") for line in lines[start:] if any(mark in line for mark in LOG_MATCH)]
    return wanted[-limit:] if limit > 0 else []


def supervisord_log_state(path: str, limit: int) -> dict[str, Any]:
    now = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime())
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            lines = handle.readlines()
    except OSError as error:
        return {"now": now, "lines": [], "error": f"{path}: {error.strerror}"}
    return {"now": now, "lines": log_since_start(lines, limit)}


def run(argv: Sequence[str], timeout: int) -> dict[str, Any]:
    """rc, stdout and stderr of a command; bytes that are not UTF-8 (a Latin-1 comment that
    ``nginx -T`` prints from a config file) come out as U+FFFD instead of failing the module."""
    try:
        done = subprocess.run(
            list(argv), capture_output=True, text=True, errors="replace", timeout=timeout, check=False
        )
    except FileNotFoundError:
        return {"rc": 127, "stdout": "", "stderr": f"{argv[0]}: command not found"}
    except subprocess.TimeoutExpired:
        return {"rc": 124, "stdout": "", "stderr": f"{argv[0]} did not answer within {timeout} s"}
    return {"rc": done.returncode, "stdout": done.stdout, "stderr": done.stderr}


def run_module() -> None:
    module = AnsibleModule(
        argument_spec={
            "app_root": {"type": "path", "required": True},
            "app_name": {"type": "str", "required": True},
            "processes": {"type": "list", "elements": "str", "default": []},
            "prisma_client_dir": {"type": "str", "default": "node_modules/.prisma/client"},
            "supervisord_log": {"type": "path", "default": "/var/log/supervisor/supervisord.log"},
            "log_lines": {"type": "int", "default": 5000},
            "nginx": {"type": "bool", "default": True},
            "timeout": {"type": "int", "default": 10},
        },
        supports_check_mode=True,
    )
    params = module.params
    app_root = params["app_root"]
    current = current_state(app_root)
    # Read-only: the same in check mode and out of it.
    module.exit_json(
        changed=False,
        current=current,
        release=release_state(os.path.join(app_root, "current"), params["prisma_client_dir"])
        if current["exists"]
        else {},
        env=env_state(app_root, params["processes"]),
        disk=disk_state(app_root),
        supervisor=run(["supervisorctl", "status", f"{params['app_name']}:"], params["timeout"]),
        supervisord_log=supervisord_log_state(params["supervisord_log"], params["log_lines"]),
        nginx=run(["nginx", "-T"], params["timeout"]) if params["nginx"] else None,
    )


def main() -> None:
    run_module()


if __name__ == "__main__":
    main()
