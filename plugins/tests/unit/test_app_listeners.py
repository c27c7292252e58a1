from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import app_listeners
import pytest
from ansible.module_utils.shipshape_proc import Listener, Process, read_processes, read_unit, socket_holders
from app_listeners import accepts_ipv4_loopback, orphan_entries, port_report, process_trees
from module_run import RunModule


@pytest.mark.parametrize(
    ("address", "family", "expected"),
    [
        ("127.0.0.1", "ipv4", True),
        ("0.0.0.0", "ipv4", True),
        ("10.0.0.5", "ipv4", False),
        ("127.0.0.2", "ipv4", False),
        ("::", "dual", True),
        ("::", "ipv6", False),
        ("::1", "ipv6", False),
        ("::ffff:127.0.0.1", "ipv4", True),
        ("::ffff:0.0.0.0", "ipv4", True),
        ("::ffff:10.0.0.5", "ipv4", False),
    ],
)
def test_accepts_ipv4_loopback(address: str, family: str, expected: bool) -> None:
    assert accepts_ipv4_loopback(Listener(address, 3000, family, 1, 0)) is expected


@pytest.mark.parametrize(
    ("pids", "expected"),
    [([51], [51]), ([51, 52], [51]), ([51, 60], [51, 60]), ([52, 53], [52, 53]), ([], [])],
)
def test_process_trees(pids: list[int], expected: list[int]) -> None:
    # 50 supervisord -> 51 web -> 52, 53 its forked children; 60 an orphan under init
    parents = {50: 1, 51: 50, 52: 51, 53: 51, 60: 1}
    assert process_trees(pids, parents) == expected


def process(
    pid: int, ppid: int, sockets: set[int], cmdline: tuple[str, ...] = ("node", "server.js")
) -> Process:
    return Process(
        pid,
        ppid,
        cmdline[0],
        "S",
        pid,
        1001,
        cmdline,
        "/srv/shop/current",
        "/usr/bin/node",
        frozenset(sockets),
    )


SUPERVISORD = Process(
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


def report(
    listeners: list[Listener],
    processes: list[Process],
    connect: bool | None = None,
    connect_ipv6: bool | None = None,
) -> dict[str, Any]:
    by_pid = {p.pid: p for p in [SUPERVISORD, *processes]}
    return port_report(3000, listeners, by_pid, socket_holders(by_pid.values()), connect, connect_ipv6)


def test_a_healthy_port() -> None:
    result = report([Listener("127.0.0.1", 3000, "ipv4", 11, 1001)], [process(51, 50, {11})], connect=True)
    assert result == {
        "port": 3000,
        "listening": True,
        "ipv4_loopback": True,
        "connect_ipv4": True,
        "duplicate": False,
        "listeners": [
            {
                "address": "127.0.0.1",
                "family": "ipv4",
                "pid": 51,
                "cmdline": "node server.js",
                "user": result["listeners"][0]["user"],
                "supervised": True,
            }
        ],
        "problems": [],
    }


def test_forked_children_sharing_the_socket_are_not_duplicates() -> None:
    result = report(
        [Listener("0.0.0.0", 3000, "ipv4", 11, 1001)], [process(51, 50, {11}), process(52, 51, {11})]
    )
    assert [entry["pid"] for entry in result["listeners"]] == [51, 52]
    assert (result["duplicate"], result["problems"]) == (False, [])


@pytest.mark.parametrize(
    ("listeners", "processes", "connect", "ids"),
    [
        # seed 002: next bound to ::1 only, nginx on 127.0.0.1 refused
        ([Listener("::1", 3000, "ipv6", 11, 1001)], [process(51, 50, {11})], False, ["I7"]),
        ([Listener("::1", 3000, "ipv6", 11, 1001)], [process(51, 50, {11})], None, ["I7"]),
        # /proc cannot see IPV6_V6ONLY; a successful connection settles it
        ([Listener("::", 3000, "ipv6", 11, 1001)], [process(51, 50, {11})], True, []),
        ([Listener("127.0.0.1", 3000, "ipv4", 11, 1001)], [process(51, 50, {11})], False, ["I10"]),
        ([], [], None, ["I10"]),
        # an orphan from the last release holds the port: EADDRINUSE for the new one
        ([Listener("0.0.0.0", 3000, "ipv4", 11, 1001)], [process(60, 1, {11})], None, ["I6"]),
        (
            [Listener("0.0.0.0", 3000, "ipv4", 11, 1001), Listener("0.0.0.0", 3000, "ipv4", 12, 1001)],
            [process(51, 50, {11}), process(60, 1, {12})],
            True,
            ["I6", "I1"],
        ),
        ([Listener("127.0.0.1", 3000, "ipv4", 11, 1001)], [], None, ["I6"]),
        # A `::` socket taken for dual that refuses 127.0.0.1: IPv6-only if ::1 answers, else hung.
        ([Listener("::", 3000, "dual", 11, 1001)], [process(51, 50, {11})], (False, True), ["I7"]),
        ([Listener("::", 3000, "dual", 11, 1001)], [process(51, 50, {11})], (False, False), ["I10"]),
        (
            [Listener("::", 3000, "dual", 11, 1001), Listener("0.0.0.0", 3000, "ipv4", 12, 1001)],
            [process(51, 50, {11, 12})],
            (False, True),
            ["I10"],
        ),
    ],
)
def test_port_problems_carry_incident_ids(
    listeners: list[Listener], processes: list[Process], connect: Any, ids: list[str]
) -> None:
    # connect: whether 127.0.0.1 took a connection, or that and whether ::1 did
    result = report(listeners, processes, *(connect if isinstance(connect, tuple) else (connect,)))
    assert [problem.split(":")[0] for problem in result["problems"]] == ids
    assert all("3000" in problem for problem in result["problems"])


def test_unknown_owner_is_reported_with_the_socket_uid() -> None:
    result = report([Listener("127.0.0.1", 3000, "ipv4", 11, 0)], [])
    assert result["listeners"] == [
        {
            "address": "127.0.0.1",
            "family": "ipv4",
            "pid": None,
            "cmdline": None,
            "user": "root",
            "supervised": None,
        }
    ]
    assert "run with become: true" in result["problems"][0]


def test_orphan_entries_match_what_app_reap_would_end() -> None:
    processes = {
        p.pid: p
        for p in [
            SUPERVISORD,
            process(51, 50, {11}),
            process(61, 1, set(), ("node", "/srv/shop/current/worker.js")),
        ]
    }
    orphans = orphan_entries(
        processes,
        [Listener("127.0.0.1", 3000, "ipv4", 11, 1001)],
        [3000],
        ["/srv/shop"],
        ["node"],
        {},
        unit_of={}.get,
    )
    assert [(o["pid"], o["ports"]) for o in orphans] == [(61, [])]
    assert "working directory /srv/shop/current" in str(orphans[0]["reason"])
    assert (orphans[0]["parent_pid"], orphans[0]["parent_cmdline"], orphans[0]["unit"]) == (1, None, None)


def test_orphan_entries_name_who_started_each() -> None:
    # PM2 runs the app outside supervisor: its daemon starts it again after every recovery.
    pm2 = Process(
        4100,
        1,
        "PM2 v5.3.0: God",
        "S",
        9,
        0,
        ("PM2 v5.3.0: God Daemon (/root/.pm2)",),
        "/",
        None,
        frozenset(),
    )
    processes = {p.pid: p for p in [SUPERVISORD, pm2, process(4310, 4100, {12})]}
    orphans = orphan_entries(
        processes,
        [Listener("127.0.0.1", 3000, "ipv4", 12, 0)],
        [3000],
        [],
        ["node"],
        {},
        unit_of={4310: "pm2-root.service"}.get,
    )
    assert orphans == [
        {
            "pid": 4310,
            "cmdline": "node server.js",
            "ports": [3000],
            "reason": "holds app port 3000",
            "user": orphans[0]["user"],
            "parent_pid": 4100,
            "parent_cmdline": "PM2 v5.3.0: God Daemon (/root/.pm2)",
            "unit": "pm2-root.service",
        }
    ]


def _listen(
    address: str, family: socket.AddressFamily, cwd: Path, v6only: bool = False
) -> tuple[subprocess.Popen[str], int]:
    code = (
        "import socket, time\n"
        f"s = socket.socket({int(family)}, socket.SOCK_STREAM)\n"
        + ("s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)\n" if v6only else "")
        + f"s.bind(({address!r}, 0)); s.listen()\n"
        "print(s.getsockname()[1], flush=True)\n"
        "time.sleep(120)\n"
    )
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, cwd=cwd)
    assert child.stdout is not None
    return child, int(child.stdout.readline())


@pytest.fixture
def listen(tmp_path: Path) -> Iterator[Any]:
    started: list[subprocess.Popen[str]] = []

    def start(
        address: str, family: socket.AddressFamily, v6only: bool = False
    ) -> tuple[subprocess.Popen[str], int]:
        child, port = _listen(address, family, tmp_path, v6only)
        started.append(child)
        return child, port

    yield start
    for child in started:
        child.kill()
        child.wait(timeout=10)


def _ipv6_loopback_works() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.skipif(not _ipv6_loopback_works(), reason="IPv6 is disabled on this host")
def test_module_tells_an_ipv4_listener_from_an_ipv6_only_one(
    listen: Any, run_module: RunModule, tmp_path: Path
) -> None:
    good, good_port = listen("127.0.0.1", socket.AF_INET)
    bad, bad_port = listen("::1", socket.AF_INET6)
    result = run_module(
        app_listeners,
        {"ports": [good_port, bad_port], "app_root": str(tmp_path), "tree_commands": ["python*"]},
    )
    assert result["changed"] is False
    ok, ipv6_only = result["ports"]
    assert (ok["port"], ok["ipv4_loopback"], ok["connect_ipv4"]) == (good_port, True, True)
    assert ok["listeners"][0]["pid"] == good.pid
    assert ok["listeners"][0]["supervised"] is False
    assert (ipv6_only["port"], ipv6_only["ipv4_loopback"], ipv6_only["connect_ipv4"]) == (
        bad_port,
        False,
        False,
    )
    assert ipv6_only["listeners"][0]["family"] == "ipv6"
    assert [problem.split(":")[0] for problem in ipv6_only["problems"]] == ["I7", "I6"]
    assert {orphan["pid"] for orphan in result["orphans"]} == {good.pid, bad.pid}
    assert os.getpid() not in {orphan["pid"] for orphan in result["orphans"]}


@pytest.mark.skipif(not _ipv6_loopback_works(), reason="IPv6 is disabled on this host")
def test_module_calls_an_ipv6_only_wildcard_listener_i7_not_a_hung_process(
    listen: Any, run_module: RunModule
) -> None:
    # /proc shows `::` alike with and without IPV6_V6ONLY; it was reported as I10 (hung).
    _child, port = listen("::", socket.AF_INET6, v6only=True)
    result = run_module(app_listeners, {"ports": [port]})
    (report,) = result["ports"]
    assert (report["ipv4_loopback"], report["connect_ipv4"]) == (True, False)
    assert report["problems"][0].startswith(
        f"I7: port {port} listens on :: but refused 127.0.0.1:{port} while [::1]:{port} answered"
    )


def test_module_reports_a_closed_port(run_module: RunModule) -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    result = run_module(app_listeners, {"ports": [port], "connect": False})
    assert result["ports"][0]["listening"] is False
    assert result["ports"][0]["connect_ipv4"] is None
    assert result["problems"][0].startswith(f"I10: nothing listens on port {port}")


def test_module_in_check_mode_reads_the_same(listen: Any, run_module: RunModule) -> None:
    _child, port = listen("127.0.0.1", socket.AF_INET)
    result = run_module(app_listeners, {"ports": [port], "_ansible_check_mode": True})
    assert result["changed"] is False
    assert result["ports"][0]["ipv4_loopback"] is True


def test_module_names_the_parent_and_unit_of_an_orphan(listen: Any, run_module: RunModule) -> None:
    child, port = listen("127.0.0.1", socket.AF_INET)
    result = run_module(app_listeners, {"ports": [port], "connect": False})
    [orphan] = result["orphans"]
    assert (orphan["pid"], orphan["ports"]) == (child.pid, [port])
    # this test's process started it; the unit is whatever this machine runs the tests in, or none
    assert orphan["parent_pid"] == os.getpid()
    assert orphan["parent_cmdline"] == " ".join(read_processes()[0][os.getpid()].cmdline)
    assert orphan["unit"] == read_unit(child.pid)


def test_module_refuses_bad_ports(run_module: RunModule) -> None:
    result = run_module(app_listeners, {"ports": [0]})
    assert result["failed"] is True
    assert "ports [0] are not TCP ports" in result["msg"]


@pytest.mark.parametrize("timeout", [0, -1, "nan", "inf"])
def test_module_refuses_a_connect_timeout_that_is_not_above_0(run_module: RunModule, timeout: Any) -> None:
    # 0 failed every connection at once (non-blocking), and I10 blamed the app; -1 was a traceback.
    result = run_module(app_listeners, {"ports": [3000], "connect_timeout": timeout})
    assert result["failed"] is True
    assert result["msg"].startswith(f"connect_timeout={float(timeout)} must be a number of seconds above 0")
