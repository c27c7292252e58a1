"""Every module's DOCUMENTATION, EXAMPLES and RETURN parse, and the documented options match the code."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest
import yaml
from ansible.module_utils.shipshape_proc import NODE_COMMANDS

MODULES = sorted((Path(__file__).resolve().parents[2] / "modules").glob("*.py"))


def module_strings(path: Path) -> dict[str, str]:
    tree = ast.parse(path.read_text())
    return {
        node.targets[0].id: node.value.value
        for node in tree.body
        if isinstance(node, ast.Assign)
        and isinstance(node.targets[0], ast.Name)
        and isinstance(node.value, ast.Constant)
        and isinstance(node.value.value, str)
    }


def code_of(path: Path) -> Path:
    """The file that does the work: the action plugin of a module file that is documentation only."""
    action = path.parents[1] / "action" / path.name
    return action if action.exists() else path


def argument_spec(path: Path) -> dict[str, Any]:
    """The argument_spec dict literal passed to AnsibleModule, or to an action's validate_argument_spec."""
    for node in ast.walk(ast.parse(code_of(path).read_text())):
        if isinstance(node, ast.Call) and (
            getattr(node.func, "id", None) == "AnsibleModule"
            or getattr(node.func, "attr", None) == "validate_argument_spec"
        ):
            for keyword in node.keywords:
                if keyword.arg == "argument_spec":
                    assert isinstance(keyword.value, ast.Dict), "argument_spec must be a dict literal"
                    return {
                        ast.literal_eval(key): value
                        for key, value in zip(keyword.value.keys, keyword.value.values, strict=True)
                    }
    raise AssertionError(f"{code_of(path)} does not call AnsibleModule(argument_spec=...)")


@pytest.mark.parametrize("path", MODULES, ids=[path.stem for path in MODULES])
def test_documentation_parses_and_names_the_module(path: Path) -> None:
    strings = module_strings(path)
    documentation = yaml.safe_load(strings["DOCUMENTATION"])
    assert documentation["module"] == path.stem
    assert isinstance(yaml.safe_load(strings["EXAMPLES"]), list)
    assert isinstance(yaml.safe_load(strings["RETURN"]), dict)


@pytest.mark.parametrize("path", MODULES, ids=[path.stem for path in MODULES])
def test_documented_options_are_the_real_ones(path: Path) -> None:
    documentation = yaml.safe_load(module_strings(path)["DOCUMENTATION"])
    assert set(documentation["options"]) == set(argument_spec(path))


@pytest.mark.parametrize("path", MODULES, ids=[path.stem for path in MODULES])
def test_check_mode_is_supported(path: Path) -> None:
    code = code_of(path).read_text()
    assert "supports_check_mode=True" in code or "_supports_check_mode = True" in code


@pytest.mark.parametrize("name", ["app_reap", "app_listeners"])
def test_documented_tree_commands_are_the_ones_used(name: str) -> None:
    path = next(path for path in MODULES if path.stem == name)
    documentation = yaml.safe_load(module_strings(path)["DOCUMENTATION"])
    assert documentation["options"]["tree_commands"]["default"] == list(NODE_COMMANDS)
