"""Web, db and redis on separate hosts: the database and Redis accept the app host only.

Each probe runs on one test host and connects to another over the scenario's podman network.
A port the firewall drops makes a connection time out; a port with nothing behind it and no
firewall would refuse it at once: the tests tell the two apart.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from pathlib import Path

import pytest
import testinfra
import yaml
from shipshape_testing import app_model, molecule_hosts, run_ok

APP = app_model()
HOSTS = {group: molecule_hosts(group)[0].removeprefix("podman://") for group in ("web", "db", "redis")}
HOSTS["outsider"] = ({h.removeprefix("podman://") for h in molecule_hosts()} - set(HOSTS.values())).pop()
testinfra_hosts = [f"podman://{HOSTS['web']}"]
SERVICE_PORTS = {"db": 5432, "redis": 6379}


def network_address(container: str) -> str:
    """The container's IPv4 address on the scenario's podman network, as podman assigned it.

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


ADDRESSES = {role: network_address(name) for role, name in HOSTS.items()}

# Runs on a test host: connect to HOST:PORT, send DATA, print "accepted <what came back>",
# "dropped" (no answer: a firewall) or "refused" (nothing listens, nothing filters).
PROBE = r"""
import socket, sys
host, port, data = sys.argv[1], int(sys.argv[2]), sys.argv[3].replace("\\r\\n", "\r\n")
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
    """What a connection from one test host to another gets (names as in HOSTS)."""
    on = testinfra.get_host(f"podman://{HOSTS[source]}")
    args = " ".join(shlex.quote(arg) for arg in (ADDRESSES[target], str(port), data))
    return run_ok(on, f"python3 -c {shlex.quote(PROBE)} {args}").strip()


def demo_secret(name: str) -> str:
    """A demo-only secret from the inventory the scenario converges with."""
    project = Path(os.environ["MOLECULE_PROJECT_DIRECTORY"])
    return yaml.safe_load((project / "inventories/demo/group_vars/all/secrets.yml").read_text())[name]


def test_app_host_logs_in_to_postgresql(host):
    password = shlex.quote(demo_secret("vault_app_db_password"))
    name = APP["app_name"]
    psql = f"psql -XAt -h {ADDRESSES['db']} -U {name} -d {name} -c 'SELECT 1'"
    out = run_ok(host, f"PGPASSWORD={password} PGCONNECT_TIMEOUT=5 {psql}")
    assert out.strip() == "1"


def test_app_host_talks_to_redis():
    password = demo_secret("vault_app_redis_password")
    assert probe("web", "redis", 6379, f"AUTH {password}\\r\\nPING\\r\\n") == "accepted +OK +PONG"


@pytest.mark.parametrize(
    ("source", "target"),
    [
        ("outsider", "db"),
        ("outsider", "redis"),
        # Hosts of the inventory that are not app hosts get no more than an outsider.
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
    ruleset = run_ok(testinfra.get_host(f"podman://{HOSTS[target]}"), "nft list ruleset")
    rules = [line.strip() for line in ruleset.splitlines() if f"dport {SERVICE_PORTS[target]} " in line]
    assert len(rules) == 1, ruleset
    assert re.findall(r"saddr \{? ?([0-9a-f.:/]+)", rules[0]) == [web_address], rules[0]
