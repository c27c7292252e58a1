"""Make the plugins importable the way Ansible imports them.

Modules import ``ansible.module_utils.shipshape_*``; Ansible finds those in ``plugins/module_utils``
through the ``module_utils`` setting of ansible.cfg. Here each such file is loaded once and registered under
that name, so the modules under test import exactly the code that ships.
"""

from __future__ import annotations

import functools
import importlib.util
import sys
from pathlib import Path

import ansible.module_utils
import pytest
from module_run import RunModule, run_module_main

PLUGINS = Path(__file__).resolve().parents[2]


def _register_module_utils(directory: Path) -> None:
    for source in sorted(directory.glob("shipshape_*.py")):
        name = f"ansible.module_utils.{source.stem}"
        if name in sys.modules:
            continue
        spec = importlib.util.spec_from_file_location(name, source)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        setattr(ansible.module_utils, source.stem, module)


_register_module_utils(PLUGINS / "module_utils")
# The project's scripts (scripts/*.py) are tested here too, imported by name.
for _directory in (
    PLUGINS / "modules",
    PLUGINS / "action",
    PLUGINS / "callback",
    PLUGINS / "filter",
    PLUGINS.parent / "scripts",
):
    if str(_directory) not in sys.path:
        sys.path.insert(0, str(_directory))


@pytest.fixture
def run_module(capsys: pytest.CaptureFixture[str]) -> RunModule:
    """Run a module's main() with the given arguments; returns the JSON it printed."""
    return functools.partial(run_module_main, capsys)
