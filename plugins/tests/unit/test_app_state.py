"""app_state: the release, the env files (names, and only the values asked for), disk, supervisor's log."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import app_state
import pytest
from app_state import (
    current_state,
    disk_state,
    env_names,
    env_state,
    log_since_start,
    parse_env_file,
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
    sha = words_sha1(SCHEMA)
    assert state == {
        "node_modules": True,
        "prisma_schema_sha1": sha,
        "prisma_schema_folder": False,
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


def sha1(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()


def words_sha1(text: str) -> str:
    """A schema's fingerprint: the sha1 of its words, whitespace collapsed."""
    return sha1(" ".join(text.split()))


def test_a_schema_nobody_formatted_matches_the_formatted_copy_prisma_writes_into_the_client(tmp_path: Path):
    """prisma generate writes the schema formatted (fields aligned, blank lines and trailing spaces
    gone): a schema that only differs in whitespace is the client's, one with another field is not."""
    release = make_release(tmp_path)
    client_copy = release / "node_modules" / ".prisma" / "client" / "schema.prisma"
    client_copy.write_text("model User {\n  id    Int    @id\n  email String\n}\n")
    (release / "prisma" / "schema.prisma").write_text(
        "\n\nmodel User {\n  id Int @id   \n  email    String\n}\n\n"
    )
    state = release_state(str(tmp_path / "current"), "node_modules/.prisma/client")
    assert state["prisma_schema_sha1"] == state["prisma_client_schema_sha1"] is not None
    (release / "prisma" / "schema.prisma").write_text(
        "model User {\n  id Int @id\n  email String\n  name String\n}\n"
    )
    state = release_state(str(tmp_path / "current"), "node_modules/.prisma/client")
    assert state["prisma_schema_sha1"] != state["prisma_client_schema_sha1"]


def test_a_schema_or_client_copy_laid_as_a_symlink_or_fifo_is_not_read(tmp_path: Path):
    release = make_release(tmp_path)
    secret = tmp_path / "root-only"
    secret.write_text(SCHEMA)
    (release / "prisma" / "schema.prisma").unlink()
    (release / "prisma" / "schema.prisma").symlink_to(secret)
    (release / "node_modules" / ".prisma" / "client" / "schema.prisma").unlink()
    os.mkfifo(release / "node_modules" / ".prisma" / "client" / "schema.prisma")
    state = release_state(str(tmp_path / "current"), "node_modules/.prisma/client")
    assert state["prisma_schema_sha1"] is None and state["prisma_client_schema_sha1"] is None


USER_MODEL = "model User {\n  id Int @id\n}\n"


def make_schema_folder(release: Path) -> Path:
    """A multi-file schema, as Prisma reads one: the .prisma files of a folder and of its subfolders."""
    (release / "prisma" / "schema.prisma").unlink()
    folder = release / "prisma" / "schema"
    (folder / "models").mkdir(parents=True)
    (folder / "base.prisma").write_text(SCHEMA)
    (folder / "models" / "user.prisma").write_text(USER_MODEL)
    (folder / "README.md").write_text("not part of the schema\n")
    return folder


FOLDER_SHA1 = sha1(f"base.prisma {words_sha1(SCHEMA)}\nmodels/user.prisma {words_sha1(USER_MODEL)}\n")


def test_a_schema_file_elsewhere_is_read_where_it_is_named(tmp_path: Path):
    release = make_release(tmp_path)
    (release / "prisma" / "schema.prisma").rename(release / "db.prisma")
    current = str(tmp_path / "current")
    assert release_state(current, "node_modules/.prisma/client")["prisma_schema_sha1"] is None
    state = release_state(current, "node_modules/.prisma/client", "db.prisma")
    assert state["prisma_schema_sha1"] == words_sha1(SCHEMA) and state["prisma_schema_folder"] is False


def test_a_schema_folder_is_one_sha1_of_its_prisma_files_by_path(tmp_path: Path):
    folder = make_schema_folder(make_release(tmp_path))
    current = str(tmp_path / "current")
    state = release_state(current, "node_modules/.prisma/client", "prisma/schema")
    assert state["prisma_schema_folder"] is True
    assert state["prisma_schema_sha1"] == FOLDER_SHA1
    # Another .prisma file in a subfolder is part of the schema; any other file is not.
    (folder / "models" / "post.prisma").write_text("model Post {\n  id Int @id\n}\n")
    changed = release_state(current, "node_modules/.prisma/client", "prisma/schema/")["prisma_schema_sha1"]
    assert changed not in (None, FOLDER_SHA1)
    (folder / "models" / "post.prisma").unlink()
    (folder / "notes.txt").write_text("model Ignored {}\n")
    assert release_state(current, "node_modules/.prisma/client", "prisma/schema")["prisma_schema_sha1"] == (
        FOLDER_SHA1
    )


def test_a_schema_folder_without_prisma_files_is_no_schema(tmp_path: Path):
    folder = make_schema_folder(make_release(tmp_path))
    for schema_file in folder.rglob("*.prisma"):
        schema_file.unlink()
    state = release_state(str(tmp_path / "current"), "node_modules/.prisma/client", "prisma/schema")
    assert state["prisma_schema_sha1"] is None and state["prisma_schema_folder"] is True


def test_a_schema_folder_is_read_without_following_what_the_app_user_laid_in_it(tmp_path: Path):
    """As root in the app user's release: a .prisma symlink to a root-only file, a symlinked subfolder
    and a FIFO named .prisma are left out, neither followed nor waited on; so is a symlinked folder."""
    folder = make_schema_folder(make_release(tmp_path))
    secret = tmp_path / "root-only"
    secret.mkdir()
    (secret / "key.prisma").write_text("-----BEGIN PRIVATE KEY-----\n")
    (folder / "key.prisma").symlink_to(secret / "key.prisma")
    (folder / "elsewhere").symlink_to(secret)
    os.mkfifo(folder / "models" / "fifo.prisma")
    current = str(tmp_path / "current")
    assert release_state(current, "node_modules/.prisma/client", "prisma/schema")["prisma_schema_sha1"] == (
        FOLDER_SHA1
    )
    (tmp_path / "current" / "prisma" / "linked").symlink_to(secret)
    linked = release_state(current, "node_modules/.prisma/client", "prisma/linked")
    assert linked["prisma_schema_folder"] is False and linked["prisma_schema_sha1"] is None


def test_env_names_never_carry_values(tmp_path: Path):
    make_release(tmp_path)
    entries = env_state(str(tmp_path), ["web", "worker"])
    assert entries == [
        {
            "process": "web",
            "exists": True,
            "names": ["DATABASE_URL", "HOSTNAME", "NODE_ENV"],
            "values": {},
            "expanded": [],
        },
        {"process": "worker", "exists": False, "names": [], "values": {}, "expanded": []},
    ]
    assert SECRET not in json.dumps(entries)


def test_env_values_are_returned_for_the_names_asked_only(tmp_path: Path):
    """Seed 001's pool of 2 set by hand, as the app role quotes it or not: its value comes back, as
    sh sets it; DATABASE_URL's (with the password) does not, nor any name not asked for."""
    (tmp_path / "shared" / "env").mkdir(parents=True)
    (tmp_path / "shared" / "env" / "web.env").write_text(
        f"DATABASE_URL='postgresql://shop:{SECRET}@127.0.0.1/shop?connection_limit=10'\n"
        "DATABASE_POOL_MAX='10'\nDATABASE_POOL_MAX=2\nNODE_ENV='production'\n"
        "UPLOAD_DIR=$HOME/uploads\nSESSION_SECRET='it'\\''s'\n"
    )
    shown = ["DATABASE_POOL_MAX", "NODE_ENV", "UPLOAD_DIR", "UPLOAD_MAX_BYTES"]
    [entry] = env_state(str(tmp_path), ["web"], shown)
    assert entry["names"] == ["DATABASE_POOL_MAX", "DATABASE_URL", "NODE_ENV", "SESSION_SECRET", "UPLOAD_DIR"]
    assert entry["values"] == {"DATABASE_POOL_MAX": "2", "NODE_ENV": "production"}
    assert entry["expanded"] == ["UPLOAD_DIR"]
    assert SECRET not in json.dumps(entry) and "it's" not in json.dumps(entry)


def test_a_pool_parameter_of_a_url_is_read_without_the_url(tmp_path: Path):
    """Prisma's pool is connection_limit in DATABASE_URL: a hand edit to 2 is seed 001's outage for a
    Prisma app. The parameter's value comes back, never the URL with its password."""
    (tmp_path / "shared" / "env").mkdir(parents=True)
    (tmp_path / "shared" / "env" / "web.env").write_text(
        f"DATABASE_URL='postgresql://shop:{SECRET}@127.0.0.1/shop?connection_limit=10&connection_limit=2'\n"
        "DIRECT_URL='postgresql://shop@127.0.0.1/shop_session?sslmode=disable'\n"
        "REDIS_URL=$BASE/0\n"
    )
    shown = [
        "DATABASE_URL?connection_limit",
        "DATABASE_URL?pool_timeout",
        "DIRECT_URL?connection_limit",
        "REDIS_URL?connection_limit",
        "UNSET_URL?connection_limit",
    ]
    [entry] = env_state(str(tmp_path), ["web"], shown)
    # The last of a repeated parameter; none: empty.
    assert entry["values"] == {
        "DATABASE_URL?connection_limit": "2",
        "DATABASE_URL?pool_timeout": "",
        "DIRECT_URL?connection_limit": "",
    }
    assert entry["expanded"] == ["REDIS_URL?connection_limit"]
    assert SECRET not in json.dumps(entry)


def test_a_url_parameter_that_is_not_a_number_is_not_shown(tmp_path: Path):
    """An unencoded ? and & in a password make part of it look like the query: never returned."""
    (tmp_path / "shared" / "env").mkdir(parents=True)
    (tmp_path / "shared" / "env" / "web.env").write_text(
        "DATABASE_URL='postgresql://shop:a?x&connection_limit=s3cret@127.0.0.1/shop'\n"
    )
    [entry] = env_state(str(tmp_path), ["web"], ["DATABASE_URL?connection_limit"])
    assert entry["values"] == {"DATABASE_URL?connection_limit": "not a number"}
    assert "s3cret" not in json.dumps(entry)


def test_a_url_parameter_that_may_carry_a_password_is_refused(tmp_path: Path, run_module: RunModule):
    (tmp_path / "shared" / "env").mkdir(parents=True)
    (tmp_path / "shared" / "env" / "web.env").write_text(
        f"DATABASE_URL='postgresql://127.0.0.1/shop?user=shop&password={SECRET}'\n"
    )
    options = {"app_root": str(tmp_path), "app_name": "shop", "processes": ["web"], "nginx": False}
    result = run_module(app_state, {**options, "env_values": ["NODE_ENV", "DATABASE_URL?password"]})
    assert result["failed"] is True
    assert "env_values: DATABASE_URL?password: of a URL, only connection_limit, pool_timeout" in result["msg"]
    assert SECRET not in json.dumps(result)


# Env files as the app role writes them (process.env.j2, env_file_line) and as people edit them.
SH_FILES = [
    "A='1'\nB='x y'\nC='it'\\''s'\nD=''\n",
    'export A=1 B="q\\"z\\\\$"\n  readonly C=3\n',
    "A=1 B=2; C=3 && D=4\n",
    "A=1 true\nB=2\n",
    "# A=1\nB=2 # a comment\nC=x#y\n",
    "A=one\\\n\nB=two\\ three\n",
    "A=1\nA=2\nB=3\nunset B\n",
    "A='x\ry'\nB='a\x0bB_LEAK=c'\nC=d\r\n",
    "A='multi\nline'\nB=$\nC=\"$\"\n",
    "not a line\n=novalue\n1D=x\n",
]


@pytest.mark.parametrize("text", SH_FILES)
def test_env_files_are_read_as_sh_sources_them(tmp_path: Path, text: str):
    path = tmp_path / "web.env"
    path.write_text(text, newline="")
    dump = "import json, os; print(json.dumps(dict(os.environ)))"
    sourced = subprocess.run(
        ["env", "-i", "/bin/sh", "-c", f'set -a; . "$1"; exec {sys.executable} -c "{dump}"', "sh", str(path)],
        capture_output=True,
        text=True,
        check=True,
    )
    shell = {
        name: value
        for name, value in json.loads(sourced.stdout).items()
        if name not in ("PWD", "OLDPWD", "LC_CTYPE", "SHLVL", "_")
    }
    assert parse_env_file(text) == (shell, None)


def test_a_value_the_shell_computes_is_not_taken_for_its_text():
    env, error = parse_env_file('A=$HOME\nB=~/x\nC=a~b\nD=`id`\nE="${A:-x} y"\nF=$(echo; echo)\nG=1\n')
    assert error is None
    assert env == {"A": None, "B": None, "C": "a~b", "D": None, "E": None, "F": None, "G": "1"}


def test_what_sh_would_stop_on_is_named_by_its_line_without_the_value(tmp_path: Path):
    (tmp_path / "shared" / "env").mkdir(parents=True)
    (tmp_path / "shared" / "env" / "web.env").write_text(f"NODE_ENV=production\nSECRET='{SECRET}\n")
    [entry] = env_state(str(tmp_path), ["web"], ["NODE_ENV"])
    assert entry["syntax_error"] == "unterminated ' quote opened on line 2"
    assert entry["values"] == {"NODE_ENV": "production"}
    assert SECRET not in json.dumps(entry)


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
            "env_values": ["NODE_ENV"],
            "supervisord_log": str(log),
            "nginx": False,
            "_ansible_check_mode": True,
        },
    )
    assert result["changed"] is False
    assert result["current"]["release"] == "20251122T230000Z-abc"
    assert result["release"]["build_id"] == "build-1"
    assert result["env"][0]["names"] == ["DATABASE_URL", "HOSTNAME", "NODE_ENV"]
    assert result["env"][0]["values"] == {"NODE_ENV": "production"}
    assert result["supervisord_log"]["lines"] == [
        "2025-11-22 21:00:00,000 INFO supervisord started with pid 1"
    ]
    assert result["nginx"] is None
    assert "rc" in result["supervisor"]
    assert SECRET not in json.dumps(result)


def test_module_reads_the_schema_it_is_given(tmp_path: Path, run_module: RunModule):
    make_schema_folder(make_release(tmp_path))
    options = {"app_root": str(tmp_path), "app_name": "shop", "supervisord_log": "/nonexistent.log"}
    default = run_module(app_state, {**options, "nginx": False})
    assert default["release"]["prisma_schema_sha1"] is None
    result = run_module(app_state, {**options, "nginx": False, "prisma_schema": "prisma/schema"})
    assert result["release"]["prisma_schema_folder"] is True
    assert result["release"]["prisma_schema_sha1"] == FOLDER_SHA1


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
