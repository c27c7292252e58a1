"""The postgresql role's real state: who may log in from where, the settings the budget used, and load."""

import json
import os
import re
import shlex
from pathlib import Path

import pytest
import yaml
from shipshape_testing import app_model, molecule_hosts, run_ok

testinfra_hosts = molecule_hosts("db")
APP = app_model()
PROJECT = Path(os.environ.get("MOLECULE_PROJECT_DIRECTORY", Path(__file__).parents[3]))
SECRETS = yaml.safe_load((PROJECT / "inventories/demo/group_vars/all/secrets.yml").read_text())
PASSWORD = SECRETS["vault_app_db_password"]
DATABASE = ROLE = APP["app_name"]
DROP_IN = "/etc/postgresql/15/main/conf.d/60-shipshape.conf"
# Lines recorded under this key are printed in pytest's summary (tests/conftest.py).
REPORT_KEY = "shipshape_report"


def app_psql(host, sql, password=PASSWORD, user=ROLE, database=DATABASE):
    """psql over TCP to 127.0.0.1 with a password; returns the command's result."""
    return host.run(
        f"PGPASSWORD={shlex.quote(password)} PGCONNECT_TIMEOUT=10 psql -h 127.0.0.1 -U {user} -d {database}"
        f" -XAtc {shlex.quote(sql)}"
    )


def admin_psql(host, sql):
    """psql as the postgres superuser over the Unix socket (peer), the only way it logs in."""
    return run_ok(host, f"cd /tmp && runuser -u postgres -- psql -XAtc {shlex.quote(sql)}").strip()


def budget_figure(host, label):
    """A figure from the budget table the role wrote into its drop-in (e.g. 'max_connections')."""
    table = host.file(DROP_IN).content_string
    match = re.search(rf"^# {re.escape(label)}\s+(\d+)$", table, re.MULTILINE)
    assert match, f"no '{label}' line in the budget table of {DROP_IN}:\n{table}"
    return int(match.group(1))


def test_app_role_logs_in_over_tcp_with_its_password(host):
    result = app_psql(host, "SELECT current_user || ' ' || host(inet_server_addr()) || ' ' || 6 * 7")
    assert result.rc == 0, result.stderr
    assert result.stdout.strip() == f"{ROLE} 127.0.0.1 42"


def test_app_role_with_a_wrong_password_is_refused(host):
    result = app_psql(host, "SELECT 1", password="not-" + PASSWORD)
    assert result.rc != 0
    assert "password authentication failed" in result.stderr


@pytest.mark.parametrize("password", ["", "postgres", PASSWORD])
def test_postgres_superuser_cannot_log_in_over_tcp(host, password):
    result = app_psql(host, "SELECT 1", password=password, user="postgres", database="postgres")
    assert result.rc != 0
    assert 'pg_hba.conf rejects connection for host "127.0.0.1", user "postgres"' in result.stderr


def test_no_trust_and_only_the_app_role_over_tcp(host):
    rules = admin_psql(
        host, "SELECT type, database, user_name, address, auth_method, error FROM pg_hba_file_rules"
    ).splitlines()
    assert "local|{all}|{postgres}||peer|" in rules
    assert all("trust" not in rule for rule in rules), rules
    tcp = [rule for rule in rules if rule.startswith("host")]
    allowed = [rule for rule in tcp if not rule.endswith("|reject|")]
    assert allowed == [f"host|{{{DATABASE}}}|{{{ROLE}}}|127.0.0.1|scram-sha-256|"], tcp
    assert admin_psql(host, "SHOW password_encryption") == "scram-sha-256"
    assert admin_psql(host, f"SELECT left(rolpassword, 14) FROM pg_authid WHERE rolname = '{ROLE}'") == (
        "SCRAM-SHA-256$"
    )


def test_other_roles_cannot_connect_to_the_app_database(host):
    assert admin_psql(host, f"SELECT has_database_privilege('public', '{DATABASE}', 'CONNECT')") == "f"


def test_listens_on_loopback_ipv4_only(host):
    sockets = host.socket.get_listening_sockets()
    listeners = {socket.split("://")[1] for socket in sockets if socket.endswith(":5432")}
    assert listeners == {"127.0.0.1:5432"}


def test_max_connections_is_what_the_budget_used(host, record_property):
    running = int(admin_psql(host, "SHOW max_connections"))
    budgeted = budget_figure(host, "max_connections")
    memtotal_mb = int(host.file("/proc/meminfo").content_string.split()[1]) // 1024
    derived = min(max(memtotal_mb // 80, 100), 400)
    assert running == budgeted == derived, (
        f"SHOW max_connections {running}, budget table {budgeted}, derived from {memtotal_mb} MB {derived}"
    )
    shared_buffers = admin_psql(host, "SHOW shared_buffers")
    assert shared_buffers == f"{max(memtotal_mb * 25 // 100, 128)}MB"
    record_property(
        REPORT_KEY,
        f"budget: host {memtotal_mb} MB -> max_connections {running}, shared_buffers {shared_buffers},"
        f" available to the app {budget_figure(host, '= available to the app')},"
        f" app pools ask {budget_figure(host, 'demand')}",
    )


def test_app_role_limits(host):
    assert app_psql(host, "SHOW statement_timeout").stdout.strip() == "30s"
    assert app_psql(host, "SHOW idle_in_transaction_session_timeout").stdout.strip() == "1min"
    limit = admin_psql(host, f"SELECT rolconnlimit FROM pg_roles WHERE rolname = '{ROLE}'")
    assert int(limit) == budget_figure(host, "= available to the app")


def test_load_every_granted_connection_runs_at_once(host, record_property):
    """As many connections as the budget grants the app, all at once, each running a query."""
    granted = budget_figure(host, "= available to the app")
    probe = (Path(__file__).parent / "load_probe.py").read_text()
    result = host.run(
        f"cd /tmp && PGPASSWORD={shlex.quote(PASSWORD)} runuser -u postgres --"
        f" python3 -c {shlex.quote(probe)} {granted} {DATABASE} {ROLE}"
    )
    assert result.rc == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    summary = (
        f"load: {report['ok']} of {granted} granted connections"
        f" ran SELECT pg_sleep({report['sleep_s']}) together,"
        f" {report.get('active_at_once')} active at once in pg_stat_activity,"
        f" connected in {report.get('connected_in_s')} s, queries done in {report.get('queries_s')} s;"
        f" connection {granted + 1}: {report.get('one_more')}"
    )
    host.run(f"echo {shlex.quote(summary)} > /tmp/shipshape-postgresql-load.txt")
    record_property(REPORT_KEY, summary)
    assert report["ok"] == granted and not report["errors"], f"{summary}; errors: {report['errors']}"
    assert report["active_at_once"] == granted, summary
    # One after another, the N sleeps would take N times as long.
    assert report["queries_s"] < report["sleep_s"] * granted / 10, summary
    assert "too many connections for role" in report["one_more"], summary


def test_no_password_in_any_ansible_output():
    inventory = Path(os.environ["MOLECULE_INVENTORY_FILE"])
    log = inventory.parents[1] / "ansible.log"
    text = log.read_text()
    # The log holds the check, converge and idempotence runs and the side effect's -vvv run.
    holds_the_runs = "Create the app role" in text and "module_args" in text
    assert holds_the_runs, f"{log} lacks the runs it should hold"
    # Booleans only: pytest would print both operands of `secret in text` on failure.
    leaked = [name for name, secret in SECRETS.items() if name.startswith("vault_") and secret in text]
    assert not leaked, f"the value of {leaked} appears in {log}"
