"""The app role's inventory checks (validate_model.yml) refuse retention that keeps nothing, an app
model without a health path, an environment that replaces what the role derives, and a Prisma schema
path outside the release.

Run by ansible-playbook itself on the controller (a local connection; the checks only read
variables), as deploy.yml, rollback.yml and recover.yml run them before any change.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from module_run import run_playbook, tail

PLAY = [
    {
        "hosts": "web1",
        "gather_facts": False,
        "tasks": [
            {
                "name": "Validate the app model",
                "ansible.builtin.include_role": {"name": "app", "tasks_from": "validate_model"},
            }
        ],
    }
]
APP = {
    "app_name": "shop",
    "app_user": "shop",
    "app_root": "/srv/shop",
    "app_max_body_size": "20m",
    "app_processes": [
        {"name": "web", "command": "node server.js", "port": 3000, "health_path": "/api/health"},
    ],
    "app_source": {"type": "archive", "path": "/tmp/shop"},
}
NOT_ABSOLUTE = "app_db_backup_dir must be an absolute path other than /"


def validate(
    tmp_path: Path, groups: dict[str, dict] | None = None, **overrides
) -> subprocess.CompletedProcess[str]:
    """validate_model.yml on web1. groups: {group: {host: its variables}}, such as the db group."""
    local = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    children = {"web": {"hosts": {"web1": {**local, **APP, **overrides}}}}
    children.update({group: {"hosts": hosts} for group, hosts in (groups or {}).items()})
    inventory = {"all": {"children": children}}
    (tmp_path / "hosts.yml").write_text(yaml.safe_dump(inventory))
    (tmp_path / "play.yml").write_text(yaml.safe_dump(PLAY, sort_keys=False))
    return run_playbook("-i", tmp_path / "hosts.yml", tmp_path / "play.yml")


def test_the_defaults_pass(tmp_path):
    run = validate(tmp_path)
    assert run.returncode == 0, tail(run)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"app_db_backup_keep": 0}, "app_db_backup_keep must be 1 or more (got 0)"),
        ({"app_releases_keep": 0}, "app_releases_keep must be 1 or more (got 0)"),
        ({"app_db_backup_dir": "backups/shop"}, f"{NOT_ABSOLUTE} (got backups/shop)"),
        ({"app_db_backup_dir": "/"}, f"{NOT_ABSOLUTE} (got /)"),
    ],
)
def test_retention_that_keeps_nothing_is_refused_naming_the_variable(tmp_path, overrides, message):
    run = validate(tmp_path, **overrides)
    assert run.returncode != 0
    assert message in run.stdout, run.stdout[-3000:]


@pytest.mark.parametrize(
    ("schema", "message"),
    [
        (
            "/srv/shop/prisma/schema.prisma",
            "app_prisma_schema='/srv/shop/prisma/schema.prisma' is an absolute path",
        ),
        ("../shared/schema.prisma", "app_prisma_schema='../shared/schema.prisma' has a '..' component"),
        ("db/../../schema", "app_prisma_schema='db/../../schema' has a '..' component"),
        ("", "app_prisma_schema must name a path relative to the release"),
    ],
)
def test_a_prisma_schema_outside_the_release_is_refused_naming_the_variable(tmp_path, schema, message):
    run = validate(tmp_path, app_prisma_schema=schema)
    assert run.returncode != 0
    assert message in " ".join(run.stdout.split()), tail(run)


@pytest.mark.parametrize(
    "schema", ["db/schema.prisma", "prisma/schema", "prisma/schema/", "./prisma/..schema"]
)
def test_a_prisma_schema_inside_the_release_passes(tmp_path, schema):
    run = validate(tmp_path, app_prisma_schema=schema)
    assert run.returncode == 0, tail(run)


def test_an_app_without_a_health_path_is_refused(tmp_path):
    run = validate(tmp_path, app_processes=[{"name": "worker", "command": "node worker.js"}])
    assert run.returncode != 0
    assert "No process in app_processes has a health_path" in run.stdout, tail(run)


@pytest.mark.parametrize(
    ("group", "name", "source"),
    [
        ("db", "DATABASE_URL", "the db group and each process's db_pool"),
        ("db", "DIRECT_URL", "the db group (where migrations connect)"),
        ("redis", "REDIS_URL", "the redis group"),
        ("", "UPLOAD_MAX_BYTES", "app_max_body_size"),
    ],
)
def test_env_that_replaces_a_derived_variable_is_refused(tmp_path, group, name, source):
    groups = {group: {f"{group}1": {}}} if group else {}
    run = validate(tmp_path, groups, app_secret_env={name: "set by hand"})
    assert run.returncode != 0
    assert f"app_secret_env sets {name}, which shipshape derives from {source}" in run.stdout, tail(run)
    assert "set by hand" not in run.stdout


def test_an_app_of_its_own_database_and_redis_may_name_them(tmp_path):
    """Without a db or redis group shipshape derives neither URL: a managed service's is the app's."""
    run = validate(tmp_path, app_secret_env={"DATABASE_URL": "postgresql://x", "REDIS_URL": "redis://y"})
    assert run.returncode == 0, tail(run)


@pytest.mark.parametrize(
    ("groups", "variable"),
    [
        ({"db": {"web1": {"postgresql_port": 3000}}}, "postgresql_port"),
        (
            {"db": {"web1": {"postgresql_pgbouncer_enabled": True, "postgresql_pgbouncer_port": 3000}}},
            "postgresql_pgbouncer_port",
        ),
        ({"redis": {"web1": {"redis_port": 3000}}}, "redis_port"),
    ],
)
def test_an_app_port_a_service_here_listens_on_is_refused(tmp_path, groups, variable):
    run = validate(tmp_path, groups)
    assert run.returncode != 0
    assert f"takes port 3000, which is {variable} on this host" in run.stdout, tail(run)


def test_a_service_on_another_host_may_use_an_app_port(tmp_path):
    run = validate(
        tmp_path, {"db": {"db1": {"postgresql_port": 3000}}, "redis": {"redis1": {"redis_port": 3000}}}
    )
    assert run.returncode == 0, tail(run)


def test_without_a_db_group_the_budget_says_it_is_not_checked(tmp_path):
    """A managed database (no db group): nothing to ask, but the run says what the pools need."""
    play = [
        {
            **PLAY[0],
            "tasks": [{"ansible.builtin.include_role": {"name": "app", "tasks_from": "validate_budget"}}],
        }
    ]
    (tmp_path / "budget.yml").write_text(yaml.safe_dump(play, sort_keys=False))
    validate(tmp_path, app_processes=[{**APP["app_processes"][0], "db_pool": 8, "instances": 2}])
    run = run_playbook("-i", tmp_path / "hosts.yml", tmp_path / "budget.yml")
    said = " ".join(run.stdout.split())
    assert run.returncode == 0, tail(run)
    assert (
        "the connection budget (I3) is not checked: the pools of 1 web host(s) open up to 16 connections"
        in said
    )


DEMO_SECRETS = {"vault_app_db_password": "demo-only-db-password-7d2f9c", "vault_smtp": "a-real-one-4f1c9e2a"}


@pytest.mark.parametrize("connection", ["ssh", "local"])
def test_the_demos_public_secrets_are_refused_on_a_server(tmp_path, connection):
    run = validate(tmp_path, **DEMO_SECRETS, ansible_connection=connection)
    assert run.returncode != 0, tail(run)
    assert "vault_app_db_password hold the public demo values of inventories/demo" in run.stdout, tail(run)
    assert f"web1 is not a local test container (connection {connection})" in run.stdout
    # Names only: neither value is printed.
    assert not any(value in run.stdout + run.stderr for value in DEMO_SECRETS.values())


def test_the_demos_public_secrets_are_allowed_on_a_local_test_container(tmp_path):
    run = validate(tmp_path, **DEMO_SECRETS, ansible_connection="podman_nsenter")
    assert run.returncode == 0, tail(run)


def test_the_placeholder_secrets_of_vault_example_are_refused_by_name(tmp_path):
    placeholder = "change-me-db-password"
    run = validate(tmp_path, vault_app_db_password=placeholder, vault_other="a-real-one-4f1c9e2a")
    assert run.returncode != 0, tail(run)
    said = " ".join(run.stdout.split())
    assert "vault_app_db_password still hold the example value of vault.example.yml" in said, tail(run)
    assert "vault_other" not in said
    assert placeholder not in run.stdout + run.stderr
