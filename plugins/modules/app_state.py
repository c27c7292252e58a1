#!/usr/bin/python
"""Read in one pass what diagnose.yml needs from an app host: release, env files, disk, supervisor, nginx."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: app_state
short_description: Read the state of an app host for diagnose (release, env files, disk, supervisor, nginx)
description:
  - Read-only; changes nothing, in or out of check mode. One module call instead of a dozen tasks, so that
    diagnose.yml takes seconds on a host that is on fire.
  - The current release (C(app_root/current)) and what it needs to run, for outages I2 and I8 of
    docs/incidents.md - C(node_modules), the Prisma schema (O(prisma_schema)) and the generated client's
    copy of it (their sha1 tell a stale client from a fresh one, for a single-file schema), C(.next/BUILD_ID)
    and the release record C(.shipshape-release.json).
  - The variables each process's env file, C(app_root/shared/env/<process>.env), sets, read as the C(sh) that
    sources it does (quotes, escapes, C(export)) (outages I12, I3, I4). Their names leave the host; a value
    only for the names listed in O(env_values), never any other (passwords, URLs, the inventory's app_env
    and app_secret_env).
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
  env_values:
    description:
      - Names of the variables whose values may be returned from the env files, as C(sh) would set them
        (C(values) of each entry of RV(env)). Only derived, non-secret ones belong here (diagnose gives
        DATABASE_POOL_MAX, UPLOAD_MAX_BYTES, NODE_ENV, APP_NAME, UPLOAD_DIR, PGAPPNAME).
      - C(NAME?PARAM) returns one query parameter of a URL variable, never the URL (its password) - the
        last value the query gives PARAM, an empty string when the URL has none, C(not a number) when
        it is not digits (a password with an unencoded C(?) or C(&) would otherwise show through). Only
        Prisma's pool parameters may be read so (C(connection_limit), C(pool_timeout)); any other
        parameter is refused (a libpq URL may carry C(password) in its query).
      - The default, none, returns names only.
    type: list
    elements: str
    default: []
  prisma_client_dir:
    description: Where Prisma generates its client, relative to the release.
    type: str
    default: node_modules/.prisma/client
  prisma_schema:
    description:
      - The Prisma schema, relative to the release (the app role's C(app_prisma_schema)) - a file, or a
        folder of C(.prisma) files (a multi-file schema).
      - Of a folder, the C(.prisma) files in it and its subfolders are read, as C(prisma generate) reads them;
        symlinks are not followed.
    type: str
    default: prisma/schema.prisma
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
    env_values: [DATABASE_POOL_MAX, UPLOAD_MAX_BYTES]
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
    prisma_schema_sha1:
      description:
        - sha1 of the words of the schema file O(prisma_schema) (its whitespace collapsed, as in
          RV(release.prisma_client_schema_sha1), the formatted copy Prisma writes); null when there is
          none, or when it is a symlink or not a regular file.
        - Of a schema folder, sha1 of the lines C(<path in the folder> <sha1 of the file's words>) of its
          C(.prisma) files, sorted by path; null when it has none. It cannot be compared with
          RV(release.prisma_client_schema_sha1) - Prisma writes a reformatted merge of the files there.
      type: str
    prisma_schema_folder:
      description: Whether O(prisma_schema) is a folder (a multi-file schema); a symlink to one is not.
      type: bool
    prisma_client_dir: {description: Whether the generated client's directory exists., type: bool}
    prisma_client_schema_sha1:
      description: >-
        sha1 of the words of the schema copy Prisma writes into the generated client (formatted, so only
        the words compare); null when it is missing, a symlink or not a regular file.
      type: str
    build_id: {description: The content of .next/BUILD_ID; null when it is missing., type: str}
    record: {description: The release record (.shipshape-release.json) or null., type: dict}
env:
  description:
    - One entry per process - C(names), the variables its env file sets; C(values), the value of each of
      them that O(env_values) lists; C(expanded), those of O(env_values) whose value the shell would compute
      (C($VAR), C($(...)), a backtick, C(~)), which is not returned; C(syntax_error) when C(sh) would stop
      on the file (an unterminated quote), naming the line only; C(error) when it could not be read.
  returned: always
  type: list
  elements: dict
  sample:
    - {process: web, exists: true, names: [DATABASE_POOL_MAX, DATABASE_URL, NODE_ENV],
       values: {DATABASE_POOL_MAX: "10", "DATABASE_URL?connection_limit": "10", NODE_ENV: production},
       expanded: []}
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
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import parse_qs, urlsplit

from ansible.module_utils.basic import AnsibleModule

ENV_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# After an unquoted or double-quoted $, these begin an expansion (a parameter, ${...}, $(...)); before
# any other character $ is itself.
EXPANSION_START = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_{(@*#?$!-")
# Characters that end a simple command, and those of what this reader does not follow (subshells,
# redirections): such a command is left out.
COMMAND_END = ";&|"
NOT_FOLLOWED = "()<>"
# Special built-ins: assignments before them stay set; export and readonly set their NAME=value arguments.
ASSIGNING_BUILTINS = frozenset({"export", "readonly"})
# A stop, and a start after giving up, begin a program's count again (diagnose_collect.py).
LOG_MATCH = ("supervisord started with pid", "exited: ", "gave up: ", "stopped: ", "spawned: ")
SUPERVISORD_START = "supervisord started with pid"
RECORD_MAX_BYTES = 65536
# A Prisma schema larger than this is not read (the largest real ones are a few hundred KB).
SCHEMA_MAX_BYTES = 4 * 1024 * 1024


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


def schema_sha1(name: str, dir_fd: int | None = None) -> str | None:
    """sha1 of the words of a Prisma schema file (its whitespace collapsed), or None.

    prisma generate writes a formatted copy of the schema into the client (fields aligned, blank lines
    and trailing spaces gone): the bytes of a schema nobody ran `prisma format` on never match that
    copy, while its words do, and a change to the schema changes them. None for a missing or too
    large file, a symlink, a FIFO or a device: diagnose runs as root in the app user's release, and
    neither follows a link laid there nor waits on one.
    """
    try:
        descriptor = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=dir_fd)
    except OSError:
        return None
    with os.fdopen(descriptor, "rb") as handle:
        try:
            if not stat.S_ISREG(os.fstat(descriptor).st_mode):
                return None
            data = handle.read(SCHEMA_MAX_BYTES + 1)
        except OSError:
            return None
    if len(data) > SCHEMA_MAX_BYTES:
        return None
    return hashlib.sha1(b" ".join(data.split())).hexdigest()  # a fingerprint, not a secret


def schema_folder_sha1(folder: str) -> str | None:
    """One sha1 for a multi-file Prisma schema: of the lines '<path in the folder> <sha1 of the file>'
    of its .prisma files, in this folder and its subfolders (prisma generate reads both), sorted by
    path. None when it has none. Neither a symlinked folder nor a symlinked file is followed."""
    lines = []
    for directory, _subfolders, files, directory_fd in os.fwalk(folder, follow_symlinks=False):
        for name in files:
            if name.endswith(".prisma") and (file_sha1 := schema_sha1(name, directory_fd)):
                lines.append(f"{os.path.relpath(os.path.join(directory, name), folder)} {file_sha1}\n")
    if not lines:
        return None
    return hashlib.sha1("".join(sorted(lines)).encode()).hexdigest()


def prisma_schema_state(release_dir: str, prisma_schema: str) -> dict[str, Any]:
    path = os.path.join(release_dir, prisma_schema)
    try:
        folder = stat.S_ISDIR(os.lstat(path).st_mode)
    except OSError:
        folder = False
    return {
        "prisma_schema_sha1": schema_folder_sha1(path) if folder else schema_sha1(path),
        "prisma_schema_folder": folder,
    }


def release_state(
    release_dir: str, prisma_client_dir: str, prisma_schema: str = "prisma/schema.prisma"
) -> dict[str, Any]:
    client = os.path.join(release_dir, prisma_client_dir)
    record_text = read_small(os.path.join(release_dir, ".shipshape-release.json"))
    try:
        record = json.loads(record_text) if record_text is not None else None
    except ValueError:
        record = None
    build_id = read_small(os.path.join(release_dir, ".next", "BUILD_ID"), 256)
    return {
        "node_modules": os.path.isdir(os.path.join(release_dir, "node_modules")),
        **prisma_schema_state(release_dir, prisma_schema),
        "prisma_client_dir": os.path.isdir(client),
        "prisma_client_schema_sha1": schema_sha1(os.path.join(client, "schema.prisma")),
        "build_id": (build_id or "").strip() or None,
        "record": record if isinstance(record, dict) else None,
    }


def current_state(app_root: str) -> dict[str, Any]:
    current = os.path.join(app_root, "current")
    if not os.path.islink(current):
        return {"exists": False, "target": None, "release": None}
    target = os.readlink(current)
    return {"exists": True, "target": target, "release": os.path.basename(target.rstrip("/"))}


class ShellSyntaxError(ValueError):
    """What sh would stop on; the message names a line, never what the file holds."""


class ShellWord:
    """One word of a command, as sh reads it: its text once the quotes are removed, the unquoted
    characters it starts with (an assignment's NAME= must be unquoted), whether an expansion makes it
    (its text is then not what sh would see), and where it has an unquoted ~."""

    def __init__(self) -> None:
        self.text: list[str] = []
        self.length = 0
        self.prefix: list[str] = []
        self.prefix_open = True
        self.expanded = False
        self.tildes: list[int] = []

    def literal(self, char: str) -> None:
        if char == "~":
            self.tildes.append(self.length)
        self.text.append(char)
        self.length += 1
        if self.prefix_open:
            self.prefix.append(char)

    def quoted(self, chars: str) -> None:
        self.text.append(chars)
        self.length += len(chars)
        self.prefix_open = False

    def expansion(self) -> None:
        self.expanded = True
        self.prefix_open = False

    def assignment(self) -> tuple[str, str | None] | None:
        """(name, value) when the word is NAME=value; value None when the shell computes it."""
        prefix = "".join(self.prefix)
        name, equals, _ = prefix.partition("=")
        if not equals or not ENV_NAME_RE.fullmatch(name):
            return None
        text = "".join(self.text)
        start = len(name) + 1
        # Tilde expansion in an assignment: at the start of the value and after each unquoted ':'.
        tilde = any(at == start or (at > start and text[at - 1] == ":") for at in self.tildes)
        return name, None if self.expanded or tilde else text[start:]


def _skip_expansion(text: str, index: int) -> int:
    """The index after the expansion that starts at text[index] ('$' or '`'); nesting of ${...} and
    $(...) is followed, quotes inside them are not (an env file has no use for them)."""
    if text[index] == "`":
        end = index + 1
        while end < len(text) and text[end] != "`":
            end += 2 if text[end] == "\\" else 1
        if end >= len(text):
            raise ShellSyntaxError(f"unterminated ` on line {text.count(chr(10), 0, index) + 1}")
        return end + 1
    opener = text[index + 1]
    if opener not in "{(":
        end = index + 1
        if opener in "@*#?$!-" or opener.isdigit():
            return end + 1
        while end < len(text) and (text[end].isalnum() or text[end] == "_"):
            end += 1
        return end
    closer, depth, end = "}" if opener == "{" else ")", 0, index + 1
    while end < len(text):
        if text[end] == opener:
            depth += 1
        elif text[end] == closer:
            depth -= 1
            if depth == 0:
                return end + 1
        end += 1
    raise ShellSyntaxError(f"unterminated ${opener} on line {text.count(chr(10), 0, index) + 1}")


def _run_command(words: list[ShellWord], env: dict[str, str | None]) -> None:
    """What one simple command leaves set in the shell that sources the file."""
    index = 0
    assignments = []
    while index < len(words) and (assigned := words[index].assignment()) is not None:
        assignments.append(assigned)
        index += 1
    rest = words[index:]
    command = "".join(rest[0].text) if rest and not rest[0].expanded else None
    if rest and command not in ASSIGNING_BUILTINS and command != "unset":
        return  # assignments before another command are for that command only
    env.update(assignments)
    for word in rest[1:]:
        if command == "unset":
            env.pop("".join(word.text), None)
        elif (assigned := word.assignment()) is not None:
            env[assigned[0]] = assigned[1]


def parse_env_file(text: str) -> tuple[dict[str, str | None], str | None]:
    r"""The variables sh sets when it sources text (supervisor's `set -a; . FILE`): name -> value, None
    for a value the shell computes (an expansion); and what sh would stop on, or None.

    Read as sh reads it: single quotes keep everything (the app role writes NAME='value', a ' inside
    as '\''), double quotes and backslashes escape as in sh, # begins a comment at the start of a word,
    a command ends at a newline, ;, & or |. A line sets its NAME=value words when it is only
    assignments, or export, readonly or unset with arguments; assignments before any other command
    are that command's, not the file's. A command with ( ) < or > is left out. Lines end at "\n"
    only: \r, \x0b, \x85 and their kind are ordinary characters to sh, inside a value or not.
    """
    env: dict[str, str | None] = {}
    words: list[ShellWord] = []
    word: ShellWord | None = None
    skip_command = False
    index, length = 0, len(text)

    def line_of(at: int) -> int:
        return text.count("\n", 0, at) + 1

    def end_word() -> None:
        nonlocal word
        if word is not None:
            words.append(word)
            word = None

    def end_command() -> None:
        nonlocal skip_command
        end_word()
        if words and not skip_command:
            _run_command(words, env)
        words.clear()
        skip_command = False

    try:
        while index < length:
            char = text[index]
            if char == "\n" or char in COMMAND_END:
                end_command()
                index += 1
            elif char in " \t":
                end_word()
                index += 1
            elif char == "#" and word is None:
                newline = text.find("\n", index)
                index = length if newline < 0 else newline
            elif char in NOT_FOLLOWED:
                end_word()
                skip_command = True
                index += 1
            elif text.startswith("\\\n", index):
                index += 2  # a line continued: sh removes both characters before it reads words
            else:
                word = word or ShellWord()
                if char == "\\":
                    word.quoted(text[index + 1 : index + 2])
                    index += 2
                elif char == "'":
                    end = text.find("'", index + 1)
                    if end < 0:
                        raise ShellSyntaxError(f"unterminated ' quote opened on line {line_of(index)}")
                    word.quoted(text[index + 1 : end])
                    index = end + 1
                elif char == '"':
                    index = _double_quoted(text, index, word, line_of)
                elif char == "`" or (char == "$" and text[index + 1 : index + 2] in EXPANSION_START):
                    index = _skip_expansion(text, index)
                    word.expansion()
                else:
                    word.literal(char)
                    index += 1
        end_command()
    except ShellSyntaxError as error:
        return env, str(error)
    return env, None


def _double_quoted(text: str, index: int, word: ShellWord, line_of: Callable[[int], int]) -> int:
    """Read "..." from text[index] into word; the index after the closing quote."""
    chars: list[str] = []
    end = index + 1
    while end < len(text) and text[end] != '"':
        char = text[end]
        if char == "\\" and end + 1 < len(text) and text[end + 1] in '$`"\\\n':
            if text[end + 1] != "\n":
                chars.append(text[end + 1])
            end += 2
        elif char == "`" or (char == "$" and end + 1 < len(text) and text[end + 1] in EXPANSION_START):
            end = _skip_expansion(text, end)
            word.expanded = True
        else:
            chars.append(char)
            end += 1
    if end >= len(text):
        raise ShellSyntaxError(f'unterminated " quote opened on line {line_of(index)}')
    word.quoted("".join(chars))
    return end + 1


def env_names(text: str) -> list[str]:
    """The names the env file sets, as sh reads it: no part of a quoted value is taken for a name."""
    return sorted(parse_env_file(text)[0])


# The query parameters of a URL variable that env_values may name (NAME?PARAM): Prisma's pool, which the
# connection budget derives. Not a password (libpq reads one from the query), nor anything else.
URL_PARAMS_SHOWN = ("connection_limit", "pool_timeout")


def refused_url_params(shown: Sequence[str]) -> list[str]:
    """The entries of env_values that name a URL parameter other than URL_PARAMS_SHOWN."""
    return [name for name in shown if "?" in name and name.partition("?")[2] not in URL_PARAMS_SHOWN]


def shown_value(env: Mapping[str, str | None], name: str) -> str | None:
    """The value of `name` as env_values asks for it: a variable's, or one query parameter of a URL
    variable's (NAME?PARAM; "" when the URL has none). None when the variable is unset or computed."""
    variable, _, param = name.partition("?")
    value = env.get(variable)
    if value is None or not param:
        return value
    given = parse_qs(urlsplit(value).query, keep_blank_values=True).get(param)
    if not given:
        return ""
    return given[-1] if given[-1].isascii() and given[-1].isdigit() else "not a number"


def env_state(app_root: str, processes: Sequence[str], shown: Sequence[str] = ()) -> list[dict[str, Any]]:
    """Each process's env file: the names it sets, and the values of those in shown only."""
    entries = []
    for process in processes:
        path = os.path.join(app_root, "shared", "env", f"{process}.env")
        entry: dict[str, Any] = {
            "process": process,
            "exists": True,
            "names": [],
            "values": {},
            "expanded": [],
        }
        try:
            # newline="": universal newlines would turn a \r inside a value into a line end
            with open(path, encoding="utf-8", errors="replace", newline="") as handle:
                env, syntax_error = parse_env_file(handle.read())
        except FileNotFoundError:
            entry["exists"] = False
        except OSError as error:
            entry["error"] = error.strerror
        else:
            entry["names"] = sorted(env)
            values = {name: shown_value(env, name) for name in shown}
            entry["values"] = {name: value for name, value in values.items() if value is not None}
            # Set, to a value sh computes (None): not returned, but named.
            entry["expanded"] = [
                name for name, value in values.items() if value is None and name.partition("?")[0] in env
            ]
            if syntax_error:
                entry["syntax_error"] = syntax_error
        entries.append(entry)
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
            "env_values": {"type": "list", "elements": "str", "default": []},
            "prisma_client_dir": {"type": "str", "default": "node_modules/.prisma/client"},
            "prisma_schema": {"type": "str", "default": "prisma/schema.prisma"},
            "supervisord_log": {"type": "path", "default": "/var/log/supervisor/supervisord.log"},
            "log_lines": {"type": "int", "default": 5000},
            "nginx": {"type": "bool", "default": True},
            "timeout": {"type": "int", "default": 10},
        },
        supports_check_mode=True,
    )
    params = module.params
    refused = refused_url_params(params["env_values"])
    if refused:
        module.fail_json(
            msg=f"env_values: {', '.join(refused)}: of a URL, only {', '.join(URL_PARAMS_SHOWN)} may be read"
        )
    app_root = params["app_root"]
    current = current_state(app_root)
    # Read-only: the same in check mode and out of it.
    module.exit_json(
        changed=False,
        current=current,
        release=release_state(
            os.path.join(app_root, "current"), params["prisma_client_dir"], params["prisma_schema"]
        )
        if current["exists"]
        else {},
        env=env_state(app_root, params["processes"], params["env_values"]),
        disk=disk_state(app_root),
        supervisor=run(["supervisorctl", "status", f"{params['app_name']}:"], params["timeout"]),
        supervisord_log=supervisord_log_state(params["supervisord_log"], params["log_lines"]),
        nginx=run(["nginx", "-T"], params["timeout"]) if params["nginx"] else None,
    )


def main() -> None:
    run_module()


if __name__ == "__main__":
    main()
