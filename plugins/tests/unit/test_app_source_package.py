"""app_source_package: the reproducible package of an archive source, and the action run by Ansible."""

from __future__ import annotations

import json
import os
import subprocess
import tarfile
from pathlib import Path

import pytest
from app_source_package import excluded, normalized_mode, pack, sha256
from module_run import ON_THE_CONTROLLER, run_playbook, tail

EXCLUDES = ["node_modules", ".next", ".git", ".env", "uploads", "*.log"]


def make_tree(root: Path) -> Path:
    files = {
        "package.json": "{}",
        "app/page.js": "export default 1",
        "bin/run": "#!/bin/sh\n",
        ".env": "SECRET=1",
        "apps/web/.env.production.local": "SECRET=2",
        "apps/web/.env.example": "kept: an example holds no secret",
        "uploads/a.bin": "x",
        "lib/uploads/keep.js": "kept: uploads is excluded from the top only",
        "lib/debug.log": "left out by *.log at any depth",
        "node_modules/x/index.js": "",
        "packages/ui/node_modules/y/index.js": "",
        "packages/ui/.next/BUILD_ID": "old",
        "packages/ui/index.js": "",
    }
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    (root / "bin/run").chmod(0o700)
    (root / "package.json").chmod(0o600)
    (root / "app/page.js").chmod(0o664)
    (root / "app").chmod(0o700)
    (root / "link").symlink_to("app/page.js")
    return root


def members(package: Path) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(package) as archive:
        return {member.name: member for member in archive.getmembers()}


def test_the_same_tree_packs_to_the_same_bytes_and_a_change_changes_them(tmp_path: Path):
    first = make_tree(tmp_path / "one")
    second = make_tree(tmp_path / "two")
    # Another time and another mode on the copy: neither may reach the package.
    os.utime(second / "package.json", (1, 1))
    (second / "package.json").chmod(0o640)
    pack(str(first), str(tmp_path / "one.tar"), EXCLUDES)
    pack(str(second), str(tmp_path / "two.tar"), EXCLUDES)
    assert sha256(str(tmp_path / "one.tar")) == sha256(str(tmp_path / "two.tar"))
    (second / "app/page.js").write_text("export default 2")
    pack(str(second), str(tmp_path / "changed.tar"), EXCLUDES)
    assert sha256(str(tmp_path / "changed.tar")) != sha256(str(tmp_path / "one.tar"))


def test_a_source_path_that_is_a_symlink_packs_the_tree_it_points_to(tmp_path: Path):
    tree = make_tree(tmp_path / "code/app")
    (tmp_path / "app").symlink_to(tree)
    pack(str(tree), str(tmp_path / "real.tar"), EXCLUDES)
    pack(str(tmp_path / "app"), str(tmp_path / "link.tar"), EXCLUDES)
    assert sha256(str(tmp_path / "link.tar")) == sha256(str(tmp_path / "real.tar"))
    assert "./app/page.js" in members(tmp_path / "link.tar")


def test_dependencies_build_output_and_excludes_are_left_out(tmp_path: Path):
    pack(str(make_tree(tmp_path / "src")), str(tmp_path / "p.tar"), EXCLUDES)
    names = sorted(members(tmp_path / "p.tar"))
    assert names == [
        ".",
        "./app",
        "./app/page.js",
        "./apps",
        "./apps/web",
        "./apps/web/.env.example",
        "./bin",
        "./bin/run",
        "./lib",
        "./lib/uploads",
        "./lib/uploads/keep.js",
        "./link",
        "./package.json",
        "./packages",
        "./packages/ui",
        "./packages/ui/index.js",
    ]


def test_times_owners_and_modes_are_normalized(tmp_path: Path):
    pack(str(make_tree(tmp_path / "src")), str(tmp_path / "p.tar"), [])
    got = members(tmp_path / "p.tar")
    assert {(m.mtime, m.uid, m.gid, m.uname, m.gname) for m in got.values()} == {(0, 0, 0, "", "")}
    modes = {name: got[name].mode for name in ("./app", "./app/page.js", "./bin/run", "./package.json")}
    assert modes == {"./app": 0o755, "./app/page.js": 0o644, "./bin/run": 0o755, "./package.json": 0o644}
    assert got["./link"].issym() and got["./link"].linkname == "app/page.js"


def test_gnu_tar_unpacks_it_as_unarchive_does(tmp_path: Path):
    pack(str(make_tree(tmp_path / "src")), str(tmp_path / "p.tar"), EXCLUDES)
    (tmp_path / "out").mkdir()
    subprocess.run(["tar", "-xf", tmp_path / "p.tar", "-C", tmp_path / "out"], check=True)
    assert (tmp_path / "out/app/page.js").read_text() == "export default 1"
    assert os.access(tmp_path / "out/bin/run", os.X_OK)
    assert not (tmp_path / "out/.env").exists()


@pytest.mark.parametrize(
    ("name", "left_out"),
    [
        ("./node_modules", True),
        ("./a/b/.next", True),
        ("./node_modules_old", False),
        ("./uploads", True),
        ("./lib/uploads", False),
        ("./x/y.log", True),
        ("./.env.local", True),
        ("./apps/web/.env", True),
        ("./apps/web/.env.development.local", True),
        ("./.env.example", False),
        ("./.env.production", False),
        ("./lib/env.local", False),
    ],
)
def test_excluded(name: str, left_out: bool):
    assert excluded(name, ["uploads", "./.env", "*.log"]) is left_out


def test_normalized_mode():
    assert normalized_mode(0o600, False) == 0o644
    assert normalized_mode(0o4777, False) == 0o4755
    assert normalized_mode(0o700, True) == 0o755


def test_the_action_packs_a_directory_hashes_a_tarball_and_names_a_missing_source(tmp_path: Path):
    source = make_tree(tmp_path / "src")
    with tarfile.open(tmp_path / "given.tar.gz", "w:gz") as archive:
        archive.add(source / "package.json", arcname="package.json")
    play = [
        {
            "hosts": "localhost",
            "gather_facts": False,
            "tasks": [
                {
                    "app_source_package": {"path": str(source), "excludes": EXCLUDES, "prefix": "t-"},
                    "register": "dir",
                },
                {"app_source_package": {"path": str(tmp_path / "given.tar.gz")}, "register": "tarball"},
                {
                    "app_source_package": {"path": str(tmp_path / "absent")},
                    "register": "absent",
                    "ignore_errors": True,
                },
                {"ansible.builtin.stat": {"path": "{{ dir.package }}"}, "register": "during"},
                {
                    "ansible.builtin.copy": {
                        "content": "{{ {'dir': dir, 'tarball': tarball, 'absent': absent,"
                        " 'exists_during_the_run': during.stat.exists} | to_json }}",
                        "dest": str(tmp_path / "out.json"),
                    }
                },
            ],
        }
    ]
    (tmp_path / "play.json").write_text(json.dumps(play))
    run = run_playbook(*ON_THE_CONTROLLER, tmp_path / "play.json")
    assert run.returncode == 0, tail(run)
    got = json.loads((tmp_path / "out.json").read_text())
    assert got["dir"]["packed"] is True and got["dir"]["changed"] is False
    assert Path(got["dir"]["package"]).name.startswith("t-")
    pack(str(source), str(tmp_path / "same.tar"), EXCLUDES)
    assert got["dir"]["checksum"] == sha256(str(tmp_path / "same.tar"))
    # The package lasts as long as the run that unpacks it: Ansible removes its temporary directory.
    assert got["exists_during_the_run"] is True
    assert not Path(got["dir"]["package"]).exists()
    assert got["tarball"]["package"] == str(tmp_path / "given.tar.gz")
    assert got["tarball"]["checksum"] == sha256(str(tmp_path / "given.tar.gz"))
    assert got["absent"]["failed"] is True
    assert got["absent"]["msg"] == (
        f"app_source.path {tmp_path / 'absent'} is neither a directory nor a tarball on the controller"
    )
