#!/usr/bin/python
"""Start or stop a supervisor group without supervisorctl's delays; wait until its programs settle."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: supervisor_group
short_description: Start or stop a supervisor group, read it, or wait until its programs settle
description:
  - Talks to supervisord's XML-RPC interface on its UNIX socket, as C(supervisorctl) does.
  - O(state=started) starts every program of the group that is not running (STOPPED, EXITED, FATAL) at once.
    With O(wait=false) it returns as soon as they are spawned, instead of waiting C(startsecs) as
    C(supervisorctl start) does. The deploy's smoke tests run during that time, and the settle check
    (O(settled_seconds)) proves afterwards that every program stayed up.
  - O(state=stopped) signals every running program of the group at once, then returns as soon as the
    last one has exited (polled every 0.1 s), or supervisor has killed it at its C(stopwaitsecs). Each
    program drains in parallel with the others, as with C(supervisorctl stop GROUP:), whose own wait
    for a group adds up to a second (supervisord answers a group's deferred stop only on its idle
    tick), and nginx answers 502 during a deploy for that second too.
  - O(state=present) only reads the group.
  - O(settled_seconds) (with O(state=started) or O(state=present)) then waits until every program
    of the group is RUNNING and has been up that many seconds; it fails as soon as one is FATAL,
    EXITED or STOPPED, or (with O(baseline)) runs under another pid than in O(baseline), that is,
    restarted; and at O(timeout).
version_added: "0.2.0"
options:
  name:
    description: The group (the app's name).
    type: str
    required: true
  state:
    description:
      - C(started) starts what is not running; C(stopped) stops what runs; C(present) reads only.
      - With C(stopped), a group supervisord does not know (before the first deploy) is not an error,
        as there is nothing to stop.
    type: str
    choices: [started, stopped, present]
    default: present
  wait:
    description:
      - With O(state=started), wait out C(startsecs) of each program as C(supervisorctl start) does.
      - supervisord then answers only when every program has run its C(startsecs); the module waits up
        to the group's longest C(startsecs), plus a second per program and 10 s, for that answer.
    type: bool
    default: false
  settled_seconds:
    description:
      - Wait until every program has been RUNNING for this many seconds; 0 does not wait.
      - Read-only, so it waits in check mode too.
    type: int
    default: 0
  baseline:
    description:
      - RV(processes) of an earlier call. A program whose pid differs from its baseline pid (one that was
        running) restarted in between, and fails the settle check at once.
    type: list
    elements: dict
    default: []
  timeout:
    description: Seconds O(settled_seconds) may take in all.
    type: int
    default: 60
  socket:
    description: supervisord's UNIX socket (C([unix_http_server] file)).
    type: path
    default: /var/run/supervisor.sock
notes:
  - Supports check mode; O(state=started) and O(state=stopped) then report what they would start or stop.
  - Run it as root; the supervisor role makes the socket root's only.
author: shipshape
"""

EXAMPLES = r"""
- name: Start the programs of the app, without waiting out startsecs
  supervisor_group:
    name: shop
    state: started

- name: Stop the programs of the app, each draining at once, and wait until the last has exited
  supervisor_group:
    name: shop
    state: stopped

- name: Wait until every program has run 10 seconds without a restart
  supervisor_group:
    name: shop
    settled_seconds: 10
    baseline: "{{ earlier_read.processes }}"
"""

RETURN = r"""
processes:
  description: The programs of the group after the call, sorted by name.
  returned: always
  type: list
  elements: dict
  contains:
    name: {description: "The program, without its group prefix.", type: str}
    state: {description: supervisor's state name (STARTING, RUNNING, BACKOFF, FATAL, ...)., type: str}
    pid: {description: The pid, 0 when not running., type: int}
    uptime: {description: Seconds since the program last started; 0 when not running., type: int}
    spawnerr: {description: Why supervisor could not spawn it, if so., type: str}
    exitstatus: {description: Its last exit status., type: int}
started:
  description: The programs this call started (or would start, in check mode).
  returned: always
  type: list
  elements: str
stopped:
  description: The programs this call stopped (or would stop, in check mode).
  returned: always
  type: list
  elements: str
stopped_after:
  description: Seconds from the stop signals to the last program's exit; null without a stop.
  returned: always
  type: float
settled_after:
  description: Seconds the settle wait took; null without O(settled_seconds).
  returned: always
  type: float
"""

import http.client
import socket
import time
import xmlrpc.client

from ansible.module_utils.basic import AnsibleModule

# supervisor's states (supervisor.states.ProcessStates) that end a settle wait in failure: a program
# that gave up (FATAL), exited (EXITED with autorestart=false) or was stopped never settles.
DEAD_STATES = ("FATAL", "EXITED", "STOPPED", "UNKNOWN")
NOT_RUNNING_STATES = ("STOPPED", "EXITED", "FATAL")
# What supervisor stops (supervisor.states.RUNNING_STATES), and what it is still stopping.
STOPPABLE_STATES = ("RUNNING", "STARTING", "BACKOFF")
STOPPING_STATES = (*STOPPABLE_STATES, "STOPPING")
POLL_SECONDS = 0.5
# A stop is polled faster: every tenth of a second of it is nginx answering 502.
STOP_POLL_SECONDS = 0.1
# Beyond the longest stopwaitsecs, the time supervisor takes to KILL and reap a program.
STOP_MARGIN_SECONDS = 10
# How long an answer may take that supervisord gives at once (every call but a waited start).
RPC_TIMEOUT_SECONDS = 30.0
# A waited start is answered once every program has been up its startsecs; beyond the longest, a
# second per program (supervisord looks at each one's start on its idle tick) and this margin.
START_MARGIN_SECONDS = 10
# What a call to supervisord raises when it cannot be made or answered: the socket is absent or
# refused, no answer came within the transport's timeout (TimeoutError), the HTTP exchange broke
# off, or supervisord answered with a fault.
RPC_ERRORS = (OSError, http.client.HTTPException, xmlrpc.client.Error)
# supervisor.xmlrpc.Faults.SUCCESS: the status of each answer of startProcessGroup.
SUCCESS = 80


class UnixSocketHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self.socket_path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self.socket_path)
        self.sock = sock


class UnixSocketTransport(xmlrpc.client.Transport):
    def __init__(self, path: str, timeout: float = RPC_TIMEOUT_SECONDS) -> None:
        super().__init__()
        self.socket_path = path
        self.timeout = timeout

    def make_connection(self, host):
        return UnixSocketHTTPConnection(self.socket_path, self.timeout)


def connect(path: str, timeout: float = RPC_TIMEOUT_SECONDS):
    """A proxy for supervisord on the socket at path, whose calls give up after timeout seconds."""
    return xmlrpc.client.ServerProxy(
        "http://localhost/RPC2", transport=UnixSocketTransport(path, timeout), allow_none=True
    )


def rpc_error(error: Exception) -> str:
    """What went wrong with a call to supervisord, in a few words."""
    if isinstance(error, xmlrpc.client.Fault):
        return error.faultString
    if isinstance(error, TimeoutError):
        return "no answer in time (is supervisord busy or hung?)"
    return str(error) or type(error).__name__


def ask(module: AnsibleModule, doing: str, call, **values):
    """call()'s answer; if supervisord cannot be asked or answers with a fault, fail_json with
    "doing: what went wrong" and values (what the module knows so far)."""
    try:
        return call()
    except RPC_ERRORS as error:
        module.fail_json(msg=f"{doing}: {rpc_error(error)}", **values)


def group_processes(server, group: str) -> list[dict]:
    """The group's programs, in a stable shape, from getAllProcessInfo."""
    programs = []
    for info in server.supervisor.getAllProcessInfo():
        if info["group"] != group:
            continue
        running = info["pid"] != 0
        programs.append(
            {
                "name": info["name"],
                "state": info["statename"],
                "pid": info["pid"],
                "uptime": max(0, info["now"] - info["start"]) if running else 0,
                "spawnerr": info.get("spawnerr", ""),
                "exitstatus": info.get("exitstatus", 0),
            }
        )
    return sorted(programs, key=lambda program: program["name"])


def reader(module: AnsibleModule, server, group: str, when: str, **values):
    """A read() of the group's programs for the waits; one supervisord cannot answer fails the module,
    saying when it was asked ("while waiting for them to stop")."""
    return lambda: ask(
        module,
        f"supervisord could not list the programs of {group} {when}",
        lambda: group_processes(server, group),
        **values,
    )


def restarted(programs: list[dict], baseline: list[dict]) -> list[str]:
    """Programs that ran under a pid in the baseline and run under another now (or not at all)."""
    before = {program.get("name"): program.get("pid", 0) for program in baseline}
    return [
        f"{program['name']} (pid {before[program['name']]}, now {program['pid'] or program['state']})"
        for program in programs
        if before.get(program["name"]) and program["pid"] != before[program["name"]]
    ]


def describe(programs: list[dict]) -> str:
    return ", ".join(
        f"{program['name']} {program['state']}"
        + (f" pid {program['pid']} up {program['uptime']}s" if program["pid"] else "")
        + (f" ({program['spawnerr']})" if program["spawnerr"] else "")
        for program in programs
    )


def wait_settled(
    read, seconds: int, baseline: list[dict], timeout: int, clock=time.monotonic, sleep=time.sleep
):
    """Poll read() until every program is RUNNING and up `seconds`. Returns (programs, waited, problem)."""
    started = clock()
    while True:
        programs = read()
        waited = round(clock() - started, 1)
        dead = [program for program in programs if program["state"] in DEAD_STATES]
        if dead:
            return programs, waited, f"not running: {describe(dead)}"
        moved = restarted(programs, baseline)
        if moved:
            return programs, waited, f"restarted since the baseline: {', '.join(moved)}"
        if all(program["state"] == "RUNNING" and program["uptime"] >= seconds for program in programs):
            return programs, waited, None
        if waited >= timeout:
            return (
                programs,
                waited,
                f"not settled ({seconds}s RUNNING) after {timeout}s: {describe(programs)}",
            )
        sleep(POLL_SECONDS)


def new_result(**values) -> dict:
    """The keys of every answer of the module, with these values."""
    return {
        "changed": False,
        "started": [],
        "stopped": [],
        "settled_after": None,
        "stopped_after": None,
        **values,
    }


def unsuccessful(answers: list[dict]) -> list[str]:
    """The programs a group start or stop did not reach, each with supervisord's reason."""
    return [f"{answer['name']}: {answer['description']}" for answer in answers if answer["status"] != SUCCESS]


def successful(answers: list[dict]) -> list[str]:
    """The programs a group start or stop reached, sorted."""
    return sorted(answer["name"] for answer in answers if answer["status"] == SUCCESS)


def wait_stopped(read, timeout: float, clock=time.monotonic, sleep=time.sleep):
    """Poll read() until no program is running or stopping. Returns (programs, waited, problem)."""
    started = clock()
    while True:
        programs = read()
        waited = round(clock() - started, 1)
        if not any(program["state"] in STOPPING_STATES for program in programs):
            return programs, waited, None
        if waited >= timeout:
            return programs, waited, f"still running after {timeout}s: {describe(programs)}"
        sleep(STOP_POLL_SECONDS)


def longest(configs: list[dict], group: str, key: str) -> int:
    """The largest value of key (stopwaitsecs, startsecs) in the configuration of the group's programs."""
    return max((info[key] for info in configs if info["group"] == group), default=0)


def start_wait_timeout(configs: list[dict], group: str) -> float:
    """How long supervisord may take to answer a waited start of the group."""
    programs = sum(1 for info in configs if info["group"] == group)
    return longest(configs, group, "startsecs") + programs + START_MARGIN_SECONDS


def stop_group(module: AnsibleModule, server, group: str, programs: list[dict]) -> None:
    """state=stopped: signal every running program at once, wait until the last has exited."""
    if not programs:
        module.exit_json(
            processes=[], msg=f"supervisord runs no group named {group}: nothing to stop", **new_result()
        )
    to_stop = [program["name"] for program in programs if program["state"] in STOPPABLE_STATES]
    stopping = [program["name"] for program in programs if program["state"] in STOPPING_STATES]
    result = new_result(changed=bool(to_stop), stopped=to_stop)
    if module.check_mode or not stopping:
        module.exit_json(processes=programs, **result)
    configs = ask(
        module,
        f"supervisord could not say the stopwaitsecs of {group}",
        server.supervisor.getAllConfigInfo,
        processes=programs,
        **result,
    )
    timeout = longest(configs, group, "stopwaitsecs") + STOP_MARGIN_SECONDS
    # wait=False: supervisord signals each program and answers at once; the wait is polled below.
    answers = (
        ask(
            module,
            f"supervisord could not stop {group}",
            lambda: server.supervisor.stopProcessGroup(group, False),
            processes=programs,
            **result,
        )
        if to_stop
        else []
    )
    failed = unsuccessful(answers)
    if failed:
        module.fail_json(msg=f"supervisord could not stop {', '.join(failed)}", processes=programs, **result)
    read = reader(module, server, group, "while waiting for them to stop", processes=programs, **result)
    programs, result["stopped_after"], problem = wait_stopped(read, timeout)
    if problem:
        module.fail_json(msg=f"the programs of {group} did not stop: {problem}", processes=programs, **result)
    module.exit_json(processes=programs, **result)


def run_module() -> None:
    module = AnsibleModule(
        argument_spec={
            "name": {"type": "str", "required": True},
            "state": {"type": "str", "choices": ["started", "stopped", "present"], "default": "present"},
            "wait": {"type": "bool", "default": False},
            "settled_seconds": {"type": "int", "default": 0},
            "baseline": {"type": "list", "elements": "dict", "default": []},
            "timeout": {"type": "int", "default": 60},
            "socket": {"type": "path", "default": "/var/run/supervisor.sock"},
        },
        supports_check_mode=True,
    )
    params = module.params
    group = params["name"]
    if params["settled_seconds"] < 0 or params["timeout"] < 1:
        module.fail_json(msg="settled_seconds must be 0 or more and timeout 1 or more")
    if params["settled_seconds"] and params["state"] == "stopped":
        module.fail_json(msg="settled_seconds waits for running programs: it does not go with state=stopped")
    server = connect(params["socket"])
    programs = ask(
        module, f"cannot read supervisord on {params['socket']}", lambda: group_processes(server, group)
    )
    if params["state"] == "stopped":
        stop_group(module, server, group, programs)
    if not programs:
        module.fail_json(msg=f"supervisord runs no group named {group}", processes=[], started=[])

    to_start = [program["name"] for program in programs if program["state"] in NOT_RUNNING_STATES]
    result = new_result()
    if params["state"] == "started" and to_start and module.check_mode:
        result.update(changed=True, started=to_start)
    elif params["state"] == "started" and to_start:
        starter = server
        if params["wait"]:
            configs = ask(
                module,
                f"supervisord could not say the startsecs of {group}",
                server.supervisor.getAllConfigInfo,
                processes=programs,
                **result,
            )
            starter = connect(params["socket"], start_wait_timeout(configs, group))
        answers = ask(
            module,
            f"supervisord could not start {group} (some of its programs may have started)",
            lambda: starter.supervisor.startProcessGroup(group, params["wait"]),
            processes=programs,
            **result,
        )
        # Only what supervisord did start: a program it refused (NO_FILE, SPAWN_ERROR) is not started.
        result.update(changed=bool(successful(answers)), started=successful(answers))
        programs = reader(module, server, group, "after starting them", processes=programs, **result)()
        failed = unsuccessful(answers)
        if failed:
            module.fail_json(
                msg=f"supervisord could not start {', '.join(failed)}", processes=programs, **result
            )

    # Read-only, so it waits in check mode too.
    if params["settled_seconds"]:
        programs, waited, problem = wait_settled(
            reader(module, server, group, "while waiting for them to settle", processes=programs, **result),
            params["settled_seconds"],
            params["baseline"],
            params["timeout"],
        )
        result["settled_after"] = waited
        if problem:
            module.fail_json(
                msg=f"the programs of {group} did not settle: {problem}", processes=programs, **result
            )
    module.exit_json(processes=programs, **result)


def main() -> None:
    run_module()


if __name__ == "__main__":
    main()
