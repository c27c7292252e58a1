#!/usr/bin/python
"""End the app's processes that run outside supervisor (outages I1, I6)."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: app_reap
short_description: End every process that holds an app port or runs from the app tree outside supervisor
description:
  - Outages I1 and I6 (seeds 000, 002, 004) were orphaned or duplicate node processes that held the app's
    ports and files after their supervisor, terminal or deploy had gone. Before the programs start, this
    module finds every process that listens on one of O(ports), or runs from O(app_root), and is not
    supervisord or run by it.
  - Each one gets SIGTERM; those still running after O(term_timeout) seconds get SIGKILL. Each is reported
    with its pid, command line, ports, user, the reason it was chosen and the signal it got.
  - A process is "from the app tree" when its executable is under O(app_root), or when it is one of
    O(tree_commands) and its working directory or an argument is under O(app_root). An operator's shell or a
    C(tail -f) of a log under O(app_root) is left alone.
  - Never signals itself, its parent processes (Ansible's own, whose working directory may be in the app
    tree), pid 1, supervisord or anything supervisord runs, or O(exclude_pids).
  - Signals are sent through a pidfd after checking the process's start time, so a pid that was reused by a
    new process in the meantime is never hit.
  - Run it with become, as root; otherwise processes of other users cannot be seen or signalled (a warning
    says so).
version_added: "0.1.0"
options:
  ports:
    description: TCP ports of the app; any process outside supervisor that listens on one is reaped.
    type: list
    elements: int
    default: []
  app_root:
    description:
      - The app's directory (releases, shared, current). Its real path is matched too when it is a symlink.
      - Without it only O(ports) decide.
    type: path
  term_timeout:
    description: Seconds to wait after SIGTERM before SIGKILL. Match the drain time of the programs.
    type: int
    default: 10
  kill_after_timeout:
    description:
      - Send SIGKILL to processes still running after O(term_timeout).
      - When false such a process is left running and the task fails, naming it.
    type: bool
    default: true
  exclude_pids:
    description: Pids never to signal.
    type: list
    elements: int
    default: []
  tree_commands:
    description:
      - Shell patterns (fnmatch) for the executable, argv[0] or process name of the commands that count as the
        app when their working directory or an argument is under O(app_root).
      - Use C(['*']) to count every command.
    type: list
    elements: str
    default: [node, nodejs, npm, npx, yarn, pnpm, bun, deno, tsx, ts-node, next-server*]
  fail_when_held:
    description:
      - Fail when, after reaping, something still listens on one of O(ports) (see RV(still_held)), such as a
        program of another supervisord, a process this module may not signal, or one whose open files could
        not be read. A program started on that port would only fail with EADDRINUSE (I6), so the task stops
        first, naming the holder.
      - When false the holders are only reported.
    type: bool
    default: true
notes:
  - Check mode reports what would be reaped and sends nothing; it never fails on RV(still_held), because the
    programs it is run before are not stopped in check mode.
  - The same selection is reported read-only, as C(orphans), by the app_listeners module.
author: shipshape
"""

EXAMPLES = r"""
- name: Reap node processes left outside supervisor on the app's ports or in its tree
  app_reap:
    ports: "{{ app_processes | selectattr('port', 'defined') | map(attribute='port') | list }}"
    app_root: "{{ app_root }}"
    term_timeout: 30
  become: true
  register: app_reap_result

- name: Show what would be reaped, without signalling anything
  app_reap:
    ports: [3000, 3001]
    app_root: /srv/shop
  check_mode: true
"""

RETURN = r"""
reaped:
  description: The processes chosen (in check mode, the ones that would be), one entry each.
  returned: always
  type: list
  elements: dict
  contains:
    pid: {description: Process id., type: int}
    cmdline: {description: Its command line, space-separated., type: str}
    ports: {description: App ports it listened on., type: list, elements: int}
    reason: {description: Why it was chosen, such as "holds app port 3000"., type: str}
    signal:
      description: The last signal sent, SIGTERM or SIGKILL; null in check mode or if it was already gone.
      type: str
    exited: {description: Whether it is gone now (false in check mode)., type: bool}
    user: {description: The user it ran as., type: str}
    started_at: {description: When it started, ISO 8601 UTC., type: str}
    parent_pid:
      description:
        - The process that started it (1 when init adopted it); null when unknown.
        - With RV(reaped[].unit), what to stop and disable when the same process comes back every run.
      type: int
    parent_cmdline: {description: The parent's command line; null when unknown., type: str}
    unit: {description: "The systemd unit it ran in, such as pm2-root.service; null when none.", type: str}
  sample:
    - pid: 4242
      cmdline: node /srv/shop/releases/20250101/server.js
      ports: [3000]
      reason: holds app port 3000; node with its working directory /srv/shop/releases/20250101 in the app tree
      signal: SIGTERM
      exited: true
      user: shop
      started_at: "2025-01-01T03:00:00Z"
      parent_pid: 1
      parent_cmdline: /sbin/init
      unit: session-3.scope
kept:
  description: App processes that matched but are not signalled, and why (supervised, this module, excluded).
  returned: always
  type: list
  elements: dict
  contains:
    pid: {description: Process id., type: int}
    cmdline: {description: Its command line., type: str}
    ports: {description: App ports it listens on., type: list, elements: int}
    reason: {description: Why it matched., type: str}
    kept_because: {description: Why it is not signalled, such as "supervisord (pid 812) runs it"., type: str}
    user: {description: The user it runs as., type: str}
still_held:
  description:
    - App ports that something still listens on after reaping, and who (a supervised program, a process
      this module may not signal, one that would not die, or one started again after the reap). Empty when
      every port is free.
    - C(pid) and C(cmdline) are null for a listener no readable process holds (its holder's open files could
      not be read, see RV(unreadable_pids)).
  returned: always
  type: list
  elements: dict
  contains:
    port: {description: The app port., type: int}
    address: {description: The address it listens on., type: str}
    pid: {description: The process holding it; null when it could not be found (not root)., type: int}
    cmdline: {description: Its command line; null with C(pid)., type: str}
    supervised: {description: Whether supervisord runs it., type: bool}
    respawned:
      description:
        - True for a holder this module would have ended had it been there when it looked; not supervised,
          not in O(exclude_pids), not Ansible's own process and not pid 1.
        - Something outside supervisor started it after the look, or again after the reap ended the one
          before it, and will on every run; a process manager such as PM2, a systemd unit with
          C(Restart=), a cron job or a shell loop. Stop and disable that.
      type: bool
    parent_pid:
      description: The process that started it (1 when init adopted it); null when unknown.
      type: int
    parent_cmdline: {description: The parent's command line; null when unknown., type: str}
    unit: {description: "The systemd unit it runs in, such as pm2-root.service; null when none.", type: str}
  sample:
    - port: 3000
      address: 127.0.0.1
      pid: 812
      cmdline: node server.js
      supervised: true
      respawned: false
      parent_pid: 800
      parent_cmdline: /usr/bin/python3 /usr/bin/supervisord
      unit: supervisor.service
    - port: 3001
      address: 127.0.0.1
      pid: 4310
      cmdline: node /srv/shop/current/socket.js
      supervised: false
      respawned: true
      parent_pid: 4100
      parent_cmdline: "PM2 v5.3.0: God Daemon (/root/.pm2)"
      unit: pm2-root.service
unreadable_pids:
  description: Processes whose open files could not be read (the task did not run as root).
  returned: always
  type: list
  elements: int
"""

import datetime
import os
import signal
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.shipshape_proc import (
    NODE_COMMANDS,
    Candidate,
    Listener,
    Process,
    app_candidates,
    origin,
    parent_map,
    read_boot_time,
    read_listeners,
    read_processes,
    read_starttime,
    read_unit,
    self_and_ancestors,
    socket_holders,
    started_at,
    supervisor_of,
    user_name,
)

# A process that outlives SIGKILL by this long is stuck in the kernel (state D); waiting longer will not help.
KILL_TIMEOUT = 5.0
POLL_INTERVAL = 0.1
# How long, after reaping, a listener with no readable holder is looked at again before the task fails on it.
UNOWNED_LISTENER_SETTLE = 2.0
# How long, after reaping, free ports are watched for a process manager that starts the app again.
RESPAWN_WINDOW = 1.5


class ProcessOps(Protocol):
    """What reaping needs from the system; tests substitute a fake clock and fake processes."""

    def send(self, pid: int, starttime: int, signum: int) -> bool: ...

    def alive(self, pid: int, starttime: int) -> bool: ...

    def sleep(self, seconds: float) -> None: ...

    def monotonic(self) -> float: ...


@dataclass
class Outcome:
    pid: int
    signal: str | None = None
    exited: bool = False
    error: str | None = None


class SystemOps:
    """Signals real processes, identified by pid and start time."""

    def __init__(self, proc_root: str = "/proc") -> None:
        self.proc_root = proc_root

    def alive(self, pid: int, starttime: int) -> bool:
        return read_starttime(pid, self.proc_root) == starttime

    def send(self, pid: int, starttime: int, signum: int) -> bool:
        """Signal the process if it is still the one we chose; False when it is gone.

        Raises PermissionError when the task does not run as root.
        """
        pidfd = None
        try:
            pidfd = os.pidfd_open(pid)
        except ProcessLookupError:
            return False
        except (AttributeError, OSError):
            pidfd = None  # Python < 3.9 or kernel < 5.3: fall back to kill() after the same check
        try:
            # With a pidfd open, the pid cannot be reused under us; check it still names our process.
            if not self.alive(pid, starttime):
                return False
            if pidfd is not None:
                signal.pidfd_send_signal(pidfd, signum)
            else:
                os.kill(pid, signum)
            return True
        except ProcessLookupError:
            return False
        finally:
            if pidfd is not None:
                os.close(pidfd)

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)

    def monotonic(self) -> float:
        return time.monotonic()


def _signal_all(
    pids: Sequence[int], starts: Mapping[int, int], signum: int, ops: ProcessOps, outcomes: dict[int, Outcome]
) -> list[int]:
    """Send signum to each pid; return the ones that got it."""
    sent = []
    for pid in pids:
        try:
            if ops.send(pid, starts[pid], signum):
                outcomes[pid].signal = signal.Signals(signum).name
                sent.append(pid)
            else:
                outcomes[pid].exited = True
        except PermissionError:
            outcomes[pid].error = "permission denied: run the task with become: true"
        except OSError as error:
            outcomes[pid].error = f"could not signal it: {error}"
    return sent


def _wait_for_exit(
    pids: Sequence[int], starts: Mapping[int, int], timeout: float, ops: ProcessOps
) -> list[int]:
    """Wait up to timeout seconds for pids to exit; return those still running."""
    deadline = ops.monotonic() + timeout
    pending = list(pids)
    while True:
        pending = [pid for pid in pending if ops.alive(pid, starts[pid])]
        remaining = deadline - ops.monotonic()
        if not pending or remaining <= 0:
            return pending
        ops.sleep(min(POLL_INTERVAL, remaining))


def reap(
    targets: Mapping[int, int],
    term_timeout: float,
    kill_after_timeout: bool,
    ops: ProcessOps,
    kill_timeout: float = KILL_TIMEOUT,
) -> dict[int, Outcome]:
    """SIGTERM every target (pid -> start time) at once; SIGKILL those still running after term_timeout."""
    outcomes = {pid: Outcome(pid) for pid in targets}
    pids = sorted(targets)
    termed = _signal_all(pids, targets, signal.SIGTERM, ops, outcomes)
    survivors = _wait_for_exit(termed, targets, term_timeout, ops)
    if survivors and kill_after_timeout:
        killed = _signal_all(survivors, targets, signal.SIGKILL, ops, outcomes)
        survivors = _wait_for_exit(killed, targets, kill_timeout, ops)
    for pid in termed:
        if pid not in survivors:
            outcomes[pid].exited = True
    return outcomes


def failure_messages(
    candidates: Sequence[Candidate],
    outcomes: Mapping[int, Outcome],
    term_timeout: int,
    kill_after_timeout: bool,
) -> list[str]:
    """One sentence per process that is still running or could not be signalled, with what to do."""
    messages = []
    for candidate in candidates:
        outcome = outcomes[candidate.process.pid]
        who = f"pid {candidate.process.pid} ({candidate.process.command})"
        if outcome.error:
            messages.append(f"{who}: {outcome.error}.")
        elif not outcome.exited and outcome.signal == "SIGTERM" and not kill_after_timeout:
            messages.append(
                f"{who} was still running {term_timeout} s after SIGTERM and kill_after_timeout is false: "
                f"stop it by hand (kill -KILL {candidate.process.pid}) or set kill_after_timeout: true."
            )
        elif not outcome.exited:
            messages.append(
                f"{who} is still running {KILL_TIMEOUT:g} s after SIGKILL: it is stuck in the kernel "
                f"(state D, disk or NFS I/O). Look at /proc/{candidate.process.pid}/stack; a reboot may be "
                "needed."
            )
    return messages


def iso_time(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    moment = datetime.datetime.fromtimestamp(int(epoch), tz=datetime.timezone.utc)  # noqa: UP017 (py3.9 hosts)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def describe(candidate: Candidate, boot_time: float | None, clock_ticks: int) -> dict[str, object]:
    process = candidate.process
    return {
        "pid": process.pid,
        "cmdline": process.command,
        "ports": list(candidate.ports),
        "reason": "; ".join(candidate.reasons),
        "user": user_name(process.uid),
        "started_at": iso_time(started_at(process.starttime, boot_time, clock_ticks)),
    }


def still_held(
    ports: Sequence[int],
    processes: Mapping[int, Process],
    listeners: Sequence[Listener],
    gone: set[int],
    *,
    unit_of: Callable[[int], str | None],
    protected: Collection[int] = (),
    chosen: Mapping[int, int] | None = None,
) -> list[dict[str, object]]:
    """Who still listens on each app port, leaving out the processes in gone, and who started each holder.

    A listener that no process in processes holds is reported with pid None: its holder's open files
    could not be read, and the port is taken all the same.

    A holder is respawned when the reap would have ended it had it been there when it looked: neither
    supervised nor protected (exclude_pids, this module and its parents) nor pid 1, and not one of the
    processes the reap chose (chosen: pid -> start time; one of those still running outlived its signals).
    It appeared after the look, or was started again after its predecessor was ended, by something outside
    supervisor that will do so on every run: its parent and systemd unit (unit_of) say what.
    """
    holders = socket_holders(processes.values())
    parents = parent_map(processes)
    chosen = chosen or {}
    held: list[dict[str, object]] = []
    for listener in listeners:
        if listener.port not in ports:
            continue
        where = {"port": listener.port, "address": listener.address}
        if not holders.get(listener.inode):
            unknown = {"pid": None, "cmdline": None, "parent_pid": None, "parent_cmdline": None, "unit": None}
            held.append({**where, **unknown, "supervised": False, "respawned": False})
        for pid in holders.get(listener.inode, []):
            if pid in gone:
                continue
            process = processes[pid]
            supervised = supervisor_of(pid, processes, parents) is not None
            survivor = chosen.get(pid) == process.starttime
            held.append(
                {
                    **where,
                    "pid": pid,
                    "cmdline": process.command,
                    **origin(process, processes, unit_of(pid)),
                    "supervised": supervised,
                    "respawned": not (supervised or survivor or pid in protected or pid == 1),
                }
            )
    return sorted(held, key=lambda entry: (entry["port"], entry["pid"] or 0))


def held_after_reap(
    ports: Sequence[int],
    look: Callable[[], tuple[Mapping[int, Process], Sequence[Listener]]],
    ops: ProcessOps,
    settle: float = UNOWNED_LISTENER_SETTLE,
    *,
    unit_of: Callable[[int], str | None],
    protected: Collection[int] = (),
    chosen: Mapping[int, int] | None = None,
    respawn_window: float = 0.0,
) -> list[dict[str, object]]:
    """still_held after reaping, looking again for up to settle seconds while a listener has no holder,
    and for up to respawn_window seconds while every port is free.

    The socket of a process that has just exited can outlive, for a moment, what /proc shows of the
    process: its open files can no longer be read, so the listener seems held by an unreadable process.
    A real one (the task does not run as root) is still there when settle is up, and is reported then.
    A process manager that restarts what was reaped (PM2, a unit with Restart=, a shell loop) takes the
    port again some time after the reap: systemd's RestartSec is 100 ms by default, and node takes a
    few hundred more to listen. Looked at only once, the port would seem free, and the program started
    next would fail with EADDRINUSE or race the respawned process.
    look returns the processes and listeners as they are now; unit_of, protected and chosen are still_held's.
    """
    start = ops.monotonic()
    while True:
        processes, listeners = look()
        held = still_held(
            ports, processes, listeners, set(), unit_of=unit_of, protected=protected, chosen=chosen
        )
        waited = ops.monotonic() - start
        unowned = any(entry["pid"] is None for entry in held)
        if (unowned and waited < settle) or (not held and waited < respawn_window):
            ops.sleep(POLL_INTERVAL)
            continue
        return held


def started_by(entry: Mapping[str, object]) -> str:
    """Who started a still_held entry's holder, as far as it is known: ", started by pid P (cmd), in
    systemd unit U", or "".

    An orphan's parent is pid 1, which only adopted it: then the parent says nothing of who started it.
    """
    parts = []
    if entry.get("parent_pid") not in (None, 1):
        parts.append(
            f"started by pid {entry['parent_pid']} ({entry.get('parent_cmdline') or 'command unknown'})"
        )
    if entry.get("unit"):
        parts.append(f"in systemd unit {entry['unit']}")
    return "".join(f", {part}" for part in parts)


def held_messages(held: Sequence[Mapping[str, object]]) -> list[str]:
    """One sentence per app port still listened on after reaping, naming the holder and what to do.

    A process this run signalled and that is still running is not named here: failure_messages names it,
    and the task fails on that first.
    """
    messages = []
    for entry in held:
        where = f"Port {entry['port']} ({entry['address']})"
        holder = f"pid {entry['pid']} ({entry['cmdline']})"
        if entry["pid"] is None:
            messages.append(
                f"{where} is still listened on by a process whose open files could not be read: run this "
                f"task as root (become: true), or find it with ss -ltnp 'sport = :{entry['port']}'."
            )
        elif entry["supervised"]:
            messages.append(
                f"{where} is still held by {holder}, which a supervisord runs and this run did not stop "
                "(another app's program on the same port?): stop it with supervisorctl, or give one of the "
                "two apps another port."
            )
        elif entry.get("respawned"):
            unit = str(entry.get("unit") or "")
            disable = f" (systemctl disable --now {unit})" if unit.endswith(".service") else ""
            messages.append(
                f"{where} was taken again after the reap: {holder} holds it now{started_by(entry)}. "
                "Something outside supervisor restarts the app (a process manager such as PM2, a systemd "
                f"unit with Restart=, a cron job or a shell loop): stop and disable it{disable}, then run "
                "this again."
            )
        elif entry["pid"] == 1:
            messages.append(
                f"{where} is still held by {holder}, init, which this module does not signal: it listens "
                "for a systemd socket unit (find it with systemctl list-sockets). Stop and disable that "
                "socket, or give the app another port."
            )
        else:
            messages.append(
                f"{where} is still held by {holder}, which this module does not signal (it is listed in "
                "exclude_pids, or is Ansible's own process): stop it by hand."
            )
    return messages


def app_roots(app_root: str | None) -> list[str]:
    """app_root and, when it is or passes through a symlink, its real path (/proc shows real paths)."""
    if not app_root:
        return []
    return sorted({os.path.normpath(app_root), os.path.realpath(app_root)})


def summary(
    reaped: Sequence[Mapping[str, object]], check_mode: bool, ports: Sequence[int], app_root: str | None
) -> str:
    if not reaped:
        scope = " and ".join(
            part for part in (f"ports {', '.join(map(str, ports))}" if ports else "", app_root or "") if part
        )
        return f"Nothing to reap: no process outside supervisor holds or runs from {scope}."
    verb = "Would reap" if check_mode else "Reaped"
    listed = "; ".join(
        f"pid {entry['pid']} ({entry['cmdline']}, {entry['reason']})"
        + ("" if check_mode else f" got {entry['signal'] or 'nothing: already gone'}")
        for entry in reaped
    )
    return f"{verb} {len(reaped)} process(es) outside supervisor: {listed}"


def run_module() -> None:
    module = AnsibleModule(
        argument_spec={
            "ports": {"type": "list", "elements": "int", "default": []},
            "app_root": {"type": "path"},
            "term_timeout": {"type": "int", "default": 10},
            "kill_after_timeout": {"type": "bool", "default": True},
            "exclude_pids": {"type": "list", "elements": "int", "default": []},
            "tree_commands": {"type": "list", "elements": "str", "default": list(NODE_COMMANDS)},
            "fail_when_held": {"type": "bool", "default": True},
        },
        supports_check_mode=True,
    )
    params = module.params
    ports: list[int] = params["ports"]
    app_root: str | None = params["app_root"]
    if not ports and not app_root:
        module.fail_json(
            msg="app_reap needs ports, app_root or both: with neither there is nothing to look for."
        )
    bad_ports = [port for port in ports if not 1 <= port <= 65535]
    if bad_ports:
        module.fail_json(msg=f"ports {bad_ports} are not TCP ports (1-65535); check app_processes[].port.")
    if app_root and (not os.path.isabs(app_root) or os.path.normpath(app_root) == "/"):
        module.fail_json(
            msg=f"app_root={app_root!r} must be the app's own absolute directory, such as /srv/shop."
        )
    if params["term_timeout"] < 0:
        module.fail_json(msg=f"term_timeout={params['term_timeout']} must be 0 or more seconds.")

    processes, unreadable = read_processes()
    listeners = read_listeners()
    protected = {pid: "it is listed in exclude_pids" for pid in params["exclude_pids"]}
    for pid in self_and_ancestors(processes):
        protected[pid] = "it is this module or one of its parents (Ansible's own processes)"
    candidates = app_candidates(
        processes, listeners, ports, app_roots(app_root), params["tree_commands"], protected
    )
    targets = [candidate for candidate in candidates if candidate.protected_because is None]
    chosen = {candidate.process.pid: candidate.process.starttime for candidate in targets}
    # Read before the reap: an ended process's cgroup is gone with it.
    origins = {pid: origin(processes[pid], processes, read_unit(pid)) for pid in chosen}
    boot_time, clock_ticks = read_boot_time(), os.sysconf("SC_CLK_TCK")

    if unreadable:
        module.warn(
            f"Could not read the open files of {len(unreadable)} processes (pids {unreadable[:10]}): "
            "they may hold app ports unseen. Run this task with become: true."
        )
    if module.check_mode:
        outcomes = {candidate.process.pid: Outcome(candidate.process.pid) for candidate in targets}
    else:
        outcomes = reap(
            chosen,
            params["term_timeout"],
            params["kill_after_timeout"],
            SystemOps(),
        )
    reaped = [
        {
            **describe(candidate, boot_time, clock_ticks),
            **origins[candidate.process.pid],
            "signal": outcomes[candidate.process.pid].signal,
            "exited": outcomes[candidate.process.pid].exited,
        }
        for candidate in targets
    ]
    kept = [
        {**describe(candidate, boot_time, clock_ticks), "kept_because": candidate.protected_because}
        for candidate in candidates
        if candidate.protected_because is not None
    ]
    if module.check_mode:
        held = still_held(
            ports, processes, listeners, set(chosen), unit_of=read_unit, protected=protected, chosen=chosen
        )
    else:
        # Only the listener of a process this run signalled can linger without a holder for a moment.
        signalled = any(outcome.signal for outcome in outcomes.values())
        # When something was ended, the ports are watched a little longer for whatever brings it back
        # (a deploy that reaps nothing, the usual one, does not wait).
        held = held_after_reap(
            ports,
            lambda: (read_processes()[0], read_listeners()),
            SystemOps(),
            UNOWNED_LISTENER_SETTLE if signalled else 0.0,
            unit_of=read_unit,
            protected=protected,
            chosen=chosen,
            respawn_window=RESPAWN_WINDOW if signalled else 0.0,
        )
    result = {
        "changed": bool(targets) if module.check_mode else any(entry["signal"] for entry in reaped),
        "reaped": reaped,
        "kept": kept,
        "still_held": held,
        "unreadable_pids": unreadable,
    }
    failures = (
        []
        if module.check_mode
        else failure_messages(targets, outcomes, params["term_timeout"], params["kill_after_timeout"])
    )
    if failures:
        module.fail_json(
            msg="Could not end every app process outside supervisor: " + " ".join(failures), **result
        )
    if held and params["fail_when_held"] and not module.check_mode:
        module.fail_json(
            msg="An app port is still taken after reaping, so a program started on it would fail with "
            "EADDRINUSE (I6): " + " ".join(held_messages(held)),
            **result,
        )
    module.exit_json(msg=summary(reaped, module.check_mode, ports, app_root), **result)


def main() -> None:
    run_module()


if __name__ == "__main__":
    main()
