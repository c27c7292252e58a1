"""bench/profile_tasks.py: the seconds of named tasks from profile_tasks' lines in a playbook log."""

from __future__ import annotations

import importlib.util
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[3] / "bench/profile_tasks.py"
spec = importlib.util.spec_from_file_location("profile_tasks", SCRIPT)
assert spec is not None and spec.loader is not None
profile_tasks = importlib.util.module_from_spec(spec)
spec.loader.exec_module(profile_tasks)

LOG = """\
TASK [app : Install the dependencies of the release] ***************************
Monday 23 November 2026  14:16:00 +0000 (0:00:00.050)       0:00:05.270 *******
changed: [web1]

TASK [app : Build the release] *************************************************
Monday 23 November 2026  14:16:22 +0000 (0:00:21.750)       0:00:27.020 *******
changed: [web1]

TASK [app : Build the release] *************************************************
Monday 23 November 2026  14:16:52 +0000 (0:00:30.000)       0:00:57.020 *******
changed: [web1]

PLAY RECAP *********************************************************************
web1 : ok=3 changed=3

TASKS RECAP ********************************************************************
Monday 23 November 2026  14:17:16 +0000 (0:00:02.000)       0:00:59.020 *******
"""


def test_each_task_lasts_until_the_next_one_and_the_last_until_the_recap():
    assert profile_tasks.task_seconds(LOG.splitlines()) == [
        ("app : Install the dependencies of the release", 21.75),
        ("app : Build the release", 30.0),
        ("app : Build the release", 2.0),
    ]


def test_main_sums_the_named_tasks_and_refuses_a_name_not_in_the_log(tmp_path, capsys):
    log = tmp_path / "deploy.log"
    log.write_text(LOG)
    assert (
        profile_tasks.main(
            ["x", str(log), "app : Install the dependencies of the release", "app : Build the release"]
        )
        == 0
    )
    assert capsys.readouterr().out.strip() == "53.8"
    assert profile_tasks.main(["x", str(log), "app : Generate the Prisma client"]) == 1
    assert "app : Generate the Prisma client" in capsys.readouterr().err
