"""supervisor_group against a real supervisord (from PyPI) on a socket in a temporary directory, and
against a scripted one for what a real one does not readily do (answer late, drop the connection)."""

from __future__ import annotations

import http.client
import subprocess
import sys
import time
import xmlrpc.client
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import supervisor_group
from ansible.module_utils.shipshape_proc import parent_map, read_processes, supervisor_of
from module_run import RunModule
from supervisor_group import restarted, wait_settled, wait_stopped

# "shop" is the healthy app: two programs that stay up. "crashy" exits at once (FATAL: no retries,
# startretries=0); "flappy" stays up past startsecs, then exits and is restarted by autorestart.
# "draining" stops slowly: each of its two programs exits 2 s after its TERM. "stubborn" ignores
# TERM until supervisor KILLs it at its stopwaitsecs (1 s; supervisord checks it on its 1 s tick).
# In "broken", supervisord refuses to start "missing" (NO_FILE) and starts "fine".
CONFIG = """
[unix_http_server]
file={socket}

[supervisord]
logfile={tmp}/supervisord.log
pidfile={tmp}/supervisord.pid
childlogdir={tmp}

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[group:shop]
programs=web,worker

[program:web]
command=sleep 600
autostart=false
startsecs=3

[program:worker]
command=sleep 600
autostart=false
startsecs=3

[group:crashy]
programs=crash

[program:crash]
command=sh -c 'exit 3'
autostart=false
startsecs=1
startretries=0

[group:draining]
programs=drain1,drain2

[program:drain1]
command={python} -c "import signal, sys, time;
  signal.signal(signal.SIGTERM, lambda *_: (time.sleep(2), sys.exit(0))); time.sleep(600)"
autostart=false
startsecs=1

[program:drain2]
command={python} -c "import signal, sys, time;
  signal.signal(signal.SIGTERM, lambda *_: (time.sleep(2), sys.exit(0))); time.sleep(600)"
autostart=false
startsecs=1

[group:stubborn]
programs=deaf

[program:deaf]
command={python} -c "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"
autostart=false
startsecs=1
stopwaitsecs=1

[group:broken]
programs=fine,missing

[program:fine]
command=sleep 600
autostart=false
startsecs=1

[program:missing]
command=/nonexistent/node server.js
autostart=false
startsecs=1

[group:flappy]
programs=flap

[program:flap]
command=sh -c 'sleep 2; exit 1'
autostart=false
autorestart=true
startsecs=1
"""


@pytest.fixture(scope="module")
def supervisord(tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("supervisord")
    sock = tmp / "supervisor.sock"
    conf = tmp / "supervisord.conf"
    conf.write_text(CONFIG.format(socket=sock, tmp=tmp, python=sys.executable))
    daemon = subprocess.Popen(
        [sys.executable, "-m", "supervisor.supervisord", "-n", "-c", str(conf)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(100):
        if sock.exists():
            break
        time.sleep(0.1)
    else:
        daemon.kill()
        pytest.fail(f"supervisord did not open {sock}")
    yield str(sock)
    daemon.terminate()
    daemon.wait(timeout=30)


def states(result: dict[str, Any]) -> dict[str, str]:
    return {program["name"]: program["state"] for program in result["processes"]}


def test_start_without_waiting_then_settle(supervisord: str, run_module: RunModule):
    checked = run_module(
        supervisor_group,
        {"name": "shop", "state": "started", "socket": supervisord, "_ansible_check_mode": True},
    )
    assert checked["changed"] is True
    assert checked["started"] == ["web", "worker"]
    assert states(checked) == {"web": "STOPPED", "worker": "STOPPED"}

    began = time.monotonic()
    started = run_module(supervisor_group, {"name": "shop", "state": "started", "socket": supervisord})
    # Returned before startsecs (3 s) was waited out: the programs are still STARTING.
    assert time.monotonic() - began < 3
    assert started["changed"] is True
    assert states(started) == {"web": "STARTING", "worker": "STARTING"}
    assert all(program["pid"] > 0 for program in started["processes"])

    settled = run_module(
        supervisor_group,
        {"name": "shop", "settled_seconds": 2, "baseline": started["processes"], "socket": supervisord},
    )
    # RUNNING only once startsecs (3 s) has passed, more than the 2 s asked.
    assert states(settled) == {"web": "RUNNING", "worker": "RUNNING"}
    assert settled["settled_after"] >= 2
    assert [program["pid"] for program in settled["processes"]] == [
        program["pid"] for program in started["processes"]
    ]
    assert all(program["uptime"] >= 3 for program in settled["processes"])

    again = run_module(supervisor_group, {"name": "shop", "state": "started", "socket": supervisord})
    assert again["changed"] is False
    assert again["started"] == []


def test_stop_signals_every_program_and_returns_once_they_have_exited(
    supervisord: str, run_module: RunModule
):
    run_module(supervisor_group, {"name": "shop", "state": "started", "socket": supervisord})
    checked = run_module(
        supervisor_group,
        {"name": "shop", "state": "stopped", "socket": supervisord, "_ansible_check_mode": True},
    )
    assert checked["changed"] is True
    assert checked["stopped"] == ["web", "worker"]
    assert set(states(checked).values()) <= {"STARTING", "RUNNING"}

    stopped = run_module(supervisor_group, {"name": "shop", "state": "stopped", "socket": supervisord})
    assert stopped["changed"] is True
    assert stopped["stopped"] == ["web", "worker"]
    assert states(stopped) == {"web": "STOPPED", "worker": "STOPPED"}
    assert all(program["pid"] == 0 for program in stopped["processes"])

    again = run_module(supervisor_group, {"name": "shop", "state": "stopped", "socket": supervisord})
    assert again["changed"] is False
    assert again["stopped"] == []
    assert again["stopped_after"] is None


def test_stop_waits_for_every_drain_at_once(supervisord: str, run_module: RunModule):
    run_module(
        supervisor_group,
        {"name": "draining", "state": "started", "settled_seconds": 1, "socket": supervisord},
    )
    stopped = run_module(supervisor_group, {"name": "draining", "state": "stopped", "socket": supervisord})
    assert stopped["changed"] is True
    assert states(stopped) == {"drain1": "STOPPED", "drain2": "STOPPED"}
    # Not before the 2 s drains had ended; and they ran at once (one after the other: 4 s or more).
    assert 2 <= stopped["stopped_after"] < 3.8


def test_stop_waits_for_supervisor_to_kill_a_program_that_ignores_term(
    supervisord: str, run_module: RunModule
):
    run_module(
        supervisor_group,
        {"name": "stubborn", "state": "started", "settled_seconds": 1, "socket": supervisord},
    )
    stopped = run_module(supervisor_group, {"name": "stubborn", "state": "stopped", "socket": supervisord})
    assert states(stopped) == {"deaf": "STOPPED"}
    assert stopped["stopped_after"] >= 1


def test_stop_of_a_group_supervisord_does_not_know_is_nothing_to_do(supervisord: str, run_module: RunModule):
    result = run_module(supervisor_group, {"name": "nosuchapp", "state": "stopped", "socket": supervisord})
    assert result["changed"] is False
    assert result["processes"] == []
    assert result["msg"] == "supervisord runs no group named nosuchapp: nothing to stop"
    assert "failed" not in result


def test_settled_seconds_does_not_go_with_stopped(supervisord: str, run_module: RunModule):
    result = run_module(
        supervisor_group, {"name": "shop", "state": "stopped", "settled_seconds": 5, "socket": supervisord}
    )
    assert result["failed"] is True
    assert result["msg"] == "settled_seconds waits for running programs: it does not go with state=stopped"


def test_wait_stopped_times_out_with_what_it_saw():
    ticks = iter(range(0, 100, 4))
    program = {"name": "web", "state": "STOPPING", "pid": 5, "uptime": 9, "spawnerr": "", "exitstatus": 0}
    programs, waited, problem = wait_stopped(
        lambda: [program], 10, clock=lambda: next(ticks), sleep=lambda _: None
    )
    assert programs == [program]
    assert waited == 12
    assert problem == "still running after 10s: web STOPPING pid 5 up 9s"


def test_a_program_that_dies_fails_the_settle_wait_at_once(supervisord: str, run_module: RunModule):
    run_module(supervisor_group, {"name": "crashy", "state": "started", "socket": supervisord})
    began = time.monotonic()
    result = run_module(
        supervisor_group, {"name": "crashy", "settled_seconds": 30, "timeout": 30, "socket": supervisord}
    )
    assert result["failed"] is True
    assert "not running: crash FATAL" in result["msg"]
    assert time.monotonic() - began < 10


def test_a_program_restarted_since_the_baseline_fails_the_settle_wait(
    supervisord: str, run_module: RunModule
):
    # A baseline that names another pid for a running program: what a restart between the
    # baseline and the settle check leaves. Deterministic, unlike catching a real restart below.
    started = run_module(supervisor_group, {"name": "shop", "state": "started", "socket": supervisord})
    web = next(program for program in started["processes"] if program["name"] == "web")
    baseline = [
        dict(program, pid=program["pid"] + 100000) if program is web else program
        for program in started["processes"]
    ]
    began = time.monotonic()
    result = run_module(
        supervisor_group,
        {"name": "shop", "settled_seconds": 30, "timeout": 30, "baseline": baseline, "socket": supervisord},
    )
    assert result["failed"] is True
    assert result["msg"] == (
        "the programs of shop did not settle: restarted since the baseline: "
        f"web (pid {web['pid'] + 100000}, now {web['pid']})"
    )
    assert time.monotonic() - began < 10


def test_a_program_that_exits_and_restarts_fails_the_settle_wait(supervisord: str, run_module: RunModule):
    started = run_module(supervisor_group, {"name": "flappy", "state": "started", "socket": supervisord})
    first_pid = started["processes"][0]["pid"]
    began = time.monotonic()
    result = run_module(
        supervisor_group,
        {
            "name": "flappy",
            "settled_seconds": 30,
            "timeout": 40,
            "baseline": started["processes"],
            "socket": supervisord,
        },
    )
    assert result["failed"] is True
    # The poll sees flap either between its exit and supervisor's restart (EXITED), or after the
    # restart under a new pid: both fail the wait, long before its 30 s.
    assert result["msg"].startswith("the programs of flappy did not settle: ")
    assert (
        "not running: flap EXITED" in result["msg"]
        or f"restarted since the baseline: flap (pid {first_pid}, now" in result["msg"]
    )
    assert time.monotonic() - began < 15


def test_a_program_supervisord_refuses_to_start_fails_the_start_and_is_not_listed_as_started(
    supervisord: str, run_module: RunModule
):
    result = run_module(supervisor_group, {"name": "broken", "state": "started", "socket": supervisord})
    assert result["failed"] is True
    assert result["msg"] == (
        "supervisord could not start missing: NO_FILE: can't find command '/nonexistent/node'"
    )
    assert result["started"] == ["fine"]
    assert result["changed"] is True
    assert states(result) == {"fine": "STARTING", "missing": "STOPPED"}
    run_module(supervisor_group, {"name": "broken", "state": "stopped", "socket": supervisord})


def test_an_unknown_group_or_socket_is_refused(supervisord: str, run_module: RunModule, tmp_path: Path):
    result = run_module(supervisor_group, {"name": "nosuchapp", "socket": supervisord})
    assert result["failed"] is True
    assert result["msg"] == "supervisord runs no group named nosuchapp"
    result = run_module(supervisor_group, {"name": "shop", "socket": str(tmp_path / "absent.sock")})
    assert result["failed"] is True
    assert result["msg"].startswith(f"cannot read supervisord on {tmp_path / 'absent.sock'}")


def test_the_programs_of_a_supervisord_run_as_a_module_count_as_supervised(
    supervisord: str, run_module: RunModule
):
    # The fixture runs `python -m supervisor.supervisord`: neither comm nor argv[1] says supervisord,
    # and app_reap must still leave its programs alone.
    started = run_module(supervisor_group, {"name": "shop", "state": "started", "socket": supervisord})
    processes, _unreadable = read_processes()
    parents = parent_map(processes)
    for program in started["processes"]:
        supervisor = supervisor_of(program["pid"], processes, parents)
        assert supervisor is not None, f"{program['name']} is not seen as run by supervisord"
        assert "supervisor.supervisord" in processes[supervisor].cmdline
    run_module(supervisor_group, {"name": "shop", "state": "stopped", "socket": supervisord})


def test_restarted_ignores_programs_that_were_not_running():
    baseline = [{"name": "web", "pid": 10}, {"name": "worker", "pid": 0}]
    now = [
        {"name": "web", "pid": 10, "state": "RUNNING"},
        {"name": "worker", "pid": 12, "state": "STARTING"},
    ]
    assert restarted(now, baseline) == []
    now[0] = {"name": "web", "pid": 0, "state": "BACKOFF"}
    assert restarted(now, baseline) == ["web (pid 10, now BACKOFF)"]


def test_wait_settled_times_out_with_what_it_saw():
    ticks = iter(range(0, 100, 5))
    program = {"name": "web", "state": "STARTING", "pid": 5, "uptime": 0, "spawnerr": "", "exitstatus": 0}
    programs, waited, problem = wait_settled(
        lambda: [program], 3, [], 12, clock=lambda: next(ticks), sleep=lambda _: None
    )
    assert programs == [program]
    assert waited == 15
    assert problem == "not settled (3s RUNNING) after 12s: web STARTING pid 5 up 0s"


def info(name: str, state: str, pid: int = 0) -> dict[str, Any]:
    """One program as getAllProcessInfo describes it."""
    return {
        "group": "shop",
        "name": name,
        "statename": state,
        "pid": pid,
        "now": 100,
        "start": 90 if pid else 0,
        "spawnerr": "",
        "exitstatus": 0,
    }


STOPPED = [info("web", "STOPPED")]
RUNNING = [info("web", "RUNNING", pid=42)]
STARTED = [{"name": "web", "group": "shop", "status": supervisor_group.SUCCESS, "description": "OK"}]
CONFIG_INFO = [{"group": "shop", "name": "web", "startsecs": 35, "stopwaitsecs": 10}]


class ScriptedSupervisord:
    """What supervisor_group's connect() returns, answering as told. Each method's answer is a value, an
    exception to raise, a tuple of those (one per call) or a function of the connection's timeout and the
    call's arguments. The timeout of each connection made is kept."""

    def __init__(self, **answers: Any) -> None:
        self.answers = {
            name: iter(answer) if isinstance(answer, tuple) else answer for name, answer in answers.items()
        }
        self.timeouts: list[float] = []

    def connect(self, path: str, timeout: float = supervisor_group.RPC_TIMEOUT_SECONDS) -> Any:
        self.timeouts.append(timeout)
        methods = {name: self._method(name, timeout) for name in self.answers}
        return SimpleNamespace(supervisor=SimpleNamespace(**methods))

    def _method(self, name: str, timeout: float) -> Any:
        def call(*args: Any) -> Any:
            answer = self.answers[name]
            if isinstance(answer, Iterator):
                answer = next(answer)
            if callable(answer) and not isinstance(answer, BaseException):
                answer = answer(timeout, *args)
            if isinstance(answer, BaseException):
                raise answer
            return answer

        return call


def test_a_waited_start_waits_for_supervisord_as_long_as_the_startsecs_of_the_group(
    monkeypatch: pytest.MonkeyPatch, run_module: RunModule
):
    # supervisord answers a waited start once web has run its 35 s startsecs; the transport used to
    # give up after 30 s, and its TimeoutError ended the module in a traceback.
    def start(timeout: float, group: str, wait: bool) -> Any:
        return TimeoutError("timed out") if timeout < 35 else STARTED

    supervisord = ScriptedSupervisord(
        getAllProcessInfo=(STOPPED, RUNNING), getAllConfigInfo=CONFIG_INFO, startProcessGroup=start
    )
    monkeypatch.setattr(supervisor_group, "connect", supervisord.connect)
    result = run_module(supervisor_group, {"name": "shop", "state": "started", "wait": True})
    assert "failed" not in result
    assert (result["started"], states(result)) == (["web"], {"web": "RUNNING"})
    assert supervisord.timeouts == [supervisor_group.RPC_TIMEOUT_SECONDS, 35 + 1 + 10]


@pytest.mark.parametrize(
    ("args", "answers", "message"),
    [
        (
            {"state": "started"},
            {"getAllProcessInfo": STOPPED, "startProcessGroup": TimeoutError("timed out")},
            "supervisord could not start shop (some of its programs may have started): "
            "no answer in time (is supervisord busy or hung?)",
        ),
        (
            {"state": "started", "wait": True},
            {"getAllProcessInfo": STOPPED, "getAllConfigInfo": ConnectionResetError(104, "reset by peer")},
            "supervisord could not say the startsecs of shop: [Errno 104] reset by peer",
        ),
        (
            {"state": "started"},
            {"getAllProcessInfo": (STOPPED, TimeoutError()), "startProcessGroup": STARTED},
            "supervisord could not list the programs of shop after starting them: "
            "no answer in time (is supervisord busy or hung?)",
        ),
        (
            {"state": "stopped"},
            {
                "getAllProcessInfo": RUNNING,
                "getAllConfigInfo": xmlrpc.client.Fault(2, "INCORRECT_PARAMETERS"),
            },
            "supervisord could not say the stopwaitsecs of shop: INCORRECT_PARAMETERS",
        ),
        (
            {"state": "stopped"},
            {
                "getAllProcessInfo": (RUNNING, ConnectionRefusedError(111, "Connection refused")),
                "getAllConfigInfo": CONFIG_INFO,
                "stopProcessGroup": [],
            },
            "supervisord could not list the programs of shop while waiting for them to stop: "
            "[Errno 111] Connection refused",
        ),
        (
            {"settled_seconds": 30},
            {"getAllProcessInfo": (RUNNING, http.client.RemoteDisconnected("closed without response"))},
            "supervisord could not list the programs of shop while waiting for them to settle: "
            "closed without response",
        ),
    ],
    ids=["start", "startsecs", "read-after-start", "stopwaitsecs", "stop-wait", "settle-wait"],
)
def test_every_call_supervisord_does_not_answer_fails_saying_what_was_being_done(
    monkeypatch: pytest.MonkeyPatch,
    run_module: RunModule,
    args: dict[str, Any],
    answers: dict[str, Any],
    message: str,
):
    monkeypatch.setattr(supervisor_group, "connect", ScriptedSupervisord(**answers).connect)
    result = run_module(supervisor_group, {"name": "shop", **args})
    assert result["failed"] is True
    assert result["msg"] == message
    assert result["processes"]
