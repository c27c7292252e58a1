"""The app role's lock.yml changes a fleet whole or not at all when asked (deploy.yml, rollback.yml).

Two hosts on the controller (local connection), each with an app_root of its own: another run holds
web2's lock, and the run under test must give web1's back and stop, naming web2.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml
from module_run import run_playbook, tail

OTHER_RUN = "alice@laptop (run other)"


def lock_fleet(tmp_path: Path, whole_fleet: bool) -> subprocess.CompletedProcess[str]:
    local = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    hosts = {name: {**local, "app_root": str(tmp_path / name)} for name in ("web1", "web2")}
    inventory = {"all": {"vars": {"app_name": "shop"}, "children": {"web": {"hosts": hosts}}}}
    plays = [
        {
            "name": "Another run holds web2's lock",
            "hosts": "web2",
            "gather_facts": False,
            "tasks": [
                {"ansible.builtin.file": {"path": "{{ app_root }}", "state": "directory"}},
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
                {"ansible.builtin.file": {"path": "{{ app_root }}", "state": "directory"}},
                {
                    "ansible.builtin.include_role": {"name": "app", "tasks_from": "lock"},
                    "vars": {"__app_lock_whole_fleet": whole_fleet},
                },
                {"ansible.builtin.debug": {"msg": "went on past the lock"}},
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
