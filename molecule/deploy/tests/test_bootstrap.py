"""bootstrap.yml on one bare host playing a whole server: the firewall, SSH, unattended upgrades and
every service. prepare.yml bootstrapped it (check mode, for real, a second run that changed nothing,
the refusals); these tests run before test_deploy.py's, after the first deploy."""

from __future__ import annotations

import pytest
from shipshape_testing import molecule_hosts, run_ok

testinfra_hosts = molecule_hosts("web")
ADMIN = "opsadmin"
SSH = "ssh -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o ConnectTimeout=5"


@pytest.fixture(scope="module")
def ruleset(host) -> str:
    return run_ok(host, "nft list ruleset")


@pytest.fixture(scope="module")
def sshd(host) -> dict[str, str]:
    """sshd's effective settings (sshd -T: lowercase keyword, then the value)."""
    lines = run_ok(host, "sshd -T").splitlines()
    return dict(line.split(" ", 1) for line in lines if " " in line)


def test_input_policy_is_drop(ruleset):
    assert "table inet filter" in ruleset
    assert "type filter hook input priority filter; policy drop;" in ruleset
    assert "ct state established,related accept" in ruleset
    assert 'iif "lo" accept' in ruleset


@pytest.mark.parametrize("rule", ["tcp dport 22 accept", "tcp dport { 80, 443 } accept"])
def test_ssh_http_https_accepted(ruleset, rule):
    assert rule in ruleset


def test_essential_icmp_accepted(ruleset):
    for icmp in ("echo-request", "destination-unreachable", "time-exceeded"):
        assert icmp in ruleset
    for icmpv6 in ("packet-too-big", "nd-neighbor-solicit", "nd-neighbor-advert", "nd-router-advert"):
        assert icmpv6 in ruleset


def test_database_ports_stay_closed_on_one_server(ruleset):
    # PostgreSQL and Redis are on this host with the app: they are reached over loopback only.
    for port in ("5432", "6432", "6379"):
        assert f"dport {port}" not in ruleset


def test_firewall_loads_at_boot(host):
    assert host.service("nftables").is_enabled
    assert host.service("nftables").is_running
    # What is loaded is what the file says: a reload would change nothing.
    assert run_ok(host, "nft -c -f /etc/nftables.conf") == ""


@pytest.mark.parametrize(
    ("keyword", "value"),
    [
        ("port", "22"),
        ("passwordauthentication", "no"),
        ("kbdinteractiveauthentication", "no"),
        ("permitrootlogin", "no"),
        ("permitemptypasswords", "no"),
        ("x11forwarding", "no"),
        ("logingracetime", "30"),
    ],
)
def test_sshd_settings(sshd, keyword, value):
    assert sshd[keyword] == value


def test_sshd_runs_at_boot(host):
    assert host.service("ssh").is_enabled
    assert host.service("ssh").is_running
    assert host.socket("tcp://0.0.0.0:22").is_listening


@pytest.fixture(scope="module")
def login_key(host):
    """A key pair made for this test, authorized for the admin user and for root."""
    run_ok(host, "rm -f /tmp/login_key* && ssh-keygen -q -t ed25519 -N '' -f /tmp/login_key")
    for home in (f"/home/{ADMIN}", "/root"):
        run_ok(host, f"mkdir -p {home}/.ssh && cat /tmp/login_key.pub >> {home}/.ssh/authorized_keys")
    return "/tmp/login_key"


def test_admin_logs_in_with_a_key_and_has_sudo(host, login_key):
    out = run_ok(host, f"{SSH} -i {login_key} {ADMIN}@127.0.0.1 sudo -n id -u")
    assert out.strip() == "0"


def test_root_cannot_log_in_even_with_a_key(host, login_key):
    result = host.run(f"{SSH} -i {login_key} root@127.0.0.1 true")
    assert result.rc == 255
    assert "Permission denied" in result.stderr


def test_no_password_logins_are_offered(host):
    result = host.run(
        f"{SSH} -o PreferredAuthentications=password,keyboard-interactive {ADMIN}@127.0.0.1 true"
    )
    assert result.rc == 255
    # The server offers public keys only.
    assert "Permission denied (publickey)" in result.stderr


def test_admin_user_has_no_password(host):
    assert run_ok(host, f"getent shadow {ADMIN}").split(":")[1] == "*"
    assert run_ok(host, "visudo -c -f /etc/sudoers.d/shipshape-admins")


def test_unattended_upgrades_take_security_updates_only(host):
    assert host.package("unattended-upgrades").is_installed
    periodic = run_ok(host, "apt-config dump APT::Periodic")
    assert 'APT::Periodic::Update-Package-Lists "1";' in periodic
    assert 'APT::Periodic::Unattended-Upgrade "1";' in periodic
    origins = [
        line.split('"')[1]
        for line in run_ok(host, "apt-config dump Unattended-Upgrade::Origins-Pattern").splitlines()
        if line.startswith("Unattended-Upgrade::Origins-Pattern::")
    ]
    assert origins, "no origin allowed"
    assert all("label=Debian-Security" in origin for origin in origins), origins
    assert run_ok(host, "apt-config dump Unattended-Upgrade::Allowed-Origins").strip() in (
        "",
        'Unattended-Upgrade::Allowed-Origins "";',
    )
    assert host.service("apt-daily-upgrade.timer").is_enabled


# This scenario's host runs Debian 13 (as nginx's does; the others run Debian 12), and the
# PostgreSQL it packages, which postgresql_version defaults to there.
DEBIAN_RELEASE = "13"
POSTGRESQL_VERSION = "17"


def test_the_host_is_debian_13_and_runs_the_postgresql_it_packages(host):
    assert run_ok(host, "cat /etc/debian_version").split(".")[0] == DEBIAN_RELEASE
    cluster = run_ok(host, "pg_lsclusters --no-header").split()[:4]
    assert cluster == [POSTGRESQL_VERSION, "main", "5432", "online"]


@pytest.mark.parametrize(
    "service", ["nginx", "supervisor", f"postgresql@{POSTGRESQL_VERSION}-main", "pgbouncer", "redis-server"]
)
def test_every_service_runs_and_starts_at_boot(host, service):
    assert host.service(service).is_running
    assert host.service(service).is_enabled


def test_node_is_installed(host):
    assert run_ok(host, "node --version").startswith("v")
