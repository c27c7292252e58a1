"""molecule/image/zipimport_cache.py: the test image's bytecode cache for modules imported from a zip.

Each case runs a fresh interpreter that installs the cache and imports a module from a zip, as an
Ansible module imports its module_utils on a test host.
"""

from __future__ import annotations

import functools
import hashlib
import marshal
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import pytest

IMAGE_DIR = Path(__file__).resolve().parents[3] / "molecule/image"
TAG = sys.implementation.cache_tag

IMPORT_FROM_ZIP = """
import sys
import zipimport_cache
print(zipimport_cache.install(sys.argv[1]))
sys.path.insert(0, sys.argv[2])
import shipped
print(shipped.answer())
print(shipped.answer.__code__.co_filename)
"""


def make_zip(path: Path, source: str) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("shipped.py", source)
    path.chmod(0o644)
    return path


def import_from_zip(
    cache: Path,
    archive: Path,
    python: str = sys.executable,
    module_dir: Path = IMAGE_DIR,
    flags: tuple[str, ...] = (),
    **kwargs,
) -> list[str]:
    env = {**os.environ, "PYTHONPATH": str(module_dir), "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("PYTHONOPTIMIZE", None)
    done = subprocess.run(
        [python, *flags, "-c", IMPORT_FROM_ZIP, str(cache), str(archive)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        **kwargs,
    )
    return done.stdout.split("\n")[:3]


def entries(cache: Path) -> list[Path]:
    return sorted(cache.iterdir())


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    directory = tmp_path / "cache"
    directory.mkdir(mode=0o755)
    return directory


@pytest.fixture
def root_only():
    if os.geteuid() != 0:
        pytest.fail(
            "these cases check what root writes and what another user may not: run them as root (CI does)"
        )


def test_root_compiles_once_and_the_next_zip_with_that_source_reads_the_cache(tmp_path, cache, root_only):
    first = make_zip(tmp_path / "first.zip", "def answer():\n    return 'compiled'\n")
    assert import_from_zip(cache, first) == ["True", "compiled", f"{first}/shipped.py"]
    [entry] = entries(cache)
    assert entry.name.startswith(f"{TAG}-O0-")

    # Plant other code under that source's key: a second zip with the same source must run it,
    # which shows the cache is read, and its code must name the second zip, not the first.
    entry.write_bytes(
        marshal.dumps(compile("def answer():\n    return 'cached'\n", "/gone.zip/shipped.py", "exec"))
    )
    second = make_zip(tmp_path / "second.zip", "def answer():\n    return 'compiled'\n")
    assert import_from_zip(cache, second) == ["True", "cached", f"{second}/shipped.py"]


def test_changed_source_is_compiled_afresh(tmp_path, cache, root_only):
    import_from_zip(cache, make_zip(tmp_path / "old.zip", "def answer():\n    return 'old'\n"))
    changed = make_zip(tmp_path / "new.zip", "def answer():\n    return 'new'\n")
    assert import_from_zip(cache, changed)[1] == "new"
    assert len(entries(cache)) == 2


def test_code_compiled_without_asserts_is_kept_apart(tmp_path, cache, root_only):
    checks = make_zip(
        tmp_path / "checks.zip",
        "def answer():\n    try:\n        assert False\n    except AssertionError:\n"
        "        return 'asserts kept'\n    return 'asserts dropped'\n",
    )
    assert import_from_zip(cache, checks)[1] == "asserts kept"
    assert import_from_zip(cache, checks, flags=("-O",))[1] == "asserts dropped"
    assert import_from_zip(cache, checks)[1] == "asserts kept"
    assert [entry.name.removeprefix(f"{TAG}-")[:3] for entry in entries(cache)] == ["O0-", "O1-"]


def test_a_damaged_entry_is_compiled_again_and_replaced(tmp_path, cache, root_only):
    archive = make_zip(tmp_path / "a.zip", "def answer():\n    return 'sound'\n")
    import_from_zip(cache, archive)
    [entry] = entries(cache)
    entry.write_bytes(b"\x00not marshal")
    assert import_from_zip(cache, archive)[1] == "sound"
    assert marshal.loads(entry.read_bytes()).co_filename == f"{archive}/shipped.py"


def test_an_entry_that_cannot_be_written_leaves_no_partial_file(tmp_path, cache, root_only):
    source = "def answer():\n    return 'uncached'\n"
    archive = make_zip(tmp_path / "a.zip", source)
    # A directory where the entry would go: reading it fails, and so does moving the entry there.
    blocked = cache / f"{TAG}-O0-{hashlib.sha256(source.encode()).hexdigest()}"
    blocked.mkdir()
    assert import_from_zip(cache, archive)[1] == "uncached"
    assert entries(cache) == [blocked]


def test_another_user_reads_what_root_compiled_but_writes_nothing(root_only):
    # Debian's own interpreter, and everything in a directory any user may read: the project's
    # venv and checkout may sit where nobody but root can enter.
    python = "/usr/bin/python3"
    shared_dir = Path(tempfile.mkdtemp(prefix="zipimport-cache-"))
    try:
        shared_dir.chmod(0o755)
        shutil.copy(IMAGE_DIR / "zipimport_cache.py", shared_dir)
        cache = shared_dir / "cache"
        cache.mkdir(mode=0o755)
        shared = make_zip(shared_dir / "shared.zip", "def answer():\n    return 'compiled'\n")
        run = functools.partial(import_from_zip, python=python, module_dir=shared_dir)
        run(cache, shared)
        [entry] = entries(cache)
        entry.write_bytes(marshal.dumps(compile("def answer():\n    return 'root'\n", "x", "exec")))
        assert run(cache, shared, user=65534, group=65534)[1] == "root"

        # Even where the directory lets it write, a user other than root adds nothing to the cache.
        cache.chmod(0o777)
        other = make_zip(shared_dir / "other.zip", "def answer():\n    return 'unprivileged'\n")
        assert run(cache, other, user=65534, group=65534)[1] == "unprivileged"
        assert entries(cache) == [entry]
    finally:
        shutil.rmtree(shared_dir)


def test_without_the_directory_zipimport_is_left_as_it_is(tmp_path):
    archive = make_zip(tmp_path / "a.zip", "def answer():\n    return 'plain'\n")
    assert import_from_zip(tmp_path / "absent", archive) == ["False", "plain", f"{archive}/shipped.py"]
    assert not (tmp_path / "absent").exists()
