"""podman_nsenter's container lookup: once per run, re-checked, and a clear error for a dead container.

No container is needed: `podman inspect` is replaced by a function returning what podman would say,
and the "container's init process" is this test's own process (its /proc/PID/cgroup is real).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from ansible import constants
from ansible.errors import AnsibleConnectionFailure, AnsibleError
from ansible.playbook.play_context import PlayContext
from ansible.plugins.loader import connection_loader, init_plugin_loader

PLUGINS = Path(__file__).resolve().parents[2]


def own_cgroup() -> str:
    """The longest cgroup path of this process: what a container id is found in for a container."""
    return max(
        (line.split(":", 2)[2] for line in Path("/proc/self/cgroup").read_text().splitlines()), key=len
    )


@pytest.fixture(scope="module")
def loader():
    init_plugin_loader()
    connection_loader.add_directory(str(PLUGINS / "connection"))


@pytest.fixture
def connection(loader, tmp_path, monkeypatch):
    monkeypatch.setattr(constants, "DEFAULT_LOCAL_TMP", str(tmp_path))
    conn = connection_loader.get("podman_nsenter", PlayContext())
    conn.set_options(direct={"remote_addr": "web1"})
    return conn


def podman_says(conn, monkeypatch, pid: int, container_id: str) -> list[int]:
    calls: list[int] = []

    def inspect():
        calls.append(pid)
        return {"pid": pid, "id": container_id, "env": ["PATH=/usr/bin:/bin", "container=podman"]}

    monkeypatch.setattr(conn, "_inspect", inspect)
    return calls


@pytest.mark.skipif(os.geteuid() != 0, reason="the connection refuses to run without root")
def test_a_running_container_is_looked_up_once_per_run(connection, monkeypatch):
    calls = podman_says(connection, monkeypatch, os.getpid(), own_cgroup())
    connection._connect()
    assert connection._pid == os.getpid()
    assert connection._env["container"] == "podman"
    assert connection._env["HOME"] == "/root"
    # The next task's worker reads the lookup from the run's temp dir.
    again = connection_loader.get("podman_nsenter", PlayContext())
    again.set_options(direct={"remote_addr": "web1"})
    again._connect()
    assert again._pid == os.getpid()
    assert calls == [os.getpid()]


@pytest.mark.skipif(os.geteuid() != 0, reason="the connection refuses to run without root")
def test_a_container_podman_calls_running_whose_processes_are_gone(connection, monkeypatch):
    # What podman reports after the session that started a container was killed: "running",
    # with an init pid that no longer exists.
    gone = 2**22 + 1
    assert not Path(f"/proc/{gone}").exists()
    podman_says(connection, monkeypatch, gone, "0123abcd")
    with pytest.raises(
        AnsibleConnectionFailure, match=r"init pid 4194305, but that process is gone.*rm -f web1"
    ):
        connection._connect()


@pytest.mark.skipif(os.geteuid() != 0, reason="the connection refuses to run without root")
def test_a_pid_reused_by_a_process_outside_the_container_is_not_entered(connection, monkeypatch):
    # Our own pid exists, but our cgroup does not carry this container id.
    podman_says(connection, monkeypatch, os.getpid(), "f" * 64)
    with pytest.raises(AnsibleConnectionFailure, match="that process is gone"):
        connection._connect()


def test_a_remote_user_other_than_root_is_refused(connection):
    connection.set_options(direct={"remote_addr": "web1", "remote_user": "deploy"})
    with pytest.raises(AnsibleError, match="not as deploy: use become"):
        connection._connect()


@pytest.mark.parametrize(
    ("variables", "container"),
    [
        ({"inventory_hostname": "web1"}, "web1"),
        # delegate_to: Ansible keeps inventory_hostname, the task's own host, and sets ansible_host
        # to the delegated host's name.
        ({"inventory_hostname": "web1", "ansible_host": "db1"}, "db1"),
        ({"inventory_hostname": "web1", "ansible_host": "db1", "ansible_podman_host": "db1-ctr"}, "db1-ctr"),
    ],
)
def test_the_container_is_the_delegated_host_under_delegate_to(loader, variables, container):
    conn = connection_loader.get("podman_nsenter", PlayContext())
    conn.set_options(var_options=variables)
    assert conn.get_option("remote_addr") == container
