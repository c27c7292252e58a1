"""A task delegated to a group's host must not fail when the inventory has no such group.

ansible-core 2.19 resolves `delegate_to` before `when`: a name that templates to "" (no db or
redis group, a managed database) fails the task even when its condition skips it. Every delegate_to
that reads a variable therefore falls back to a name that always exists.
"""

from __future__ import annotations

import re

from module_run import PROJECT

DELEGATE = re.compile(r"^\s*delegate_to:\s*(.+?)\s*$")


def delegations() -> list[tuple[str, str]]:
    found = []
    for path in sorted([*PROJECT.glob("roles/**/*.yml"), *PROJECT.glob("playbooks/*.yml")]):
        for line in path.read_text().splitlines():
            match = DELEGATE.match(line)
            if match:
                found.append((str(path.relative_to(PROJECT)), match.group(1)))
    return found


def test_every_delegation_to_a_variable_has_a_fallback() -> None:
    found = delegations()
    assert any("__app_db_inventory_host" in value for _, value in found), found
    empty_able = [
        (path, value)
        for path, value in found
        if "{{" in value and not re.search(r"\bor inventory_hostname\b", value)
    ]
    assert empty_able == []
