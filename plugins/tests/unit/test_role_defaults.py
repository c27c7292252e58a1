"""Every default a role's argument spec promises for its own variables is in its defaults/main.yml.

An argument spec's default documents; Ansible takes the value from defaults/main.yml. A default
the spec promises and defaults/main.yml lacks is an undefined variable wherever the inventory is
silent (app_required_env was one). Variables a role reads from another role's model (diagnose's
app_required_env) are that role's to default.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

ROLES = Path(__file__).resolve().parents[3] / "roles"
SPECS = sorted(ROLES.glob("*/meta/argument_specs.yml"))


@pytest.mark.parametrize("spec", SPECS, ids=[spec.parts[-3] for spec in SPECS])
def test_promised_defaults_are_role_defaults(spec):
    role = spec.parts[-3]
    entries = yaml.safe_load(spec.read_text())["argument_specs"].values()
    promised = {
        name
        for entry in entries
        for name, option in (entry.get("options") or {}).items()
        if "default" in option and name.startswith(f"{role}_")
    }
    defaults_file = ROLES / role / "defaults/main.yml"
    defaults = (yaml.safe_load(defaults_file.read_text()) if defaults_file.exists() else None) or {}
    assert sorted(promised - defaults.keys()) == []


def test_every_role_is_checked():
    assert {spec.parts[-3] for spec in SPECS} >= {"app", "nginx", "postgresql", "redis", "supervisor"}
