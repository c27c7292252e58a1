"""plugins/callback/ansiballz_cache.py: module payloads kept across playbook runs, for make test."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from ansiballz_cache import cache_key, copy_new
from module_run import ON_THE_CONTROLLER, run_playbook, tail

PLAY = """
- hosts: localhost
  gather_facts: false
  tasks:
    - ansible.builtin.stat:
        path: /
"""


def test_the_key_follows_the_module_sources(tmp_path: Path):
    modules, utils = tmp_path / "modules", tmp_path / "module_utils"
    modules.mkdir()
    utils.mkdir()
    (modules / "a.py").write_text("print(1)\n")
    (utils / "b.py").write_text("X = 1\n")
    key = cache_key((modules, utils))
    assert cache_key((modules, utils)) == key
    (utils / "b.py").write_text("X = 2\n")
    assert cache_key((modules, utils)) != key
    (utils / "b.py").write_text("X = 1\n")
    assert cache_key((modules, utils)) == key
    (modules / "c.py").write_text("")
    assert cache_key((modules, utils)) != key


def test_the_key_follows_the_collections_galaxy_installed(tmp_path: Path):
    root = tmp_path / "collections"
    manifest = root / "ansible_collections" / "community" / "postgresql" / "MANIFEST.json"
    manifest.parent.mkdir(parents=True)
    manifest.write_text('{"collection_info": {"version": "3.4.0"}}')
    key = cache_key((), [root])
    assert cache_key((), [root]) == key != cache_key((), [])
    manifest.write_text('{"collection_info": {"version": "3.5.0"}}')
    assert cache_key((), [root]) != key


def test_only_finished_entries_are_copied_and_only_once(tmp_path: Path):
    source, target = tmp_path / "run", tmp_path / "store"
    source.mkdir()
    (source / "ansible.modules.stat-ZIP_DEFLATED-none").write_bytes(b"payload")
    (source / "ansible.modules.file-ZIP_DEFLATED-none-part").write_bytes(b"half")
    (source / "ansible.modules.file-ZIP_DEFLATED-none.lock").write_bytes(b"")
    assert copy_new(source, target) == 1
    assert os.listdir(target) == ["ansible.modules.stat-ZIP_DEFLATED-none"]
    (source / "ansible.modules.stat-ZIP_DEFLATED-none").write_bytes(b"rebuilt")
    assert copy_new(source, target) == 0
    assert (target / "ansible.modules.stat-ZIP_DEFLATED-none").read_bytes() == b"payload"
    assert copy_new(tmp_path / "absent", target) == 0


@pytest.fixture
def play(tmp_path: Path) -> Path:
    path = tmp_path / "play.yml"
    path.write_text(PLAY)
    return path


def run(play: Path, store: Path | None):
    env_before = os.environ.pop("SHIPSHAPE_ANSIBALLZ_CACHE", None)
    os.environ["ANSIBLE_DEBUG"] = "1"
    if store is not None:
        os.environ["SHIPSHAPE_ANSIBALLZ_CACHE"] = str(store)
    try:
        return run_playbook(*ON_THE_CONTROLLER, str(play))
    finally:
        os.environ.pop("ANSIBLE_DEBUG")
        os.environ.pop("SHIPSHAPE_ANSIBALLZ_CACHE", None)
        if env_before is not None:
            os.environ["SHIPSHAPE_ANSIBALLZ_CACHE"] = env_before


def test_a_second_run_takes_the_payload_the_first_built(tmp_path: Path, play: Path):
    store = tmp_path / "store"
    first = run(play, store)
    assert first.returncode == 0, tail(first)
    assert "ANSIBALLZ: Creating module" in first.stdout + first.stderr
    [entries] = [os.listdir(key) for key in store.iterdir()]
    assert [name for name in entries if name.startswith("ansible.modules.stat-")], entries

    second = run(play, store)
    assert second.returncode == 0, tail(second)
    output = second.stdout + second.stderr
    assert "ANSIBALLZ: using cached module" in output and "ANSIBALLZ: Creating module" not in output


def test_without_the_variable_nothing_is_kept(tmp_path: Path, play: Path):
    first = run(play, None)
    assert first.returncode == 0, tail(first)
    second = run(play, None)
    assert "ANSIBALLZ: Creating module" in second.stdout + second.stderr
