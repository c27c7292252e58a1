"""The base role's real state on a systemd host: user, release tree, kernel, limits."""

import pytest
from shipshape_testing import app_model, molecule_hosts, run_ok

testinfra_hosts = molecule_hosts()
APP = app_model()
# base_nofile_limit set for this scenario in molecule.yml (below the sandbox's cap).
NOFILE = "16384"


def test_app_user_is_unprivileged(host):
    user = host.user(APP["app_user"])
    assert user.exists
    assert user.uid != 0 and user.gid != 0
    assert user.group == APP["app_user"]
    # Not root-equivalent: no admin group, no sudo rule.
    assert not {"sudo", "root", "adm", "wheel"} & set(user.groups)
    assert host.run(f"sudo -l -U {APP['app_user']}").stdout.count("may run") == 0
    assert user.shell == "/usr/sbin/nologin"
    assert host.file(user.home).is_directory
    assert host.file(user.home).user == APP["app_user"]


@pytest.mark.parametrize("sub", ["", "/releases", "/shared"])
def test_release_tree_is_roots_and_readable_by_the_app_group(host, sub):
    """Root deploys in these: the app user may read and enter them, not rename what is in them."""
    directory = host.file(APP["app_root"] + sub)
    assert directory.is_directory and not directory.is_symlink
    assert directory.user == "root"
    assert directory.group == APP["app_user"]
    assert directory.mode == 0o750


@pytest.mark.parametrize("sub", ["uploads", "logs", "npm-cache"])
def test_the_directories_the_app_writes_are_the_app_users(host, sub):
    directory = host.file(f"{APP['app_root']}/shared/{sub}")
    assert directory.is_directory and not directory.is_symlink
    assert (directory.user, directory.group, directory.mode) == (APP["app_user"], APP["app_user"], 0o750)


def test_app_user_writes_its_directories_only_and_others_cannot_read(host):
    """What an app could do to have root chown or write through a symlink: swap an entry of shared."""
    user, shared = APP["app_user"], f"{APP['app_root']}/shared"
    run_ok(host, f"sudo -u {user} touch {shared}/uploads/probe && rm {shared}/uploads/probe")
    swap = host.run(
        f"sudo -u {user} sh -c 'mv {shared}/uploads {shared}/x && ln -s /usr/local/sbin {shared}/uploads'"
    )
    assert swap.rc != 0 and host.file(f"{shared}/uploads").is_directory
    assert host.run(f"sudo -u {user} touch {APP['app_root']}/releases/probe").rc != 0
    assert host.run(f"sudo -u nobody ls {APP['app_root']}").rc != 0


@pytest.mark.parametrize("package", ["acl", "ca-certificates", "curl", "git", "psmisc", "rsync", "chrony"])
def test_base_packages_installed(host, package):
    assert host.package(package).is_installed


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("net.core.somaxconn", "4096"),
        ("net.ipv4.tcp_max_syn_backlog", "4096"),
        ("net.ipv4.ip_local_port_range", "10240\t65535"),
    ],
)
def test_sysctl_live_in_kernel(host, key, value):
    path = "/proc/sys/" + key.replace(".", "/")
    assert host.file(path).content_string.strip() == value
    assert key in host.file("/etc/sysctl.d/60-shipshape.conf").content_string


def test_nofile_limit_for_services(host):
    # systemd was re-executed, so a service started now gets the raised limit.
    assert run_ok(host, "systemctl show -p DefaultLimitNOFILE --value").strip() == NOFILE
    run_ok(
        host, "systemd-run --wait --collect -p Type=oneshot --unit=limitprobe sh -c 'ulimit -n > /tmp/nofile'"
    )
    assert host.file("/tmp/nofile").content_string.strip() == NOFILE


def test_nofile_limit_for_app_user_sessions(host):
    limits = host.file("/etc/security/limits.d/60-shipshape.conf").content_string
    assert f"{APP['app_user']}    hard    nofile    {NOFILE}" in limits
    # A PAM session (su runs pam_limits) of the app user gets the limit.
    out = run_ok(host, f"su -s /bin/sh -c 'ulimit -Hn' {APP['app_user']}")
    assert out.strip() == NOFILE


def test_time_sync_configured(host):
    assert host.service("chrony").is_enabled
    assert "pool 0.debian.pool.ntp.org iburst" in host.file("/etc/chrony/chrony.conf").content_string
