"""scripts/check_bool_vars.py: every read of a bool variable goes through the bool filter."""

from __future__ import annotations

from pathlib import Path

import check_bool_vars as check
import pytest

NAMES = ["web_ipv6", "web_ipv6_only"]


@pytest.mark.parametrize(
    ("expression", "unfiltered"),
    [
        ("web_ipv6", ["web_ipv6"]),
        ("not web_ipv6 and web_ipv6_only", ["web_ipv6", "web_ipv6_only"]),
        (" '[::]' if web_ipv6 else '' ", ["web_ipv6"]),
        ("hostvars[h].web_ipv6 | default(false)", ["web_ipv6"]),
        ("web_ipv6 | bool", []),
        ("not web_ipv6|bool", []),
        ("hostvars[h].web_ipv6 | default(false) | bool", []),
        ("web_ipv6 is defined and web_ipv6 | bool", []),
        ("web_ipv6 is not defined", []),
        # A name inside a string literal is text, and a longer name is another variable.
        ("'run again with -e web_ipv6=true' if failed else ''", []),
        ("web_ipv6_other", []),
        ("{'web_ipv6': true}", []),
    ],
)
def test_unfiltered_reads(expression: str, unfiltered: list[str]) -> None:
    assert check.unfiltered_reads(expression, NAMES) == unfiltered


def test_conditions_are_expressions_and_other_text_only_its_jinja() -> None:
    text = """\
- name: Listen on web_ipv6 too
  ansible.builtin.debug:
    msg: "{{ 'yes' if web_ipv6 else 'no' }} web_ipv6"
  when:
    - web_ipv6_only
- ansible.builtin.assert:
    that: web_ipv6 | bool
    fail_msg: web_ipv6 is false
"""
    found = [
        (line, check.unfiltered_reads(expression, NAMES))
        for line, expression in check.expressions_in_yaml(text)
    ]
    assert [item for item in found if item[1]] == [(3, ["web_ipv6"]), (5, ["web_ipv6_only"])]


def test_templates_are_read_for_their_jinja_only() -> None:
    text = "listen 80;\n{% if web_ipv6 %}\nlisten [::]:80; # web_ipv6\n{% endif %}\n"
    assert [(line, expr.strip()) for line, expr in check.expressions_in_template(text)] == [
        (2, "if web_ipv6"),
        (4, "endif"),
    ]


def test_finds_the_bool_options_and_reports_file_line_and_name(tmp_path: Path) -> None:
    (tmp_path / "roles/web/meta").mkdir(parents=True)
    (tmp_path / "roles/web/meta/argument_specs.yml").write_text(
        "argument_specs:\n  main:\n    options:\n"
        "      web_ipv6: {type: bool, default: true}\n      web_port: {type: int, default: 80}\n"
    )
    (tmp_path / "roles/web/tasks").mkdir()
    (tmp_path / "roles/web/tasks/main.yml").write_text(
        "- ansible.builtin.debug:\n  when: web_ipv6 and web_port > 0\n"
    )
    assert check.bool_variables(tmp_path) == {"web_ipv6"}
    [problem] = check.problems(tmp_path)
    assert problem.startswith("roles/web/tasks/main.yml:2: web_ipv6 is a bool variable")


def test_the_project_reads_every_bool_variable_through_the_filter() -> None:
    assert check.problems() == []
