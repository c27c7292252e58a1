#!/usr/bin/env python3
"""Refuse a bool or number variable read as if it could not be a string (make lint).

A variable the argument specs declare `type: bool`, `int` or `float` has that type only when it
comes from YAML. From `-e name=value` or an INI inventory it is a string, and role argument
validation accepts "false" or "20" for it but leaves the variable a string (set_fact cannot
replace an extra var either). So:

- a bool read bare misbehaves: a `when:` on it fails on ansible-core 2.19 ("Conditional result
  (True) was derived from value of type 'str'"), and a Jinja `x if name else y` takes the
  non-empty string "false" as true (PasswordAuthentication yes, an IPv6 listener). Every read
  goes through the filter: `name | bool`, or `name | default(x) | bool`;
- a number compared or computed with bare misbehaves: `name == 443` is false for "443" and
  `name > 0` fails on a string. Its reads beside a comparison or arithmetic operator go
  through `| int` (or `| float`). Elsewhere (a module argument, a filter's argument, text) a
  string does no harm: modules and this project's filters convert.

`name is defined` is not a read. Where it looks: every Jinja expression ({{ }} and {% %}) in
roles/ and playbooks/, and the whole text of when, that, failed_when, changed_when and until,
which Ansible reads as expressions. String literals inside an expression are skipped.

    .venv/bin/python scripts/check_var_reads.py    exit 1, naming file, line and variable
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import yaml

PROJECT = Path(__file__).resolve().parents[1]
CONDITION_KEYS = frozenset({"when", "that", "failed_when", "changed_when", "until"})
JINJA_SEGMENT = re.compile(r"{{(.*?)}}|{%(.*?)%}", re.DOTALL)
STRING_LITERAL = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"", re.DOTALL)
# What may follow a bool variable: the bool filter (after a default), or a definedness test.
READ_AS_BOOL = re.compile(r"\s*(?:\|\s*default\([^()]*\)\s*)?\|\s*bool\b|\s+is\s+(?:not\s+)?defined\b")
# A number beside a comparison or arithmetic operator must have gone through int or float.
READ_AS_NUMBER = re.compile(r"\s*(?:\|\s*default\([^()]*\)\s*)?\|\s*(?:int|float)\b")
OPERATOR_AFTER = re.compile(r"\s*(?:==|!=|>=|<=|>|<|\+|-|\*|/|%)")
OPERATOR_BEFORE = re.compile(r"(?:==|!=|>=|<=|>|<|\+|-|\*|/|%)\s*$")


def role_options(project: Path = PROJECT) -> dict[str, dict[str, Any]]:
    """Every top-level option of every role's argument specs, by name."""
    options: dict[str, dict[str, Any]] = {}
    for spec_file in sorted(project.glob("roles/*/meta/argument_specs.yml")):
        specs = yaml.safe_load(spec_file.read_text()) or {}
        for entry_point in (specs.get("argument_specs") or {}).values():
            options.update(
                {name: option or {} for name, option in (entry_point.get("options") or {}).items()}
            )
    return options


def typed_variables(project: Path = PROJECT) -> dict[str, set[str]]:
    """The options the argument specs declare bool, and those they declare int or float ('number')."""
    kinds: dict[str, set[str]] = {"bool": set(), "number": set()}
    for name, option in role_options(project).items():
        kind = {"bool": "bool", "int": "number", "float": "number"}.get(option.get("type"))
        if kind:
            kinds[kind].add(name)
    return kinds


def expressions_in_template(text: str, first_line: int = 1) -> Iterator[tuple[int, str]]:
    """(line, expression) for each {{ }} and {% %} in a text."""
    for match in JINJA_SEGMENT.finditer(text):
        yield first_line + text.count("\n", 0, match.start()), match.group(1) or match.group(2) or ""


def _scalars(node: yaml.Node, in_condition: bool = False) -> Iterator[tuple[yaml.ScalarNode, bool]]:
    if isinstance(node, yaml.ScalarNode):
        yield node, in_condition
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            yield from _scalars(item, in_condition)
    elif isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            yield from _scalars(
                value, in_condition or (isinstance(key, yaml.ScalarNode) and key.value in CONDITION_KEYS)
            )


def expressions_in_yaml(text: str) -> Iterator[tuple[int, str]]:
    """(line, expression) for each condition and each Jinja expression of a YAML file."""
    for document in yaml.compose_all(text, Loader=yaml.SafeLoader):
        if document is None:
            continue
        for scalar, in_condition in _scalars(document):
            if not isinstance(scalar.value, str):
                continue
            line = scalar.start_mark.line + 1
            if in_condition and not JINJA_SEGMENT.search(scalar.value):
                yield line, scalar.value
            else:
                yield from expressions_in_template(scalar.value, line)


def _reads(code: str, names: Iterable[str]) -> Iterator[tuple[int, str, re.Match[str]]]:
    for name in names:
        for match in re.finditer(rf"(?<!\w){re.escape(name)}\b", code):
            yield match.start(), name, match


def unfiltered_reads(expression: str, names: Iterable[str]) -> list[str]:
    """The bool names an expression reads without the bool filter, in order of appearance."""
    code = STRING_LITERAL.sub("''", expression)
    found = [
        (start, name)
        for start, name, match in _reads(code, names)
        if not READ_AS_BOOL.match(code, match.end())
    ]
    return [name for _, name in sorted(found)]


def unconverted_numbers(expression: str, names: Iterable[str]) -> list[str]:
    """The number names an expression compares or computes with, unconverted, in order of appearance."""
    code = STRING_LITERAL.sub("''", expression)
    found = [
        (start, name)
        for start, name, match in _reads(code, names)
        if not READ_AS_NUMBER.match(code, match.end())
        and (OPERATOR_AFTER.match(code, match.end()) or OPERATOR_BEFORE.search(code, 0, match.start()))
    ]
    return [name for _, name in sorted(found)]


def files_to_check(project: Path = PROJECT) -> Iterator[Path]:
    for pattern in ("roles/**/*.yml", "playbooks/**/*.yml", "roles/**/*.j2"):
        for path in sorted(project.glob(pattern)):
            # The specs define the variables; their texts are no expressions.
            if path.parts[-2:] == ("meta", "argument_specs.yml"):
                continue
            yield path


def problems(project: Path = PROJECT) -> list[str]:
    kinds = {kind: sorted(names) for kind, names in typed_variables(project).items()}
    found = []
    for path in files_to_check(project):
        text = path.read_text()
        expressions = expressions_in_template(text) if path.suffix == ".j2" else expressions_in_yaml(text)
        where = path.relative_to(project)
        for line, expression in expressions:
            for name in unfiltered_reads(expression, kinds["bool"]):
                found.append(
                    f"{where}:{line}: {name} is a bool variable: read it as '{name} | bool' "
                    f"(from -e {name}=false it is the string 'false', which is true)"
                )
            for name in unconverted_numbers(expression, kinds["number"]):
                found.append(
                    f"{where}:{line}: {name} is a number variable: compare or compute with '{name} | int' "
                    f"(from -e {name}=20 it is the string '20', which is not 20)"
                )
    return found


def main() -> int:
    found = problems()
    for problem in found:
        print(problem, file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
