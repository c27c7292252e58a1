"""The supervisor role on a systemd host: every process of the app model runs as a supervised
program, on 127.0.0.1 only, as the app user, with its environment; a killed program comes back, a
stopped group leaves nothing behind, and a crash loop ends FATAL after the configured retries."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
import yaml
from shipshape_testing import app_model, molecule_hosts, program_instances, run_ok

testinfra_hosts = molecule_hosts()
APP = app_model()
NAME, USER, ROOT = APP["app_name"], APP["app_user"], APP["app_root"]
# The scenario's processes: the demo model plus the test ones of vars/app.yml.
TEST_PROCESSES = yaml.safe_load((Path(__file__).parents[1] / "vars/app.yml").read_text())[
    "scenario_test_processes"
]
PROCESSES = APP["app_processes"] + TEST_PROCESSES
INSTANCES = program_instances(NAME, PROCESSES)
CRASH = f"{NAME}-crash"
# Every program but the one that exits at once.
SERVING = [i for i in INSTANCES if i["program"] != CRASH]
LISTENING = [i for i in SERVING if i["port"] is not None]
# The role's defaults (roles/supervisor/defaults/main.yml).
STARTRETRIES = 3
STARTSECS = 10
STOPWAITSECS = 30
LOG = "/var/log/supervisor/supervisord.log"


def status(host, target: str = f"{NAME}:") -> dict[str, str]:
    """Program name -> state, from `supervisorctl status`."""
    out = host.run(f"supervisorctl status {target}").stdout
    return {line.split()[0].split(":")[-1]: line.split()[1] for line in out.splitlines() if line.strip()}


def pid_of(host, program: str) -> int:
    return int(run_ok(host, f"supervisorctl pid {NAME}:{program}").strip())


def wait_for(predicate, timeout: float, what: str, interval: float = 1.0):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def as_app_user(host, command: str) -> str:
    """Run as the app user: /proc of the app's processes is readable by their owner only."""
    return run_ok(host, f"runuser -u {USER} -- {command}")


def environ(host, pid: int) -> dict[str, str]:
    raw = as_app_user(host, f"cat /proc/{pid}/environ")
    return dict(item.split("=", 1) for item in raw.split("\0") if "=" in item)


def app_user_processes(host) -> list[str]:
    result = host.run(f"ps -u {USER} -o pid=,ppid=,args=")
    return [line for line in result.stdout.splitlines() if line.strip()]


def log_lines(host) -> int:
    return int(run_ok(host, f"wc -l < {LOG}").strip())


def log_since(host, line: int) -> str:
    return run_ok(host, f"tail -n +{line + 1} {LOG}")


def test_supervisor_comes_from_debian_and_runs(host):
    assert host.package("supervisor").is_installed
    assert run_ok(host, "dpkg -S /usr/bin/supervisord").startswith("supervisor:")
    service = host.service("supervisor")
    assert service.is_enabled and service.is_running


def test_supervisord_settings(host):
    config = host.file("/etc/supervisor/supervisord.conf").content_string
    for line in ("minfds=10240", "minprocs=1024", "loglevel=info", "logfile_maxbytes=50MB"):
        assert line in config
    logs = host.file("/var/log/supervisor")
    assert logs.mode == 0o750 and logs.user == "root"


def test_stopping_the_service_ends_every_process_it_started(host):
    show = run_ok(host, "systemctl show supervisor -p KillMode -p TimeoutStopUSec")
    assert "KillMode=mixed" in show and "TimeoutStopUSec=2min" in show


def test_programs_file_follows_the_contract(host):
    conf = host.file(f"/etc/supervisor/conf.d/{NAME}.conf").content_string
    assert f"[group:{NAME}]\nprograms={','.join(i['program'] for i in INSTANCES)}\n" in conf
    web = conf.split(f"[program:{NAME}-web]\n", 1)[1].split("\n\n", 1)[0]
    release = 'export APP_RELEASE="$(basename "$(pwd -P)")"'
    assert (
        f"command=/bin/sh -c 'set -a; . {ROOT}/shared/env/web.env; set +a; {release}; exec node server.js'\n"
        in web
    )
    for line in (
        f"directory={ROOT}/current",
        f"user={USER}",
        'environment=PORT="3000",HOSTNAME="127.0.0.1",NODE_ENV="production",HOME="/home/shop"',
        "stopsignal=TERM",
        f"stopwaitsecs={STOPWAITSECS}",
        "stopasgroup=true",
        "killasgroup=true",
        f"startsecs={STARTSECS}",
        f"startretries={STARTRETRIES}",
        f"stdout_logfile=/var/log/supervisor/{NAME}-web.out.log",
        "stdout_logfile_maxbytes=50MB",
        "stderr_logfile_backups=10",
    ):
        assert line + "\n" in web + "\n", line
    # A process's own drain time wins over the default.
    api = conf.split(f"[program:{NAME}-api-1]\n", 1)[1].split("\n\n", 1)[0]
    assert "stopwaitsecs=5\n" in api and 'PORT="3101"' in api
    assert "npm" not in conf


@pytest.mark.parametrize("instance", SERVING, ids=lambda i: i["program"])
def test_every_program_runs(host, instance):
    assert status(host)[instance["program"]] == "RUNNING"


@pytest.mark.parametrize("instance", LISTENING, ids=lambda i: i["program"])
def test_every_port_listens_on_ipv4_loopback_only(host, instance):
    port = instance["port"]
    # As the app user, ss may name the owner of the socket (root may not read other users' fds here).
    out = as_app_user(host, f"ss -ltnpH 'sport = :{port}'")
    addresses = {line.split()[3] for line in out.splitlines()}
    assert addresses == {f"127.0.0.1:{port}"}, f"port {port} listens on {addresses}"
    assert f"pid={pid_of(host, instance['program'])}," in out
    assert host.socket(f"tcp://127.0.0.1:{port}").is_listening
    assert not host.socket(f"tcp://0.0.0.0:{port}").is_listening
    assert not host.socket(f"tcp://:::{port}").is_listening


@pytest.mark.parametrize("instance", SERVING, ids=lambda i: i["program"])
def test_programs_run_as_the_app_user_with_node_exec_d(host, instance):
    pid = pid_of(host, instance["program"])
    # exec: the program's pid is node itself, not sh or npm around it (seed 000).
    assert host.file(f"/proc/{pid}/comm").content_string.strip() == "node"
    owners = run_ok(host, f"ps -o user= -p {pid} --ppid {pid}").split()
    assert owners and set(owners) == {USER}


def test_nothing_of_the_app_runs_as_root(host):
    roots = run_ok(host, "ps -u root -o args=")
    assert "node" not in roots


@pytest.mark.parametrize("instance", SERVING, ids=lambda i: i["program"])
def test_environment_reaches_the_process(host, instance):
    env = environ(host, pid_of(host, instance["program"]))
    assert env["HOSTNAME"] == "127.0.0.1"
    assert env["NODE_ENV"] == "production"
    assert env["HOME"] == f"/home/{USER}"
    # From the process's env file, loaded by sh before exec.
    assert env["SHIPSHAPE_TEST_PROCESS"] == instance["process"]
    if instance["port"] is None:
        assert "PORT" not in env
    else:
        assert env["PORT"] == str(instance["port"])


def test_env_directory_is_private_to_the_app_user(host):
    env_dir = host.file(f"{ROOT}/shared/env")
    assert env_dir.user == USER and env_dir.mode == 0o700


def test_a_program_killed_with_sigkill_comes_back(host):
    program = f"{NAME}-web"
    old = pid_of(host, program)
    # The program's whole process group, the server and its child.
    run_ok(host, f"/bin/kill -KILL -- -{old}")
    wait_for(
        lambda: status(host).get(program) == "RUNNING" and pid_of(host, program) != old,
        STARTSECS + 30,
        f"{program} to run again",
    )
    assert host.run(f"kill -0 {old}").rc != 0


def test_stopping_the_group_leaves_no_process_behind(host):
    web = pid_of(host, f"{NAME}-web")
    child = int(run_ok(host, f"ps -o pid= --ppid {web}").split()[0])
    offset = log_lines(host)
    started = time.monotonic()
    run_ok(host, f"supervisorctl stop '{NAME}:*'")
    took = time.monotonic() - started
    assert app_user_processes(host) == []
    # The child ignored SIGTERM (stopasgroup delivered it), and died of the group SIGKILL
    # (killasgroup) once the drain time was up.
    web_log = host.file(f"/var/log/supervisor/{NAME}-web.out.log").content_string
    assert f"child {child}: ignoring SIGTERM" in web_log
    assert f"killing '{NAME}-web' ({web}) with SIGKILL" in log_since(host, offset)
    assert STOPWAITSECS <= took < STOPWAITSECS + 20
    programs = " ".join(f"{NAME}:{i['program']}" for i in SERVING)
    run_ok(host, f"supervisorctl start {programs}")
    assert all(status(host)[i["program"]] == "RUNNING" for i in SERVING)


def test_a_crash_loop_ends_fatal_after_the_configured_retries(host):
    offset = log_lines(host)
    # Already FATAL since the converge; start it again and count this round only.
    assert host.run(f"supervisorctl start {NAME}:{CRASH}").rc != 0
    wait_for(lambda: status(host).get(CRASH) == "FATAL", 90, f"{CRASH} to be FATAL")
    log = log_since(host, offset)
    spawned = re.findall(rf"spawned: '{CRASH}' with pid \d+", log)
    assert len(spawned) == STARTRETRIES + 1, log
    assert f"gave up: {CRASH} entered FATAL state, too many start retries too quickly" in log
    # It stays given up: no further attempt.
    time.sleep(5)
    assert status(host).get(CRASH) == "FATAL"
    assert len(re.findall(rf"spawned: '{CRASH}'", log_since(host, offset))) == STARTRETRIES + 1
