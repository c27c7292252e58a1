"""inventories/production.example, the inventory users copy: every variable in it is one the roles
know, of the type their argument specs say, and its app model passes the checks deploy.yml runs.

No scenario uses this inventory (its hosts are example.com), so without this test a renamed or
retyped variable would leave users copying an inventory the roles ignore or refuse.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from app_model import app_model_problems, app_source_problems
from check_var_reads import role_options

PROJECT = Path(__file__).resolve().parents[3]
EXAMPLE = PROJECT / "inventories" / "production.example"
# Variables of Ansible itself and of the inventory (not of a role), and the vault's own names.
INVENTORY_VARIABLES = frozenset(
    {"ansible_user", "ansible_become", "ansible_host", "shipshape_private_address"}
)


def example_variables() -> dict[str, Any]:
    """The group_vars of the example, and every variable its hosts.yml sets (all, groups, hosts)."""
    variables: dict[str, Any] = {}
    for path in sorted((EXAMPLE / "group_vars" / "all").glob("*.yml")):
        variables.update(yaml.safe_load(path.read_text()) or {})

    def walk(group: dict[str, Any]) -> None:
        variables.update(group.get("vars") or {})
        for host_vars in (group.get("hosts") or {}).values():
            variables.update(host_vars or {})
        for child in (group.get("children") or {}).values():
            walk(child or {})

    walk(yaml.safe_load((EXAMPLE / "hosts.yml").read_text())["all"])
    return variables


VARIABLES = example_variables()
OPTIONS = role_options()


def test_every_variable_is_one_a_role_or_the_inventory_knows():
    unknown = sorted(
        name
        for name in VARIABLES
        if name not in OPTIONS and name not in INVENTORY_VARIABLES and not name.startswith("vault_")
    )
    assert unknown == [], f"the example sets variables no role declares: {unknown}"


@pytest.mark.parametrize("name", sorted(name for name in VARIABLES if name in OPTIONS))
def test_each_role_variable_has_the_type_its_argument_spec_says(name):
    # Only this option, not required, without its default: the example need not set everything.
    spec = {
        key: value
        for key, value in OPTIONS[name].items()
        if key not in ("default", "required", "description")
    }
    result = ArgumentSpecValidator({name: spec}).validate({name: VARIABLES[name]})
    assert result.error_messages == []


def test_the_app_model_passes_the_checks_deploy_runs_first():
    assert (
        app_model_problems(
            VARIABLES["app_name"],
            VARIABLES["app_user"],
            VARIABLES["app_root"],
            VARIABLES["app_processes"],
            VARIABLES["app_max_body_size"],
            VARIABLES.get("app_env"),
            VARIABLES.get("app_secret_env"),
        )
        == []
    )
    assert app_source_problems(VARIABLES["app_source"]) == []


def test_every_vault_variable_the_example_refers_to_is_in_the_vault_example():
    vault = yaml.safe_load((EXAMPLE / "group_vars" / "all" / "vault.example.yml").read_text())
    text = (EXAMPLE / "group_vars" / "all" / "app.yml").read_text()
    referred = set(re.findall(r"{{\s*(vault_\w+)", text))
    assert referred and referred <= set(vault), sorted(referred - set(vault))
