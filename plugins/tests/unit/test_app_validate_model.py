"""The app role's inventory checks (validate_model.yml) refuse retention that keeps nothing.

Run by ansible-playbook itself on the controller (a local connection; the checks only read
variables), as deploy.yml, rollback.yml and recover.yml run them before any change.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from module_run import run_playbook, tail

PLAY = [
    {
        "hosts": "web1",
        "gather_facts": False,
        "tasks": [
            {
                "name": "Validate the app model",
                "ansible.builtin.include_role": {"name": "app", "tasks_from": "validate_model"},
            }
        ],
    }
]
APP = {
    "app_name": "shop",
    "app_user": "shop",
    "app_root": "/srv/shop",
    "app_max_body_size": "20m",
    "app_processes": [
        {"name": "web", "command": "node server.js", "port": 3000, "health_path": "/api/health"},
    ],
    "app_source": {"type": "archive", "path": "/tmp/shop"},
}
NOT_ABSOLUTE = "app_db_backup_dir must be an absolute path other than /"


def validate(tmp_path: Path, **overrides) -> subprocess.CompletedProcess[str]:
    local = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    inventory = {"all": {"children": {"web": {"hosts": {"web1": {**local, **APP, **overrides}}}}}}
    (tmp_path / "hosts.yml").write_text(yaml.safe_dump(inventory))
    (tmp_path / "play.yml").write_text(yaml.safe_dump(PLAY, sort_keys=False))
    return run_playbook("-i", tmp_path / "hosts.yml", tmp_path / "play.yml")


def test_the_defaults_pass(tmp_path):
    run = validate(tmp_path)
    assert run.returncode == 0, tail(run)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"app_db_backup_keep": 0}, "app_db_backup_keep must be 1 or more (got 0)"),
        ({"app_releases_keep": 0}, "app_releases_keep must be 1 or more (got 0)"),
        ({"app_db_backup_dir": "backups/shop"}, f"{NOT_ABSOLUTE} (got backups/shop)"),
        ({"app_db_backup_dir": "/"}, f"{NOT_ABSOLUTE} (got /)"),
    ],
)
def test_retention_that_keeps_nothing_is_refused_naming_the_variable(tmp_path, overrides, message):
    run = validate(tmp_path, **overrides)
    assert run.returncode != 0
    assert message in run.stdout, run.stdout[-3000:]
