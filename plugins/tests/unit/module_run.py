"""Run an Ansible module's ``main()`` in-process with given arguments and return its JSON result.

Shared by the unit tests of the modules under ``plugins/modules`` (the ``run_module`` fixture of
conftest.py).
"""

from __future__ import annotations

import json
from types import ModuleType
from typing import Any, Protocol

import pytest
from ansible.module_utils.testing import patch_module_args


class RunModule(Protocol):
    def __call__(self, module: ModuleType, args: dict[str, Any]) -> dict[str, Any]: ...


def run_module_main(
    capsys: pytest.CaptureFixture[str], module: ModuleType, args: dict[str, Any]
) -> dict[str, Any]:
    # exit_json and fail_json both print the result and raise SystemExit.
    with patch_module_args(args), pytest.raises(SystemExit):
        module.main()
    return json.loads(capsys.readouterr().out)
