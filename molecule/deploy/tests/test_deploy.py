"""deploy.yml end to end: the sample app on a systemd host, run as an operator runs it.

Tests run in file order and build on each other: the converge step has deployed the sample app.
Three releases are built, each a new source: the sample app (converge), a tarball whose health
check fails (marked bad), and a git tag of a changed copy. The tests after the git tag's deploy
deploy that tag again, as its operator would: a deploy of the current source builds nothing, so
the lock, port, rollback, pruning and model tests cost no build of their own.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from shipshape_playbook import PROJECT, PlaybookRun, StartedPlaybook, run_diagnose, run_playbook
from shipshape_testing import app_model, lock_json, molecule_hosts, program_instances, run_ok

testinfra_hosts = molecule_hosts("web")
APP = app_model()
ROOT = APP["app_root"]
# What the app model declares: its supervisor programs, and the web process's database pool.
PROGRAMS = len(program_instances(APP["app_name"], APP["app_processes"]))
WEB_POOL = next(process["db_pool"] for process in APP["app_processes"] if process["name"] == "web")
SAMPLE = PROJECT / "examples/app"
FILES = Path(__file__).resolve().parents[1] / "files"
REPORTS = Path(tempfile.mkdtemp(prefix="shipshape-deploy-reports-"))
# The db host's dumps, taken before each deploy's migrations (app_db_backup_dir's default).
BACKUPS = f"/var/backups/shipshape/{APP['app_name']}"
BROKEN_HEALTH = """
export async function GET() {
  return Response.json({ status: 'broken' }, { status: 503 });
}
"""


def current_release(host) -> str:
    return run_ok(host, f"readlink {ROOT}/current").strip().removeprefix("releases/")


def marked(host, releases: list[str], status: str) -> list[str]:
    """Those of the releases whose .shipshape-status is `status` (good or bad), in their order."""
    pattern = f"^{status}$"
    return [r for r in releases if host.file(f"{ROOT}/releases/{r}/.shipshape-status").contains(pattern)]


def release_record(host, release: str) -> dict:
    return json.loads(run_ok(host, f"cat {ROOT}/releases/{release}/.shipshape-release.json"))


def health(host) -> tuple[int, dict]:
    out = host.run("curl -sS -w '\\n%{http_code}' http://127.0.0.1/api/health").stdout
    body, _, code = out.rpartition("\n")
    return int(code), (json.loads(body) if body.startswith("{") else {})


def create_campaign(host, name: str, recipients: int) -> None:
    """A campaign created through nginx, as a user creates one."""
    body = json.dumps({"name": name, "recipients": recipients})
    run_ok(
        host,
        f"curl -sS -f -H 'Content-Type: application/json' -d {shlex.quote(body)} http://127.0.0.1/api/campaigns",
    )


def campaign_count(host) -> int:
    sql = 'SELECT count(*) FROM "Campaign"'
    return int(run_ok(host, f"sudo -u postgres psql -XAt -d {APP['app_name']} -c '{sql}'").strip())


@pytest.fixture(scope="module")
def source_variant():
    """A copy of the sample app with one file changed: a new source hash, hence a new release."""
    made: list[Path] = []

    def make(name: str, path: str, transform) -> Path:
        target = Path(tempfile.mkdtemp(prefix=f"shipshape-{name}-"))
        shutil.copytree(
            SAMPLE, target, dirs_exist_ok=True, ignore=shutil.ignore_patterns("node_modules", ".next")
        )
        file = target / path
        file.write_text(transform(file.read_text()))
        made.append(target)
        return target

    yield make
    for directory in made:
        shutil.rmtree(directory, ignore_errors=True)


def deploy_source(path: Path, *extra: str):
    return run_playbook(
        "deploy.yml", "-e", json.dumps({"app_source": {"type": "archive", "path": str(path)}}), *extra
    )


# The source the operator deploys: the inventory's (the sample app) until the git tag's deploy.
OPERATOR_SOURCE: dict[str, Any] = {}


def deploy(*extra: str, **kwargs) -> PlaybookRun:
    """deploy.yml with the operator's source, and the extra vars a test adds after it."""
    source = ("-e", json.dumps({"app_source": OPERATOR_SOURCE})) if OPERATOR_SOURCE else ()
    return run_playbook("deploy.yml", *source, *extra, **kwargs)


def test_first_deploy_serves_the_release_current_points_to(host):
    release = current_release(host)
    record = release_record(host, release)
    code, body = health(host)
    assert code == 200, body
    assert body["buildId"] == record["build_id"]
    assert host.file(f"{ROOT}/releases/{release}/.shipshape-status").content_string.startswith("good")
    # Each program knows the release it started from: the health answer says it, and the canary
    # would fail on a worker of another release.
    assert body["release"] == release
    for process in APP["app_processes"]:
        pid = run_ok(host, f"supervisorctl pid {APP['app_name']}:{APP['app_name']}-{process['name']}").strip()
        environ = run_ok(host, f"tr '\\0' '\\n' < /proc/{pid}/environ").splitlines()
        assert f"APP_RELEASE={release}" in environ, process["name"]
    # Every port of the app model on IPv4 loopback, and nowhere else.
    ports = [process["port"] for process in APP["app_processes"] if "port" in process]
    assert ports, APP["app_processes"]
    for port in ports:
        assert host.socket(f"tcp://127.0.0.1:{port}").is_listening
        assert not host.socket(f"tcp://0.0.0.0:{port}").is_listening
    status = run_ok(host, f"supervisorctl status {APP['app_name']}:")
    assert status.count("RUNNING") == PROGRAMS, status


def test_env_files_are_private_to_the_app_user(host):
    for process in APP["app_processes"]:
        env = host.file(f"{ROOT}/shared/env/{process['name']}.env")
        assert env.user == APP["app_user"] and env.mode == 0o600
    # The web process's pool, from the app model, in both forms the app may read.
    web_env = host.file(f"{ROOT}/shared/env/web.env").content_string
    assert f"connection_limit={WEB_POOL}&" in web_env and f"DATABASE_POOL_MAX='{WEB_POOL}'" in web_env


def test_the_app_runs_through_pgbouncer_and_migrates_on_its_session_database(host):
    # This scenario turns PgBouncer on (host_vars/): the pools go to its transaction pool, and the
    # migrations (a session advisory lock) to its session-mode database, through DIRECT_URL.
    name = APP["app_name"]
    web_env = host.file(f"{ROOT}/shared/env/web.env").content_string
    assert f"@127.0.0.1:6432/{name}?connection_limit={WEB_POOL}&pool_timeout=10&pgbouncer=true" in web_env
    assert f"DIRECT_URL='postgresql://{name}:" in web_env and f"@127.0.0.1:6432/{name}_session'" in web_env
    assert host.socket("tcp://127.0.0.1:6432").is_listening
    # PgBouncer logs each login: the converge's migrations on the session database, the app on its own.
    log = run_ok(host, "cat /var/log/postgresql/pgbouncer.log")
    assert f"db={name}_session user={name}" in log, log[-2000:]
    assert f"db={name} user={name}" in log, log[-2000:]
    # And the app's health check, which queries the database, passes through it.
    code, body = health(host)
    assert code == 200 and body["checks"]["database"] == "ok", body
    # Each program's connections carry its name (APP_NAME and PGAPPNAME in its env file), which
    # PgBouncer passes on: diagnose counts connections per program (I3), also across apps.
    assert f"APP_NAME='{name}'" in web_env and f"PGAPPNAME='{name}-web'" in web_env
    sql = f"SELECT DISTINCT application_name FROM pg_stat_activity WHERE datname = '{name}'"
    names = set(run_ok(host, f'sudo -u postgres psql -XAt -c "{sql}"').split())
    # Through PgBouncer's transaction pool a server connection shows the last program that used it.
    programs = {f"{name}-{process['name']}" for process in APP["app_processes"]}
    assert names & programs, names
    assert not [seen for seen in names if seen.startswith("app-")], names


def diagnose(label: str) -> dict[str, Any]:
    """Run diagnose.yml; this host's JSON report."""
    return json.loads(run_diagnose(REPORTS, label).read_text())


def pgbouncer_pool(host, database: str) -> dict[str, str]:
    """The app role's pool of a PgBouncer database, from its admin console as diagnose reads it."""
    show = "psql -X --csv -h /var/run/postgresql -p 6432 -U pgbouncer -d pgbouncer -c 'SHOW POOLS'"
    header, *rows = run_ok(host, f"runuser -u postgres -- {show}").splitlines()
    pools = [dict(zip(header.split(","), row.split(","), strict=True)) for row in rows]
    return next(p for p in pools if p["database"] == database and p["user"] == APP["app_name"])


def pgbouncer_i3(report: dict[str, Any]) -> list[dict[str, Any]]:
    return [f for f in report["findings"] if f["id"] == "I3" and "wait in PgBouncer" in f["title"]]


def test_diagnose_sees_clients_queued_inside_pgbouncer(host):
    """pg_stat_activity cannot see clients waiting inside PgBouncer: diagnose reads its pools."""
    name = APP["app_name"]
    idle = diagnose("pgbouncer-idle")
    pools = {(p["database"], p["user"]) for p in idle["facts"]["pgbouncer"]["pools"]}
    assert idle["facts"]["pgbouncer"]["ok"] and (name, name) in pools, idle["facts"]["pgbouncer"]
    assert not pgbouncer_i3(idle), idle["findings"]

    # More clients than the pool holds (default_pool_size 20 + reserve_pool 5), as the app role.
    unit = f"pgbouncer-queue-{time.time_ns()}"
    script = (FILES / "pgbouncer_queue.py").read_text()
    subprocess.run(
        ["podman", "exec", "-i", host.backend.name, "sh", "-c", "cat > /tmp/pgbouncer_queue.py"],
        input=script,
        text=True,
        check=True,
    )
    run_ok(
        host,
        f"systemd-run --unit={unit} --uid={APP['app_user']} -p EnvironmentFile={ROOT}/shared/env/web.env "
        "-p RuntimeMaxSec=60 python3 /tmp/pgbouncer_queue.py 40 40",
    )
    try:
        wait_until(lambda: int(pgbouncer_pool(host, name)["cl_waiting"]) > 0, "clients to queue", 20)
        loaded = diagnose("pgbouncer-queued")
    finally:
        host.run(f"systemctl stop {unit}")
        # The backends PgBouncer was sleeping on end with their clients, not 40 s later.
        sql = (
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            f"WHERE usename = '{name}' AND query LIKE 'SELECT pg_sleep(%'"
        )
        host.run(f"runuser -u postgres -- psql -XAtq -c {shlex.quote(sql)}")
    found = pgbouncer_i3(loaded)
    assert [f["severity"] for f in found] in (["warning"], ["critical"]), loaded["findings"]
    assert f"pool {name}/{name}" in found[0]["title"], found
    line = next(e for e in found[0]["evidence"] if e.startswith(f"pool {name}/{name} "))
    assert "0 waiting" not in line and "of pool_size 20 + reserve_pool 5" in line, line
    wait_until(lambda: health(host)[0] == 200, "the app to get its connections back", 30)


def test_diagnose_names_pgbouncer_down_and_recover_restarts_it(host):
    run_ok(host, "systemctl stop pgbouncer")
    try:
        report = diagnose("pgbouncer-down")
        h1 = [f for f in report["findings"] if f["id"] == "H1" and f["severity"] == "critical"]
        assert [f["title"] for f in h1] == [
            "PgBouncer does not answer: the app cannot reach PostgreSQL through it"
        ]
        assert ".s.PGSQL.6432" in h1[0]["evidence"][0], h1
        assert "playbooks/recover.yml" in h1[0]["fix"], h1
        assert report["facts"]["pgbouncer"]["ok"] is False

        # recover.yml says it will restart PgBouncer, does, and its smoke tests pass through it.
        run = run_playbook("recover.yml")
        assert run.ok, run.output[-4000:]
        assert "restart PgBouncer, which did not answer (H1)" in run.output
        assert host.service("pgbouncer").is_running
        assert health(host)[0] == 200
    finally:
        # Whatever failed above, the suite goes on with PgBouncer up.
        run_ok(host, "systemctl start pgbouncer")


def test_no_node_process_runs_as_root(host):
    # ps -C matches the command name only, so the probe cannot match itself.
    users = run_ok(host, "ps -o user= -C node").split()
    assert users, "no node process runs"
    assert set(users) == {APP["app_user"]}, run_ok(host, "ps -o pid,user,args -C node")


def test_second_deploy_of_the_same_source_changes_nothing(host):
    before = current_release(host)
    run = run_playbook("deploy.yml")
    assert run.ok, run.output[-3000:]
    assert "is already the current release" in run.output
    assert run.recap_changed() == 0, run.output[-3000:]
    assert current_release(host) == before


def program_pids(host) -> list[str]:
    """The pid of each program of the app: the same list later means nothing was stopped."""
    pids = re.findall(r"RUNNING +pid (\d+)", run_ok(host, f"supervisorctl status {APP['app_name']}:"))
    assert len(pids) == PROGRAMS, pids
    return pids


def inventory_without_service_groups(directory: Path) -> Path:
    """The molecule inventory with its host in the web group only: the database and Redis are
    someone else's (a managed service), as an inventory without db and redis groups says."""
    molecule = Path(os.environ["MOLECULE_INVENTORY_FILE"])
    hosts = yaml.safe_load(molecule.read_text())["web"]["hosts"]
    inventory = {"all": {"hosts": hosts, "children": {"web": {"hosts": dict.fromkeys(hosts)}}}}
    (directory / "hosts.yml").write_text(yaml.safe_dump(inventory))
    for linked in ("group_vars", "host_vars"):
        (directory / linked).symlink_to((molecule.parent / linked).resolve())
    return directory / "hosts.yml"


def managed_services(host, directory: Path) -> tuple[Path, str]:
    """The web-only inventory, and the extra vars that give the app the URLs of the database and
    Redis it serves on now (read from its env file) in app_secret_env, as a managed service's are."""
    env_file = f"{ROOT}/shared/env/web.env"
    given = {
        name: run_ok(host, f"sh -c '. {env_file}; printf %s \"${name}\"'")
        for name in ("DATABASE_URL", "DIRECT_URL", "REDIS_URL")
    }
    secrets = {"app_secret_env": APP["app_secret_env"] | given}
    return inventory_without_service_groups(directory), json.dumps(secrets)


def test_without_db_and_redis_groups_the_app_uses_the_urls_it_is_given(host, tmp_path):
    """A managed database and Redis: no db or redis group, the URLs in app_secret_env. The deploy
    and diagnose run (a delegation to the db host must not fail when there is none), the budget
    says it was not checked, and the app serves on the URLs given."""
    env_file = f"{ROOT}/shared/env/web.env"
    inventory, secrets = managed_services(host, tmp_path)
    run = run_playbook("deploy.yml", "-e", secrets, inventory=inventory)
    assert run.ok, run.output[-3000:]
    demand = sum(p.get("db_pool", 0) * p.get("instances", 1) for p in APP["app_processes"])
    said = " ".join(run.output.split())
    assert (
        f"the connection budget (I3) is not checked: the pools of 1 web host(s) open up to {demand} " in said
    )
    rendered = run_ok(host, f"cat {env_file}")
    assert "DATABASE_POOL_MAX" not in rendered and "PGAPPNAME" not in rendered
    assert health(host)[0] == 200
    reports = ("-e", f"diagnose_report_dir={REPORTS}", "-e", "diagnose_report_label=managed")
    diagnosed = run_playbook("diagnose.yml", *reports, inventory=inventory)
    assert diagnosed.ok and diagnosed.recap_changed() == 0, diagnosed.output[-3000:]
    # The report says what it could not read, rather than nothing.
    report = " ".join(sorted(REPORTS.glob("*-managed.md"))[-1].read_text().split())
    stuck = len(APP["app_stuck_checks"])
    assert f"its connections (I3) and the {stuck} stuck-record check(s) (I11) were not read" in report
    assert "No redis host in the inventory (a managed Redis?)" in report
    # recover.yml too: it recovers the app, and says it did not check or restart the services.
    recovered = run_playbook("recover.yml", "-e", secrets, inventory=inventory)
    assert recovered.ok, recovered.output[-3000:]
    said = " ".join(recovered.output.split())
    assert "recovered: the smoke tests pass" in said
    assert "PostgreSQL not checked or restarted (no db group in the inventory)" in said
    assert "Redis not checked or restarted (no redis group in the inventory)" in said
    # Stuck-record fixes need psql on a db host: asked for without one, refused before any stop.
    pids = program_pids(host)
    refused = run_playbook("recover.yml", "-e", secrets, "-e", "recover_fix_stuck=true", inventory=inventory)
    assert not refused.ok
    assert "recover_fix_stuck=true needs a db group in the inventory" in " ".join(refused.output.split())
    assert program_pids(host) == pids
    # Back to the inventory with its groups: the derived environment again.
    back = run_playbook("deploy.yml")
    assert back.ok, back.output[-3000:]
    assert "DATABASE_POOL_MAX=" in run_ok(host, f"cat {env_file}")


def campaign_status(host, name: str) -> str:
    sql = f"""SELECT status FROM "Campaign" WHERE name = '{name}'"""
    return run_ok(host, f"sudo -u postgres psql -XAt -d {APP['app_name']} -c {shlex.quote(sql)}").strip()


def test_a_busy_worker_still_takes_the_canary_at_once(host):
    # A campaign that holds the worker's one campaign slot for about 15 s (5 ms per recipient). On a
    # queue shared with the campaigns the canary would wait behind it and fail its 5 s timeout; on
    # its own queue the worker takes it at once.
    name = f"keeps-the-worker-busy-{time.time_ns()}"
    create_campaign(host, name, 3000)
    wait_until(lambda: campaign_status(host, name) == "SENDING", "the worker to take the campaign", 60)
    # The canary runs as the smoke test runs it: with the environment of the process without a
    # port, expecting a worker of the current release.
    worker = next(process["name"] for process in APP["app_processes"] if "port" not in process)
    script = (
        f"set -a; . {ROOT}/shared/env/{worker}.env; set +a; "
        'export APP_RELEASE="$(basename "$(pwd -P)")"; exec node scripts/canary.js --timeout-ms 5000'
    )
    canary = host.run(f"cd {ROOT}/current && sudo -u {APP['app_user']} sh -c {shlex.quote(script)}")
    assert canary.rc == 0, canary.stdout + canary.stderr
    assert "canary: OK" in canary.stdout
    # The canary did not wait for the campaign: that is still being sent.
    assert campaign_status(host, name) == "SENDING"
    wait_until(lambda: campaign_status(host, name) == "COMPLETED", "the campaign to complete", 120)


def test_failed_health_rolls_back_and_keeps_data(host, source_variant):
    create_campaign(host, "before-bad-deploy", 5)
    rows_before = campaign_count(host)
    good = current_release(host)
    # A release whose health check always answers 503.
    broken = source_variant(
        "broken",
        "app/api/health/route.js",
        lambda text: text.replace("export async function GET", "async function realGet") + BROKEN_HEALTH,
    )
    # Shipped as a tarball of a working tree, with the build output and the generated Prisma client
    # of an older build inside (I2, I8): the deploy must remove both and build clean.
    (broken / ".next").mkdir()
    (broken / ".next/BUILD_ID").write_text("stale-build")
    (broken / "node_modules/.prisma/client").mkdir(parents=True)
    (broken / "node_modules/.prisma/client/stale-client").write_text("from an older schema")
    tarball = broken.with_name(broken.name + ".tar.gz")
    with tarfile.open(tarball, "w:gz") as archive:
        archive.add(broken, arcname=".")
    tarball_hash = hashlib.sha256(tarball.read_bytes()).hexdigest()
    # The same deploy changes the model too (an env variable): the switch back puts the env files
    # back as they were, and the failure says so.
    run = deploy_source(tarball, "-e", json.dumps({"app_env": {"SHIPSHAPE_MODEL_TEST": "1"}}))
    tarball.unlink()
    assert not run.ok
    said = " ".join(run.output.split())
    assert f"Switched back to {good} and the app model it ran under, which passed its smoke tests" in said
    assert "Put back as they were before this deploy: the env file of web," in said, run.output[-3000:]
    assert "SHIPSHAPE_MODEL_TEST" not in run_ok(host, f"cat {ROOT}/shared/env/web.env")
    assert current_release(host) == good
    code, _ = health(host)
    assert code == 200
    bad = sorted(run_ok(host, f"ls {ROOT}/releases").split())[-1]
    assert bad != good
    assert host.file(f"{ROOT}/releases/{bad}/.shipshape-status").content_string.startswith("bad")
    assert campaign_count(host) == rows_before
    # The release is the tarball as given (its hash), built clean: a new build id, no stale client.
    assert release_record(host, bad)["source_hash"] == tarball_hash
    assert bad.endswith("-" + tarball_hash[:12])
    assert run_ok(host, f"cat {ROOT}/releases/{bad}/.next/BUILD_ID").strip() not in ("", "stale-build")
    assert not host.file(f"{ROOT}/releases/{bad}/node_modules/.prisma/client/stale-client").exists
    # Before the bad release's migrations, the database was dumped on the db host, and the failure
    # names the dump. It is the second: the first deploy's came before (the git tag's deploy below
    # checks that only app_db_backup_keep of them are kept).
    dumps = run_ok(host, f"ls -1 {BACKUPS}").split()
    assert [dump.split("-before-")[-1] for dump in dumps] == [f"{good}.dump", f"{bad}.dump"], dumps
    assert f"{BACKUPS}/{dumps[-1]}" in run.output
    for path, mode in [(BACKUPS, 0o700)] + [(f"{BACKUPS}/{dump}", 0o600) for dump in dumps]:
        assert (host.file(path).user, host.file(path).mode) == ("postgres", mode), path


def postgres(host, command: str) -> str:
    return run_ok(host, f"runuser -u postgres -- {command}")


def test_the_dump_before_a_release_restores_as_the_runbook_says(host):
    """docs/runbooks/rollback.md, step by step: prove the dump in a scratch database, then replace the
    live database with it, behind PgBouncer, and start the programs."""
    database = APP["app_name"]
    dump = f"{BACKUPS}/{run_ok(host, f'ls -1 {BACKUPS}').split()[-1]}"
    rows_at_dump = campaign_count(host)
    create_campaign(host, "after-the-dump", 1)
    assert campaign_count(host) == rows_at_dump + 1

    scratch = f"{database}_restore_check"
    postgres(host, f"createdb {scratch}")
    postgres(host, f"pg_restore --exit-on-error --dbname={scratch} {dump}")
    sql = 'SELECT count(*) FROM "Campaign"'
    assert int(postgres(host, f"psql -XAt -d {scratch} -c '{sql}'")) == rows_at_dump
    postgres(host, f"dropdb {scratch}")

    run_ok(host, f"supervisorctl stop {database}:")
    postgres(host, f"dropdb --force {database}")
    postgres(host, f"pg_restore --exit-on-error --create --dbname=postgres {dump}")
    run_ok(host, f"supervisorctl start {database}:")
    wait_until(lambda: health(host)[0] == 200, "the app to answer on the restored database", 60)
    assert campaign_count(host) == rows_at_dump, "the row written after the dump survived the restore"
    # The app writes again, through PgBouncer, to the database it was given back.
    create_campaign(host, "after-the-restore", 1)
    assert campaign_count(host) == rows_at_dump + 1


def git_repository_on_host(host, source: Path, tag: str) -> tuple[str, str]:
    """The source committed to a git repository on the host, tagged (annotated); its path and commit.

    An older commit of it carries the tag archive/TAG, which `git ls-remote REPO TAG` lists first:
    the deploy must take the tag it names exactly."""
    repo = "/home/shop/shipshape-src"
    container = host.backend.name
    run_ok(host, f"rm -rf {repo} && install -d -o shop -g shop {repo}")
    with subprocess.Popen(["tar", "-C", str(source), "-cf", "-", "."], stdout=subprocess.PIPE) as tar:
        subprocess.run(
            ["podman", "exec", "-i", "-u", "shop", container, "tar", "-C", repo, "-xf", "-"],
            stdin=tar.stdout,
            check=True,
        )
    git = f"runuser -u shop -- git -C {repo} -c user.name=ci -c user.email=ci@example.invalid"
    run_ok(
        host,
        f"{git} init -q && {git} add -A && {git} commit -qm source && {git} tag -a archive/{tag} -m old"
        f" && {git} commit -q --allow-empty -m release && {git} tag -a {tag} -m {tag}",
    )
    return repo, run_ok(host, f"{git} rev-parse {tag}^{{commit}}").strip()


def wait_until(probe, what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not probe():
        assert time.monotonic() < deadline, f"timed out after {timeout:g} s waiting for {what}"
        time.sleep(0.5)


def test_rogue_process_is_reaped_and_a_git_tag_deploys_while_others_wait(host, source_variant):
    before = current_release(host)
    run_ok(host, f"supervisorctl stop {APP['app_name']}:{APP['app_name']}-web")
    # A node server started by hand, outside supervisor, holding the web port (seed 002, I1/I6).
    run_ok(
        host,
        "systemd-run --unit=rogue-node --uid=shop "
        "node -e \"require('http').createServer((q,s)=>s.end('rogue')).listen(3000,'127.0.0.1')\"",
    )
    wait_until(lambda: host.socket("tcp://127.0.0.1:3000").is_listening, "the rogue process to listen", 10)
    rogue_pid = run_ok(host, "systemctl show -p MainPID --value rogue-node").strip()
    # The changed source comes from git this time, at an annotated tag: the release id must carry
    # the commit the tag points to, not the tag object.
    changed = source_variant("changed", "app/page.js", lambda text: text + "\n// changed source\n")
    repo, commit = git_repository_on_host(host, changed, "v2")
    source = json.dumps({"app_source": {"type": "git", "repo": repo, "version": "v2"}})
    first = StartedPlaybook("deploy.yml", "-e", source)
    lock = f"{ROOT}/.deploy.lock"
    wait_until(lambda: host.file(lock).exists or not first.running(), "the first deploy to take the lock")
    holder = json.loads(run_ok(host, f"cat {lock}"))["owner"]
    # Two more deploys from the same operator and controller while it builds: each run is its own
    # owner. One that may not wait stops at once, naming the holder; one that may wait, waits.
    waiting = StartedPlaybook("deploy.yml", "-e", source, "-e", "app_lock_wait=900")
    refused = run_playbook("deploy.yml", "-e", source)
    assert first.running(), "the first deploy ended before the second asked for the lock"
    assert not refused.ok
    assert "Another deploy holds the lock" in refused.output and holder in refused.output, refused.output[
        -3000:
    ]
    assert json.loads(run_ok(host, f"cat {lock}"))["owner"] == holder, "the refused deploy touched the lock"

    run = first.wait()
    assert run.ok, run.output[-4000:]
    OPERATOR_SOURCE.update(type="git", repo=repo, version="v2")
    # The lock is renewed after the build, then after the dump and the migrations, before the stop.
    renewal = re.escape("TASK [app : Renew the deploy lock]")
    renewals = [match.start() for match in re.finditer(renewal, run.output)]
    migrations = run.output.index("TASK [app : Run the migrations of the release]")
    stop = run.output.index("TASK [app : Stop the programs of the app")
    assert len(renewals) == 2 and renewals[0] < migrations < renewals[1] < stop, run.output[-4000:]
    assert rogue_pid in run.output, "the reaped process is reported"
    assert f"Ended pid {rogue_pid}" in run.output
    assert host.run("systemctl is-active rogue-node").stdout.strip() != "active"
    after = current_release(host)
    assert after != before and after.endswith("-" + commit[:12]), (after, commit)
    assert not host.file(f"{ROOT}/releases/{after}/.git").exists, "the release keeps git metadata"
    # Its migrations were the third to be dumped for: the two newest dumps are kept
    # (app_db_backup_keep in host_vars), the bad release's and its own; the first deploy's is gone.
    [bad] = marked(host, sorted(run_ok(host, f"ls {ROOT}/releases").split()), "bad")
    dumps = run_ok(host, f"ls -1 {BACKUPS}").split()
    assert [dump.split("-before-")[-1] for dump in dumps] == [f"{bad}.dump", f"{after}.dump"], dumps
    code, body = health(host)
    assert code == 200 and body["buildId"] == release_record(host, after)["build_id"]
    assert body["buildId"] != release_record(host, before)["build_id"]

    # The one that waited runs after it: the same source, already current, changes nothing.
    waited = waiting.wait()
    assert waited.ok, waited.output[-4000:]
    assert "Waited" in waited.output and "for the deploy lock" in waited.output
    assert "is already the current release" in waited.output
    assert current_release(host) == after
    assert not host.file(lock).exists

    # A version the repository has no ref of, though a branch ends in it: refused, naming that branch.
    run_ok(host, f"runuser -u shop -- git -C {repo} branch hotfix/v3")
    missing = json.dumps({"app_source": {"type": "git", "repo": repo, "version": "v3"}})
    refused = run_playbook("deploy.yml", "-e", missing)
    assert not refused.ok
    assert "app_source.version 'v3' is no branch or tag" in refused.output, refused.output[-3000:]
    assert "refs ending in it: refs/heads/hotfix/v3" in refused.output
    assert current_release(host) == after and not host.file(lock).exists


def test_a_git_url_with_a_token_is_refused_before_any_change(host):
    before = current_release(host)
    token = f"tok-{time.time_ns()}"
    source = {"type": "git", "repo": f"https://deploy:{token}@git.example.invalid/shop.git"}
    run = run_playbook("deploy.yml", "-e", json.dumps({"app_source": source}))
    assert not run.ok
    assert "app_source.repo carries credentials" in run.output, run.output[-3000:]
    assert token not in run.output
    # Refused in the validate play: no lock taken, nothing unpacked, the same release serves.
    assert not host.file(f"{ROOT}/.deploy.lock").exists
    assert "Take the deploy lock" not in run.output
    assert current_release(host) == before


def test_a_held_lock_stops_a_second_deploy_with_the_owners_name(host):
    now = time.time()
    host.run(f"echo '{lock_json('alice@laptop', now, now + 600)}' > {ROOT}/.deploy.lock")
    run = deploy()
    assert not run.ok
    assert "alice@laptop" in run.output


def test_a_stale_lock_is_taken_over(host):
    now = time.time()
    host.run(f"echo '{lock_json('bob@gone', now - 7200, now - 3600)}' > {ROOT}/.deploy.lock")
    run = deploy()
    assert run.ok, run.output[-3000:]
    assert "Took over a stale deploy lock of bob@gone" in run.output
    assert "is already the current release" in run.output
    assert not host.file(f"{ROOT}/.deploy.lock").exists


INTRUDER = """
import socket, sys, time
# Takes the port the moment the app lets go of it, as another app's program would. SO_REUSEADDR,
# as node sets it: the connections nginx had open to the app leave the port in TIME_WAIT.
listener = socket.socket()
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
while True:
    try:
        listener.bind(("127.0.0.1", int(sys.argv[1])))
        break
    except OSError:
        time.sleep(0.05)
listener.listen()
while True:
    time.sleep(60)
"""


def test_a_port_another_program_takes_stops_the_deploy_before_the_start(host):
    """A program of supervisord that is not the app's takes the web port during the stop: the reap
    may not end it (it is supervised), so the deploy stops before the start, naming it (I6).
    The operator's source is current: nothing is built here, and no release is marked bad (the
    rollback tests below choose among the bad ones)."""
    before = current_release(host)
    releases = run_ok(host, f"ls {ROOT}/releases").split()
    port = next(process["port"] for process in APP["app_processes"] if "port" in process)
    host.run(f"cat > /usr/local/bin/intruder.py <<'EOF'\n{INTRUDER}\nEOF")
    conf = f"[program:intruder]\ncommand=/usr/bin/python3 /usr/local/bin/intruder.py {port}\n"
    run_ok(host, f"printf '{conf}' > /etc/supervisor/conf.d/intruder.conf && supervisorctl update intruder")
    try:
        # A changed environment restarts the programs without a build.
        run = deploy("-e", json.dumps({"app_env": {"SHIPSHAPE_INTRUDER_TEST": "1"}}))
        said = " ".join(run.output.split())
        assert not run.ok
        assert f"Port {port} (127.0.0.1) is still held by pid" in said, run.output[-3000:]
        assert "intruder.py" in said and "which a supervisord runs and this run did not stop" in said
        assert "current was not switched; the programs were stopped before the reap failed" in said
        assert current_release(host) == before
        assert run_ok(host, f"ls {ROOT}/releases").split() == releases
        assert "TASK [app : Build the release]" not in run.output
        assert not host.file(f"{ROOT}/.deploy.lock").exists
    finally:
        host.run(
            "supervisorctl stop intruder; rm -f /etc/supervisor/conf.d/intruder.conf; supervisorctl update"
        )
    # The port is free again: the next deploy (the environment as before) starts and proves the app.
    run = deploy()
    assert run.ok, run.output[-3000:]
    assert health(host)[0] == 200
    assert host.file(f"{ROOT}/releases/{before}/.shipshape-status").content_string.startswith("good")


def test_rollback_goes_to_the_previous_good_release(host, tmp_path):
    current = current_release(host)
    # In check mode it names the release it would go to, and changes nothing.
    plan = run_playbook("rollback.yml", "--check")
    assert plan.ok and plan.recap_changed() == 0, plan.output[-3000:]
    chosen = re.search(r"Check mode: would roll back from (\S+) to (\S+):", " ".join(plan.output.split()))
    assert chosen and chosen[1] == current, plan.output[-3000:]
    assert current_release(host) == current and not host.file(f"{ROOT}/.deploy.lock").exists
    run = run_playbook("rollback.yml")
    assert run.ok, run.output[-3000:]
    previous = current_release(host)
    assert previous < current and previous == chosen[2]
    # The bad release between them was passed over.
    between = [r for r in run_ok(host, f"ls {ROOT}/releases").split() if previous < r < current]
    assert between and marked(host, between, "bad") == between, between
    assert host.file(f"{ROOT}/releases/{previous}/.shipshape-status").content_string.startswith("good")
    code, body = health(host)
    assert code == 200 and body["buildId"] == release_record(host, previous)["build_id"]
    # And forward again, by name, with a managed database and Redis (no db or redis group): no
    # step of the rollback may need a db host (a delegation to one fails when there is none).
    inventory, secrets = managed_services(host, tmp_path)
    forward = ("-e", secrets, "-e", f"app_rollback_release={current}")
    run = run_playbook("rollback.yml", *forward, inventory=inventory)
    assert run.ok, run.output[-3000:]
    assert current_release(host) == current
    code, body = health(host)
    assert code == 200 and body["buildId"] == release_record(host, current)["build_id"]


def test_recover_rollback_starts_the_programs_after_the_env_files_are_rendered(host):
    """recover.yml -e recover_rollback=true: current goes back to the previous good release, and
    the programs start only once the env files are rendered again, so a hand edit of one (an
    upload limit of 1 MB, seed 002's, I4) is undone before they read it."""
    current = current_release(host)
    releases = sorted(run_ok(host, f"ls {ROOT}/releases").split())
    good = marked(host, [r for r in releases if r < current], "good")
    assert good, releases
    env_file = f"{ROOT}/shared/env/web.env"
    # The value as a program reads it: the file sourced (it quotes its values).
    read_limit = f"sh -c '. {env_file}; printf %s \"$UPLOAD_MAX_BYTES\"'"
    rendered = run_ok(host, read_limit).strip()
    assert rendered and rendered != "1048576", rendered
    run_ok(host, f"echo UPLOAD_MAX_BYTES=1048576 >> {env_file}")
    assert run_ok(host, read_limit).strip() == "1048576"
    recovered = run_playbook("recover.yml", "-e", "recover_rollback=true")
    try:
        assert recovered.ok, recovered.output[-3000:]
        assert current_release(host) == good[-1]
        assert run_ok(host, read_limit).strip() == rendered
        # What the running web server read: the file as rendered, not as edited.
        web = run_ok(host, f"supervisorctl pid {APP['app_name']}:{APP['app_name']}-web").strip()
        environ = run_ok(host, f"tr '\\0' '\\n' < /proc/{web}/environ").splitlines()
        assert f"UPLOAD_MAX_BYTES={rendered}" in environ
        code, body = health(host)
        assert code == 200 and body["buildId"] == release_record(host, good[-1])["build_id"]
    finally:
        # Forward again, whatever failed above: the tests that follow expect this release.
        if current_release(host) != current:
            run_playbook("rollback.yml", "-e", f"app_rollback_release={current}")
    assert current_release(host) == current


def test_a_rollback_whose_target_fails_its_smoke_tests_switches_back(host):
    current = current_release(host)
    releases = sorted(run_ok(host, f"ls {ROOT}/releases").split())
    bad = marked(host, releases, "bad")
    assert bad, releases
    run = run_playbook("rollback.yml", "-e", f"app_rollback_release={bad[-1]}")
    assert not run.ok
    assert f"Rollback of release {bad[-1]} failed at" in run.output, run.output[-3000:]
    assert "Switched back to " + current in run.output and "which passed its smoke tests" in run.output
    assert current_release(host) == current
    code, body = health(host)
    assert code == 200 and body["buildId"] == release_record(host, current)["build_id"]
    assert not host.file(f"{ROOT}/.deploy.lock").exists


def test_pruning_keeps_current_and_the_release_rollback_would_choose(host):
    current = current_release(host)
    releases = sorted(run_ok(host, f"ls {ROOT}/releases").split())
    good = marked(host, releases, "good")
    rollback_target = [r for r in good if r < current][-1]
    assert len(releases) >= 3 and rollback_target != releases[-2], releases
    # Keep one: every release goes but current and the newest good one older than it, however old.
    run = deploy("-e", "app_releases_keep=1")
    assert run.ok, run.output[-3000:]
    assert sorted(run_ok(host, f"ls {ROOT}/releases").split()) == sorted({current, rollback_target})
    assert current_release(host) == current


CERTIFICATE = "/etc/ssl/certs/shipshape-test.pem"
CERTIFICATE_KEY = "/etc/ssl/private/shipshape-test.key"


SITE = f"/etc/nginx/sites-enabled/{APP['app_name']}.conf"
# The model change of the two tests below: the site gets a certificate and a name, the limit rises.
TLS_MODEL = {
    "nginx_tls_certificate": CERTIFICATE,
    "nginx_tls_certificate_key": CERTIFICATE_KEY,
    "nginx_server_names": ["shop.test"],
    "app_max_body_size": "25m",
}


def make_certificate(host) -> None:
    run_ok(
        host,
        f"test -e {CERTIFICATE} || openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=shop.test "
        f"-keyout {CERTIFICATE_KEY} -out {CERTIFICATE} 2>/dev/null",
    )


def test_a_model_change_reaches_nginx_and_a_certificate_moves_the_smoke_tests_to_https(host):
    """The inventory gives the site a certificate and a name, and raises the body limit."""
    make_certificate(host)
    site = SITE
    try:
        run = deploy("-e", json.dumps(TLS_MODEL))
        assert run.ok, run.output[-3000:]
        assert "client_max_body_size 25m;" in host.file(site).content_string
        # Plain HTTP only redirects now: the smoke tests went over HTTPS, asking for shop.test.
        plain = host.run("curl -sS -o /dev/null -w '%{http_code}' http://127.0.0.1/api/health").stdout
        assert plain == "301"
        assert "smoke_url: https://127.0.0.1:443" in run.output
        # The summary's address for people is the site's name, not where the smoke tests went.
        assert "url: https://shop.test\n" in run.output
        assert "upload under 25m passed, over it 413" in run.output
        assert "websocket upgrade 101" in run.output
    finally:
        back = deploy()
        assert back.ok, back.output[-3000:]
    assert f"client_max_body_size {APP['app_max_body_size']};" in host.file(site).content_string
    assert health(host)[0] == 200


def test_a_model_change_that_fails_its_smoke_tests_is_put_back(host):
    """The same source, a new model (TLS, a name, a higher limit, an env variable) and a canary that
    fails under it: the release is restarted under the model it ran under, smoke tested against that
    model (plain HTTP, the old limit, the old canary), and passes."""
    make_certificate(host)
    before = current_release(host)
    changed = TLS_MODEL | {"app_env": {"SHIPSHAPE_MODEL_TEST": "2"}, "app_canary_command": "/bin/false"}
    run = deploy("-e", json.dumps(changed))
    said = " ".join(run.output.split())
    assert not run.ok
    assert "Check the worker processes a canary job" in said, run.output[-3000:]
    assert (
        "The release was current already: it was restarted under the app model it ran under before this "
        "deploy, which passed its smoke tests" in said
    ), run.output[-3000:]
    assert "the nginx site" in said and "the env file of web" in said
    site = host.file(SITE).content_string
    assert f"client_max_body_size {APP['app_max_body_size']};" in site and "ssl_certificate" not in site
    assert "SHIPSHAPE_MODEL_TEST" not in run_ok(host, f"cat {ROOT}/shared/env/web.env")
    record = json.loads(run_ok(host, f"cat {ROOT}/shared/model.json"))
    assert record["url"].startswith("http://") and record["max_body_size"] == APP["app_max_body_size"]
    # The smoke tests after the model went back uploaded just under the inventory's limit, not 25m's.
    assert f"upload {record['upload']['limit'] - 65536} bytes, under the limit" in said, run.output[-3000:]
    assert current_release(host) == before
    assert host.file(f"{ROOT}/releases/{before}/.shipshape-status").content_string.startswith("good")
    assert health(host)[0] == 200
    assert not host.file(f"{ROOT}/.deploy.lock").exists
    # The inventory as it is: nothing to change.
    again = deploy()
    assert again.ok and again.recap_changed() == 0, again.output[-3000:]
