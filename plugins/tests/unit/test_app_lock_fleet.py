"""The app role's lock.yml changes a fleet whole or not at all when asked (deploy.yml, rollback.yml).

Two hosts on the controller (local connection), each with an app_root of its own: another run holds
web2's lock, and the run under test must give web1's back and stop, naming web2.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from module_run import run_playbook, tail

OTHER_RUN = "alice@laptop (run other)"
# What the play prints of the process its lock names, while the play still runs.
LOCK_PID_IS = "the lock's pid is"
PS_OF_LOCK_PID = "lookup('ansible.builtin.pipe', 'ps -o args= -p ' ~ __app_lock.lock.pid)"


def release_tree() -> list[dict]:
    """The tree as the base role makes it: root's directories, not group-writable."""
    return [
        {"ansible.builtin.file": {"path": f"{{{{ app_root }}}}/{sub}", "state": "directory", "mode": "0750"}}
        for sub in ("", "releases", "shared")
    ]


def lock_fleet(
    tmp_path: Path, whole_fleet: bool, web1_tree: list[dict] | None = None
) -> subprocess.CompletedProcess[str]:
    local = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    hosts = {name: {**local, "app_root": str(tmp_path / name)} for name in ("web1", "web2")}
    inventory = {
        "all": {"vars": {"app_name": "shop", "app_user": "shop"}, "children": {"web": {"hosts": hosts}}}
    }
    plays = [
        {
            "name": "Another run holds web2's lock",
            "hosts": "web2",
            "gather_facts": False,
            "tasks": [
                *release_tree(),
                {
                    "deploy_lock": {
                        "state": "acquired",
                        "path": "{{ app_root }}/.deploy.lock",
                        "owner": OTHER_RUN,
                    }
                },
            ],
        },
        {
            "name": "The run under test",
            "hosts": "web",
            "gather_facts": False,
            "tasks": [
                *release_tree(),
                *(web1_tree or []),
                {
                    "ansible.builtin.include_role": {"name": "app", "tasks_from": "lock"},
                    "vars": {"__app_lock_whole_fleet": whole_fleet},
                },
                {"ansible.builtin.debug": {"msg": "went on past the lock"}},
                {"ansible.builtin.debug": {"msg": f"{LOCK_PID_IS} {{{{ {PS_OF_LOCK_PID} }}}}"}},
            ],
        },
    ]
    (tmp_path / "hosts.yml").write_text(yaml.safe_dump(inventory))
    (tmp_path / "play.yml").write_text(yaml.safe_dump(plays, sort_keys=False))
    return run_playbook("-i", tmp_path / "hosts.yml", tmp_path / "play.yml")


def owner(lock: Path) -> str | None:
    return json.loads(lock.read_text())["owner"] if lock.exists() else None


def test_a_fleet_with_one_host_locked_is_not_changed_at_all(tmp_path):
    run = lock_fleet(tmp_path, whole_fleet=True)
    assert run.returncode != 0, tail(run)
    output = run.stdout + run.stderr
    # web2's own failure, with the owner of its lock, then web1's.
    assert "Another deploy holds the lock" in output, tail(run)
    assert f"owner: {OTHER_RUN}" in output, tail(run)
    assert "web2 did not take the deploy lock, or failed before it" in output, tail(run)
    assert "nothing was changed on web1, and its lock was given back" in output
    assert "went on past the lock" not in output
    assert owner(tmp_path / "web1/.deploy.lock") is None
    assert owner(tmp_path / "web2/.deploy.lock") == OTHER_RUN


def test_without_whole_fleet_the_free_hosts_go_on(tmp_path):
    """recover.yml's way: it repairs the hosts it can."""
    run = lock_fleet(tmp_path, whole_fleet=False)
    assert run.returncode != 0, tail(run)
    assert "went on past the lock" in run.stdout, tail(run)
    assert owner(tmp_path / "web1/.deploy.lock") not in (None, OTHER_RUN)
    assert owner(tmp_path / "web2/.deploy.lock") == OTHER_RUN
    # The lock names the controller, and the pid of ansible-playbook (still running when shown).
    assert json.loads((tmp_path / "web1/.deploy.lock").read_text())["host"] == socket.gethostname()
    shown = next(line for line in run.stdout.splitlines() if LOCK_PID_IS in line)
    assert "/ansible-playbook" in shown.split(LOCK_PID_IS)[1], shown


@pytest.mark.skipif(os.geteuid() != 0, reason="the tree must be root's: only root can make one so")
@pytest.mark.parametrize(
    ("change", "shown"),
    [
        ({"path": "{{ app_root }}/shared", "state": "absent"}, "No such file or directory"),
        ({"path": "{{ app_root }}/shared", "mode": "0770"}, "shared (d, owner root, mode 770)"),
        ({"path": "{{ app_root }}/releases", "owner": "nobody"}, "releases (d, owner nobody, mode 750)"),
    ],
)
def test_a_release_tree_the_app_user_could_rearrange_is_refused_before_the_lock(tmp_path, change, shown):
    run = lock_fleet(tmp_path, whole_fleet=False, web1_tree=[{"ansible.builtin.file": change}])
    output = run.stdout + run.stderr
    assert run.returncode != 0 and shown in output, tail(run)
    assert "must be directories owned by root that neither their group (shop) nor others can write" in output
    assert "went on past the lock" not in output
    assert owner(tmp_path / "web1/.deploy.lock") is None


@pytest.mark.skipif(os.geteuid() != 0, reason="the tree must be root's: only root can make one so")
def test_a_shared_directory_swapped_for_a_symlink_is_refused_not_followed(tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o750)
    swap = [
        {"ansible.builtin.file": {"path": "{{ app_root }}/shared", "state": "absent"}},
        {"ansible.builtin.file": {"path": "{{ app_root }}/shared", "src": str(elsewhere), "state": "link"}},
    ]
    run = lock_fleet(tmp_path, whole_fleet=False, web1_tree=swap)
    assert run.returncode != 0 and "shared (l, owner root" in run.stdout + run.stderr, tail(run)
    assert owner(tmp_path / "web1/.deploy.lock") is None
