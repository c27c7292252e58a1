"""One drill per outage: break the deployed sample app, diagnose must name it, recover must bring it back.

Tests run in file order on the host prepare deployed. Each drill:
  1. makes the fault the way it happens in production (seeds 000-004);
  2. runs recover.yml (with the option that outage needs) and times it: the JSON report of the diagnosis
     it runs first (its `before` report, diagnose.yml's own code) must name the incident, and the
     recovery must pass the deploy's smoke tests, the app answering through nginx with the build of
     current (diagnose.yml itself runs on the healthy host, where it must change nothing);
  3. checks that every Campaign row written before the fault is still there.
The timings are written to .cache/recovery/drills.json for docs/benchmarks.md.
"""

from __future__ import annotations

import base64
import json
import shlex
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from shipshape_playbook import PROJECT, PlaybookRun, run_diagnose, run_playbook
from shipshape_testing import app_model, lock_json, molecule_hosts, run_ok

testinfra_hosts = molecule_hosts("web")
APP = app_model()
NAME, USER, ROOT = APP["app_name"], APP["app_user"], APP["app_root"]
ENV = f"{ROOT}/shared/env"
SAMPLE = PROJECT / "examples/app"
REPORTS = Path(tempfile.mkdtemp(prefix="shipshape-recovery-reports-"))
TIMINGS = PROJECT / ".cache/recovery/drills.json"
# Every recover.yml run's output, for the secret scan at the end; on disk too, to read after a failure.
OUTPUTS = PROJECT / ".cache/recovery/outputs"
RUN_OUTPUTS: dict[str, str] = {}
FILES = Path(__file__).resolve().parents[1] / "files"
RESULTS: dict[str, dict[str, Any]] = {}


def psql(host, sql: str, database: str = NAME) -> str:
    command = f"psql -XAt -v ON_ERROR_STOP=1 -d {database} -c {shlex.quote(sql)}"
    return run_ok(host, f"runuser -u postgres -- {command}").strip()


def put(host, path: str, text: str, owner: str = "root") -> None:
    encoded = base64.b64encode(text.encode()).decode()
    run_ok(host, f"echo {encoded} | base64 -d > {path} && chown {owner} {path} && chmod 0644 {path}")


def campaign_ids(host) -> set[str]:
    return set(psql(host, 'SELECT id FROM "Campaign"').split())


def health(host) -> tuple[int, dict]:
    out = host.run("curl -sS -m 10 -w '\\n%{http_code}' http://127.0.0.1/api/health").stdout
    body, _, code = out.rpartition("\n")
    return int(code or 0), (json.loads(body) if body.startswith("{") else {})


def current_release(host) -> str:
    return run_ok(host, f"readlink {ROOT}/current").strip().removeprefix("releases/")


def build_id_of_current(host) -> str:
    return json.loads(run_ok(host, f"cat {ROOT}/current/.shipshape-release.json"))["build_id"]


def wait_for(probe, what: str, timeout: float = 90, interval: float = 1) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if probe():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


def program_state(host, process: str) -> str:
    line = host.run(f"supervisorctl status {NAME}:{NAME}-{process}").stdout.split()
    return line[1] if len(line) > 1 else "?"


def every_program_runs(host) -> bool:
    return host.run(f"supervisorctl status {NAME}:").stdout.count("RUNNING") == len(APP["app_processes"])


def diagnose(host, drill: str) -> list[dict[str, Any]]:
    """Run diagnose.yml; the findings of this host's JSON report."""
    return read_findings(run_diagnose(REPORTS, drill), drill)


def read_findings(path: Path, drill: str) -> list[dict[str, Any]]:
    report = json.loads(path.read_text())
    assert report["schema"] == "shipshape-diagnose/1"
    found = {f["id"] for f in report["findings"] if f["severity"] != "info"}
    RESULTS.setdefault(drill, {})["found"] = sorted(found)
    return report["findings"]


def recover(drill: str, *extra: str) -> tuple[PlaybookRun, list[dict[str, Any]]]:
    """Run recover.yml, timed; with the findings of the diagnosis it ran before changing anything."""
    earlier = set(REPORTS.glob("*-before.json"))
    started = time.monotonic()
    run = run_playbook("recover.yml", "-e", f"diagnose_report_dir={REPORTS}", *extra)
    seconds = round(time.monotonic() - started, 1)
    keep_output(drill, run)
    RESULTS.setdefault(drill, {}).update(seconds=seconds, options=list(extra[1::2]), ok=run.ok)
    TIMINGS.parent.mkdir(parents=True, exist_ok=True)
    TIMINGS.write_text(json.dumps(RESULTS, indent=2) + "\n")
    written = sorted(set(REPORTS.glob("*-before.json")) - earlier)
    assert len(written) == 1, f"recover.yml wrote {len(written)} before reports\n{run.output[-4000:]}"
    return run, read_findings(written[0], drill)


def keep_output(name: str, run: PlaybookRun) -> None:
    RUN_OUTPUTS[name] = run.output
    OUTPUTS.mkdir(parents=True, exist_ok=True)
    (OUTPUTS / f"{name}.log").write_text(run.output)


def inventory_secrets() -> list[str]:
    """The demo inventory's secrets in clear (its vault_* values)."""
    secrets = yaml.safe_load((PROJECT / "inventories/demo/group_vars/all/secrets.yml").read_text())
    values = [str(value) for value in secrets.values() if isinstance(value, str) and "{{" not in value]
    assert values
    return values


def assert_verbose_without_secrets(run: PlaybookRun, *more_secrets: str) -> None:
    """-vvv prints each command a task runs on the host (the connection's EXEC line, where a task's
    environment: would appear) and each task's arguments: none may carry a password."""
    assert "> EXEC " in run.output and "module_args" in run.output, "not the output of -vvv"
    leaked = [value for value in [*inventory_secrets(), *more_secrets] if value in run.output]
    assert not leaked, f"{len(leaked)} secret(s) in the -vvv output, e.g. near: " + ", ".join(
        run.output[max(0, run.output.index(value) - 120) : run.output.index(value)] for value in leaked
    )


def latest_report(label: str) -> dict[str, Any]:
    reports = sorted(REPORTS.glob(f"*-{label}.json"))
    assert reports, f"no {label} report in {REPORTS}"
    return json.loads(reports[-1].read_text())


def ids(findings: list[dict[str, Any]], severity: str | None = None) -> set[str]:
    return {f["id"] for f in findings if severity is None or f["severity"] == severity}


def assert_back(host, run: PlaybookRun, rows_before: set[str]) -> None:
    assert run.ok, run.output[-6000:]
    assert "recovered: the smoke tests pass" in run.output
    code, body = health(host)
    assert code == 200, body
    assert body["buildId"] == build_id_of_current(host)
    status = run_ok(host, f"supervisorctl status {NAME}:")
    assert status.count("RUNNING") == len(APP["app_processes"]), status
    assert rows_before <= campaign_ids(host), "rows written before the fault are gone"
    assert not host.file(f"{ROOT}/.deploy.lock").exists


@pytest.fixture(scope="module")
def rows(host) -> set[str]:
    """Campaigns written through the app before any drill, sent by the worker."""
    for index in range(3):
        run_ok(
            host,
            "curl -sS -f -H 'Content-Type: application/json' "
            f'-d \'{{"name":"before-drills-{index}","recipients":3}}\' http://127.0.0.1/api/campaigns',
        )
    before = campaign_ids(host)
    assert len(before) >= 3
    return before


def test_the_healthy_host_has_no_critical_finding(host, rows):
    findings = diagnose(host, "healthy")
    assert ids(findings, "critical") == set(), findings


def test_diagnose_at_vvv_reads_redis_without_printing_a_password(host, rows):
    # nginx -T prints every file nginx reads, comments too: a secret an operator put in one (an auth
    # header of nginx_extra_server_config) must not reach diagnose's output either.
    nginx_secret = "nginx-file-secret-5c81e0"
    extra = "/etc/nginx/conf.d/zz-shipshape-test-secret.conf"
    put(host, extra, f"# Authorization: Bearer {nginx_secret}\n")
    try:
        assert nginx_secret in run_ok(host, "nginx -T 2>/dev/null")
        run = run_playbook(
            "diagnose.yml", "-vvv", "-e", f"diagnose_report_dir={REPORTS}", "-e", "diagnose_report_label=vvv"
        )
    finally:
        run_ok(host, f"rm -f {extra}")
    keep_output("diagnose-vvv", run)
    assert run.ok, run.output[-4000:]
    assert_verbose_without_secrets(run, nginx_secret)
    facts = latest_report("vvv")["facts"]
    assert facts["redis"]["ok"] is True and "redis_version" in facts["redis"]["info"], facts["redis"]
    assert facts["postgres"]["ok"] is True, facts["postgres"]


def test_diagnose_at_vvv_names_a_password_redis_refuses_without_printing_it(host, rows):
    wrong = "not-the-password-redis-has-2b7e"
    run = run_playbook(
        "diagnose.yml",
        "-vvv",
        "-e",
        f"diagnose_report_dir={REPORTS}",
        "-e",
        "diagnose_report_label=vvv-wrong",
        "-e",
        f"app_redis_password={wrong}",
    )
    keep_output("diagnose-vvv-wrong", run)
    assert run.ok, run.output[-4000:]
    assert_verbose_without_secrets(run, wrong)
    report = latest_report("vvv-wrong")
    redis = report["facts"]["redis"]
    assert redis["ok"] is False and any(word in redis["error"] for word in ("NOAUTH", "WRONGPASS")), redis
    assert "H2" in {f["id"] for f in report["findings"] if f["severity"] == "critical"}


def test_diagnose_refuses_prisma_paths_outside_the_release(host):
    before = sorted(REPORTS.iterdir())
    run = run_playbook(
        "diagnose.yml",
        "-e",
        f"diagnose_report_dir={REPORTS}",
        "-e",
        "diagnose_prisma_schema=/etc/shadow",
        "-e",
        "diagnose_prisma_client_dir=node_modules/../../../etc",
    )
    assert not run.ok
    said = " ".join(run.output.split())
    assert "diagnose_prisma_schema='/etc/shadow' is an absolute path" in said, run.output[-3000:]
    assert "diagnose_prisma_client_dir='node_modules/../../../etc' has a '..' component" in said
    assert sorted(REPORTS.iterdir()) == before, "a refused diagnosis wrote a report"


def test_rogue_node_process_on_the_web_port_i1_i6(host, rows):
    run_ok(host, f"supervisorctl stop {NAME}:{NAME}-web")
    # A server started by hand from the release, outside supervisor (seeds 000, 002, 004).
    run_ok(
        host,
        f"systemd-run --unit=rogue-node --uid={USER} --working-directory={ROOT}/current "
        "node -e \"require('http').createServer((q,s)=>s.end('rogue')).listen(3000,'127.0.0.1')\"",
    )
    wait_for(lambda: host.socket("tcp://127.0.0.1:3000").is_listening, "the rogue process to listen")
    rogue = run_ok(host, "systemctl show -p MainPID --value rogue-node").strip()
    run, findings = recover("rogue")
    assert {"I1", "I6"} <= ids(findings, "critical")
    assert any(rogue in line for f in findings if f["id"] == "I6" for line in f["evidence"])
    assert_back(host, run, rows)
    # Reported with the systemd unit that started it: what would bring it back.
    said = " ".join(run.output.split())
    assert f"Ended pid {rogue} (" in said and "in systemd unit rogue-node.service" in said, run.output[-4000:]
    assert host.run(f"kill -0 {rogue}").rc != 0


def test_generated_prisma_client_deleted_i2(host, rows):
    run_ok(host, f"rm -rf {ROOT}/current/node_modules/.prisma/client")
    run_ok(host, f"supervisorctl restart {NAME}:{NAME}-web")
    wait_for(lambda: health(host)[0] == 503, "the web health to fail without the client")
    run, findings = recover("prisma")
    assert "I2" in ids(findings, "critical")
    assert_back(host, run, rows)
    assert host.file(f"{ROOT}/current/node_modules/.prisma/client/schema.prisma").exists


def test_a_release_without_node_modules_is_refused_before_anything_stops(host, rows):
    # prisma generate cannot run without node_modules: refused while the programs still run.
    run_ok(host, f"mv {ROOT}/current/node_modules {ROOT}/node_modules.drill")
    try:
        run = run_playbook("recover.yml", "-e", f"diagnose_report_dir={REPORTS}")
        keep_output("no-node-modules", run)
    finally:
        run_ok(host, f"mv {ROOT}/node_modules.drill {ROOT}/current/node_modules")
    assert not run.ok, run.output[-4000:]
    assert "-e recover_rebuild=true" in run.output and "Nothing was stopped" in run.output
    status = run_ok(host, f"supervisorctl status {NAME}:")
    assert status.count("RUNNING") == len(APP["app_processes"]), status
    assert not host.file(f"{ROOT}/.deploy.lock").exists


def test_connections_held_until_the_app_cannot_get_one_i3(host, rows):
    unit = f"pg-hog-{int(time.time())}"
    put(host, "/tmp/pg_hog.py", (FILES / "pg_hog.py").read_text())
    # As the app role, with the app's own DATABASE_URL: a leaking script or a second app (seed 001).
    run_ok(
        host,
        f"systemd-run --unit={unit} --uid={USER} -p EnvironmentFile={ENV}/web.env python3 /tmp/pg_hog.py",
    )
    try:
        # Not polling the app meanwhile: its pool frees an idle connection after 10 s, for the hog to take.
        wait_for(
            lambda: "holding" in host.run(f"journalctl -u {unit} -o cat").stdout,
            "the hog to hold every connection it can get",
            timeout=180,
            interval=5,
        )
        assert health(host)[0] != 200, "the app still gets a connection"
        run, findings = recover("connections")
        i3 = [f for f in findings if f["id"] == "I3" and f["severity"] == "critical"]
        # PostgreSQL's table names who holds the connections (the health finding says what the app saw).
        assert any("hog as shop" in line for f in i3 for line in f["evidence"]), i3
        assert_back(host, run, rows)
        left = psql(host, "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'hog'", "postgres")
        assert left == "0"
    finally:
        host.run(f"systemctl stop {unit}")


def test_nginx_body_limit_set_back_to_1m_by_hand_i4(host, rows):
    site = f"/etc/nginx/sites-enabled/{NAME}.conf"
    limit = APP["app_max_body_size"]
    run_ok(host, f"sed -i 's/client_max_body_size {limit};/client_max_body_size 1m;/' {site}")
    run_ok(host, "nginx -t && systemctl reload nginx")
    run, findings = recover("bodylimit")
    assert "I4" in ids(findings, "critical")
    assert_back(host, run, rows)
    assert f"client_max_body_size {APP['app_max_body_size']};" in host.file(site).content_string


def test_a_program_crash_looping_into_fatal_i5(host, rows):
    # A start-up crash (here a preload that does not exist) until supervisor gives up; then the
    # cause goes away (the file is put back), as after a database that was briefly down, but the
    # program stays FATAL: nobody restarts it.
    env = f"{ENV}/worker.env"
    run_ok(host, f"cp -p {env} /root/worker.env.bak")
    run_ok(host, f"echo \"NODE_OPTIONS='--require /nonexistent.js'\" >> {env}")
    run_ok(host, f"supervisorctl restart {NAME}:{NAME}-worker || true")
    wait_for(lambda: program_state(host, "worker") == "FATAL", "the worker to end FATAL", timeout=120)
    run_ok(host, f"cp -p /root/worker.env.bak {env}")
    run, findings = recover("fatal")
    i5 = [f for f in findings if f["id"] == "I5" and f["severity"] == "critical"]
    assert i5 and "FATAL" in i5[0]["title"], findings
    assert "unexpected exit" in i5[0]["evidence"][1]
    assert_back(host, run, rows)


def test_the_app_made_to_listen_on_ipv6_loopback_only_i7(host, rows):
    preload = f"{ROOT}/shared/ipv6-only.js"
    put(host, preload, (FILES / "ipv6-only.js").read_text(), owner=USER)
    run_ok(host, f"echo \"NODE_OPTIONS='--require {preload}'\" >> {ENV}/web.env")
    run_ok(host, f"supervisorctl restart {NAME}:{NAME}-web")
    wait_for(lambda: host.socket("tcp://::1:3000").is_listening, "web to listen on ::1")
    try:
        run, findings = recover("ipv6")
        i7 = [f for f in findings if f["id"] == "I7" and f["severity"] == "critical"]
        assert i7, findings
        assert any("::1:3000 (ipv6)" in line for line in i7[0]["evidence"])
        assert_back(host, run, rows)
        assert host.socket("tcp://127.0.0.1:3000").is_listening
        assert "NODE_OPTIONS" not in run_ok(host, f"grep -o '^[A-Z_]*=' {ENV}/web.env")
    finally:
        host.run(f"rm -f {preload}")


@pytest.fixture(scope="module")
def older_release(host) -> str:
    """Deploy a changed source, so that the first release is an older, real build."""
    older = current_release(host)
    target = Path(tempfile.mkdtemp(prefix="shipshape-changed-"))
    try:
        ignore = shutil.ignore_patterns("node_modules", ".next")
        shutil.copytree(SAMPLE, target, dirs_exist_ok=True, ignore=ignore)
        page = target / "app/page.js"
        page.write_text(page.read_text() + "\n// changed source for the stale-build drill\n")
        source = {"app_source": {"type": "archive", "path": str(target)}}
        run = run_playbook("deploy.yml", "-e", json.dumps(source))
        assert run.ok, run.output[-4000:]
    finally:
        shutil.rmtree(target, ignore_errors=True)
    assert current_release(host) != older
    return older


def test_a_stale_next_from_an_older_build_put_back_i8(host, rows, older_release):
    expected = build_id_of_current(host)
    run_ok(host, f"rm -rf {ROOT}/current/.next")
    run_ok(host, f"cp -a {ROOT}/releases/{older_release}/.next {ROOT}/current/.next")
    run_ok(host, f"supervisorctl restart {NAME}:{NAME}-web")
    stale = run_ok(host, f"cat {ROOT}/current/.next/BUILD_ID").strip()
    assert stale != expected
    wait_for(lambda: health(host)[1].get("buildId") == stale, "web to serve the stale build")
    # Without the option, recover says what it will not fix (check mode: the plan only).
    plan = run_playbook("recover.yml", "--check", "-e", f"diagnose_report_dir={REPORTS}")
    keep_output("stale-next-plan", plan)
    assert plan.ok, plan.output[-4000:]
    assert "recover_rebuild=true" in plan.output
    # A rebuild that fails (here npm ci) stops before anything stops: the stale app keeps serving,
    # under the same pids, current is not touched, and the failed release is removed.
    pids = sorted(run_ok(host, "supervisorctl pid all").split())
    releases = run_ok(host, f"ls {ROOT}/releases").split()
    failed = run_playbook(
        "recover.yml",
        "-e",
        f"diagnose_report_dir={REPORTS}",
        "-e",
        "recover_rebuild=true",
        "-e",
        "app_install_command=false",
    )
    keep_output("stale-next-failed-rebuild", failed)
    assert not failed.ok, failed.output[-4000:]
    said = " ".join(failed.output.split())
    assert "current was not touched and nothing was stopped; the failed release was removed" in said
    assert "release: " + current_release(host) + ", not switched" in said
    assert sorted(run_ok(host, "supervisorctl pid all").split()) == pids
    assert run_ok(host, f"ls {ROOT}/releases").split() == releases
    assert health(host)[1].get("buildId") == stale
    assert not host.file(f"{ROOT}/.deploy.lock").exists

    replaced = current_release(host)
    run, findings = recover("stale-next", "-e", "recover_rebuild=true")
    assert "I8" in ids(findings, "critical")
    assert_back(host, run, rows)
    assert health(host)[1]["buildId"] not in (stale,)
    # A new release of the same source (its id keeps the hash) is current, marked good; the
    # one it replaced is marked bad, so that rollback.yml does not go back to its stale build.
    rebuilt = current_release(host)
    assert rebuilt != replaced and rebuilt.split("-", 1)[1] == replaced.split("-", 1)[1]
    assert f"release: {rebuilt}, a clean rebuild of {replaced}" in " ".join(run.output.split())
    assert run_ok(host, f"head -1 {ROOT}/releases/{rebuilt}/.shipshape-status").strip() == "good"
    assert run_ok(host, f"head -1 {ROOT}/releases/{replaced}/.shipshape-status").strip() == "bad"
    assert json.loads(run_ok(host, f"cat {ROOT}/current/.shipshape-release.json"))["id"] == rebuilt


def insert_stuck_campaign(host, campaign: str) -> None:
    """Seed 004: every message sent, the campaign still SENDING."""
    psql(
        host,
        'INSERT INTO "Campaign" (id, name, status, "totalRecipients", "sentCount", "startedAt") '
        f"VALUES ('{campaign}', 'stuck in SENDING', 'SENDING', 2, 2, now());"
        'INSERT INTO "Message" (id, "campaignId", recipient, status, "sentAt") VALUES '
        f"('{campaign}-m1', '{campaign}', 'a@example.com', 'SENT', now()), "
        f"('{campaign}-m2', '{campaign}', 'b@example.com', 'SENT', now());",
    )


def campaign_status(host, campaign: str) -> str:
    return psql(host, f"SELECT status FROM \"Campaign\" WHERE id = '{campaign}'")


def test_the_socket_io_program_stopped_i10(host, rows):
    run_ok(host, f"supervisorctl stop {NAME}:{NAME}-socket")
    # A stuck record too: recover must leave it alone, since this run does not ask for the fixes (I11).
    insert_stuck_campaign(host, "drill-unasked")
    run, findings = recover("socket")
    assert "I10" in ids(findings, "critical")
    assert any("socket" in f["title"] for f in findings if f["id"] == "I10")
    assert_back(host, run, rows)
    assert any("drill-unasked" in line for f in findings if f["id"] == "I11" for line in f["evidence"])
    assert "NOT ASKED: stuck records were found" in run.output
    assert campaign_status(host, "drill-unasked") == "SENDING"


def test_a_campaign_stuck_in_sending_and_a_stale_lock_i11(host, rows):
    # Seed 004: a campaign stuck in SENDING; a deploy died holding the lock.
    insert_stuck_campaign(host, "drill-stuck")
    now = time.time()
    host.run(f"echo '{lock_json('bob@gone', now - 7200, now - 3600)}' > {ROOT}/.deploy.lock")
    before = campaign_ids(host)
    run, findings = recover("stuck", "-e", "recover_fix_stuck=true")
    i11 = [f for f in findings if f["id"] == "I11"]
    assert any("stuck in SENDING" in f["title"] for f in i11), findings
    assert any("drill-stuck" in line for f in i11 for line in f["evidence"])
    assert any("stale" in f["title"] for f in i11)
    assert_back(host, run, rows | before)
    assert "bob@gone" in run.output
    assert campaign_status(host, "drill-stuck") == "COMPLETED"


def started_at(host, pid: str) -> float:
    """When a process started, in seconds since the epoch, to the clock tick (/proc's start time)."""
    script = (
        "import os, sys; fields = open(f'/proc/{sys.argv[1]}/stat').read().rsplit(')', 1)[1].split(); "
        "boot = next(int(line.split()[1]) for line in open('/proc/stat') if line.startswith('btime')); "
        "print(boot + int(fields[19]) / os.sysconf('SC_CLK_TCK'))"
    )
    return float(run_ok(host, f"python3 -c {shlex.quote(script)} {pid}"))


def test_a_programs_file_edited_by_hand_is_undone_and_nothing_starts_before_the_stuck_fix(host, rows):
    """supervisord applies a changed programs file by starting the group at once: applied at the
    re-render, the worker ran before the stuck-record fix (seed 004's race). Every program must start
    after the fix, under the programs file as rendered."""
    conf = f"/etc/supervisor/conf.d/{NAME}.conf"
    rendered = run_ok(host, f"cat {conf}")
    # Someone "fixed" the crash loop of I5 by hand, and applied it.
    run_ok(host, f"sed -i 's/^startretries=.*/startretries=30/' {conf} && supervisorctl update {NAME}")
    wait_for(lambda: every_program_runs(host), "the programs to run the hand-edited file")
    insert_stuck_campaign(host, "drill-programs")
    run, _ = recover("programs", "-e", "recover_fix_stuck=true")
    assert_back(host, run, rows)
    assert run_ok(host, f"cat {conf}") == rendered
    assert campaign_status(host, "drill-programs") == "COMPLETED"
    fixed_at = float(
        psql(
            host,
            "SELECT extract(epoch FROM \"completedAt\" AT TIME ZONE current_setting('TimeZone'))"
            " FROM \"Campaign\" WHERE id = 'drill-programs'",
        )
    )
    for process in APP["app_processes"]:
        pid = run_ok(host, f"supervisorctl pid {NAME}:{NAME}-{process['name']}").strip()
        assert started_at(host, pid) > fixed_at, f"{process['name']} started before the stuck-record fix"


def test_a_required_variable_removed_from_the_env_file_i12(host, rows):
    run_ok(host, f"sed -i '/^SESSION_SECRET=/d' {ENV}/web.env")
    run_ok(host, f"supervisorctl restart {NAME}:{NAME}-web || true")
    run, findings = recover("env")
    i12 = [f for f in findings if f["id"] == "I12"]
    assert i12 and "SESSION_SECRET" in i12[0]["title"], findings
    assert_back(host, run, rows)
    assert "SESSION_SECRET=" in run_ok(host, f"grep -o '^[A-Z_]*=' {ENV}/web.env")


def test_a_pool_of_2_set_by_hand_in_the_env_file_i3(host, rows):
    # Seed 001: the web pool cut to 2 by hand, against the budget, in both forms an app reads it:
    # DATABASE_POOL_MAX (pg, drizzle) and Prisma's connection_limit in DATABASE_URL. diagnose reads
    # the two values (derived, not secret; of the URL only that parameter) and names each; recover
    # re-renders the env file from the model.
    pool = next(process for process in APP["app_processes"] if process["name"] == "web")["db_pool"]
    run_ok(host, f"sed -i 's/^DATABASE_POOL_MAX=.*/DATABASE_POOL_MAX=2/' {ENV}/web.env")
    run_ok(host, f"sed -i '/^DATABASE_URL=/s/connection_limit={pool}&/connection_limit=2\\&/' {ENV}/web.env")
    assert "connection_limit=2&" in run_ok(host, f"grep '^DATABASE_URL=' {ENV}/web.env")
    run_ok(host, f"supervisorctl restart {NAME}:{NAME}-web")
    run, findings = recover("pool")
    i3 = {f["title"].split(": ")[-1]: f for f in findings if f["id"] == "I3" and f["severity"] == "critical"}
    assert set(i3) == {
        f"DATABASE_POOL_MAX in {ENV}/web.env",
        f"connection_limit in DATABASE_URL in {ENV}/web.env",
    }, findings
    for finding in i3.values():
        assert f"the model renders {pool}, the file says 2" in " ".join(finding["evidence"]), finding
    assert_back(host, run, rows)
    assert run_ok(host, f"grep '^DATABASE_POOL_MAX=' {ENV}/web.env").strip() == f"DATABASE_POOL_MAX='{pool}'"
    assert f"connection_limit={pool}&" in run_ok(host, f"grep '^DATABASE_URL=' {ENV}/web.env")


def web_pid(host) -> str:
    return run_ok(host, f"supervisorctl pid {NAME}:{NAME}-web").strip()


def stop_postgresql(host) -> None:
    run_ok(host, "systemctl stop postgresql")
    assert not host.service("postgresql").is_running


def with_socket_on_the_web_port() -> dict[str, Any]:
    processes = [dict(process) for process in APP["app_processes"]]
    web = next(process for process in processes if process["name"] == "web")
    next(process for process in processes if process["name"] == "socket")["port"] = web["port"]
    return {"app_processes": processes}


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (with_socket_on_the_web_port(), "app_processes: port 3000 is used by both 'web' and 'socket'"),
        (
            {"app_required_env": [*APP["app_required_env"], "MAILER_API_KEY"]},
            "app_required_env: MAILER_API_KEY missing",
        ),
    ],
    ids=["duplicate-port", "missing-required-env"],
)
def test_a_bad_inventory_with_postgresql_down_is_refused_before_anything_stops(host, rows, bad, message):
    # recover runs when things are down: the inventory is checked without PostgreSQL, before any stop.
    pid = web_pid(host)
    stop_postgresql(host)
    try:
        run = run_playbook("recover.yml", "-e", f"diagnose_report_dir={REPORTS}", "-e", json.dumps(bad))
        keep_output(f"bad-inventory-{next(iter(bad))}", run)
        assert not run.ok, run.output[-4000:]
        assert message in " ".join(run.output.split()), run.output[-4000:]
        # Nothing was stopped, restarted or locked: the refusal came before the lock and the stop.
        assert "Stop the programs of the app" not in run.output
        assert not host.service("postgresql").is_running, "recover restarted PostgreSQL"
        assert web_pid(host) == pid, "the web program was restarted"
        assert not host.file(f"{ROOT}/.deploy.lock").exists
    finally:
        run_ok(host, "systemctl start postgresql")


def test_postgresql_down_is_restarted_then_the_budget_checked_at_vvv_without_a_password(host, rows):
    stop_postgresql(host)
    # A deploy meanwhile is refused before any change, and says what to run instead.
    pid = web_pid(host)
    refused = run_playbook("deploy.yml")
    keep_output("deploy-postgresql-down", refused)
    assert not refused.ok
    said = " ".join(refused.output.split())
    assert "The connection budget (I3) cannot be checked: PostgreSQL on " in said, refused.output[-4000:]
    assert "Bring it back with recover.yml" in said
    assert web_pid(host) == pid and not host.file(f"{ROOT}/.deploy.lock").exists
    assert not host.service("postgresql").is_running
    run, findings = recover("postgresql-down", "-vvv")
    assert "H1" in ids(findings, "critical"), findings
    assert_back(host, run, rows)
    assert host.service("postgresql").is_running
    # The budget reads PostgreSQL's limits: checked once PostgreSQL answers again, not before.
    restarted = run.output.index("TASK [recover : Restart PostgreSQL, which does not answer]")
    budget = run.output.index("TASK [app : Refuse a connection budget that does not fit PostgreSQL]")
    assert restarted < budget, "the budget was checked before PostgreSQL was restarted"
    assert "max_connections" in run.output[budget:]
    assert_verbose_without_secrets(run)


def test_a_password_redis_refuses_fails_without_a_restart_and_the_programs_run_again(host, rows):
    # A restart would not make Redis take another password, and would lose the jobs queued since its
    # last snapshot: recover fails naming the variable; its rescue starts the programs it stopped.
    # At -vvv: the probe gives the password to redis-cli on stdin, which no output shows.
    redis_pid = run_ok(host, "systemctl show -p MainPID --value redis-server").strip()
    wrong = "not-the-password-redis-has-9c1d"
    run = run_playbook(
        "recover.yml", "-vvv", "-e", f"diagnose_report_dir={REPORTS}", "-e", f"app_redis_password={wrong}"
    )
    keep_output("redis-password", run)
    assert not run.ok, run.output[-4000:]
    assert_verbose_without_secrets(run, wrong)
    assert "app_redis_password does not match" in " ".join(run.output.split()), run.output[-4000:]
    assert run_ok(host, "systemctl show -p MainPID --value redis-server").strip() == redis_pid
    wait_for(lambda: every_program_runs(host), "the rescue to start every program again")
    assert not host.file(f"{ROOT}/.deploy.lock").exists
    wait_for(lambda: health(host)[0] == 200, "the app to answer again")


def test_no_report_or_output_carries_a_secret():
    """Env files are read for their names and derived, non-secret values only: no secret of the
    inventory reaches a report, nor what recover.yml and diagnose.yml print, at -vvv too (Redis's
    password goes to redis-cli on stdin, in no_log tasks: never in a command line, an environment or
    a result)."""
    values = inventory_secrets()
    reports = list(REPORTS.glob("*"))
    assert len(reports) > 10
    for report in reports:
        text = report.read_text()
        assert not [value for value in values if value in text], report.name
        assert "postgresql://" not in text and "redis://" not in text, report.name
    assert len(RUN_OUTPUTS) > 10
    for name, output in RUN_OUTPUTS.items():
        assert not [value for value in values if value in output], f"the output of {name}"


def test_every_drill_was_timed():
    assert {name for name, result in RESULTS.items() if "seconds" in result} >= {
        "rogue",
        "prisma",
        "connections",
        "bodylimit",
        "fatal",
        "ipv6",
        "stale-next",
        "socket",
        "stuck",
        "env",
        "pool",
        "postgresql-down",
    }
