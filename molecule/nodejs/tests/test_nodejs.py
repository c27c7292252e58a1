"""The nodejs role on a systemd host: the distribution's node and npm run, also as the app user, and
NodeSource's repository is defined (side_effect.yml) without anything fetched from it."""

import re
from pathlib import Path

import pytest
from shipshape_testing import app_model, molecule_hosts, run_ok

testinfra_hosts = molecule_hosts()
APP = app_model()
# side_effect.yml renders NodeSource's repository for this major, with this test key.
NODESOURCE_MAJOR = 22
TEST_KEY = Path(__file__).parents[1] / "files/test-repo-key.asc"
SOURCES = "/etc/apt/sources.list.d/nodesource.sources"
KEYRING = "/etc/apt/keyrings/nodesource.asc"
PREFERENCES = "/etc/apt/preferences.d/nodesource.pref"


def node_major(version: str) -> int:
    match = re.match(r"^v(\d+)\.\d+\.\d+$", version.strip())
    assert match, f"node --version printed {version!r}"
    return int(match.group(1))


def test_node_is_recent_enough(host):
    assert node_major(run_ok(host, "node --version")) >= 18


@pytest.mark.parametrize("package", ["nodejs", "npm"])
def test_distribution_packages_installed(host, package):
    assert host.package(package).is_installed


def test_npm_runs(host):
    assert re.match(r"^\d+\.\d+\.\d+$", run_ok(host, "npm --version").strip())


def test_node_and_npm_run_as_the_app_user(host):
    user = APP["app_user"]
    uid = host.user(user).uid
    out = run_ok(host, f"sudo -u {user} -H node -e 'console.log(process.getuid(), process.version)'")
    reported_uid, version = out.split()
    assert int(reported_uid) == uid
    assert node_major(version) >= 18
    # npm reads its config from the user's home: it must work there, not only as root.
    run_ok(host, f"cd /tmp && sudo -u {user} -H npm --version")
    run_ok(host, f"cd /tmp && sudo -u {user} -H npm config get cache")


def test_nodesource_repository_definition(host):
    sources = host.file(SOURCES)
    assert sources.exists and sources.user == "root" and sources.mode == 0o644
    fields = dict(
        line.split(": ", 1)
        for line in sources.content_string.splitlines()
        if line and not line.startswith("#")
    )
    assert fields == {
        "Types": "deb",
        "URIs": f"https://deb.nodesource.com/node_{NODESOURCE_MAJOR}.x",
        "Suites": "nodistro",
        "Components": "main",
        "Signed-By": KEYRING,
    }
    # apt itself parses the file (comments and all) and would fetch from exactly this URI.
    targets = run_ok(host, "apt-get indextargets --no-release-info --format '$(REPO_URI) $(RELEASE)'")
    assert f"https://deb.nodesource.com/node_{NODESOURCE_MAJOR}.x/ nodistro" in targets


def test_nodesource_keyring_is_the_given_key(host):
    keyring = host.file(KEYRING)
    assert keyring.user == "root" and keyring.mode == 0o644
    assert keyring.content_string == TEST_KEY.read_text()


def test_nodesource_pin_prefers_nodesource(host):
    pin = host.file(PREFERENCES).content_string
    assert "Package: nodejs\nPin: origin deb.nodesource.com\nPin-Priority: 600" in pin
    # apt reads the preferences without complaint.
    result = host.run("apt-cache policy nodejs")
    assert result.rc == 0 and "E:" not in result.stderr and "W:" not in result.stderr, result.stderr


def test_nothing_fetched_from_nodesource(host):
    assert host.run("ls /var/lib/apt/lists/ | grep -i nodesource").rc != 0
    # The distribution's nodejs is still the one installed.
    assert "nodesource" not in host.package("nodejs").version
