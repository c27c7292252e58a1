"""Read /proc: listening TCP sockets, the processes that hold them, and which processes belong to the app.

The parsing functions take text and are pure; the ``read_*`` functions read a real /proc tree, under a
``proc_root`` that tests point at a fake one. Shared by the app_reap and app_listeners modules (outages I1,
I6, I7): both must agree on what "an app process outside supervisor" is.
"""

from __future__ import annotations

import fnmatch
import ipaddress
import os
import pwd
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

# TCP_LISTEN in include/net/tcp_states.h, as /proc/net/tcp prints it.
TCP_LISTEN = "0A"
# Exited but not yet waited for (zombie), or being torn down: no sockets, and signals do nothing.
GONE_STATES = ("Z", "X", "x")
# The programs a Node.js app runs as. `next start` renames itself "next-server (v14.2.3)", hence the pattern.
NODE_COMMANDS = (
    "node",
    "nodejs",
    "npm",
    "npx",
    "yarn",
    "pnpm",
    "bun",
    "deno",
    "tsx",
    "ts-node",
    "next-server*",
)
SUPERVISORD = "supervisord"
# The module supervisord is when started as ``python -m supervisor.supervisord``.
SUPERVISORD_MODULE = "supervisor.supervisord"
# The names of a python interpreter (python3, python3.11, pypy3), and the options of one that take the
# next argument as their value.
PYTHON_COMMANDS = ("python*", "pypy*")
PYTHON_OPTIONS_WITH_VALUE = ("-W", "-X", "--check-hash-based-pycs")
# The kinds of systemd unit whose cgroup a process runs in: a service, or a scope (a login session, a
# container, a ``systemd-run --scope``).
UNIT_SUFFIXES = (".service", ".scope")


@dataclass(frozen=True)
class Listener:
    """One listening TCP socket."""

    address: str
    port: int
    family: str  # "ipv4", "ipv6" or "dual" (an IPv6 wildcard socket that also accepts IPv4)
    inode: int
    uid: int


@dataclass(frozen=True)
class Process:
    """What /proc says about one process."""

    pid: int
    ppid: int
    comm: str
    state: str
    starttime: int  # clock ticks after boot; with the pid, identifies the process even if the pid is reused
    uid: int | None
    cmdline: tuple[str, ...]
    cwd: str | None
    exe: str | None
    sockets: frozenset[int]

    @property
    def command(self) -> str:
        return " ".join(self.cmdline) if self.cmdline else f"[{self.comm}]"


@dataclass(frozen=True)
class Parent:
    """The process that started another, so a report can name who brings back a process it ends."""

    pid: int
    command: str | None  # None when it is not among the processes read (it exited meanwhile)

    @property
    def is_init(self) -> bool:
        """pid 1 adopts every orphan: as a parent it says who reaped the process, not who started it."""
        return self.pid == 1


@dataclass(frozen=True)
class Candidate:
    """A process that belongs to the app by port or by path, and why."""

    process: Process
    ports: tuple[int, ...]
    reasons: tuple[str, ...]
    protected_because: str | None  # None: it may be reaped


def decode_address(
    hex_address: str, byteorder: str = "little"
) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """Decode an address as /proc/net/tcp{,6} prints it: 32-bit words in host byte order, in hex."""
    raw = bytes.fromhex(hex_address)
    if len(raw) not in (4, 16):
        raise ValueError(f"not an IPv4 or IPv6 address in /proc/net/tcp format: {hex_address!r}")
    if byteorder == "little":
        raw = b"".join(raw[start : start + 4][::-1] for start in range(0, len(raw), 4))
    return ipaddress.ip_address(raw)


def decode_endpoint(
    text: str, byteorder: str = "little"
) -> tuple[ipaddress.IPv4Address | ipaddress.IPv6Address, int]:
    """``0100007F:0BB8`` -> (127.0.0.1, 3000). The port is printed in plain hex, not in host order."""
    address, _, port = text.partition(":")
    return decode_address(address, byteorder), int(port, 16)


def listener_family(address: ipaddress.IPv4Address | ipaddress.IPv6Address, bindv6only: bool = False) -> str:
    """ipv4, ipv6 or dual: which clients a listening socket on this address accepts.

    A v4-mapped address (::ffff:127.0.0.1) only ever receives IPv4. The IPv6 wildcard (::) also receives IPv4
    unless the socket set IPV6_V6ONLY, which /proc does not show; the system default (net.ipv6.bindv6only)
    is the best guess, and node does not change it unless told to (``ipv6Only: true``).
    """
    if address.version == 4:
        return "ipv4"
    assert isinstance(address, ipaddress.IPv6Address)
    if address.ipv4_mapped is not None:
        return "ipv4"
    if address.is_unspecified and not bindv6only:
        return "dual"
    return "ipv6"


def format_address(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    """The address as people write it; a v4-mapped one as ::ffff:127.0.0.1 on every Python version."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return f"::ffff:{address.ipv4_mapped}"
    return str(address)


def parse_net_tcp(text: str, byteorder: str = "little", bindv6only: bool = False) -> list[Listener]:
    """The LISTEN sockets in the text of /proc/net/tcp or /proc/net/tcp6."""
    listeners = []
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 10 or fields[3] != TCP_LISTEN:
            continue
        address, port = decode_endpoint(fields[1], byteorder)
        listeners.append(
            Listener(
                address=format_address(address),
                port=port,
                family=listener_family(address, bindv6only),
                inode=int(fields[9]),
                uid=int(fields[7]),
            )
        )
    return listeners


def parse_stat(text: str) -> tuple[str, str, int, int]:
    """(comm, state, ppid, starttime) from /proc/PID/stat.

    comm is in parentheses and may itself contain spaces and parentheses, so the fields after it are found
    from the last ')'.
    """
    open_paren, close_paren = text.index("("), text.rindex(")")
    comm = text[open_paren + 1 : close_paren]
    rest = text[close_paren + 2 :].split()
    # rest[0] is field 3 (state); starttime is field 22
    return comm, rest[0], int(rest[1]), int(rest[19])


def parse_cmdline(raw: bytes) -> tuple[str, ...]:
    """argv from /proc/PID/cmdline (NUL-separated; a process that rewrote its title may use spaces)."""
    text = raw.decode("utf-8", "replace").rstrip("\0")
    return tuple(text.split("\0")) if text else ()


def parse_status_uid(text: str) -> int | None:
    """The real uid from /proc/PID/status."""
    for line in text.splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[1])
    return None


def parse_cgroup_unit(text: str) -> str | None:
    """The systemd unit a process runs in, from the text of /proc/PID/cgroup; None when none is named.

    systemd puts each unit's processes in a cgroup of its own name, so ``0::/system.slice/pm2-root.service``
    (cgroup v2) or ``1:name=systemd:/system.slice/pm2-root.service`` (v1, or the hybrid layout) says that
    pm2-root.service runs the process: the unit an operator stops and disables to keep it from coming
    back. The unit is the last component of the path that ends in .service or .scope, because a unit can
    hold cgroups of its own (``user@1000.service/app.slice/pm2.service``, or a service's delegated
    subgroups). ``0::/`` (no systemd, or a container's own view) names none.
    """
    paths = []
    for line in text.splitlines():
        hierarchy, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        if (hierarchy == "0" and not controllers) or "name=systemd" in controllers.split(","):
            paths.append(path)
    for path in paths:
        for component in reversed(path.split("/")):
            if component.endswith(UNIT_SUFFIXES):
                return component
    return None


def socket_inode(link: str) -> int | None:
    """12345 for a /proc/PID/fd link ``socket:[12345]``, None for anything else."""
    if link.startswith("socket:[") and link.endswith("]"):
        return int(link[8:-1])
    return None


def clean_link(link: str) -> str:
    """A /proc cwd or exe link without the " (deleted)" the kernel adds once the path is gone."""
    return link[: -len(" (deleted)")] if link.endswith(" (deleted)") else link


def path_under(path: str | None, roots: Iterable[str]) -> bool:
    """True when path is one of roots or inside one of them."""
    if not path or not path.startswith("/"):
        return False
    path = os.path.normpath(path)
    for root in roots:
        root = os.path.normpath(root)
        if root != "/" and (path == root or path.startswith(root + "/")):
            return True
    return False


def ancestors(pid: int, parents: Mapping[int, int]) -> list[int]:
    """The parent, grandparent, ... of pid, nearest first, as far as parents knows."""
    chain: list[int] = []
    current = parents.get(pid)
    while current and current not in chain and current != pid:
        chain.append(current)
        current = parents.get(current)
    return chain


def is_descendant(pid: int, ancestor: int, parents: Mapping[int, int]) -> bool:
    return ancestor in ancestors(pid, parents)


def command_names(process: Process) -> set[str]:
    """The names a process goes by: its executable, its argv[0] and its comm."""
    names = {process.comm}
    if process.exe:
        names.add(os.path.basename(process.exe))
    if process.cmdline:
        names.add(os.path.basename(process.cmdline[0].split(" ")[0]))
    return names


def python_runs(cmdline: Sequence[str]) -> str | None:
    """What a python command line runs: its script, or ``-m`` and the module; None for ``-c`` or no python.

    The interpreter's options come first (``python3 -u -W error /usr/bin/supervisord``), and short ones
    may be run together (``python3 -um supervisor.supervisord``).
    """
    if not cmdline or not any(
        fnmatch.fnmatchcase(os.path.basename(cmdline[0]), pattern) for pattern in PYTHON_COMMANDS
    ):
        return None
    arguments = iter(cmdline[1:])
    for argument in arguments:
        if argument == "--":
            return next(arguments, None)
        if argument in PYTHON_OPTIONS_WITH_VALUE:
            next(arguments, None)
        elif argument.startswith("--"):
            continue
        elif argument.startswith("-") and argument != "-":
            for index, flag in enumerate(argument[1:], start=2):
                value = argument[index:]
                if flag == "m":
                    return f"-m {value or next(arguments, '')}"
                if flag == "c":
                    return None
                if flag in "WX":
                    if not value:
                        next(arguments, None)
                    break  # the rest of the argument, or the next one, is its value
        else:
            return argument
    return None


def is_supervisord(process: Process) -> bool:
    """supervisord itself.

    On Debian it is a Python script, so exe is python3 and comm is supervisord or python3; argv may be
    ``/usr/bin/python3 /usr/bin/supervisord``, ``python3 -u /usr/bin/supervisord`` or
    ``python3 -m supervisor.supervisord``.
    """
    if process.comm == SUPERVISORD or (process.exe and os.path.basename(process.exe) == SUPERVISORD):
        return True
    if process.cmdline and os.path.basename(process.cmdline[0]) == SUPERVISORD:
        return True
    runs = python_runs(process.cmdline)
    return runs is not None and (os.path.basename(runs) == SUPERVISORD or runs == f"-m {SUPERVISORD_MODULE}")


def parent_map(processes: Mapping[int, Process]) -> dict[int, int]:
    return {process.pid: process.ppid for process in processes.values()}


def parent_of(process: Process, processes: Mapping[int, Process]) -> Parent | None:
    """Who started process, as far as /proc tells: its parent pid and that parent's command line.

    None for pid 1 and kernel threads, whose parent pid is 0: they have no parent to name. An orphan's
    parent is pid 1, which adopted it (see Parent.is_init).
    """
    if process.ppid <= 0:
        return None
    parent = processes.get(process.ppid)
    return Parent(process.ppid, parent.command if parent is not None else None)


def origin(process: Process, processes: Mapping[int, Process], unit: str | None) -> dict[str, object]:
    """parent_pid, parent_cmdline and unit, as app_reap and app_listeners report a process.

    What an operator needs when a process this project ends comes back: who starts it.
    """
    parent = parent_of(process, processes)
    return {
        "parent_pid": parent.pid if parent is not None else None,
        "parent_cmdline": parent.command if parent is not None else None,
        "unit": unit,
    }


def supervisor_of(pid: int, processes: Mapping[int, Process], parents: Mapping[int, int]) -> int | None:
    """The supervisord that pid is, or descends from; None when it runs outside supervisor."""
    for candidate in [pid, *ancestors(pid, parents)]:
        process = processes.get(candidate)
        if process is not None and is_supervisord(process):
            return candidate
    return None


def socket_holders(processes: Iterable[Process]) -> dict[int, list[int]]:
    """socket inode -> the pids that have it open (a forked child inherits its parent's socket)."""
    holders: dict[int, list[int]] = {}
    for process in processes:
        for inode in process.sockets:
            holders.setdefault(inode, []).append(process.pid)
    return {inode: sorted(pids) for inode, pids in holders.items()}


def ports_held(
    listeners: Iterable[Listener], holders: Mapping[int, Sequence[int]], ports: Iterable[int]
) -> dict[int, list[int]]:
    """pid -> the given ports it listens on."""
    wanted = set(ports)
    held: dict[int, set[int]] = {}
    for listener in listeners:
        if listener.port in wanted:
            for pid in holders.get(listener.inode, ()):
                held.setdefault(pid, set()).add(listener.port)
    return {pid: sorted(found) for pid, found in held.items()}


def app_tree_reason(process: Process, app_roots: Sequence[str], tree_commands: Sequence[str]) -> str | None:
    """Why a process runs from the app tree, or None.

    A program under the app tree always counts. A working directory or an argument under it counts only for
    the commands in tree_commands (node and friends by default): an operator's shell or ``tail -f`` of a log
    in the release directory is not the app.
    """
    if path_under(process.exe, app_roots):
        return f"runs {process.exe} from the app tree"
    names = command_names(process)
    if not any(fnmatch.fnmatchcase(name, pattern) for name in names for pattern in tree_commands):
        return None
    if path_under(process.cwd, app_roots):
        return f"{process.comm} with its working directory {process.cwd} in the app tree"
    for argument in process.cmdline[1:]:
        if path_under(argument, app_roots):
            return f"{process.comm} with {argument} from the app tree on its command line"
    return None


def app_candidates(
    processes: Mapping[int, Process],
    listeners: Sequence[Listener],
    ports: Sequence[int],
    app_roots: Sequence[str],
    tree_commands: Sequence[str],
    protected: Mapping[int, str],
) -> list[Candidate]:
    """Every process that holds one of ports or runs from the app tree, each marked whether it may be reaped.

    protected maps pids that must never be signalled (this module and its parents, exclude_pids) to why.
    Processes run by supervisord are the app's programs and are protected too; so are pid 1 and processes
    that have already exited.
    """
    by_pid = ports_held(listeners, socket_holders(processes.values()), ports)
    parents = parent_map(processes)
    candidates = []
    for pid in sorted(processes):
        process = processes[pid]
        reasons = [f"holds app port {port}" for port in by_pid.get(pid, [])]
        tree = app_tree_reason(process, app_roots, tree_commands) if app_roots else None
        if tree:
            reasons.append(tree)
        if not reasons:
            continue
        supervisor = supervisor_of(pid, processes, parents)
        if pid in protected:
            because: str | None = protected[pid]
        elif pid == 1:
            because = "it is pid 1 (init)"
        elif process.state in GONE_STATES:
            because = "it has already exited"
        elif supervisor is not None:
            because = f"supervisord (pid {supervisor}) runs it" if supervisor != pid else "it is supervisord"
        else:
            because = None
        candidates.append(Candidate(process, tuple(by_pid.get(pid, [])), tuple(reasons), because))
    return candidates


def _read_text(path: str) -> str:
    with open(path, encoding="utf-8", errors="replace") as handle:
        return handle.read()


def _read_link(path: str) -> str | None:
    try:
        return clean_link(os.readlink(os.fsencode(path)).decode("utf-8", "replace"))
    except OSError:
        return None


def read_bindv6only(proc_root: str = "/proc") -> bool:
    try:
        return _read_text(f"{proc_root}/sys/net/ipv6/bindv6only").strip() == "1"
    except OSError:
        return False


def read_listeners(proc_root: str = "/proc") -> list[Listener]:
    """Every listening TCP socket in this network namespace, IPv4 and IPv6."""
    bindv6only = read_bindv6only(proc_root)
    listeners: list[Listener] = []
    for table in ("tcp", "tcp6"):
        try:
            text = _read_text(f"{proc_root}/net/{table}")
        except FileNotFoundError:
            continue  # tcp6 is absent when IPv6 is disabled
        listeners += parse_net_tcp(text, sys.byteorder, bindv6only)
    return listeners


def read_unit(pid: int, proc_root: str = "/proc") -> str | None:
    """The systemd unit pid runs in (see parse_cgroup_unit); None when none, or when it is gone."""
    try:
        return parse_cgroup_unit(_read_text(f"{proc_root}/{pid}/cgroup"))
    except OSError:
        return None


def live_thread(pid: int, proc_root: str = "/proc") -> tuple[str, str] | None:
    """(thread id, state) of a thread of pid that has not exited; None when every thread has (each is
    a zombie, being torn down, or gone)."""
    try:
        thread_ids = os.listdir(f"{proc_root}/{pid}/task")
    except OSError:
        return None
    for thread_id in thread_ids:
        try:
            state = parse_stat(_read_text(f"{proc_root}/{pid}/task/{thread_id}/stat"))[1]
        except (OSError, ValueError, IndexError):
            continue  # this thread is gone
        if state not in GONE_STATES:
            return thread_id, state
    return None


def threads_exited(pid: int, proc_root: str = "/proc") -> bool:
    """True when every thread of pid has exited (is a zombie, being torn down, or gone)."""
    return live_thread(pid, proc_root) is None


def read_starttime(pid: int, proc_root: str = "/proc") -> int | None:
    """The process's start time, or None if it is gone or has exited.

    /proc/PID/stat shows the main thread only. In a multi-threaded process (node) it may be a zombie while
    the other threads are still exiting, and the last of them to go closes the process's files, its
    listening sockets among them: the process has exited only once all its threads have.
    """
    try:
        _comm, state, _ppid, starttime = parse_stat(_read_text(f"{proc_root}/{pid}/stat"))
    except (OSError, ValueError, IndexError):
        return None
    if state in GONE_STATES and threads_exited(pid, proc_root):
        return None
    return starttime


def read_process(pid: int, proc_root: str = "/proc") -> tuple[Process | None, bool]:
    """(the process or None if it vanished, whether its open files could be read)."""
    base = f"{proc_root}/{pid}"
    try:
        comm, state, ppid, starttime = parse_stat(_read_text(f"{base}/stat"))
        if state in GONE_STATES:
            # /proc/PID/stat is the main thread's: it may have exited (pthread_exit) while other
            # threads run on, holding the process's ports. Its fd, cwd, exe and cmdline then read
            # empty: a live thread's show the process's. It has exited once every thread has.
            thread = live_thread(pid, proc_root)
            if thread is not None:
                base, state = f"{base}/task/{thread[0]}", thread[1]
        with open(f"{base}/cmdline", "rb") as handle:
            cmdline = parse_cmdline(handle.read())
    except (OSError, ValueError, IndexError):
        return None, True
    try:
        uid = parse_status_uid(_read_text(f"{base}/status"))
    except OSError:
        uid = None
    sockets: set[int] = set()
    readable = True
    try:
        for fd in os.listdir(f"{base}/fd"):
            inode = socket_inode(_read_link(f"{base}/fd/{fd}") or "")
            if inode is not None:
                sockets.add(inode)
    except PermissionError:
        readable = False
    except OSError:
        pass  # exited while we looked
    process = Process(
        pid=pid,
        ppid=ppid,
        comm=comm,
        state=state,
        starttime=starttime,
        uid=uid,
        cmdline=cmdline,
        cwd=_read_link(f"{base}/cwd"),
        exe=_read_link(f"{base}/exe"),
        sockets=frozenset(sockets),
    )
    return process, readable


def read_processes(proc_root: str = "/proc") -> tuple[dict[int, Process], list[int]]:
    """Every process, and the pids whose open files could not be read (run as root to see them all)."""
    processes: dict[int, Process] = {}
    unreadable: list[int] = []
    for entry in os.listdir(proc_root):
        if not entry.isdigit():
            continue
        process, readable = read_process(int(entry), proc_root)
        if process is None:
            continue
        processes[process.pid] = process
        if not readable:
            unreadable.append(process.pid)
    return processes, sorted(unreadable)


def read_boot_time(proc_root: str = "/proc") -> float | None:
    try:
        for line in _read_text(f"{proc_root}/stat").splitlines():
            if line.startswith("btime "):
                return float(line.split()[1])
    except OSError:
        pass
    return None


def started_at(starttime: int, boot_time: float | None, clock_ticks: int) -> float | None:
    """Seconds since the epoch at which a process started."""
    return None if boot_time is None else boot_time + starttime / clock_ticks


def self_and_ancestors(processes: Mapping[int, Process], pid: int | None = None) -> list[int]:
    """This process (or pid) and every process above it: the ones a reaper must never signal."""
    pid = os.getpid() if pid is None else pid
    return [pid, *ancestors(pid, parent_map(processes))]


def user_name(uid: int | None) -> str | None:
    if uid is None:
        return None
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)
