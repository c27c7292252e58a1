"""scripts/gen_variables.py: the variable reference generated from the roles' argument specs."""

from __future__ import annotations

from pathlib import Path

import gen_variables as gen
import pytest

SCRIPT = Path(gen.__file__).resolve()

SPEC = """
argument_specs:
  main:
    short_description: Web server in front of the app.
    description:
      - Renders the site from C(app_processes).
      - Tested with I(nginx -t).
    options: &web_options
      web_port:
        type: int
        default: 80
        description: Port of the plain-HTTP listener.
      web_mode:
        type: str
        choices: ["no", redirect]
        description: What plain HTTP does | when TLS is on.
      web_names:
        type: list
        elements: str
        description: Host names.
      web_upstream:
        type: str
        description: Derived from the app model.
      app_name:
        type: str
        required: true
        description: Name of the app.
      web_users:
        type: list
        elements: dict
        description: Users.
        options:
          name: {type: str, required: true, description: Login.}
  tls:
    short_description: Only the TLS part.
    options: {}
  reload:
    short_description: Reload only.
    options: *web_options
"""

DEFAULTS = """
web_mode: redirect
web_names: [_]
web_upstream: "{{ app_name }}-upstream"
"""


@pytest.fixture
def roles(tmp_path: Path) -> Path:
    web = tmp_path / "roles" / "web"
    (web / "meta").mkdir(parents=True)
    (web / "defaults").mkdir()
    (web / "meta" / "argument_specs.yml").write_text(SPEC)
    (web / "defaults" / "main.yml").write_text(DEFAULTS)
    (tmp_path / "roles" / "bare" / "tasks").mkdir(parents=True)
    (tmp_path / "roles" / "bare" / "tasks" / "main.yml").write_text("---\n[]\n")
    # Only empty directories: not a role yet.
    (tmp_path / "roles" / "empty" / "tasks").mkdir(parents=True)
    return tmp_path / "roles"


def table_row(page: str, variable: str) -> list[str]:
    line = next(line for line in page.splitlines() if line.startswith(f"| `{variable}` |"))
    return [part.strip() for part in line.strip("|").split(" | ")]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("C(nginx -t) and V(true)", "`nginx -t` and `true`"),
        ("see O(app_name)", "see `app_name`"),
        ("I(never) B(ever)", "*never* **ever**"),
        ("U(https://example.com)", "<https://example.com>"),
        ("L(the docs, https://example.com/docs)", "[the docs](https://example.com/docs)"),
        ("plain ABC(x)", "plain ABC(x)"),
    ],
)
def test_markup(text, expected):
    assert gen.markup(text) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [(80, "`80`"), ("no", "`'no'`"), ([], "`[]`"), ({"a": 1}, "`{a: 1}`"), ("", "`''`"), (True, "`true`")],
)
def test_literal_reads_like_yaml(value, expected):
    assert gen.literal(value) == expected


def test_row_per_variable_with_type_default_choices_description(roles):
    page = gen.render(roles)
    row = ["`web_port`", "int", "`80`", "", "Port of the plain-HTTP listener."]
    assert table_row(page, "web_port") == row
    assert table_row(page, "web_mode") == [
        "`web_mode`",
        "str",
        "`redirect`",
        "`'no'`, `redirect`",
        "What plain HTTP does \\| when TLS is on.",
    ]
    assert table_row(page, "web_names")[1:3] == ["list of str", "`[_]`"]


def test_required_and_derived_defaults(roles):
    page = gen.render(roles)
    assert table_row(page, "app_name")[2] == "required"
    # A Jinja default in defaults/main.yml is computed per host, not a value to show.
    assert table_row(page, "web_upstream")[2] == gen.DERIVED


def test_suboptions_follow_their_parent(roles):
    page = gen.render(roles)
    assert table_row(page, "web_users[].name") == ["`web_users[].name`", "str", "required", "", "Login."]
    assert page.index("`web_users`") < page.index("`web_users[].name`")


def test_sections_per_role_and_entry_point(roles):
    page = gen.render(roles)
    assert page.startswith(gen.HEADER)
    assert "## `bare`\n\nNo argument specs." in page
    assert "`empty`" not in page
    assert "## `web`\n\nWeb server in front of the app." in page
    assert "Renders the site from `app_processes`. Tested with *nginx -t*." in page
    assert "### Entry point `tls`\n\nOnly the TLS part.\n\nNo variables." in page
    # An entry point with main's options (a YAML anchor) says so instead of repeating the table.
    assert "### Entry point `reload`\n\nReload only.\n\nThe same variables as `main`." in page
    # main first, roles in name order.
    assert page.index("## `bare`") < page.index("## `web`") < page.index("`web_port`") < page.index("`tls`")


def test_writes_then_check_passes(roles, tmp_path, capsys):
    output = tmp_path / "docs" / "variables.md"
    assert gen.main(["--roles", str(roles), "--output", str(output)]) == 0
    assert output.read_text() == gen.render(roles)
    assert gen.main(["--roles", str(roles), "--output", str(output), "--check"]) == 0


def test_check_fails_on_a_stale_page_and_shows_the_diff(roles, tmp_path, capsys):
    output = tmp_path / "variables.md"
    gen.main(["--roles", str(roles), "--output", str(output)])
    spec = roles / "web" / "meta" / "argument_specs.yml"
    spec.write_text(spec.read_text().replace("default: 80", "default: 8080"))
    assert gen.main(["--roles", str(roles), "--output", str(output), "--check"]) == 1
    err = capsys.readouterr().err
    assert "+| `web_port` | int | `8080` |" in err
    assert "is stale: run `make docs`" in err
    # --check never writes.
    assert "`80`" in output.read_text()


def test_check_fails_when_the_page_is_missing(roles, tmp_path):
    assert gen.main(["--roles", str(roles), "--output", str(tmp_path / "none.md"), "--check"]) == 1


def test_the_projects_specs_render():
    # Every role in the repository renders (a malformed spec would raise here).
    roles = SCRIPT.parents[1] / "roles"
    page = gen.render(roles)
    for spec in roles.glob("*/meta/argument_specs.yml"):
        assert f"## `{spec.parents[1].name}`" in page
