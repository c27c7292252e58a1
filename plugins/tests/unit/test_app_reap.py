from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import app_reap
import pytest
from ansible.module_utils.shipshape_proc import (
    Candidate,
    Listener,
    Process,
    app_candidates,
    read_listeners,
    read_processes,
    read_starttime,
    self_and_ancestors,
    socket_holders,
)
from app_reap import (
    POLL_INTERVAL,
    RESPAWN_WINDOW,
    Outcome,
    SystemOps,
    app_roots,
    failure_messages,
    held_after_reap,
    held_messages,
    reap,
    still_held,
    summary,
)
from module_run import RunModule

EXITS_AFTER_TERM = 0.3


class FakeOps:
    """Processes that behave as told, on a clock that only moves when reap sleeps."""

    def __init__(self, behaviours: dict[int, str]) -> None:
        self.behaviours = behaviours
        self.now = 0.0
        self.exit_at = {pid: (0.0 if how == "gone" else float("inf")) for pid, how in behaviours.items()}
        self.sent: list[tuple[float, int, str]] = []

    def alive(self, pid: int, starttime: int) -> bool:
        return self.now < self.exit_at[pid]

    def send(self, pid: int, starttime: int, signum: int) -> bool:
        if not self.alive(pid, starttime):
            return False
        how = self.behaviours[pid]
        if how == "denied":
            raise PermissionError(1, "Operation not permitted")
        self.sent.append((self.now, pid, signal.Signals(signum).name))
        if signum == signal.SIGTERM and how == "obeys":
            self.exit_at[pid] = self.now + EXITS_AFTER_TERM
        if signum == signal.SIGKILL and how != "unkillable":
            self.exit_at[pid] = self.now
        return True

    def sleep(self, seconds: float) -> None:
        self.now += seconds

    def monotonic(self) -> float:
        return self.now


@pytest.mark.parametrize(
    ("how", "kill_after_timeout", "signals", "outcome"),
    [
        ("obeys", True, ["SIGTERM"], Outcome(7, "SIGTERM", True, None)),
        ("ignores_term", True, ["SIGTERM", "SIGKILL"], Outcome(7, "SIGKILL", True, None)),
        ("ignores_term", False, ["SIGTERM"], Outcome(7, "SIGTERM", False, None)),
        ("gone", True, [], Outcome(7, None, True, None)),
        ("denied", True, [], Outcome(7, None, False, "permission denied: run the task with become: true")),
        ("unkillable", True, ["SIGTERM", "SIGKILL"], Outcome(7, "SIGKILL", False, None)),
    ],
)
def test_reap_escalates_as_needed(
    how: str, kill_after_timeout: bool, signals: list[str], outcome: Outcome
) -> None:
    ops = FakeOps({7: how})
    assert reap({7: 100}, term_timeout=10, kill_after_timeout=kill_after_timeout, ops=ops) == {7: outcome}
    assert [name for _when, _pid, name in ops.sent] == signals


def test_reap_waits_term_timeout_before_kill_and_no_longer_than_needed() -> None:
    ops = FakeOps({1: "obeys", 2: "ignores_term", 3: "obeys"})
    outcomes = reap({1: 10, 2: 20, 3: 30}, term_timeout=10, kill_after_timeout=True, ops=ops)
    assert all(outcome.exited for outcome in outcomes.values())
    # everyone gets SIGTERM at once, then the one that ignored it gets SIGKILL when term_timeout is up
    assert [(when, pid, name) for when, pid, name in ops.sent if name == "SIGTERM"] == [
        (0.0, 1, "SIGTERM"),
        (0.0, 2, "SIGTERM"),
        (0.0, 3, "SIGTERM"),
    ]
    kills = [when for when, pid, name in ops.sent if name == "SIGKILL"]
    assert len(kills) == 1 and 10 <= kills[0] < 10.2
    assert ops.now < 10.2


def test_reap_returns_as_soon_as_everyone_exited() -> None:
    ops = FakeOps({1: "obeys", 2: "obeys"})
    reap({1: 10, 2: 20}, term_timeout=30, kill_after_timeout=True, ops=ops)
    assert EXITS_AFTER_TERM <= ops.now < EXITS_AFTER_TERM + 0.2


def proc(
    pid: int, cmdline: tuple[str, ...] = ("node", "server.js"), sockets: frozenset[int] = frozenset()
) -> Process:
    return Process(pid, 1, "node", "S", 1000, 1001, cmdline, "/srv/shop/current", "/usr/bin/node", sockets)


def candidate(pid: int, ports: tuple[int, ...] = (3000,)) -> Candidate:
    return Candidate(proc(pid), ports, ("holds app port 3000",), None)


@pytest.mark.parametrize(
    ("outcome", "kill_after_timeout", "expected"),
    [
        (Outcome(7, "SIGTERM", True), True, None),
        (Outcome(7, None, True), True, None),
        (
            Outcome(7, "SIGTERM", False),
            False,
            "was still running 10 s after SIGTERM and kill_after_timeout is false",
        ),
        (Outcome(7, "SIGKILL", False), True, "is still running 5 s after SIGKILL: it is stuck in the kernel"),
        (
            Outcome(7, None, False, "permission denied: run the task with become: true"),
            True,
            "permission denied",
        ),
    ],
)
def test_failure_messages(outcome: Outcome, kill_after_timeout: bool, expected: str | None) -> None:
    messages = failure_messages([candidate(7)], {7: outcome}, 10, kill_after_timeout)
    if expected is None:
        assert messages == []
    else:
        assert len(messages) == 1
        assert messages[0].startswith("pid 7 (node server.js)")
        assert expected in messages[0]


@pytest.mark.parametrize(
    ("reaped", "check_mode", "expected"),
    [
        (
            [],
            False,
            "Nothing to reap: no process outside supervisor holds or runs from "
            "ports 3000, 3001 and /srv/shop.",
        ),
        (
            [{"pid": 7, "cmdline": "node server.js", "reason": "holds app port 3000", "signal": "SIGKILL"}],
            False,
            "Reaped 1 process(es) outside supervisor: "
            "pid 7 (node server.js, holds app port 3000) got SIGKILL",
        ),
        (
            [{"pid": 7, "cmdline": "node server.js", "reason": "holds app port 3000", "signal": None}],
            True,
            "Would reap 1 process(es) outside supervisor: pid 7 (node server.js, holds app port 3000)",
        ),
    ],
)
def test_summary(reaped: list[dict[str, Any]], check_mode: bool, expected: str) -> None:
    assert summary(reaped, check_mode, [3000, 3001], "/srv/shop") == expected


def held_entry(
    port: int, pid: int | None, supervised: bool = False, respawned: bool = False, **changes: Any
) -> dict[str, Any]:
    """A still_held entry; changes set the other keys, such as parent_pid, parent_cmdline and unit."""
    return {
        "port": port,
        "address": "127.0.0.1",
        "pid": pid,
        "cmdline": None if pid is None else f"node {port}.js",
        "parent_pid": None,
        "parent_cmdline": None,
        "unit": None,
        "supervised": supervised,
        "respawned": respawned,
        **changes,
    }


def test_still_held_leaves_out_the_gone_and_other_ports() -> None:
    supervisord = Process(
        50,
        1,
        "supervisord",
        "S",
        1,
        0,
        ("/usr/bin/python3", "/usr/bin/supervisord"),
        "/",
        "/usr/bin/python3",
        frozenset(),
    )
    web = Process(
        51, 50, "node", "S", 2, 1001, ("node", "server.js"), "/srv/shop", "/usr/bin/node", frozenset({11})
    )
    processes = {
        50: supervisord,
        51: web,
        60: proc(60, sockets=frozenset({12})),
        61: proc(61, sockets=frozenset({13})),
    }
    listeners = [
        Listener("127.0.0.1", 3000, "ipv4", 11, 1001),
        Listener("127.0.0.1", 3001, "ipv4", 12, 1001),
        Listener("127.0.0.1", 5432, "ipv4", 13, 1001),
    ]
    held = still_held([3000, 3001], processes, listeners, gone={60}, unit_of={51: "supervisor.service"}.get)
    assert held == [
        held_entry(
            3000,
            51,
            supervised=True,
            cmdline="node server.js",
            parent_pid=50,
            parent_cmdline="/usr/bin/python3 /usr/bin/supervisord",
            unit="supervisor.service",
        )
    ]


def test_still_held_names_a_listener_no_readable_process_holds() -> None:
    # inode 14's holder is not among the processes: its open files could not be read.
    listeners = [Listener("127.0.0.1", 3000, "ipv4", 14, 0), Listener("0.0.0.0", 8080, "ipv4", 15, 0)]
    held = still_held([3000], {60: proc(60, sockets=frozenset({12}))}, listeners, gone=set(), unit_of={}.get)
    assert held == [held_entry(3000, None)]


def test_still_held_tells_a_respawned_holder_from_a_protected_supervised_or_surviving_one() -> None:
    supervisord = Process(
        50, 1, "supervisord", "S", 1, 0, ("/usr/bin/supervisord",), "/", "/usr/bin/python3", frozenset()
    )
    loop = Process(
        70, 1, "sh", "S", 5, 0, ("sh", "-c", "while :; do node server.js; done"), "/", None, frozenset()
    )
    processes = {
        1: Process(1, 0, "systemd", "S", 0, 0, ("/sbin/init",), "/", None, frozenset({10})),
        50: supervisord,
        51: Process(51, 50, "node", "S", 2, 1001, ("node", "a.js"), "/", "/usr/bin/node", frozenset({11})),
        70: loop,
        71: Process(
            71, 70, "node", "S", 9, 1001, ("node", "server.js"), "/", "/usr/bin/node", frozenset({12})
        ),
        72: proc(72, sockets=frozenset({13})),
        73: proc(73, sockets=frozenset({14})),
    }
    listeners = [Listener("127.0.0.1", 3000 + inode - 10, "ipv4", inode, 1001) for inode in range(10, 15)]
    held = still_held(
        [3000, 3001, 3002, 3003, 3004],
        processes,
        listeners,
        set(),
        unit_of={71: "shop-loop.service"}.get,
        protected={72: "it is listed in exclude_pids"},
        chosen={73: processes[73].starttime, 71: processes[71].starttime - 1},  # 71: a new one on the pid
    )
    assert {entry["pid"]: entry["respawned"] for entry in held} == {
        1: False,  # init
        51: False,  # supervised
        71: True,
        72: False,  # protected
        73: False,  # chosen, and outlived its signals
    }
    respawned = next(entry for entry in held if entry["respawned"])
    assert (respawned["parent_pid"], respawned["parent_cmdline"], respawned["unit"]) == (
        70,
        "sh -c while :; do node server.js; done",
        "shop-loop.service",
    )


UNOWNED = [Listener("127.0.0.1", 3000, "ipv4", 14, 0)]


def test_held_after_reap_looks_again_while_a_listener_has_no_holder() -> None:
    # A just-killed process's socket outlives its readable open files for a moment, then goes.
    ops = FakeOps({})
    looks = iter([UNOWNED, UNOWNED, []])
    assert held_after_reap([3000], lambda: ({}, next(looks)), ops, unit_of={}.get) == []
    assert ops.now == pytest.approx(2 * POLL_INTERVAL)


def test_held_after_reap_reports_a_lasting_unowned_listener_when_settle_is_up() -> None:
    ops = FakeOps({})
    held = held_after_reap([3000], lambda: ({}, UNOWNED), ops, settle=1.0, unit_of={}.get)
    assert [entry["pid"] for entry in held] == [None]
    assert 1.0 <= ops.now < 1.0 + 2 * POLL_INTERVAL


def test_held_after_reap_watches_free_ports_for_a_respawn_within_the_window() -> None:
    # A process manager brings the reaped server back 0.3 s after the reap, under a new pid.
    ops = FakeOps({})
    respawned = {61: proc(61, sockets=frozenset({14}))}

    def look() -> tuple[dict, list]:
        return (respawned, UNOWNED) if ops.now >= 0.3 else ({}, [])

    held = held_after_reap([3000], look, ops, unit_of={}.get, respawn_window=RESPAWN_WINDOW)
    assert [(entry["pid"], entry["respawned"]) for entry in held] == [(61, True)]
    assert ops.now == pytest.approx(0.3)


def test_held_after_reap_returns_free_ports_once_the_window_is_up_and_at_once_without_one() -> None:
    ops = FakeOps({})
    assert held_after_reap([3000], lambda: ({}, []), ops, unit_of={}.get, respawn_window=1.0) == []
    assert 1.0 <= ops.now < 1.0 + 2 * POLL_INTERVAL
    ops = FakeOps({})
    assert held_after_reap([3000], lambda: ({}, []), ops, unit_of={}.get) == []
    assert ops.now == 0.0


def test_held_after_reap_does_not_wait_on_a_known_holder() -> None:
    ops = FakeOps({})
    processes = {60: proc(60, sockets=frozenset({14}))}
    assert [
        entry["pid"] for entry in held_after_reap([3000], lambda: (processes, UNOWNED), ops, unit_of={}.get)
    ] == [60]
    assert ops.now == 0.0


def test_held_messages_name_the_holder_and_the_way_out() -> None:
    messages = held_messages(
        [
            held_entry(3000, 51, supervised=True, parent_pid=50, parent_cmdline="supervisord"),
            held_entry(3001, 77, parent_pid=1),
            held_entry(3002, None),
            held_entry(3003, 1, parent_pid=None),
        ]
    )
    assert messages[0].startswith(
        "Port 3000 (127.0.0.1) is still held by pid 51 (node 3000.js), which a supervisord"
    )
    assert "supervisorctl" in messages[0]
    assert messages[1].startswith("Port 3001 (127.0.0.1) is still held by pid 77 (node 3001.js)")
    assert "exclude_pids" in messages[1]
    assert messages[2].startswith("Port 3002 (127.0.0.1) is still listened on by a process whose open files")
    assert "become: true" in messages[2]
    assert messages[3].startswith("Port 3003 (127.0.0.1) is still held by pid 1 (node 3003.js), init")
    assert "systemctl list-sockets" in messages[3]
    assert not any("taken again" in message for message in messages)


@pytest.mark.parametrize(
    ("origin", "named", "not_named"),
    [
        (
            {"parent_pid": 4100, "parent_cmdline": "PM2 v5.3.0: God Daemon", "unit": "pm2-root.service"},
            [
                "started by pid 4100 (PM2 v5.3.0: God Daemon), in systemd unit pm2-root.service.",
                "systemctl disable --now pm2-root.service",
            ],
            [],
        ),
        (
            {"parent_pid": 1, "parent_cmdline": "/sbin/init", "unit": "shop-next.service"},
            ["holds it now, in systemd unit shop-next.service.", "systemctl disable --now shop-next.service"],
            ["started by"],
        ),
        (
            {"parent_pid": 90, "parent_cmdline": None, "unit": "session-4.scope"},
            ["started by pid 90 (command unknown), in systemd unit session-4.scope."],
            ["systemctl disable"],  # a login session is no unit to disable
        ),
        (
            {"parent_pid": 1, "parent_cmdline": "/sbin/init"},
            ["holds it now. Something outside"],
            ["started by"],
        ),
    ],
    ids=["pm2", "systemd-restart", "shell-loop-in-a-session", "adopted-by-init"],
)
def test_held_messages_say_who_restarts_a_respawned_holder(
    origin: dict[str, Any], named: list[str], not_named: list[str]
) -> None:
    [message] = held_messages([held_entry(3000, 4310, respawned=True, **origin)])
    assert message.startswith("Port 3000 (127.0.0.1) was taken again after the reap: pid 4310 (node 3000.js)")
    assert "Something outside supervisor restarts the app" in message
    assert "stop and disable it" in message
    assert "exclude_pids" not in message
    for text in named:
        assert text in message
    for text in not_named:
        assert text not in message


def test_app_roots_adds_the_real_path_of_a_symlink(tmp_path: Path) -> None:
    real = tmp_path / "data" / "shop"
    real.mkdir(parents=True)
    (tmp_path / "srv").mkdir()
    (tmp_path / "srv" / "shop").symlink_to(real)
    assert app_roots(str(tmp_path / "srv" / "shop/")) == sorted([str(tmp_path / "srv" / "shop"), str(real)])
    assert app_roots(None) == []


CHILD = """\
import signal, socket, sys, time
if sys.argv[1] == "ignore-term":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen()
print(s.getsockname()[1], flush=True)
time.sleep(120)
"""


@pytest.fixture
def start_child(tmp_path: Path) -> Iterator[Any]:
    """Start a python process in tmp_path listening on a 127.0.0.1 port; every one is stopped afterwards."""
    started: list[subprocess.Popen[str]] = []

    def start(mode: str) -> tuple[subprocess.Popen[str], int]:
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, mode], cwd=tmp_path, stdout=subprocess.PIPE, text=True
        )
        started.append(child)
        assert child.stdout is not None
        return child, int(child.stdout.readline())

    yield start
    for child in started:
        if child.poll() is None:
            child.kill()
        child.wait(timeout=10)


def test_real_reap_ends_listeners_outside_supervisor(
    start_child: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    obeys, obeys_port = start_child("obey")
    stubborn, stubborn_port = start_child("ignore-term")
    # this test's own process also runs from the "app tree" and must be left alone
    monkeypatch.chdir(tmp_path)
    processes, _unreadable = read_processes()
    protected = {pid: "it is this module or one of its parents" for pid in self_and_ancestors(processes)}
    candidates = app_candidates(
        processes,
        read_listeners(),
        [obeys_port, stubborn_port],
        [str(tmp_path)],
        ["python*", "pytest*"],
        protected,
    )
    targets = {c.process.pid: c for c in candidates if c.protected_because is None}
    assert set(targets) == {obeys.pid, stubborn.pid}
    assert targets[obeys.pid].ports == (obeys_port,)
    assert os.getpid() in {c.process.pid for c in candidates if c.protected_because}

    began = time.monotonic()
    outcomes = reap({pid: c.process.starttime for pid, c in targets.items()}, 1.5, True, SystemOps())
    assert outcomes[obeys.pid] == Outcome(obeys.pid, "SIGTERM", True)
    assert outcomes[stubborn.pid] == Outcome(stubborn.pid, "SIGKILL", True)
    assert time.monotonic() - began >= 1.5
    assert obeys.wait(timeout=5) == -signal.SIGTERM
    assert stubborn.wait(timeout=5) == -signal.SIGKILL
    assert not [listener for listener in read_listeners() if listener.port in (obeys_port, stubborn_port)]


# Node's shape: a listener in a process with threads busy on the CPU. Killed, its main thread becomes a
# zombie while the others are still exiting, and the socket is closed only when the last one has.
THREADED_CHILD = """\
import hashlib, socket, threading, time
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen()
heap = bytearray(16 << 20)
def work():
    block = bytes(1 << 20)
    while True:
        hashlib.sha256(block).digest()  # releases the GIL: the threads really run at once
for _ in range(4):
    threading.Thread(target=work, daemon=True).start()
print(s.getsockname()[1], flush=True)
time.sleep(120)
"""


def test_real_reap_of_a_threaded_listener_returns_once_its_port_is_free(tmp_path: Path) -> None:
    # Without waiting for every thread, the port was still listed after reap in most of these runs.
    for _attempt in range(15):
        child = subprocess.Popen(
            [sys.executable, "-c", THREADED_CHILD], cwd=tmp_path, stdout=subprocess.PIPE, text=True
        )
        try:
            assert child.stdout is not None
            port = int(child.stdout.readline())
            starttime = read_starttime(child.pid)
            assert starttime is not None
            outcomes = reap({child.pid: starttime}, 0, True, SystemOps())
            assert outcomes[child.pid].exited
            assert [listener for listener in read_listeners() if listener.port == port] == []
        finally:
            child.kill()
            child.wait(timeout=10)


def test_real_reap_leaves_a_stubborn_process_when_told(start_child: Any) -> None:
    stubborn, _port = start_child("ignore-term")
    starttime = read_processes()[0][stubborn.pid].starttime
    outcomes = reap({stubborn.pid: starttime}, 0.5, False, SystemOps())
    assert outcomes[stubborn.pid] == Outcome(stubborn.pid, "SIGTERM", False)
    assert stubborn.poll() is None


def test_real_signal_is_not_sent_to_a_reused_pid(start_child: Any) -> None:
    child, _port = start_child("obey")
    starttime = read_processes()[0][child.pid].starttime
    assert SystemOps().send(child.pid, starttime + 1, signal.SIGTERM) is False
    assert child.poll() is None


def test_module_check_mode_reports_and_sends_nothing(start_child: Any, run_module: RunModule) -> None:
    child, port = start_child("obey")
    result = run_module(app_reap, {"ports": [port], "_ansible_check_mode": True})
    assert result["changed"] is True
    assert [(entry["pid"], entry["ports"], entry["signal"]) for entry in result["reaped"]] == [
        (child.pid, [port], None)
    ]
    assert result["reaped"][0]["reason"] == f"holds app port {port}"
    assert result["msg"].startswith("Would reap 1 process(es)")
    assert result["still_held"] == []
    assert child.poll() is None


def test_module_never_chooses_its_own_process_or_its_parents(
    run_module: RunModule, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Ansible's own processes may run from the app tree (a task with chdir into a release). Here the
    # module runs inside pytest, whose working directory is the "app tree" and whose command matches.
    monkeypatch.chdir(tmp_path)
    result = run_module(
        app_reap,
        {"app_root": str(tmp_path), "tree_commands": ["python*", "pytest*"], "_ansible_check_mode": True},
    )
    assert os.getpid() not in [entry["pid"] for entry in result["reaped"]]
    kept = {entry["pid"]: entry["kept_because"] for entry in result["kept"]}
    assert kept[os.getpid()] == "it is this module or one of its parents (Ansible's own processes)"


def test_module_reaps_for_real(start_child: Any, run_module: RunModule) -> None:
    child, port = start_child("ignore-term")
    result = run_module(app_reap, {"ports": [port], "term_timeout": 1})
    assert result["changed"] is True
    entry = result["reaped"][0]
    assert (entry["pid"], entry["signal"], entry["exited"]) == (child.pid, "SIGKILL", True)
    assert entry["cmdline"].startswith(sys.executable)
    assert result["still_held"] == []
    assert child.wait(timeout=5) == -signal.SIGKILL


def test_module_fails_when_a_port_stays_taken(start_child: Any, run_module: RunModule) -> None:
    child, port = start_child("obey")
    result = run_module(app_reap, {"ports": [port], "exclude_pids": [child.pid], "term_timeout": 1})
    assert result["failed"] is True
    assert result["msg"].startswith("An app port is still taken after reaping")
    assert f"Port {port} (127.0.0.1) is still held by pid {child.pid}" in result["msg"]
    assert "listed in exclude_pids" in result["msg"] and "taken again" not in result["msg"]
    assert [(entry["port"], entry["pid"]) for entry in result["still_held"]] == [(port, child.pid)]
    assert (result["still_held"][0]["respawned"], result["still_held"][0]["parent_pid"]) == (
        False,
        os.getpid(),
    )
    assert child.poll() is None


# A process manager's graceful restart (PM2's reload): the child told to stop closes its listening socket
# and says so, its parent starts a new one on the same port, and the old one exits only once the new one
# listens. The port is taken again by the time app_reap sees the old one gone and looks.
HANDING_OVER_CHILD = """\
import signal, socket, sys, time
port = int(sys.argv[1])
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", port))
s.listen()

def hand_over(signum, frame):
    s.close()
    print("closed", flush=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.02)
    sys.exit(0)

signal.signal(signal.SIGTERM, hand_over)
while True:
    time.sleep(60)
"""

# A server that simply exits on SIGTERM: its parent starts a new one 0.1 s after (systemd's RestartSec
# is 0.1 s by default), and the port is free until the new one listens. app_reap watches the ports for
# a while after a reap (RESPAWN_WINDOW) to see it come back.
EXITING_CHILD = """\
import socket, sys, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen()
while True:
    time.sleep(60)
"""

# Starts the child again when it hands over or exits, forever.
RESPAWNER = """\
import subprocess, sys, time
port, child_code = sys.argv[1], sys.argv[2]
while True:
    child = subprocess.Popen([sys.executable, "-c", child_code, port], stdout=subprocess.PIPE, text=True)
    if child.stdout.readline() != "closed\\n":
        child.wait()
        time.sleep(0.1)  # it died without handing over: do not spin
"""


@pytest.fixture
def start_respawner(tmp_path: Path) -> Iterator[Any]:
    """Start RESPAWNER on a port in its own process group; it and its children are killed afterwards."""
    started: list[subprocess.Popen[bytes]] = []

    def start(port: int, child: str = HANDING_OVER_CHILD) -> subprocess.Popen[bytes]:
        respawner = subprocess.Popen(
            [sys.executable, "-c", RESPAWNER, str(port), child],
            cwd=tmp_path,
            start_new_session=True,
        )
        started.append(respawner)
        return respawner

    yield start
    for respawner in started:
        try:
            respawner.kill()  # first, so that it starts no more children
            respawner.wait(timeout=10)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(respawner.pid, signal.SIGKILL)  # its children, in the group it leads


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for_holder(port: int, parent: int, timeout: float = 30.0) -> int:
    """The pid of parent's child that listens on port, once one does."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        processes, _unreadable = read_processes()
        holders = socket_holders(processes.values())
        for listener in read_listeners():
            for pid in holders.get(listener.inode, []) if listener.port == port else []:
                if processes[pid].ppid == parent:
                    return pid
        time.sleep(0.05)
    raise AssertionError(f"no child of pid {parent} listened on port {port} within {timeout:g} s")


@pytest.mark.parametrize("child", [HANDING_OVER_CHILD, EXITING_CHILD], ids=["hands-over", "exits"])
def test_module_names_the_parent_that_restarted_a_process_it_ended(
    start_respawner: Any, run_module: RunModule, child: str
) -> None:
    port = free_port()
    respawner = start_respawner(port, child)
    first = wait_for_holder(port, respawner.pid)

    result = run_module(app_reap, {"ports": [port], "term_timeout": 30})

    assert result["failed"] is True
    reaped = result["reaped"]
    assert [(entry["pid"], entry["signal"], entry["exited"]) for entry in reaped] == [
        (first, "SIGTERM", True)
    ]
    assert (reaped[0]["parent_pid"], reaped[0]["parent_cmdline"]) == (respawner.pid, " ".join(respawner.args))
    [held] = result["still_held"]
    assert held["pid"] != first
    assert (held["port"], held["respawned"], held["supervised"]) == (port, True, False)
    assert held["parent_pid"] == respawner.pid
    assert result["msg"].startswith("An app port is still taken after reaping")
    assert f"Port {port} (127.0.0.1) was taken again after the reap: pid {held['pid']} " in result["msg"]
    assert f"started by pid {respawner.pid} ({sys.executable} -c " in result["msg"]
    assert "exclude_pids" not in result["msg"]
    assert respawner.poll() is None


@pytest.mark.parametrize(
    "args", [{"fail_when_held": False}, {"_ansible_check_mode": True}], ids=["told-not-to", "check-mode"]
)
def test_module_only_reports_a_taken_port(
    start_child: Any, run_module: RunModule, args: dict[str, Any]
) -> None:
    child, port = start_child("obey")
    result = run_module(app_reap, {"ports": [port], "exclude_pids": [child.pid], **args})
    assert "failed" not in result
    assert [(entry["port"], entry["pid"]) for entry in result["still_held"]] == [(port, child.pid)]
    assert child.poll() is None


def test_module_with_nothing_to_reap_is_unchanged(run_module: RunModule, tmp_path: Path) -> None:
    result = run_module(app_reap, {"ports": [1], "app_root": str(tmp_path)})
    assert (result["changed"], result["reaped"]) == (False, [])
    assert result["msg"].startswith("Nothing to reap")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({}, "needs ports, app_root or both"),
        ({"ports": [0, 70000]}, "ports [0, 70000] are not TCP ports"),
        ({"app_root": "/"}, "must be the app's own absolute directory"),
        ({"ports": [3000], "term_timeout": -1}, "term_timeout=-1 must be 0 or more"),
    ],
)
def test_module_refuses_bad_arguments(run_module: RunModule, args: dict[str, Any], message: str) -> None:
    result = run_module(app_reap, args)
    assert result["failed"] is True
    assert message in result["msg"]
