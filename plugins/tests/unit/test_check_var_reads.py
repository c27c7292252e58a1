"""scripts/check_var_reads.py: bool variables are read through | bool, numbers compared through | int."""

from __future__ import annotations

from pathlib import Path

import check_var_reads as check
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


@pytest.mark.parametrize(
    ("expression", "unconverted"),
    [
        ("web_port == 443", ["web_port"]),
        ("443 != web_port", ["web_port"]),
        ("web_hsts > 0 and web_port | int == 80", ["web_hsts"]),
        ("web_port * 2", ["web_port"]),
        ("web_port | int == 443", []),
        ("web_port | default(80) | int > 0", []),
        # Text, a filter's argument and a module's value are no comparison: a string does no harm.
        ("':' ~ web_port", []),
        ("processes | site_problems(web_port, web_hsts)", []),
        ("web_port", []),
        ("'web_port > 0'", []),
    ],
)
def test_unconverted_numbers(expression: str, unconverted: list[str]) -> None:
    assert check.unconverted_numbers(expression, ["web_port", "web_hsts"]) == unconverted


def test_finds_the_typed_options_and_reports_file_line_and_name(tmp_path: Path) -> None:
    (tmp_path / "roles/web/meta").mkdir(parents=True)
    (tmp_path / "roles/web/meta/argument_specs.yml").write_text(
        "argument_specs:\n  main:\n    options:\n"
        "      web_ipv6: {type: bool, default: true}\n      web_port: {type: int, default: 80}\n"
        "      web_ratio: {type: float, default: 0.5}\n      web_name: {type: str, default: shop}\n"
    )
    (tmp_path / "roles/web/tasks").mkdir()
    (tmp_path / "roles/web/tasks/main.yml").write_text(
        "- ansible.builtin.debug:\n  when: web_ipv6 and web_port > 0 and web_name != ''\n"
    )
    assert check.typed_variables(tmp_path) == {"bool": {"web_ipv6"}, "number": {"web_port", "web_ratio"}}
    bool_problem, number_problem = check.problems(tmp_path)
    assert bool_problem.startswith("roles/web/tasks/main.yml:2: web_ipv6 is a bool variable")
    assert number_problem.startswith("roles/web/tasks/main.yml:2: web_port is a number variable")


def test_the_project_reads_every_typed_variable_as_its_type() -> None:
    assert check.problems() == []
