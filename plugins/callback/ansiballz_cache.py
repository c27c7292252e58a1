"""Keep Ansible's module payloads (AnsiballZ) from one playbook run to the next: for the test suite.

Before a module task runs, the controller builds the module's payload: it parses the module and
every module_utils file it imports to find their imports, then zips them. Ansible caches that
payload, but in the run's own temporary directory (DEFAULT_LOCAL_TMP, a new one per run), so
every ``ansible-playbook`` builds it again for each module it uses. `make test` starts a few
hundred runs, and the payloads cost about a third of the controller's CPU in a recover.yml run
(profiled with py-spy: 0.1 to 0.2 s per module, some twenty modules per run).

With SHIPSHAPE_ANSIBALLZ_CACHE set to a directory, this callback fills the run's cache from it
when the run starts, and adds the payloads the run built when it ends. Without the variable it
does nothing: operators' runs, the demo and the deploy benchmark build payloads as Ansible does.

The entries are kept under a key of everything a payload is built from: the versions of
ansible-core and of the collections (the ``ansible`` package's, and the MANIFEST.json of any
installed in COLLECTIONS_PATHS, as Galaxy installs them), the Python that runs Ansible, and the
content of this project's modules and module_utils. A change to any of them starts an empty
cache. Ansible reads an entry with pickle, as it reads its own cache: the directory must be as
trusted as the project's own plugins (it lives in the checkout, .cache/ansiballz).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import tempfile
from importlib import metadata
from pathlib import Path

from ansible import constants
from ansible.module_utils.ansible_release import __version__ as ansible_core_version
from ansible.plugins.callback import CallbackBase

DOCUMENTATION = r"""
name: ansiballz_cache
type: aggregate
short_description: Keep module payloads (AnsiballZ) across playbook runs, for the test suite
description:
  - Copies Ansible's per-run module payload cache from a directory when a run starts, and the
    payloads the run built back to it when the run ends.
  - Inert unless the environment variable C(SHIPSHAPE_ANSIBALLZ_CACHE) names a directory; the Makefile
    sets it for C(make test) only.
"""

PROJECT = Path(__file__).resolve().parents[2]
# Where this project's module code lives (ansible.cfg: library, module_utils).
SOURCES = (PROJECT / "plugins" / "modules", PROJECT / "plugins" / "module_utils")
# Files of a payload being written (Ansible's "-part") or its lock: never copied.
UNFINISHED = ("-part", ".lock")


def cache_key(sources=SOURCES, collection_roots=None) -> str:
    """A hash of everything a payload is built from."""
    if collection_roots is None:
        collection_roots = constants.COLLECTIONS_PATHS or []
    digest = hashlib.sha256()
    try:
        collections = metadata.version("ansible")
    except metadata.PackageNotFoundError:
        collections = "none"
    for part in (ansible_core_version, collections, sys.version, str(PROJECT)):
        digest.update(part.encode() + b"\0")
    for directory in sources:
        for path in sorted(Path(directory).rglob("*.py")):
            digest.update(str(path.relative_to(directory)).encode() + b"\0" + path.read_bytes() + b"\0")
    # A collection's MANIFEST.json names its version and the checksum of each of its files.
    for root in collection_roots:
        for manifest in sorted(Path(root).expanduser().glob("ansible_collections/*/*/MANIFEST.json")):
            digest.update(str(manifest).encode() + b"\0" + manifest.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def finished(names) -> list[str]:
    return sorted(name for name in names if not name.endswith(UNFINISHED))


def copy_new(source: Path, target: Path) -> int:
    """Copy the finished entries of source that target lacks; each appears whole (rename)."""
    if not source.is_dir():
        return 0
    target.mkdir(parents=True, exist_ok=True)
    have = set(os.listdir(target))
    copied = 0
    for name in finished(os.listdir(source)):
        if name in have:
            continue
        handle, partial = tempfile.mkstemp(dir=target, prefix=f".{name}.", suffix=".part")
        os.close(handle)
        try:
            shutil.copyfile(source / name, partial)
            os.replace(partial, target / name)
            copied += 1
        finally:
            if os.path.exists(partial):
                os.unlink(partial)
    return copied


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "ansiballz_cache"
    # Loaded by every run from callback_plugins, whatever callbacks_enabled says (the tests' runs
    # enable the timer only); inert without SHIPSHAPE_ANSIBALLZ_CACHE.
    CALLBACK_NEEDS_ENABLED = False

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._store: Path | None = None
        root = os.environ.get("SHIPSHAPE_ANSIBALLZ_CACHE")
        if not root:
            return
        # The run's own cache, where Ansible looks before it builds a payload (module_common.py).
        self._run_cache = Path(constants.DEFAULT_LOCAL_TMP) / "ansiballz_cache"
        self._store = Path(root) / cache_key()
        try:
            copy_new(self._store, self._run_cache)
        except OSError as error:
            self._display.warning(f"ansiballz_cache: not read from {self._store}: {error}")

    def v2_playbook_on_stats(self, stats) -> None:
        if self._store is None:
            return
        try:
            copy_new(self._run_cache, self._store)
        except OSError as error:
            self._display.warning(f"ansiballz_cache: not written to {self._store}: {error}")
