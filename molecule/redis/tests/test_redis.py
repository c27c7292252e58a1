"""The redis role's real state: a password, no eviction, an append-only file that survives a restart."""

import os
import shlex
import uuid
from pathlib import Path

import yaml
from shipshape_testing import molecule_hosts, run_ok, run_with_secrets

testinfra_hosts = molecule_hosts("redis")
PROJECT = Path(os.environ.get("MOLECULE_PROJECT_DIRECTORY", Path(__file__).parents[3]))
SECRETS = yaml.safe_load((PROJECT / "inventories/demo/group_vars/all/secrets.yml").read_text())
PASSWORD = SECRETS["vault_app_redis_password"]


def redis_cli(host, *args, password=PASSWORD):
    """redis-cli over TCP to 127.0.0.1, the password in REDISCLI_AUTH (sent on stdin, run_with_secrets)."""
    command = f"redis-cli -h 127.0.0.1 -p 6379 {' '.join(shlex.quote(arg) for arg in args)}"
    return run_with_secrets(host, command, **({"REDISCLI_AUTH": password} if password else {}))


def test_ping_without_password_is_refused(host):
    result = redis_cli(host, "PING", password=None)
    assert "NOAUTH Authentication required" in result.stdout + result.stderr


def test_ping_with_a_wrong_password_is_refused(host):
    result = redis_cli(host, "PING", password="not-" + PASSWORD)
    assert "WRONGPASS" in result.stdout + result.stderr


def test_ping_with_the_password_answers_pong(host):
    result = redis_cli(host, "PING")
    assert result.stdout.strip() == "PONG", result.stderr


def test_no_eviction_and_memory_from_the_host(host):
    assert redis_cli(host, "CONFIG", "GET", "maxmemory-policy").stdout.split() == [
        "maxmemory-policy",
        "noeviction",
    ]
    memtotal_mb = int(host.file("/proc/meminfo").content_string.split()[1]) // 1024
    maxmemory = int(redis_cli(host, "CONFIG", "GET", "maxmemory").stdout.split()[1])
    assert maxmemory == max(memtotal_mb * 25 // 100 // 64 * 64, 64) * 1024 * 1024
    assert redis_cli(host, "CONFIG", "GET", "protected-mode").stdout.split() == ["protected-mode", "yes"]


def test_append_only_file_is_on(host):
    info = redis_cli(host, "INFO", "persistence").stdout
    assert "aof_enabled:1" in info
    assert redis_cli(host, "CONFIG", "GET", "appendfsync").stdout.split() == ["appendfsync", "everysec"]


def test_a_key_survives_a_kill_9(host):
    """SIGKILL leaves Redis no shutdown to write an RDB snapshot in: only the append-only file keeps it."""
    key, value = f"shipshape:probe:{uuid.uuid4().hex}", uuid.uuid4().hex
    assert redis_cli(host, "SET", key, value).stdout.strip() == "OK"
    pid_before = run_ok(host, "systemctl show -p MainPID --value redis-server").strip()
    run_ok(host, f"kill -9 {pid_before}; while kill -0 {pid_before} 2>/dev/null; do sleep 0.1; done")
    # systemd may already be restarting it (Restart=always); start waits for that or starts it.
    run_ok(host, "systemctl start redis-server")
    pid_after = run_ok(host, "systemctl show -p MainPID --value redis-server").strip()
    assert pid_after not in (pid_before, "0"), "redis-server was not started again"
    assert redis_cli(host, "GET", key).stdout.strip() == value
    redis_cli(host, "DEL", key)


def test_listens_on_loopback_ipv4_only(host):
    sockets = host.socket.get_listening_sockets()
    assert {socket.split("://")[1] for socket in sockets if socket.endswith(":6379")} == {"127.0.0.1:6379"}


def test_supervised_by_systemd(host):
    assert run_ok(host, "systemctl show -p Type --value redis-server").strip() == "notify"
    assert host.service("redis-server").is_enabled
    assert "supervised systemd" in host.file("/etc/redis/redis.conf").content_string


def test_password_file_is_readable_by_redis_only(host):
    auth = host.file("/etc/redis/shipshape-auth.conf")
    assert (auth.user, auth.group, auth.mode) == ("root", "redis", 0o640)
    assert PASSWORD not in host.file("/etc/redis/redis.conf").content_string


def test_no_password_in_any_ansible_output():
    log = Path(os.environ["MOLECULE_INVENTORY_FILE"]).parents[1] / "ansible.log"
    text = log.read_text()
    # The log holds the check, converge and idempotence runs and the side effect's -vvv run.
    holds_the_runs = "Write the Redis password file" in text and "module_args" in text
    assert holds_the_runs, f"{log} lacks the runs it should hold"
    # Booleans only: pytest would print both operands of `secret in text` on failure.
    leaked = [name for name, secret in SECRETS.items() if name.startswith("vault_") and secret in text]
    assert not leaked, f"the value of {leaked} appears in {log}"
