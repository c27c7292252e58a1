from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from ansible.module_utils.shipshape_proc import (
    NODE_COMMANDS,
    Listener,
    Parent,
    Process,
    ancestors,
    app_candidates,
    app_tree_reason,
    clean_link,
    decode_endpoint,
    format_address,
    is_descendant,
    is_supervisord,
    origin,
    parent_of,
    parse_cgroup_unit,
    parse_cmdline,
    parse_net_tcp,
    parse_stat,
    parse_status_uid,
    path_under,
    python_runs,
    read_listeners,
    read_processes,
    read_starttime,
    read_unit,
    self_and_ancestors,
    socket_inode,
    started_at,
)


def net_tcp(*rows: tuple[str, str, str, int, int]) -> str:
    """/proc/net/tcp{,6} text for (local, remote, state, uid, inode) rows, laid out as the kernel does."""
    header = (
        "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
    )
    return header + "".join(
        f"{index:4}: {local} {remote} {state} 00000000:00000000 00:00000000 00000000 {uid:5}"
        f"        0 {inode} 1 0000000028b035d8 100 0 0 10 0\n"
        for index, (local, remote, state, uid, inode) in enumerate(rows)
    )


ANY4, ANY6 = "00000000:0000", "00000000000000000000000000000000:0000"
TCP = net_tcp(
    ("0100007F:0BB8", ANY4, "0A", 1001, 41001),
    ("00000000:0BB9", ANY4, "0A", 1001, 41002),
    ("0100007F:C582", "0100007F:0BB8", "01", 1001, 41003),  # an established connection, not a listener
    ("0100007F:18EB", ANY4, "0A", 105, 41004),
)
TCP6 = net_tcp(
    ("00000000000000000000000001000000:0BBA", ANY6, "0A", 1001, 42001),
    ("00000000000000000000000000000000:0BBB", ANY6, "0A", 1001, 42002),
    ("0000000000000000FFFF00000100007F:0BBC", ANY6, "0A", 1001, 42003),
    ("B80D0120000000000000000001000000:0BBD", ANY6, "0A", 1001, 42004),
    ("00000000000000000000000001000000:0BBA", "00000000000000000000000001000000:D431", "01", 1001, 42005),
)


@pytest.mark.parametrize(
    ("text", "byteorder", "address", "port"),
    [
        ("0100007F:0BB8", "little", "127.0.0.1", 3000),
        ("7F000001:0BB8", "big", "127.0.0.1", 3000),
        ("00000000:0050", "little", "0.0.0.0", 80),
        ("0A00A8C0:FFFF", "little", "192.168.0.10", 65535),
        ("00000000000000000000000001000000:0BB8", "little", "::1", 3000),
        ("00000000000000000000000000000001:0BB8", "big", "::1", 3000),
        ("0000000000000000FFFF00000100007F:0BB8", "little", "::ffff:127.0.0.1", 3000),
        ("B80D0120000000000000000001000000:0BB8", "little", "2001:db8::1", 3000),
    ],
)
def test_decode_endpoint(text: str, byteorder: str, address: str, port: int) -> None:
    decoded, decoded_port = decode_endpoint(text, byteorder)
    assert (format_address(decoded), decoded_port) == (address, port)


def test_decode_endpoint_refuses_other_lengths() -> None:
    with pytest.raises(ValueError, match="not an IPv4 or IPv6 address"):
        decode_endpoint("0100:0BB8")


def test_parse_net_tcp_keeps_only_listeners() -> None:
    assert parse_net_tcp(TCP) == [
        Listener("127.0.0.1", 3000, "ipv4", 41001, 1001),
        Listener("0.0.0.0", 3001, "ipv4", 41002, 1001),
        Listener("127.0.0.1", 6379, "ipv4", 41004, 105),
    ]


@pytest.mark.parametrize(
    ("bindv6only", "families"),
    [
        (False, {3002: "ipv6", 3003: "dual", 3004: "ipv4", 3005: "ipv6"}),
        (True, {3002: "ipv6", 3003: "ipv6", 3004: "ipv4", 3005: "ipv6"}),
    ],
)
def test_parse_net_tcp6_families(bindv6only: bool, families: dict[int, str]) -> None:
    listeners = parse_net_tcp(TCP6, bindv6only=bindv6only)
    assert {listener.port: listener.family for listener in listeners} == families
    assert [listener.address for listener in listeners] == ["::1", "::", "::ffff:127.0.0.1", "2001:db8::1"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "4242 (node) S 1 4242 4242 0 -1 4194560 0 0 0 0 5 2 0 0 20 0 11 0 987654 1 2",
            ("node", "S", 1, 987654),
        ),
        (
            "77 (next-server (v14.2.3)) R 70 77 77 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 31740 1 2",
            ("next-server (v14.2.3)", "R", 70, 31740),
        ),
        ("9 (a) b) Z 8 9 9 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5 0 0", ("a) b", "Z", 8, 5)),
    ],
)
def test_parse_stat(text: str, expected: tuple[str, str, int, int]) -> None:
    assert parse_stat(text) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"node\0/srv/shop/current/server.js\0", ("node", "/srv/shop/current/server.js")),
        (b"next-server (v14.2.3)\0\0\0", ("next-server (v14.2.3)",)),
        (b"", ()),
        (b"caf\xe9\0", ("caf\ufffd",)),
    ],
)
def test_parse_cmdline(raw: bytes, expected: tuple[str, ...]) -> None:
    assert parse_cmdline(raw) == expected


def test_parse_status_uid() -> None:
    assert parse_status_uid("Name:\tnode\nUid:\t1001\t1001\t1001\t1001\nGid:\t1001\n") == 1001
    assert parse_status_uid("Name:\tnode\n") is None


@pytest.mark.parametrize(
    ("link", "expected"),
    [("socket:[41001]", 41001), ("pipe:[5]", None), ("/dev/null", None), ("anon_inode:[eventfd]", None)],
)
def test_socket_inode(link: str, expected: int | None) -> None:
    assert socket_inode(link) == expected


# Lines of cgroup v1 controllers, as a host on v1 or on the hybrid layout prints them beside systemd's.
V1_CONTROLLERS = "12:pids:/system.slice/{unit}\n11:memory:/system.slice/{unit}\n3:cpu,cpuacct:/\n"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0::/system.slice/pm2-root.service\n", "pm2-root.service"),
        (
            V1_CONTROLLERS.format(unit="shop.service") + "1:name=systemd:/system.slice/shop.service\n0::/\n",
            "shop.service",
        ),
        (V1_CONTROLLERS.format(unit="x.service") + "1:name=systemd:/system.slice/x.service\n", "x.service"),
        ("0::/user.slice/user-1000.slice/session-3.scope\n", "session-3.scope"),
        ("0::/user.slice/user-1000.slice/user@1000.service/app.slice/pm2.service\n", "pm2.service"),
        ("0::/system.slice/shop.service/payload\n", "shop.service"),  # a delegated subgroup of the unit
        ("0::/\n", None),  # no systemd, or a container's own namespace
        ("0::/system.slice\n", None),
        ("9:name=systemd:/\n4:memory:/process_api/5798d0be\n0::/\n", None),
        ("4:memory:/system.slice/x.service\n", None),  # a controller's path, not systemd's
        ("", None),
    ],
    ids=[
        "v2",
        "hybrid",
        "v1",
        "user-session-scope",
        "user-manager-service",
        "delegated-subgroup",
        "v2-root",
        "slice-only",
        "none-named",
        "controller-only",
        "empty",
    ],
)
def test_parse_cgroup_unit(text: str, expected: str | None) -> None:
    assert parse_cgroup_unit(text) == expected


def test_read_unit(tmp_path: Path) -> None:
    (tmp_path / "4242").mkdir()
    (tmp_path / "4242" / "cgroup").write_text("0::/system.slice/pm2-root.service\n")
    assert read_unit(4242, str(tmp_path)) == "pm2-root.service"
    assert read_unit(4243, str(tmp_path)) is None  # gone


@pytest.mark.parametrize(
    ("link", "expected"),
    [("/srv/shop/releases/1 (deleted)", "/srv/shop/releases/1"), ("/srv/shop", "/srv/shop")],
)
def test_clean_link(link: str, expected: str) -> None:
    assert clean_link(link) == expected


@pytest.mark.parametrize(
    ("path", "roots", "expected"),
    [
        ("/srv/shop", ["/srv/shop"], True),
        ("/srv/shop/releases/1/server.js", ["/srv/shop/"], True),
        ("/srv/shopping/server.js", ["/srv/shop"], False),
        ("/srv/shop/../other", ["/srv/shop"], False),
        ("/data/shop/current", ["/srv/shop", "/data/shop"], True),
        ("server.js", ["/srv/shop"], False),
        (None, ["/srv/shop"], False),
        ("/anything", ["/"], False),
    ],
)
def test_path_under(path: str | None, roots: list[str], expected: bool) -> None:
    assert path_under(path, roots) is expected


PARENTS = {1: 0, 100: 1, 101: 100, 102: 101, 200: 1, 300: 300}


@pytest.mark.parametrize(
    ("pid", "expected"),
    [(102, [101, 100, 1]), (100, [1]), (1, []), (999, []), (300, [])],
)
def test_ancestors(pid: int, expected: list[int]) -> None:
    assert ancestors(pid, PARENTS) == expected


@pytest.mark.parametrize(
    ("pid", "ancestor", "expected"), [(102, 100, True), (102, 1, True), (200, 100, False), (100, 102, False)]
)
def test_is_descendant(pid: int, ancestor: int, expected: bool) -> None:
    assert is_descendant(pid, ancestor, PARENTS) is expected


def proc(
    pid: int,
    ppid: int = 1,
    comm: str = "node",
    cmdline: tuple[str, ...] = ("node", "server.js"),
    cwd: str | None = "/",
    exe: str | None = "/usr/bin/node",
    sockets: frozenset[int] = frozenset(),
    state: str = "S",
) -> Process:
    return Process(pid, ppid, comm, state, 1000 + pid, 1001, cmdline, cwd, exe, sockets)


SUPERVISORD = proc(
    50,
    comm="supervisord",
    cmdline=("/usr/bin/python3", "/usr/bin/supervisord", "-n", "-c", "/etc/supervisor/supervisord.conf"),
    exe="/usr/bin/python3.11",
)


@pytest.mark.parametrize(
    ("process", "expected"),
    [
        (SUPERVISORD, True),
        (proc(2, comm="python3", cmdline=("/opt/venv/bin/python", "/opt/venv/bin/supervisord")), True),
        (
            proc(3, comm="supervisorctl", cmdline=("/usr/bin/python3", "/usr/bin/supervisorctl", "status")),
            False,
        ),
        (proc(4, cmdline=("node", "server.js", "--name", "supervisord")), False),
        # started with interpreter options, or as a module: comm and exe say python
        (proc(5, comm="python3", cmdline=("python3", "-u", "/usr/bin/supervisord", "-n")), True),
        (proc(6, comm="python3", cmdline=("python3", "-m", "supervisor.supervisord", "-n")), True),
        (
            proc(
                7,
                comm="python3",
                cmdline=("/usr/bin/python3", "-W", "ignore", "-um", "supervisor.supervisord"),
            ),
            True,
        ),
        (proc(8, comm="python3", cmdline=("python3", "/srv/shop/tool.py", "/usr/bin/supervisord")), False),
        (proc(9, comm="python3", cmdline=("python3", "-m", "supervisor.supervisorctl", "status")), False),
    ],
)
def test_is_supervisord(process: Process, expected: bool) -> None:
    assert is_supervisord(process) is expected


@pytest.mark.parametrize(
    ("cmdline", "runs"),
    [
        (("python3", "/usr/bin/supervisord", "-n"), "/usr/bin/supervisord"),
        (("python3.11", "-u", "-B", "/usr/bin/supervisord"), "/usr/bin/supervisord"),
        (("python3", "-W", "error", "-X", "dev", "app.py"), "app.py"),
        (("python3", "-Werror", "-Xdev", "app.py"), "app.py"),
        (("python3", "-uW", "error", "app.py"), "app.py"),
        (("python3", "--check-hash-based-pycs", "never", "-I", "app.py"), "app.py"),
        (("python3", "-m", "supervisor.supervisord"), "-m supervisor.supervisord"),
        (("python3", "-Bmsupervisor.supervisord"), "-m supervisor.supervisord"),
        (("python3", "--", "app.py", "-m", "x"), "app.py"),
        (("python3", "-c", "import supervisord"), None),
        (("python3", "-i"), None),
        (("node", "/usr/bin/supervisord"), None),
        ((), None),
    ],
)
def test_python_runs(cmdline: tuple[str, ...], runs: str | None) -> None:
    assert python_runs(cmdline) == runs


@pytest.mark.parametrize(
    ("process", "expected"),
    [
        (
            proc(10, cwd="/srv/shop/releases/1"),
            "node with its working directory /srv/shop/releases/1 in the app tree",
        ),
        (proc(11, cmdline=("node", "/srv/shop/current/worker.js")), "from the app tree on its command line"),
        (
            proc(12, exe="/srv/shop/current/node_modules/.bin/esbuild", comm="esbuild"),
            "runs /srv/shop/current",
        ),
        (
            proc(13, comm="next-server (v1", cmdline=("next-server (v14.2.3)",), cwd="/srv/shop/current"),
            "working directory /srv/shop/current",
        ),
        # an operator's shell and a tail of the log are not the app
        (proc(14, comm="bash", cmdline=("-bash",), exe="/usr/bin/bash", cwd="/srv/shop/current"), None),
        (
            proc(
                15, comm="tail", cmdline=("tail", "-f", "/srv/shop/shared/log/web.log"), exe="/usr/bin/tail"
            ),
            None,
        ),
        (proc(16, cwd="/srv/other"), None),
    ],
)
def test_app_tree_reason(process: Process, expected: str | None) -> None:
    reason = app_tree_reason(process, ["/srv/shop"], NODE_COMMANDS)
    if expected is None:
        assert reason is None
    else:
        assert reason is not None and expected in reason


def test_app_tree_reason_wildcard_takes_any_command() -> None:
    shell = proc(14, comm="bash", cmdline=("-bash",), exe="/usr/bin/bash", cwd="/srv/shop/current")
    assert app_tree_reason(shell, ["/srv/shop"], ["*"]) is not None


def test_app_candidates_keep_a_process_that_has_already_exited() -> None:
    # Exited but not yet waited for (a zombie): a signal does nothing to it, so it is not to be reaped.
    exiting = proc(63, state="Z", cwd="/srv/shop/current")
    (candidate,) = app_candidates({63: exiting}, [], [], ["/srv/shop"], NODE_COMMANDS, {})
    assert candidate.protected_because == "it has already exited"


def test_app_candidates_sorts_reapable_from_protected() -> None:
    listeners = [Listener("127.0.0.1", 3000, "ipv4", 41001, 1001), Listener("::", 3001, "dual", 42002, 1001)]
    processes = {
        p.pid: p
        for p in [
            proc(1, ppid=0, comm="systemd", cmdline=("/sbin/init",), exe="/usr/lib/systemd/systemd"),
            SUPERVISORD,
            proc(51, ppid=50, cwd="/srv/shop/current", sockets=frozenset({41001})),  # the web program
            proc(52, ppid=51, cwd="/srv/shop/current", sockets=frozenset({41001})),  # its forked child
            proc(60, cwd="/srv/shop/releases/0", sockets=frozenset({42002})),  # orphan from the last release
            proc(61, cwd="/srv/shop/releases/0"),  # orphan worker
            proc(62, state="Z", cwd=None, exe=None, cmdline=()),  # zombie
            proc(
                70,
                comm="python3",
                cmdline=("python3", "AnsiballZ.py"),
                exe="/usr/bin/python3",
                cwd="/srv/shop",
            ),
            proc(80, comm="redis-server", cmdline=("redis-server",), exe="/usr/bin/redis-server"),
            proc(81, cwd="/srv/shop/current"),  # listed in exclude_pids
        ]
    }
    candidates = app_candidates(
        processes,
        listeners,
        ports=[3000, 3001],
        app_roots=["/srv/shop"],
        tree_commands=[*NODE_COMMANDS, "python3"],
        protected={70: "it is this module or one of its parents", 81: "it is listed in exclude_pids"},
    )
    summary = {c.process.pid: (c.ports, c.protected_because) for c in candidates}
    assert summary == {
        51: ((3000,), "supervisord (pid 50) runs it"),
        52: ((3000,), "supervisord (pid 50) runs it"),
        60: ((3001,), None),
        61: ((), None),
        70: ((), "it is this module or one of its parents"),
        81: ((), "it is listed in exclude_pids"),
    }
    orphan = next(c for c in candidates if c.process.pid == 60)
    assert orphan.reasons[0] == "holds app port 3001"
    assert "working directory /srv/shop/releases/0" in orphan.reasons[1]


def test_app_candidates_without_app_root_only_counts_ports() -> None:
    processes = {60: proc(60, cwd="/srv/shop", sockets=frozenset({7})), 61: proc(61, cwd="/srv/shop")}
    candidates = app_candidates(
        processes, [Listener("0.0.0.0", 3000, "ipv4", 7, 0)], [3000], [], NODE_COMMANDS, {}
    )
    assert [c.process.pid for c in candidates] == [60]


def test_app_candidates_never_reaps_init_even_on_a_port() -> None:
    processes = {1: proc(1, ppid=0, sockets=frozenset({7}))}
    candidates = app_candidates(
        processes, [Listener("0.0.0.0", 3000, "ipv4", 7, 0)], [3000], [], NODE_COMMANDS, {}
    )
    assert candidates[0].protected_because == "it is pid 1 (init)"


def test_parent_of_names_the_parent_as_far_as_it_is_known() -> None:
    respawner = proc(70, cmdline=("/bin/sh", "-c", "while :; do node server.js; done"))
    processes = {p.pid: p for p in [proc(1, ppid=0, cmdline=("/sbin/init",)), respawner, proc(71, ppid=70)]}
    assert parent_of(processes[71], processes) == Parent(70, "/bin/sh -c while :; do node server.js; done")
    adopted = parent_of(processes[70], processes)
    assert adopted == Parent(1, "/sbin/init") and adopted.is_init
    assert not Parent(70, None).is_init
    assert parent_of(proc(72, ppid=69), processes) == Parent(69, None)  # exited since
    assert parent_of(processes[1], processes) is None
    assert origin(processes[71], processes, "shop-loop.service") == {
        "parent_pid": 70,
        "parent_cmdline": "/bin/sh -c while :; do node server.js; done",
        "unit": "shop-loop.service",
    }
    assert origin(processes[1], processes, None) == {"parent_pid": None, "parent_cmdline": None, "unit": None}


def test_started_at() -> None:
    assert started_at(250, 1_700_000_000.0, 100) == 1_700_000_002.5
    assert started_at(250, None, 100) is None


def _fake_process(root: Path, pid: int, ppid: int, cmdline: bytes, cwd: str, fds: dict[str, str]) -> None:
    base = root / str(pid)
    (base / "fd").mkdir(parents=True)
    comm = os.path.basename(cmdline.split(b"\0")[0].decode())
    (base / "stat").write_text(
        f"{pid} ({comm}) S {ppid} {pid} {pid} 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 {pid * 10} 1 2"
    )
    (base / "cmdline").write_bytes(cmdline)
    (base / "status").write_text(f"Name:\t{comm}\nUid:\t1001\t1001\t1001\t1001\n")
    (base / "cwd").symlink_to(cwd)
    (base / "exe").symlink_to("/usr/bin/node (deleted)")
    for fd, target in fds.items():
        (base / "fd" / fd).symlink_to(target)


@pytest.fixture
def fake_proc(tmp_path: Path) -> Path:
    root = tmp_path / "proc"
    (root / "net").mkdir(parents=True)
    (root / "net" / "tcp").write_text(TCP)
    (root / "net" / "tcp6").write_text(TCP6)
    (root / "sys" / "net" / "ipv6").mkdir(parents=True)
    (root / "sys" / "net" / "ipv6" / "bindv6only").write_text("0\n")
    (root / "stat").write_text("cpu 1 2 3\nbtime 1700000000\n")
    (root / "self").mkdir()
    _fake_process(root, 1, 0, b"/sbin/init\0", "/", {})
    _fake_process(root, 4242, 1, b"node\0server.js\0", "/srv/shop/releases/2 (deleted)", {"0": "/dev/null"})
    _fake_process(root, 4243, 4242, b"node\0worker.js\0", "/srv/shop/current", {"3": "socket:[41001]"})
    return root


def test_read_processes_from_a_fake_tree(fake_proc: Path) -> None:
    processes, unreadable = read_processes(str(fake_proc))
    assert sorted(processes) == [1, 4242, 4243]
    assert unreadable == []
    worker = processes[4243]
    assert (worker.ppid, worker.comm, worker.uid, worker.starttime) == (4242, "node", 1001, 42430)
    assert worker.cmdline == ("node", "worker.js")
    assert worker.sockets == frozenset({41001})
    assert worker.exe == "/usr/bin/node"
    assert processes[4242].cwd == "/srv/shop/releases/2"
    assert read_starttime(4243, str(fake_proc)) == 42430
    assert read_starttime(9999, str(fake_proc)) is None


@pytest.mark.parametrize(
    ("thread_states", "alive"),
    [(["Z", "R"], True), (["Z", "X"], False), (["Z"], False), ([], False)],
    ids=["a-thread-still-exiting", "all-exited", "single-threaded-zombie", "no-task-directory"],
)
def test_read_starttime_waits_for_every_thread(
    fake_proc: Path, thread_states: list[str], alive: bool
) -> None:
    # The main thread of 4243 is a zombie; the last thread to exit closes its files and sockets.
    base = fake_proc / "4243"
    (base / "stat").write_text((base / "stat").read_text().replace(" S ", " Z ", 1))
    for index, state in enumerate(thread_states):
        (base / "task" / str(4243 + index)).mkdir(parents=True)
        (base / "task" / str(4243 + index) / "stat").write_text(
            f"{4243 + index} (node) {state} 4242 4243 4243 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 42430 1 2"
        )
    assert read_starttime(4243, str(fake_proc)) == (42430 if alive else None)


def test_read_listeners_from_a_fake_tree(fake_proc: Path) -> None:
    ports = {listener.port: listener.family for listener in read_listeners(str(fake_proc))}
    if sys.byteorder == "little":
        assert ports == {
            3000: "ipv4",
            3001: "ipv4",
            6379: "ipv4",
            3002: "ipv6",
            3003: "dual",
            3004: "ipv4",
            3005: "ipv6",
        }


def test_read_listeners_without_ipv6(fake_proc: Path) -> None:
    (fake_proc / "net" / "tcp6").unlink()
    assert {listener.port for listener in read_listeners(str(fake_proc))} == {3000, 3001, 6379}


def _listen_child(address: str, family: socket.AddressFamily) -> tuple[subprocess.Popen[str], int]:
    code = (
        "import socket, sys, time\n"
        f"s = socket.socket({int(family)}, socket.SOCK_STREAM)\n"
        f"s.bind(({address!r}, 0)); s.listen()\n"
        "print(s.getsockname()[1], flush=True)\n"
        "time.sleep(60)\n"
    )
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    return child, int(child.stdout.readline())


@pytest.fixture
def children() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
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


def test_real_proc_finds_a_loopback_listener_and_its_pid(children: list[subprocess.Popen[str]]) -> None:
    child, port = _listen_child("127.0.0.1", socket.AF_INET)
    children.append(child)
    listeners = [listener for listener in read_listeners() if listener.port == port]
    assert [(listener.address, listener.family) for listener in listeners] == [("127.0.0.1", "ipv4")]
    processes, _unreadable = read_processes()
    assert listeners[0].inode in processes[child.pid].sockets
    assert processes[child.pid].ppid == os.getpid()
    assert os.getpid() in self_and_ancestors(processes) and child.pid not in self_and_ancestors(processes)


@pytest.mark.skipif(not _ipv6_loopback_works(), reason="IPv6 is disabled on this host")
@pytest.mark.parametrize(
    ("address", "family"),
    [("::1", "ipv6"), ("::ffff:127.0.0.1", "ipv4")],
)
def test_real_proc_decodes_ipv6_listeners(
    children: list[subprocess.Popen[str]], address: str, family: str
) -> None:
    child, port = _listen_child(address, socket.AF_INET6)
    children.append(child)
    listeners = [listener for listener in read_listeners() if listener.port == port]
    assert [(listener.address, listener.family) for listener in listeners] == [(address, family)]


MAIN_THREAD_EXITS = """
import ctypes, socket, sys, threading, time
listener = socket.socket()
listener.bind(("127.0.0.1", 0))
listener.listen()
print(listener.getsockname()[1], flush=True)
threading.Thread(target=time.sleep, args=(60,)).start()
# The main thread ends at the OS level (its /proc/PID/stat reads Z); the process and its port live on.
ctypes.CDLL(None).pthread_exit(None)
"""


def test_real_proc_a_process_whose_main_thread_exited_is_still_reaped(
    children: list[subprocess.Popen[str]],
) -> None:
    child = subprocess.Popen([sys.executable, "-c", MAIN_THREAD_EXITS], stdout=subprocess.PIPE, text=True)
    children.append(child)
    assert child.stdout is not None
    port = int(child.stdout.readline())
    for _ in range(50):
        if parse_stat(Path(f"/proc/{child.pid}/stat").read_text())[1] == "Z":
            break
        time.sleep(0.05)
    else:
        pytest.fail("the child's main thread did not exit")
    processes, _unreadable = read_processes()
    process = processes[child.pid]
    # Read through a live thread: the main thread's cmdline, cwd and fd read empty.
    assert process.state not in ("Z", "X", "x") and "pthread_exit" in " ".join(process.cmdline)
    assert process.cwd == os.getcwd()
    assert read_starttime(child.pid) is not None
    (candidate,) = [
        c
        for c in app_candidates(processes, read_listeners(), [port], [], [], {})
        if c.process.pid == child.pid
    ]
    assert candidate.ports == (port,) and candidate.protected_because is None
