"""Run Ansible code from the unit tests: a module's ``main()`` in-process with given arguments
(the ``run_module`` fixture of conftest.py), or a playbook through this venv's ansible-playbook.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol

import pytest
from ansible.module_utils.testing import patch_module_args

PROJECT = Path(__file__).resolve().parents[3]


class RunModule(Protocol):
    def __call__(self, module: ModuleType, args: dict[str, Any]) -> dict[str, Any]: ...


def run_module_main(
    capsys: pytest.CaptureFixture[str], module: ModuleType, args: dict[str, Any]
) -> dict[str, Any]:
    # exit_json and fail_json both print the result and raise SystemExit.
    with patch_module_args(args), pytest.raises(SystemExit):
        module.main()
    return json.loads(capsys.readouterr().out)


def run_playbook(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """ansible-playbook with ``args``, run as ``make`` would: from the project root, with its
    ansible.cfg (roles, plugins, callbacks). The caller asserts on the return code and output."""
    return subprocess.run(
        [Path(sys.executable).with_name("ansible-playbook"), *args],
        capture_output=True,
        text=True,
        env=dict(os.environ, ANSIBLE_CONFIG=str(PROJECT / "ansible.cfg")),
        cwd=PROJECT,
        check=False,
    )


# The inventory of a play that runs on the controller itself, with this venv's Python.
ON_THE_CONTROLLER = ("-i", "localhost,", "-c", "local", "-e", f"ansible_python_interpreter={sys.executable}")


def tail(run: subprocess.CompletedProcess[str]) -> str:
    """The end of a run's output, for an assertion's message."""
    return run.stdout[-3000:] + run.stderr[-3000:]
