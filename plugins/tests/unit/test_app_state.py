"""app_state: the release, env names (never values), disk, supervisor's log, read in one pass."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import app_state
import pytest
from app_state import (
    current_state,
    disk_state,
    env_names,
    env_state,
    log_since_start,
    percent_used,
    release_state,
    run,
)
from module_run import RunModule

SCHEMA = 'generator client {\n  provider = "prisma-client-js"\n}\n'
SECRET = "s3cret-value-never-returned"


def make_release(root: Path, name: str = "20251122T230000Z-abc") -> Path:
    release = root / "releases" / name
    (release / "prisma").mkdir(parents=True)
    (release / "prisma" / "schema.prisma").write_text(SCHEMA)
    client = release / "node_modules" / ".prisma" / "client"
    client.mkdir(parents=True)
    (client / "schema.prisma").write_text(SCHEMA)
    (release / ".next").mkdir()
    (release / ".next" / "BUILD_ID").write_text("build-1\n")
    (release / ".shipshape-release.json").write_text(json.dumps({"id": name, "build_id": "build-1"}))
    (root / "current").symlink_to(f"releases/{name}")
    env = root / "shared" / "env"
    env.mkdir(parents=True)
    (env / "web.env").write_text(
        f"# managed\nDATABASE_URL='postgresql://shop:{SECRET}@127.0.0.1/shop'\nexport NODE_ENV=production\n"
        "  HOSTNAME='127.0.0.1'\nnot a line\n=novalue\n"
    )
    return release


def test_current_points_to_a_release(tmp_path: Path):
    make_release(tmp_path)
    assert current_state(str(tmp_path)) == {
        "exists": True,
        "target": "releases/20251122T230000Z-abc",
        "release": "20251122T230000Z-abc",
    }


def test_no_current(tmp_path: Path):
    assert current_state(str(tmp_path))["exists"] is False


def test_release_state_of_a_healthy_release(tmp_path: Path):
    make_release(tmp_path)
    state = release_state(str(tmp_path / "current"), "node_modules/.prisma/client")
    sha = hashlib.sha1(SCHEMA.encode()).hexdigest()
    assert state == {
        "node_modules": True,
        "prisma_schema_sha1": sha,
        "prisma_client_dir": True,
        "prisma_client_schema_sha1": sha,
        "build_id": "build-1",
        "record": {"id": "20251122T230000Z-abc", "build_id": "build-1"},
    }


def test_release_state_without_client_build_or_record(tmp_path: Path):
    release = make_release(tmp_path)
    (release / "node_modules" / ".prisma" / "client" / "schema.prisma").unlink()
    (release / ".next" / "BUILD_ID").unlink()
    (release / ".shipshape-release.json").write_text("{not json")
    state = release_state(str(tmp_path / "current"), "node_modules/.prisma/client")
    assert state["prisma_client_dir"] is True
    assert state["prisma_client_schema_sha1"] is None
    assert state["build_id"] is None
    assert state["record"] is None


def test_release_state_does_not_follow_what_the_app_user_laid_in_the_release(tmp_path: Path):
    """diagnose reads the release as root; the app user wrote .next: a BUILD_ID that is a symlink to a
    file only root may read is not copied into the report, and a FIFO is not waited on."""
    release = make_release(tmp_path)
    secret = tmp_path / "root-only"
    secret.write_text("-----BEGIN PRIVATE KEY-----\n")
    secret.chmod(0o600)
    (release / ".next" / "BUILD_ID").unlink()
    (release / ".next" / "BUILD_ID").symlink_to(secret)
    (release / ".shipshape-release.json").unlink()
    os.mkfifo(release / ".shipshape-release.json")
    state = release_state(str(tmp_path / "current"), "node_modules/.prisma/client")
    assert state["build_id"] is None and state["record"] is None
    assert "PRIVATE" not in json.dumps(state)


def test_env_names_never_carry_values(tmp_path: Path):
    make_release(tmp_path)
    entries = env_state(str(tmp_path), ["web", "worker"])
    assert entries == [
        {"process": "web", "exists": True, "names": ["DATABASE_URL", "HOSTNAME", "NODE_ENV"]},
        {"process": "worker", "exists": False, "names": []},
    ]
    assert SECRET not in json.dumps(entries)


@pytest.mark.parametrize(
    ("line", "names"),
    [("A=1", ["A"]), ("export B_2='x'", ["B_2"]), ("# C=1", []), ("1D=x", []), ("lower=x", ["lower"])],
)
def test_env_name_lines(line: str, names: list[str]):
    assert env_names(line) == names


@pytest.mark.parametrize("separator", ["\r", "\x0b", "\x0c", "\x1c", "\x85", "\u2028"])
def test_env_names_take_no_part_of_a_value_for_a_name(tmp_path: Path, separator: str):
    # One line for sh: SESSION_SECRET is the only name, whatever its quoted value holds.
    text = f"SESSION_SECRET='x{separator}LEAKED_PART=y'\nA=1\n"
    assert env_names(text) == ["A", "SESSION_SECRET"]
    (tmp_path / "shared" / "env").mkdir(parents=True)
    (tmp_path / "shared" / "env" / "web.env").write_bytes(text.encode())
    assert env_state(str(tmp_path), ["web"])[0]["names"] == ["A", "SESSION_SECRET"]


@pytest.mark.parametrize(
    ("used", "available", "percent"), [(0, 0, None), (1, 99, 1), (96, 4, 96), (1, 2, 34)]
)
def test_percent_used_rounds_up_like_df(used: int, available: int, percent: int | None):
    assert percent_used(used, available) == percent


def test_disk_state_of_a_path_that_does_not_exist_yet(tmp_path: Path):
    state = disk_state(str(tmp_path / "srv" / "shop"))
    assert state["path"].endswith("/srv/shop")
    assert 0 <= state["blocks"]["percent"] <= 100
    assert os.path.ismount(state["mount"])


def test_log_since_supervisord_last_started():
    lines = [
        "2025-11-22 20:00:00,000 INFO exited: shop-web (exit status 1; not expected)\n",
        "2025-11-22 21:00:00,000 INFO supervisord started with pid 1\n",
        "2025-11-22 21:00:01,000 INFO spawned: 'shop-web' with pid 10\n",
        "2025-11-22 21:00:05,000 INFO exited: shop-worker (exit status 1; not expected)\n",
        "2025-11-22 21:00:06,000 INFO gave up: shop-worker entered FATAL state, too many start retries\n",
    ]
    assert log_since_start(lines, 100) == [line.rstrip("\n") for line in lines[1:]]
    assert log_since_start(lines, 1) == [lines[4].rstrip("\n")]


def test_run_reports_a_missing_command_and_a_timeout():
    assert run(["/nonexistent/command"], 1)["rc"] == 127
    assert run(["sleep", "5"], 1)["rc"] == 124
    assert run(["sh", "-c", "echo out; echo err >&2; exit 3"], 5) == {
        "rc": 3,
        "stdout": "out\n",
        "stderr": "err\n",
    }


def test_run_replaces_bytes_that_are_not_utf8():
    # What nginx -T prints from a config file with a Latin-1 comment ("café").
    assert run(["sh", "-c", r"printf '# caf\351\n'; printf '\377' >&2"], 5) == {
        "rc": 0,
        "stdout": "# caf\ufffd\n",
        "stderr": "\ufffd",
    }


def test_module_reads_everything_and_changes_nothing(tmp_path: Path, run_module: RunModule):
    make_release(tmp_path)
    log = tmp_path / "supervisord.log"
    log.write_text("2025-11-22 21:00:00,000 INFO supervisord started with pid 1\n")
    result = run_module(
        app_state,
        {
            "app_root": str(tmp_path),
            "app_name": "shop",
            "processes": ["web"],
            "supervisord_log": str(log),
            "nginx": False,
            "_ansible_check_mode": True,
        },
    )
    assert result["changed"] is False
    assert result["current"]["release"] == "20251122T230000Z-abc"
    assert result["release"]["build_id"] == "build-1"
    assert result["env"][0]["names"] == ["DATABASE_URL", "HOSTNAME", "NODE_ENV"]
    assert result["supervisord_log"]["lines"] == [
        "2025-11-22 21:00:00,000 INFO supervisord started with pid 1"
    ]
    assert result["nginx"] is None
    assert "rc" in result["supervisor"]
    assert SECRET not in json.dumps(result)


def test_module_on_a_host_without_a_release(tmp_path: Path, run_module: RunModule):
    result = run_module(
        app_state,
        {
            "app_root": str(tmp_path / "srv"),
            "app_name": "shop",
            "supervisord_log": "/nonexistent.log",
            "nginx": False,
        },
    )
    assert result["current"]["exists"] is False and result["release"] == {}
    assert "nonexistent.log" in result["supervisord_log"]["error"]
