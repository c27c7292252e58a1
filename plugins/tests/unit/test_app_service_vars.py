"""The service endpoints of the app, diagnose and recover roles come from the service hosts' own variables.

PgBouncer, postgresql_port and redis_port are set where those services run (group_vars/db,
host_vars of the redis host): a web host must build its DATABASE_URL and REDIS_URL from them, not
from its own variables, where they are usually absent. The role's defaults and derived variables
are evaluated by ansible-playbook itself, against an inventory of three hosts (no connection is made).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import yaml
from app_state import parse_env_file, shown_value
from connection_budget import ENV_SHOWN_VALUES, PGBOUNCER_DEFAULTS, URL_POOL_SHOWN
from module_run import PROJECT, run_playbook, tail

APP = PROJECT / "roles/app"

PLAY = """
- hosts: web1
  gather_facts: false
  vars_files:
    - {defaults}
    - {vars}
    - {project}/roles/diagnose/vars/main.yml
    - {project}/roles/recover/vars/main.yml
  vars:
    app_name: shop
    app_db_password: pw
    app_redis_password: rpw
    app_root: /srv/shop
    app_max_body_size: 20m
    app_processes: [{{name: web, db_pool: 10}}, {{name: cron}}]
  tasks:
    - name: Render each env file as the app role does
      ansible.builtin.template:
        src: {project}/roles/app/templates/process.env.j2
        dest: "{out_dir}/{{{{ item.key }}}}.env"
        mode: "0600"
      loop: "{{{{ __app_process_env_expr | dict2items }}}}"

    - name: Write the endpoints the app would get
      ansible.builtin.copy:
        dest: {out}
        content: >-
          {{{{ {{'db': __app_database_url if groups.db is defined else none,
                'redis': __app_redis_url if groups.redis is defined else none,
                'pgbouncer': __app_pgbouncer,
                'env': __app_process_env_expr,
                'diagnose_env': __diagnose_env_expected,
                'diagnose_db_port': __diagnose_db_connect_port | int,
                'diagnose_pgbouncer': [__diagnose_pgbouncer_enabled | bool, __diagnose_pgbouncer_port],
                'diagnose_redis_port': __diagnose_redis_port | int,
                'recover_redis_port': __recover_redis_port | int}} | to_json }}}}
        mode: "0600"
"""


def endpoints(tmp_path: Path, inventory: dict, app_secret_env: dict | None = None) -> dict:
    (tmp_path / "hosts.yml").write_text(yaml.safe_dump(inventory))
    (tmp_path / "play.yml").write_text(
        PLAY.format(
            defaults=APP / "defaults/main.yml",
            vars=APP / "vars/main.yml",
            project=PROJECT,
            out=tmp_path / "out.json",
            out_dir=tmp_path,
        )
    )
    # The app role's defaults (vars_files) would override the inventory's app_env and app_secret_env.
    extra = {**INVENTORY_ENV, "app_secret_env": app_secret_env or INVENTORY_ENV["app_secret_env"]}
    run = run_playbook("-i", tmp_path / "hosts.yml", tmp_path / "play.yml", "-e", json.dumps(extra))
    assert run.returncode == 0, tail(run)
    got = json.loads((tmp_path / "out.json").read_text())
    got["pools"] = [{name: env[name] for name in POOL_NAMES if name in env} for env in got["env"].values()]
    got["files"] = {process: (tmp_path / f"{process}.env").read_text() for process in got["env"]}
    return got


# What the connection budget adds to the environment of a process with a db_pool.
POOL_NAMES = ("DATABASE_URL", "DATABASE_POOL_MAX", "DIRECT_URL", "PGAPPNAME")
LOCAL = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
# The inventory's own variables: an app_env value sh must read back byte for byte, and a secret.
INVENTORY_ENV = {"app_env": {"GREETING": "it's $HOME"}, "app_secret_env": {"SESSION_SECRET": "s3cret"}}


def three_hosts(db_vars: dict, redis_vars: dict) -> dict:
    local = LOCAL
    return {
        "all": {
            "children": {
                "web": {"hosts": {"web1": local}},
                "db": {"hosts": {"db1": {**local, **db_vars}}},
                "redis": {"hosts": {"redis1": {**local, **redis_vars}}},
            }
        }
    }


def test_pgbouncer_and_ports_set_on_the_service_hosts_reach_the_web_host(tmp_path):
    db = {"postgresql_port": 5433, "postgresql_pgbouncer_enabled": True, "postgresql_pgbouncer_port": 6543,
          "postgresql_pgbouncer_default_pool_size": 30}  # fmt: skip
    got = endpoints(tmp_path, three_hosts(db, {"redis_port": 6380}))
    assert got["db"] == "postgresql://shop:pw@db1:6543/shop"
    assert got["pgbouncer"] == {
        "enabled": True,
        "port": 6543,
        "default_pool_size": 30,
        "reserve_pool_size": 5,
        "max_client_conn": 500,
        "session_pool_size": 2,
    }
    # Each process's DATABASE_URL goes to PgBouncer's port, with Prisma told (pgbouncer=true).
    # DIRECT_URL, for migrations, is PgBouncer's session-mode database. PGAPPNAME names the program
    # in pg_stat_activity (I3).
    assert got["pools"] == [
        {"DATABASE_URL": "postgresql://shop:pw@db1:6543/shop?connection_limit=10&pool_timeout=10&pgbouncer=true",
         "DATABASE_POOL_MAX": "10", "DIRECT_URL": "postgresql://shop:pw@db1:6543/shop_session",
         "PGAPPNAME": "shop-web"},
        {},
    ]  # fmt: skip
    assert got["redis"] == "redis://:rpw@redis1:6380/0"
    # diagnose names a refused connection on the port the app connects to, and asks PgBouncer there.
    assert got["diagnose_db_port"] == 6543
    assert got["diagnose_pgbouncer"] == [True, 6543]
    # diagnose and recover ask Redis on its own host, on the port it listens on there.
    assert got["diagnose_redis_port"] == got["recover_redis_port"] == 6380


def test_without_pgbouncer_the_web_host_uses_the_db_hosts_postgresql_port(tmp_path):
    got = endpoints(tmp_path, three_hosts({"postgresql_port": 5433}, {}))
    assert got["db"] == "postgresql://shop:pw@db1:5433/shop"
    assert got["pgbouncer"] is None
    assert got["diagnose_db_port"] == 5433
    assert got["diagnose_pgbouncer"] == [False, ""]
    assert (
        got["pools"][0]["DATABASE_URL"]
        == "postgresql://shop:pw@db1:5433/shop?connection_limit=10&pool_timeout=10"
    )
    assert got["pools"][0]["DIRECT_URL"] == "postgresql://shop:pw@db1:5433/shop"
    assert got["redis"] == "redis://:rpw@redis1:6379/0"


def test_the_defaults_are_the_service_roles_defaults(tmp_path):
    got = endpoints(tmp_path, three_hosts({}, {}))
    assert got["db"] == "postgresql://shop:pw@db1:5432/shop"
    assert got["redis"] == "redis://:rpw@redis1:6379/0"
    assert got["diagnose_redis_port"] == got["recover_redis_port"] == 6379


def test_pgbouncer_off_as_an_ini_inventory_says_it_is_off(tmp_path):
    # An INI inventory gives the string "false", which is not empty and so not false to Jinja.
    got = endpoints(
        tmp_path, three_hosts({"postgresql_pgbouncer_enabled": "false", "postgresql_port": 5433}, {})
    )
    assert got["pgbouncer"] is None
    assert got["db"] == "postgresql://shop:pw@db1:5433/shop"
    assert got["diagnose_pgbouncer"] == [False, ""]


def test_the_pgbouncer_defaults_the_clients_assume_are_the_postgresql_roles():
    defaults = yaml.safe_load((PROJECT / "roles/postgresql/defaults/main.yml").read_text())
    assert {
        name: defaults[f"postgresql_pgbouncer_{name}"] for name in PGBOUNCER_DEFAULTS
    } == PGBOUNCER_DEFAULTS


def test_each_env_file_is_what_sh_reads_back_from_the_rendered_environment(tmp_path):
    """The env files the app role's template writes hold the environment app_process_env composes,
    byte for byte as sh reads them (an app_env value with a quote and a $ included)."""
    got = endpoints(tmp_path, three_hosts({}, {}))
    assert set(got["files"]) == {"web", "cron"}
    for process, text in got["files"].items():
        assert parse_env_file(text) == (
            {name: str(value) for name, value in got["env"][process].items()},
            None,
        )
    assert got["env"]["cron"]["GREETING"] == "it's $HOME"


def assert_diagnose_expects_what_the_app_role_renders(got: dict) -> None:
    """diagnose's expectation of each env file (app_env_expected) against the file the app role's
    template wrote, read back as sh reads it: the same names, and every derived, non-secret value."""
    expected = got["diagnose_env"]["processes"]
    assert set(expected) == set(got["files"]) == set(got["env"])
    for process, text in got["files"].items():
        sourced, error = parse_env_file(text)
        assert error is None
        assert sourced == {name: str(value) for name, value in got["env"][process].items()}
        assert expected[process]["names"] == sorted(sourced)
        derived = {name for name in ENV_SHOWN_VALUES if name in sourced} - {"GREETING", "SESSION_SECRET"}
        if "DATABASE_POOL_MAX" in sourced:
            # A DATABASE_URL the model derives (a db group): its pool parameters, as app_state reads them.
            derived |= {f"DATABASE_URL?{param}" for param in URL_POOL_SHOWN}
        assert expected[process]["values"] == {name: shown_value(sourced, name) for name in derived}
    assert "s3cret" not in json.dumps(got["diagnose_env"]) and "$HOME" not in json.dumps(got["diagnose_env"])


def test_diagnose_expects_of_each_env_file_what_the_app_role_renders(tmp_path):
    got = endpoints(tmp_path, three_hosts({"postgresql_pgbouncer_enabled": True}, {}))
    assert got["diagnose_env"]["processes"]["web"]["values"]["DATABASE_POOL_MAX"] == "10"
    assert "DATABASE_URL" not in got["diagnose_env"]["processes"]["cron"]["names"]
    assert_diagnose_expects_what_the_app_role_renders(got)


def test_without_db_and_redis_groups_diagnose_expects_the_managed_urls(tmp_path):
    """Seed 000's case: a managed database, DATABASE_URL from app_secret_env, in every env file."""
    managed = {
        "DATABASE_URL": "postgresql://u:p@managed.example/app",
        "REDIS_URL": "redis://:p@cache.example/0",
    }
    secrets = {**INVENTORY_ENV["app_secret_env"], **managed}
    got = endpoints(tmp_path, {"all": {"children": {"web": {"hosts": {"web1": LOCAL}}}}}, secrets)
    for process in ("web", "cron"):
        names = got["diagnose_env"]["processes"][process]["names"]
        assert {"DATABASE_URL", "REDIS_URL"} <= set(names) and "DATABASE_POOL_MAX" not in names
    assert "managed.example" not in json.dumps(got["diagnose_env"])
    assert_diagnose_expects_what_the_app_role_renders(got)
