"""Web, db and redis on separate hosts: the database and Redis accept the app host only.

Each host has two addresses: podman's, on its default route, and its shipshape_private_address
(host_vars/) on a private network beside it. PostgreSQL and Redis must listen on the private one
alone, let the app host in by its private address alone, and the deployed app must reach them there.

Each probe runs on one test host and connects to another over the private network. A port the
firewall drops makes a connection time out; a port with nothing behind it and no firewall would
refuse it at once: the tests tell the two apart.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import testinfra
import yaml
from shipshape_playbook import run_playbook
from shipshape_testing import app_model, curl, json_of, molecule_hosts, run_ok, run_with_secrets

APP = app_model()
HOSTS = {group: molecule_hosts(group)[0].removeprefix("podman://") for group in ("web", "db", "redis")}
HOSTS["outsider"] = ({h.removeprefix("podman://") for h in molecule_hosts()} - set(HOSTS.values())).pop()
testinfra_hosts = [f"podman://{HOSTS['web']}"]
SERVICE_PORTS = {"db": 5432, "redis": 6379}


def network_address(container: str) -> str:
    """The container's IPv4 address on the scenario's podman network, as podman assigned it: the
    address of its default route, which the roles would use without shipshape_private_address.

    The probes connect to addresses, not names: whether podman resolves container names depends
    on its network backend (CNI needs the dnsname plugin, netavark aardvark-dns), and the roles
    under test use addresses (facts) too.
    """
    template = "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}"
    out = subprocess.run(
        ["podman", "container", "inspect", "--format", template, container],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert len(out) == 1, f"{container}: expected one network address, podman says {out}"
    return out[0]


def private_address(container: str) -> str:
    """The container's shipshape_private_address, from the scenario's host_vars (prepare.yml adds it)."""
    host_vars = Path(__file__).parents[1] / "host_vars" / f"{container}.yml"
    return yaml.safe_load(host_vars.read_text())["shipshape_private_address"]


DEFAULT_ADDRESSES = {role: network_address(name) for role, name in HOSTS.items()}
ADDRESSES = {role: private_address(name) for role, name in HOSTS.items()}

# Runs on a test host: connect to HOST:PORT, send DATA, print "accepted <what came back>",
# "dropped" (no answer: a firewall) or "refused" (nothing listens, nothing filters).
PROBE = r"""
import os, socket, sys
host, port, data = sys.argv[1], int(sys.argv[2]), os.environ["PROBE_DATA"].replace("\\r\\n", "\r\n")
try:
    conn = socket.create_connection((host, port), timeout=3)
except socket.timeout:
    print("dropped")
except ConnectionRefusedError:
    print("refused")
else:
    conn.sendall(data.encode())
    conn.settimeout(1)
    reply = b""
    try:
        while chunk := conn.recv(200):
            reply += chunk
    except socket.timeout:
        pass
    print("accepted", " ".join(reply.decode(errors="replace").split()))
"""


def probe(source: str, target: str, port: int, data: str = "") -> str:
    """What a connection from one test host to another's private address gets (names as in HOSTS).

    What it sends may hold a password (AUTH): it goes to the host on stdin (run_with_secrets)."""
    on = testinfra.get_host(f"podman://{HOSTS[source]}")
    command = f"python3 -c {shlex.quote(PROBE)} {shlex.quote(ADDRESSES[target])} {port}"
    result = run_with_secrets(on, command, PROBE_DATA=data)
    assert result.rc == 0, f"{command!r} exited {result.rc}: {result.stdout}{result.stderr}"
    return result.stdout.strip()


def demo_secret(name: str) -> str:
    """A demo-only secret from the inventory the scenario converges with."""
    project = Path(os.environ["MOLECULE_PROJECT_DIRECTORY"])
    return yaml.safe_load((project / "inventories/demo/group_vars/all/secrets.yml").read_text())[name]


def on(role: str) -> testinfra.host.Host:
    return testinfra.get_host(f"podman://{HOSTS[role]}")


def as_postgres(sql: str) -> list[str]:
    """Rows of a query run on the db host as the postgres superuser, one line each."""
    return run_ok(on("db"), f"runuser -u postgres -- psql -XAt -c {shlex.quote(sql)}").split()


def redis_clients() -> list[dict[str, str]]:
    """Redis's CLIENT LIST, asked on the redis host (over loopback), one dict per connection."""
    password = demo_secret("vault_app_redis_password")
    result = run_with_secrets(on("redis"), "redis-cli -h 127.0.0.1 CLIENT LIST", REDISCLI_AUTH=password)
    assert result.rc == 0, result.stderr
    lines = result.stdout.splitlines()
    return [dict(field.split("=", 1) for field in line.split() if "=" in field) for line in lines]


def host_part(address_port: str) -> str:
    return address_port.rsplit(":", 1)[0]


def test_app_host_logs_in_to_postgresql(host):
    name = APP["app_name"]
    psql = f"PGCONNECT_TIMEOUT=5 psql -XAt -h {ADDRESSES['db']} -U {name} -d {name} -c 'SELECT 1'"
    result = run_with_secrets(host, psql, PGPASSWORD=demo_secret("vault_app_db_password"))
    assert (result.rc, result.stdout.strip()) == (0, "1"), result.stderr


def test_app_host_talks_to_redis():
    password = demo_secret("vault_app_redis_password")
    assert probe("web", "redis", 6379, f"AUTH {password}\\r\\nPING\\r\\n") == "accepted +OK +PONG"


@pytest.mark.parametrize(("target", "port"), [("db", 5432), ("redis", 6379)])
def test_services_listen_on_the_private_address_not_the_default_one(target, port):
    assert ADDRESSES[target] != DEFAULT_ADDRESSES[target]
    listeners = run_ok(on(target), f"ss -Hltn 'sport = :{port}'")
    assert sorted(line.split()[3] for line in listeners.splitlines()) == sorted(
        [f"127.0.0.1:{port}", f"{ADDRESSES[target]}:{port}"]
    ), listeners


def test_pg_hba_lets_the_app_host_in_by_its_private_address_alone():
    rules = as_postgres(
        "SELECT address || '/' || netmask FROM pg_hba_file_rules"
        f" WHERE type = 'host' AND user_name = '{{{APP['app_name']}}}'"
    )
    assert rules == [f"{ADDRESSES['web']}/255.255.255.255"]


def test_the_app_environment_connects_to_the_private_addresses(host):
    env = run_ok(host, f"cat {APP['app_root']}/shared/env/web.env")
    urls = dict(re.findall(r"^(DATABASE_URL|DIRECT_URL|REDIS_URL)='([^']*)'$", env, re.MULTILINE))
    assert {name: urlsplit(url).hostname for name, url in urls.items()} == {
        "DATABASE_URL": ADDRESSES["db"],
        "DIRECT_URL": ADDRESSES["db"],
        "REDIS_URL": ADDRESSES["redis"],
    }


def test_the_app_reaches_postgresql_and_redis_from_its_private_address(host):
    status, body = curl(host, f"http://127.0.0.1{APP['app_processes'][0]['health_path']}")
    assert (status, json_of(body)["checks"]) == (200, {"database": "ok", "redis": "ok"}), body
    # The health check's connection stays in the pool for 10 s (the sample app's idle timeout).
    user = APP["app_name"]
    clients = as_postgres(f"SELECT DISTINCT host(client_addr) FROM pg_stat_activity WHERE usename = '{user}'")
    assert clients == [ADDRESSES["web"]]
    # The worker's queue connections stay open; redis-cli's own comes over loopback.
    connections = [c for c in redis_clients() if not c["addr"].startswith("127.0.0.1:")]
    assert connections
    pairs = {(host_part(c["addr"]), host_part(c["laddr"])) for c in connections}
    assert pairs == {(ADDRESSES["web"], ADDRESSES["redis"])}


def test_the_deploy_dumped_the_database_on_the_db_host_before_migrating(host):
    # Taken where PostgreSQL runs, as postgres over its socket: the web host has no dump.
    backups = f"/var/backups/shipshape/{APP['app_name']}"
    release = run_ok(host, f"readlink {APP['app_root']}/current").strip().removeprefix("releases/")
    dumps = run_ok(on("db"), f"ls -1 {backups}").split()
    assert len(dumps) == 1 and dumps[0].endswith(f"-before-{release}.dump"), dumps
    # A whole archive of the app's database, taken before the first migrations: it has no table yet.
    listing = run_ok(on("db"), f"runuser -u postgres -- pg_restore --list {backups}/{dumps[0]}")
    assert "Format: CUSTOM" in listing and f"dbname: {APP['app_name']}" in listing, listing
    assert not on("web").file(backups).exists


@pytest.mark.parametrize(
    ("source", "target"),
    [
        ("outsider", "db"),
        ("outsider", "redis"),
        # Hosts of the inventory that are not app hosts get no more than an outsider (the outsider
        # is on the private network too).
        ("db", "redis"),
        ("redis", "db"),
    ],
)
def test_everyone_else_is_dropped(source, target):
    assert probe(source, target, SERVICE_PORTS[target]) == "dropped"


@pytest.mark.parametrize("target", ["db", "redis"])
def test_unlisted_ports_are_dropped_not_refused(target):
    # Nothing listens on port 80 there: without the firewall the connection would be refused.
    assert probe("outsider", target, 80) == "dropped"


@pytest.mark.parametrize("target", ["web", "db", "redis"])
def test_ssh_is_open_to_everyone(target):
    assert probe("outsider", target, 22).startswith("accepted SSH-2.0-")


def test_web_host_serves_http_to_everyone():
    assert probe("outsider", "web", 80, "GET / HTTP/1.0\\r\\n\\r\\n").startswith("accepted HTTP/1.1 ")


@pytest.mark.parametrize("target", ["db", "redis"])
def test_firewall_names_the_app_host_alone(host, target):
    web_address = ADDRESSES["web"]
    assert web_address in run_ok(host, "hostname -I").split()
    ruleset = run_ok(on(target), "nft list ruleset")
    rules = [line.strip() for line in ruleset.splitlines() if f"dport {SERVICE_PORTS[target]} " in line]
    assert len(rules) == 1, ruleset
    # Every address the rule lets in, a set ({ a, b }) read whole: the web host's must be alone.
    sources = re.findall(r"saddr (\{[^}]*\}|\S+)", rules[0])
    assert len(sources) == 1, rules[0]
    assert [address.strip() for address in sources[0].strip("{}").split(",")] == [web_address], rules[0]


# What a refused run must leave as it was: each service host's configuration and listeners.
STATE = (
    "sha256sum /etc/nftables.conf /etc/postgresql/*/main/pg_hba.conf /etc/postgresql/*/main/conf.d/*"
    " /etc/redis/redis.conf 2>/dev/null; ss -Hltn"
)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("db.internal", "is not an IP address"),
        # An address of the private network, but the redis host's.
        ("192.168.77.30", "192.168.77.30 is not an address of this host"),
    ],
)
def test_a_bad_private_address_on_one_host_stops_every_host_before_a_change(value, reason):
    before = {role: on(role).run(STATE).stdout for role in ("web", "db", "redis")}
    # The db host's value replaced, every other host's kept (extra vars apply to every host).
    values = {name: private_address(name) for name in HOSTS.values()} | {HOSTS["db"]: value}
    expression = f"{{{{ {json.dumps(values)}[inventory_hostname] }}}}"
    run = run_playbook("bootstrap.yml", "-e", json.dumps({"shipshape_private_address": expression}))
    assert not run.ok, run.output
    message = " ".join(run.output.split())
    assert f"shipshape_private_address of {HOSTS['db']}: " in message, run.output
    assert reason in message, run.output
    # No role's play started on any host, and nothing on them changed.
    assert "PLAY [Check the inventory before changing any host]" not in run.output, run.output
    assert {role: on(role).run(STATE).stdout for role in ("web", "db", "redis")} == before
