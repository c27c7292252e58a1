#!/usr/bin/python
"""Who listens on each app port, and which app processes run outside supervisor (read-only)."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: app_listeners
short_description: Report who listens on each app port, how, and which app processes run outside supervisor
description:
  - Read-only; changes nothing, in or out of check mode. Used by the smoke tests and by diagnose.
  - For each of O(ports), every listening socket with its address, address family and owning process, and
    whether supervisord runs that process.
  - Names what it finds with the incident ids of docs/incidents.md, in RV(ports[].problems) and RV(problems).
    C(I7) no IPv4 127.0.0.1 listener (nginx's upstream is C(127.0.0.1:PORT), so an app bound to C(::1) is
    unreachable); C(I6) a port held outside supervisor; C(I1) more than one process tree on a port, or an
    app process outside supervisor; C(I10) nothing listening, or a listener that does not accept.
  - With O(app_root), also lists as RV(orphans) the app processes outside supervisor, the ones the app_reap
    module would end.
  - Run it with become, as root; otherwise the owners of other users' sockets cannot be seen.
version_added: "0.1.0"
options:
  ports:
    description: The app's TCP ports.
    type: list
    elements: int
    required: true
  app_root:
    description: The app's directory; enables RV(orphans).
    type: path
  tree_commands:
    description: As for app_reap, the commands that count as the app when they run in O(app_root).
    type: list
    elements: str
    default: [node, nodejs, npm, npx, yarn, pnpm, bun, deno, tsx, ts-node, next-server*]
  connect:
    description:
      - Also open (and at once close) a TCP connection to 127.0.0.1 on each port, the way nginx will.
      - The result is in RV(ports[].connect_ipv4).
    type: bool
    default: true
  connect_timeout:
    description: Seconds to wait for each connection of O(connect); more than 0.
    type: float
    default: 2.0
notes:
  - Supports check mode; it never changes anything.
  - An IPv6 wildcard listener (C(::)) is reported as C(dual) (it accepts IPv4 too) unless net.ipv6.bindv6only
    is 1. A socket that set IPV6_V6ONLY itself cannot be told apart in /proc; O(connect) settles it. When
    127.0.0.1 refuses and only such C(::) listeners are on the port, C([::1]) is tried too, and one that
    answers there only is reported as C(I7) (IPv6-only), not C(I10) (hung).
author: shipshape
"""

EXAMPLES = r"""
- name: Read who listens on the app's ports
  app_listeners:
    ports: "{{ app_processes | selectattr('port', 'defined') | map(attribute='port') | list }}"
    app_root: "{{ app_root }}"
  become: true
  register: app_listeners_result

- name: Check that every app port answers on IPv4 127.0.0.1 (I7)
  ansible.builtin.assert:
    that: app_listeners_result.ports | rejectattr('ipv4_loopback') | list | length == 0
    fail_msg: "{{ app_listeners_result.problems | join('\n') }}"
"""

RETURN = r"""
ports:
  description: One entry per requested port, in the order given.
  returned: always
  type: list
  elements: dict
  contains:
    port: {description: The port., type: int}
    listening: {description: Whether anything listens on it., type: bool}
    ipv4_loopback:
      description: Whether some listener accepts connections to 127.0.0.1 (0.0.0.0, 127.0.0.1 or dual).
      type: bool
    connect_ipv4:
      description: Whether a TCP connection to 127.0.0.1 succeeded; null when O(connect) is false.
      type: bool
    duplicate: {description: Whether more than one process tree listens on it (I1)., type: bool}
    listeners:
      description: Each listening socket and process holding it (a socket shared by several processes, such
        as a parent and its forked children, appears once per process).
      type: list
      elements: dict
      contains:
        address: {description: "The local address, such as 127.0.0.1, ::1 or ::ffff:127.0.0.1.", type: str}
        family: {description: "ipv4, ipv6 or dual (an IPv6 wildcard that also accepts IPv4).", type: str}
        pid: {description: The process; null when it could not be found (not root)., type: int}
        cmdline: {description: Its command line., type: str}
        user: {description: The user it runs as., type: str}
        supervised:
          description: Whether supervisord runs it; null when the process could not be found.
          type: bool
    problems: {description: What is wrong with this port, each starting with an incident id., type: list}
  sample:
    - port: 3000
      listening: true
      ipv4_loopback: false
      connect_ipv4: false
      duplicate: false
      listeners:
        - {address: "::1", family: ipv6, pid: 812, cmdline: node server.js, user: shop, supervised: true}
      problems:
        - "I7: port 3000 listens only on ::1 ..."
orphans:
  description: App processes outside supervisor (what app_reap would end); empty without O(app_root) unless
    they hold a port.
  returned: always
  type: list
  elements: dict
  contains:
    pid: {description: Process id., type: int}
    cmdline: {description: Its command line., type: str}
    ports: {description: App ports it listens on., type: list, elements: int}
    reason: {description: Why it counts as the app's., type: str}
    user: {description: The user it runs as., type: str}
    parent_pid:
      description:
        - The process that started it (1 when init adopted it); null when unknown.
        - An orphan that comes back after every recovery is started again by its parent or its unit (a
          process manager such as PM2, a systemd unit with C(Restart=), a shell loop).
      type: int
    parent_cmdline: {description: The parent's command line; null when unknown., type: str}
    unit: {description: "The systemd unit it runs in, such as pm2-root.service; null when none.", type: str}
  sample:
    - pid: 4242
      cmdline: node server.js
      ports: [3000]
      reason: holds app port 3000
      user: shop
      parent_pid: 4100
      parent_cmdline: "PM2 v5.3.0: God Daemon (/root/.pm2)"
      unit: pm2-root.service
problems:
  description: Every problem found, each starting with an incident id; empty when all is well.
  returned: always
  type: list
  elements: str
unreadable_pids:
  description: Processes whose open files could not be read (the task did not run as root).
  returned: always
  type: list
  elements: int
"""

import ipaddress
import math
import os
import socket
from collections.abc import Callable, Mapping, Sequence

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.shipshape_proc import (
    NODE_COMMANDS,
    Listener,
    Process,
    ancestors,
    app_candidates,
    origin,
    parent_map,
    read_listeners,
    read_processes,
    read_unit,
    self_and_ancestors,
    socket_holders,
    supervisor_of,
    user_name,
)

IPV4_LOOPBACK_ADDRESSES = ("127.0.0.1", "0.0.0.0")


def accepts_ipv4_loopback(listener: Listener) -> bool:
    """Whether a client connecting to 127.0.0.1 on the listener's port reaches this socket."""
    if listener.family == "dual":
        return True
    if listener.family != "ipv4":
        return False
    address = ipaddress.ip_address(listener.address)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return str(address) in IPV4_LOOPBACK_ADDRESSES


def only_guessed_dual(listeners: Sequence[Listener]) -> bool:
    """Whether the listeners that would take 127.0.0.1 are all IPv6 wildcards only guessed to be dual.

    /proc does not show IPV6_V6ONLY: a `::` socket that set it (node's ``ipv6Only: true``) takes no IPv4.
    """
    accepting = [listener for listener in listeners if accepts_ipv4_loopback(listener)]
    return bool(accepting) and all(listener.family == "dual" for listener in accepting)


def process_trees(pids: Sequence[int], parents: Mapping[int, int]) -> list[int]:
    """The pids among pids whose ancestors are not among them: one per independent process tree."""
    present = set(pids)
    return sorted(pid for pid in present if not present.intersection(ancestors(pid, parents)))


def listener_entries(
    listeners: Sequence[Listener], processes: Mapping[int, Process], holders: Mapping[int, Sequence[int]]
) -> list[dict[str, object]]:
    parents = parent_map(processes)
    entries = []
    for listener in listeners:
        for pid in holders.get(listener.inode) or [None]:
            process = processes.get(pid) if pid is not None else None
            entries.append(
                {
                    "address": listener.address,
                    "family": listener.family,
                    "pid": pid,
                    "cmdline": process.command if process else None,
                    "user": user_name(process.uid if process else listener.uid),
                    "supervised": None
                    if process is None
                    else supervisor_of(pid, processes, parents) is not None,
                }
            )
    return entries


def port_problems(
    port: int,
    entries: Sequence[Mapping[str, object]],
    ipv4_loopback: bool,
    connect_ipv4: bool | None,
    trees: int,
    ipv6_only_wildcard: bool = False,
) -> list[str]:
    """What is wrong with one port, in words for the operator, each with its incident id.

    ipv6_only_wildcard: the port's `::` listener refused 127.0.0.1 but took ::1, so it is IPv6-only.
    """
    if not entries:
        return [
            f"I10: nothing listens on port {port}: its program is not running. "
            "Check `supervisorctl status` and the program's log."
        ]
    problems = []
    if not ipv4_loopback and connect_ipv4 is not True:
        addresses = ", ".join(sorted({str(entry["address"]) for entry in entries}))
        problems.append(
            f"I7: port {port} does not accept IPv4 connections to 127.0.0.1 (it listens on {addresses}); "
            f"nginx proxies to 127.0.0.1:{port} and gets connection refused. Make the app listen on "
            "127.0.0.1 (HOSTNAME=127.0.0.1 in its environment), not localhost or ::1."
        )
    elif connect_ipv4 is False and ipv6_only_wildcard:
        problems.append(
            f"I7: port {port} listens on :: but refused 127.0.0.1:{port} while [::1]:{port} answered: the "
            "socket is IPv6-only (IPV6_V6ONLY: node's ipv6Only: true, or net.ipv6.bindv6only=1 when it "
            f"started); nginx proxies to 127.0.0.1:{port} and gets connection refused. Make the app listen "
            "on 127.0.0.1 (HOSTNAME=127.0.0.1 in its environment)."
        )
    elif connect_ipv4 is False:
        problems.append(
            f"I10: port {port} has an IPv4 listener but 127.0.0.1:{port} did not accept a connection: the "
            "process is hung or its backlog is full. Look at the program's log, then restart it."
        )
    for entry in entries:
        if entry["supervised"] is False:
            problems.append(
                f"I6: pid {entry['pid']} ({entry['cmdline']}) holds port {port} outside supervisor. "
                "Run recover.yml, or the app_reap module, to end it."
            )
        elif entry["pid"] is None:
            problems.append(
                f"I6: cannot tell which process holds port {port} ({entry['address']}): "
                "run with become: true."
            )
    if trees > 1:
        problems.append(
            f"I1: {trees} separate processes listen on port {port}; only one instance of a program may run. "
            "Run recover.yml to end the ones outside supervisor."
        )
    return problems


def try_connect(port: int, timeout: float, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def port_report(
    port: int,
    listeners: Sequence[Listener],
    processes: Mapping[int, Process],
    holders: Mapping[int, Sequence[int]],
    connect_ipv4: bool | None,
    connect_ipv6: bool | None = None,
) -> dict[str, object]:
    """What listens on port and what is wrong with it. connect_ipv6: whether [::1]:port took a connection,
    asked only when 127.0.0.1 refused one and only guessed-dual `::` listeners would take it."""
    on_port = [listener for listener in listeners if listener.port == port]
    entries = listener_entries(on_port, processes, holders)
    ipv4_loopback = any(accepts_ipv4_loopback(listener) for listener in on_port)
    pids = sorted({pid for listener in on_port for pid in holders.get(listener.inode, [])})
    trees = len(process_trees(pids, parent_map(processes)))
    return {
        "port": port,
        "listening": bool(on_port),
        "ipv4_loopback": ipv4_loopback,
        "connect_ipv4": connect_ipv4,
        "duplicate": trees > 1,
        "listeners": entries,
        "problems": port_problems(
            port,
            entries,
            ipv4_loopback,
            connect_ipv4,
            trees,
            ipv6_only_wildcard=connect_ipv6 is True and only_guessed_dual(on_port),
        ),
    }


def orphan_entries(
    processes: Mapping[int, Process],
    listeners: Sequence[Listener],
    ports: Sequence[int],
    app_roots: Sequence[str],
    tree_commands: Sequence[str],
    protected: Mapping[int, str],
    *,
    unit_of: Callable[[int], str | None],
) -> list[dict[str, object]]:
    """The processes app_reap would end, described, with who started each (unit_of reads its unit)."""
    return [
        {
            "pid": candidate.process.pid,
            "cmdline": candidate.process.command,
            "ports": list(candidate.ports),
            "reason": "; ".join(candidate.reasons),
            "user": user_name(candidate.process.uid),
            **origin(candidate.process, processes, unit_of(candidate.process.pid)),
        }
        for candidate in app_candidates(processes, listeners, ports, app_roots, tree_commands, protected)
        if candidate.protected_because is None
    ]


def orphan_problems(orphans: Sequence[Mapping[str, object]]) -> list[str]:
    return [
        f"I1: pid {orphan['pid']} ({orphan['cmdline']}) runs outside supervisor: {orphan['reason']}. "
        "Run recover.yml, or the app_reap module, to end it."
        for orphan in orphans
        if not orphan["ports"]  # port holders are already named per port
    ]


def run_module() -> None:
    module = AnsibleModule(
        argument_spec={
            "ports": {"type": "list", "elements": "int", "required": True},
            "app_root": {"type": "path"},
            "tree_commands": {"type": "list", "elements": "str", "default": list(NODE_COMMANDS)},
            "connect": {"type": "bool", "default": True},
            "connect_timeout": {"type": "float", "default": 2.0},
        },
        supports_check_mode=True,
    )
    params = module.params
    ports: list[int] = params["ports"]
    bad_ports = [port for port in ports if not 1 <= port <= 65535]
    if bad_ports:
        module.fail_json(msg=f"ports {bad_ports} are not TCP ports (1-65535); check app_processes[].port.")
    # 0 would make every connection non-blocking, so each one "fails" at once; less raises ValueError.
    if not 0 < params["connect_timeout"] < math.inf:
        module.fail_json(
            msg=f"connect_timeout={params['connect_timeout']} must be a number of seconds above 0."
        )
    app_root = params["app_root"]
    roots = sorted({os.path.normpath(app_root), os.path.realpath(app_root)}) if app_root else []

    # Read-only: the same in check mode and out of it.
    processes, unreadable = read_processes()
    listeners = read_listeners()
    holders = socket_holders(processes.values())
    reports = []
    for port in ports:
        connect_ipv4 = try_connect(port, params["connect_timeout"]) if params["connect"] else None
        connect_ipv6 = None
        on_port = [listener for listener in listeners if listener.port == port]
        if connect_ipv4 is False and only_guessed_dual(on_port):
            # An IPv6-only `::` socket (I7) refuses 127.0.0.1 as a hung one (I10) would; ::1 tells them apart.
            connect_ipv6 = try_connect(port, params["connect_timeout"], "::1")
        reports.append(port_report(port, listeners, processes, holders, connect_ipv4, connect_ipv6))
    protected = {pid: "this module" for pid in self_and_ancestors(processes)}
    orphans = orphan_entries(
        processes, listeners, ports, roots, params["tree_commands"], protected, unit_of=read_unit
    )
    problems = [problem for report in reports for problem in report["problems"]]
    problems += orphan_problems(orphans)
    if unreadable:
        module.warn(
            f"Could not read the open files of {len(unreadable)} processes: the owners of some ports may be "
            "missing. Run this task with become: true."
        )
    module.exit_json(
        changed=False, ports=reports, orphans=orphans, problems=problems, unreadable_pids=unreadable
    )


def main() -> None:
    run_module()


if __name__ == "__main__":
    main()
