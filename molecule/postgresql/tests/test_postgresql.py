"""The postgresql role's real state: who may log in from where, the settings the budget used, and load."""

import json
import os
import re
import shlex
import subprocess
from pathlib import Path

import pytest
import yaml
from shipshape_testing import app_model, molecule_hosts, run_ok, run_with_secrets

testinfra_hosts = molecule_hosts("db")
APP = app_model()
PROJECT = Path(os.environ.get("MOLECULE_PROJECT_DIRECTORY", Path(__file__).parents[3]))
SECRETS = yaml.safe_load((PROJECT / "inventories/demo/group_vars/all/secrets.yml").read_text())
PASSWORD = SECRETS["vault_app_db_password"]
DATABASE = ROLE = APP["app_name"]
DROP_IN = "/etc/postgresql/15/main/conf.d/60-shipshape.conf"
# side_effect.yml leaves PgBouncer on, with the role's defaults, for the app on loopback and on
# the host's network address (as for a remote web host).
PGBOUNCER_PORT = 6432
PGBOUNCER_INI = "/etc/pgbouncer/pgbouncer.ini"
SESSION_DATABASE = f"{DATABASE}_session"
# Lines recorded under this key are printed in pytest's summary (tests/conftest.py).
REPORT_KEY = "shipshape_report"


def app_psql(host, sql, password=PASSWORD, user=ROLE, database=DATABASE, port=5432, address="127.0.0.1"):
    """psql over TCP (to 127.0.0.1 unless told) with a password; returns the command's result."""
    return run_with_secrets(
        host,
        f"PGCONNECT_TIMEOUT=10 psql -h {address} -p {port} -U {user} -d {database} -XAtc {shlex.quote(sql)}",
        PGPASSWORD=password,
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
    derived = min(max(memtotal_mb // 800 * 10, 100), 400)
    assert running == budgeted == derived, (
        f"SHOW max_connections {running}, budget table {budgeted}, derived from {memtotal_mb} MB {derived}"
    )
    shared_buffers = admin_psql(host, "SHOW shared_buffers")
    assert shared_buffers == f"{max(memtotal_mb * 25 // 100 // 64 * 64, 128)}MB"
    record_property(
        REPORT_KEY,
        f"budget: host {memtotal_mb} MB -> max_connections {running}, shared_buffers {shared_buffers},"
        f" available to the app {budget_figure(host, '= available to the app')},"
        # side_effect.yml leaves PgBouncer on: the app's pools go to it, its server pool to PostgreSQL.
        f" app pools into PgBouncer {budget_figure(host, 'app pools into PgBouncer')},"
        f" PgBouncer's server pool {budget_figure(host, '= demand on PostgreSQL')}",
    )


def test_app_role_limits(host):
    assert app_psql(host, "SHOW statement_timeout").stdout.strip() == "30s"
    assert app_psql(host, "SHOW idle_in_transaction_session_timeout").stdout.strip() == "1min"
    limit = admin_psql(host, f"SELECT rolconnlimit FROM pg_roles WHERE rolname = '{ROLE}'")
    assert int(limit) == budget_figure(host, "= available to the app")


# The probe scripts and what they share, copied to the host to run there.
PROBE_FILES = ("probe_common.py", "load_probe.py", "pgbouncer_probe.py")


def run_probe(host, script: str, *args: object) -> dict:
    """Run a probe script of this directory on the host, as postgres with the app role's password
    in its environment (which libpq reads); the JSON report it prints last."""
    probes = run_ok(host, "runuser -u postgres -- mktemp -d /tmp/shipshape-probes.XXXXXX").strip()
    try:
        for name in PROBE_FILES:
            subprocess.run(
                ["podman", "cp", str(Path(__file__).parent / name), f"{host.backend.name}:{probes}/{name}"],
                check=True,
            )
        arguments = " ".join(shlex.quote(str(arg)) for arg in args)
        command = f"cd {probes} && runuser -u postgres -- python3 {script} {arguments}"
        result = run_with_secrets(host, command, PGPASSWORD=PASSWORD)
    finally:
        host.run(f"rm -rf {probes}")
    assert result.rc == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_load_every_granted_connection_runs_at_once(host, record_property):
    """As many connections as the budget grants the app, all at once, each running a query."""
    granted = budget_figure(host, "= available to the app")
    report = run_probe(host, "load_probe.py", granted, DATABASE, ROLE)
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


def pgbouncer_setting(host, name):
    """A setting from PgBouncer's ini as the role rendered it."""
    ini = host.file(PGBOUNCER_INI).content_string
    match = re.search(rf"^{re.escape(name)} = (.*)$", ini, re.MULTILINE)
    assert match, f"no {name} in {PGBOUNCER_INI}:\n{ini}"
    return match.group(1).strip()


def test_pgbouncer_runs_and_starts_at_boot(host):
    service = host.service("pgbouncer")
    assert service.is_running
    assert service.is_enabled


def network_address(host):
    """The host's own address that side_effect.yml let the app in on, besides loopback."""
    addresses = pgbouncer_setting(host, "listen_addr").split(",")
    others = [address for address in addresses if address != "127.0.0.1"]
    assert "127.0.0.1" in addresses and len(others) == 1, addresses
    return others[0]


def test_pgbouncer_listens_where_the_app_connects_and_postgresql_on_loopback_only(host):
    sockets = host.socket.get_listening_sockets()

    def listeners(port):
        return {socket.split("://")[1] for socket in sockets if socket.endswith(f":{port}")}

    expected = {f"{address}:{PGBOUNCER_PORT}" for address in ("127.0.0.1", network_address(host))}
    assert listeners(PGBOUNCER_PORT) == expected
    # postgresql_listen_addresses names the network address too: with PgBouncer on, that is
    # PgBouncer's; PostgreSQL stays on loopback (off, side_effect.yml saw it listen there).
    assert listeners(5432) == {"127.0.0.1:5432"}


@pytest.mark.parametrize("where", ["loopback", "network address"])
def test_app_role_logs_in_through_pgbouncer_with_its_password(host, where):
    address = "127.0.0.1" if where == "loopback" else network_address(host)
    # The client is on PgBouncer's port; the server it reaches is PostgreSQL, on its own.
    result = app_psql(
        host,
        "SELECT current_user || ' ' || inet_server_port() || ' ' || 6 * 7",
        port=PGBOUNCER_PORT,
        address=address,
    )
    assert result.rc == 0, result.stderr
    assert result.stdout.strip() == f"{ROLE} 5432 42"


def test_postgresql_is_not_reachable_on_the_network_address(host):
    result = app_psql(host, "SELECT 1", address=network_address(host))
    assert result.rc != 0
    assert "Connection refused" in result.stderr, result.stderr


def test_pgbouncer_refuses_a_wrong_password_and_other_roles(host):
    wrong = app_psql(host, "SELECT 1", password="not-" + PASSWORD, port=PGBOUNCER_PORT)
    assert wrong.rc != 0
    # PgBouncer's own words for a failed SCRAM exchange: the password was checked with scram-sha-256.
    assert "SASL authentication failed" in wrong.stderr, wrong.stderr
    superuser = app_psql(host, "SELECT 1", user="postgres", database="postgres", port=PGBOUNCER_PORT)
    assert superuser.rc != 0, "PgBouncer let postgres in over TCP"


def test_pgbouncer_keeps_postgresqls_scram_verifier_not_the_password(host):
    userlist = host.file("/etc/pgbouncer/userlist.txt")
    assert (userlist.user, userlist.group, userlist.mode) == ("postgres", "postgres", 0o640)
    verifier = admin_psql(host, f"SELECT rolpassword FROM pg_authid WHERE rolname = '{ROLE}'")
    # Booleans only: pytest would print both operands of a failed comparison.
    holds_the_verifier = userlist.content_string == f'"{ROLE}" "{verifier}"\n'
    assert verifier.startswith("SCRAM-SHA-256$") and holds_the_verifier, "userlist.txt is not the verifier"
    leaked = PASSWORD in userlist.content_string
    assert not leaked, "the app role's password is in userlist.txt"


def test_pgbouncer_files_are_postgres_only_and_scram(host):
    for path in (PGBOUNCER_INI, "/etc/pgbouncer/pg_hba.conf"):
        config = host.file(path)
        assert (config.user, config.group, config.mode) == ("postgres", "postgres", 0o640), path
    hba = [line.split() for line in host.file("/etc/pgbouncer/pg_hba.conf").content_string.splitlines()]
    assert [line for line in hba if line and not line[0].startswith("#")] == [
        ["host", database, ROLE, network, "scram-sha-256"]
        for database in (DATABASE, SESSION_DATABASE)
        for network in ("127.0.0.1/32", f"{network_address(host)}/32")
    ]
    assert pgbouncer_setting(host, "auth_type") == "hba"
    assert pgbouncer_setting(host, "pool_mode") == "transaction"
    # Booleans only, as in test_no_password_in_any_ansible_output.
    pgbouncer_log = host.file("/var/log/postgresql/pgbouncer.log").content_string
    leaked = PASSWORD in pgbouncer_log
    assert not leaked, "the app role's password appears in PgBouncer's log"


def session_pool_size(host):
    """pool_size of the session-mode database in pgbouncer.ini's [databases]."""
    ini = host.file(PGBOUNCER_INI).content_string
    match = re.search(rf"^{SESSION_DATABASE} = .* pool_mode=session pool_size=(\d+) ", ini, re.MULTILINE)
    assert match, f"no session-mode {SESSION_DATABASE} in {PGBOUNCER_INI}:\n{ini}"
    return int(match.group(1))


def test_budget_is_what_pgbouncer_is_configured_with(host):
    cap = int(pgbouncer_setting(host, "max_db_connections"))
    pools = sum(int(pgbouncer_setting(host, name)) for name in ("default_pool_size", "reserve_pool_size"))
    assert cap == pools
    assert cap + session_pool_size(host) == budget_figure(host, "= demand on PostgreSQL")
    accepted = int(pgbouncer_setting(host, "max_client_conn"))
    assert accepted == budget_figure(host, "= app connections PgBouncer accepts")


def test_session_mode_database_keeps_a_session_advisory_lock_across_transactions(host):
    """What migrations need and transaction pooling does not give: one server session per client."""
    lock = (
        "SELECT pg_backend_pid() || ' ' || current_database() FROM (SELECT pg_advisory_lock(4242)) AS locked"
    )
    held = (
        "SELECT pg_backend_pid() || ' ' || count(*) FROM pg_locks"
        " WHERE locktype = 'advisory' AND objid = 4242 AND pid = pg_backend_pid()"
    )
    result = run_with_secrets(
        host,
        f"PGCONNECT_TIMEOUT=10 psql -h 127.0.0.1 -p {PGBOUNCER_PORT}"
        f" -U {ROLE} -d {SESSION_DATABASE} -XAt -c {shlex.quote(lock)} -c {shlex.quote(held)}",
        PGPASSWORD=PASSWORD,
    )
    assert result.rc == 0, result.stderr
    (pid, database), (same_pid, locks) = (line.split() for line in result.stdout.splitlines())
    assert database == DATABASE
    # Two transactions (psql autocommits each -c), one backend, the lock still held in the second.
    assert (same_pid, locks) == (pid, "1")


def test_pgbouncer_caps_server_connections_in_transaction_mode(host, record_property):
    """More clients than PgBouncer may open to PostgreSQL, each holding a transaction, all connected."""
    cap = int(pgbouncer_setting(host, "max_db_connections"))
    default_pool = int(pgbouncer_setting(host, "default_pool_size"))
    clients, sleep_s = cap + 5, 6
    report = run_probe(host, "pgbouncer_probe.py", clients, PGBOUNCER_PORT, DATABASE, ROLE, sleep_s)
    summary = (
        f"pgbouncer: {report['ok']} of {clients} clients ran a {sleep_s} s transaction while all stayed"
        f" connected, PostgreSQL saw at most {report.get('active_at_once')} of them at once"
        f" (max_db_connections {cap}), in {report.get('queries_s')} s"
    )
    record_property(REPORT_KEY, summary)
    assert report["ok"] == clients and not report["errors"], f"{summary}; errors: {report['errors']}"
    # Never more than the cap; the reserve opens after reserve_pool_timeout (5 s) of waiting,
    # which the 6 s transactions exceed, so at least the default pool ran at once.
    assert default_pool <= report["active_at_once"] <= cap, summary


def test_no_password_in_postgresqls_log(host):
    """converge ran with log_statement = ddl: the role's CREATE ROLE is logged, its password is not."""
    log = run_ok(host, "cat /var/log/postgresql/postgresql-15-main.log")
    # The audit log was on: the role's CREATE DATABASE, right after CREATE ROLE, is in it.
    assert "statement: CREATE DATABASE" in log, log[-2000:]
    # Booleans only: pytest would print both operands of `secret in text` on failure.
    leaked = PASSWORD in log
    assert not leaked, "the app role's password appears in PostgreSQL's log"


def test_no_password_in_any_ansible_output():
    inventory = Path(os.environ["MOLECULE_INVENTORY_FILE"])
    log = inventory.parents[1] / "ansible.log"
    text = log.read_text()
    # The log holds the check, converge and idempotence runs and the side effect's runs with
    # PgBouncer (check, converge, off, -vvv on).
    holds_the_runs = (
        "Create the app role" in text
        and "module_args" in text
        and "Give PgBouncer the app role's SCRAM verifier" in text
        and "Remove PgBouncer's copy of the app role's SCRAM verifier" in text
    )
    assert holds_the_runs, f"{log} lacks the runs it should hold"
    # Booleans only: pytest would print both operands of `secret in text` on failure.
    leaked = [name for name, secret in SECRETS.items() if name.startswith("vault_") and secret in text]
    assert not leaked, f"the value of {leaked} appears in {log}"
