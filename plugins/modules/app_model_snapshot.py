#!/usr/bin/python
"""Keep the rendered app model that served before a deploy, so that a failed deploy can put it back."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: app_model_snapshot
short_description: Save the files of the live app model before a deploy renders new ones; put them back
description:
  - A deploy renders the app model into files (each process's env file, the supervisor programs, the nginx
    site) and switches releases. When its smoke tests fail, switching the release back is not enough - the
    previous release would run under the new model, and a model change (an env variable, a new port, a body
    limit) is as likely a cause of the failure as the code.
  - C(state=saved) copies each of O(files) as it is now (content, mode, owner), and notes those that do not
    exist, into O(dir). Unchanged files change nothing. The deploy saves before it renders anything.
  - C(state=restored) puts every saved file back where it differs and removes the files that did not exist
    when it was saved. RV(restored) and RV(removed) say which, so the caller applies only what changed
    (supervisor's programs, nginx's site) and restarts the programs whose environment went back.
  - O(model_record) is one of O(files) that holds JSON - the app model as the smoke tests read it. Both states
    return its saved content as RV(model), so the previous release is smoke tested against its own model.
  - File contents (the env files hold secrets) are never returned; O(dir) is created C(0700), owned by the
    user the module runs as. A O(dir) that is a symlink, or another user's, is refused rather than written
    through or read from.
version_added: "0.1.0"
options:
  state:
    description: C(saved) takes the snapshot; C(restored) puts it back.
    type: str
    choices: [saved, restored]
    required: true
  dir:
    description: Where the snapshot lives. Only this module writes in it.
    type: path
    required: true
  files:
    description: The files of the model, by absolute path. C(saved) copies them; C(restored) puts back the
      list that was saved, and refuses a snapshot that names a file outside this list when it is given.
    type: list
    elements: path
    default: []
  model_record:
    description: The file of O(files) whose saved JSON content is returned as RV(model).
    type: path
notes:
  - Supports check mode, which reports what would be saved or restored and changes nothing.
  - Run it as root; env files are readable only by the app user and the programs and site belong to root.
author: shipshape
"""

EXAMPLES = r"""
- name: Save the live app model, for a switch back
  app_model_snapshot:
    state: saved
    dir: /srv/shop/shared/model-before-deploy
    files:
      - /srv/shop/shared/env/web.env
      - /etc/supervisor/conf.d/shop.conf
      - /etc/nginx/sites-enabled/shop.conf
      - /srv/shop/shared/model.json
    model_record: /srv/shop/shared/model.json
  become: true

- name: Put back the app model that served before the deploy
  app_model_snapshot:
    state: restored
    dir: /srv/shop/shared/model-before-deploy
    files:
      - /srv/shop/shared/env/web.env
      - /etc/supervisor/conf.d/shop.conf
      - /etc/nginx/sites-enabled/shop.conf
      - /srv/shop/shared/model.json
    model_record: /srv/shop/shared/model.json
  become: true
  register: model_restored
"""

RETURN = r"""
found:
  description: Whether O(dir) holds a snapshot (with C(restored); always true with C(saved)).
  returned: always
  type: bool
saved:
  description: The files saved whose content, mode or owner differed from the snapshot before (C(saved)).
  returned: always
  type: list
  elements: str
restored:
  description: The files put back because they differed from the snapshot (C(restored)).
  returned: always
  type: list
  elements: str
removed:
  description: The files removed because they did not exist when the snapshot was taken (C(restored)).
  returned: always
  type: list
  elements: str
model:
  description: The saved JSON content of O(model_record); null without one, or when it did not exist.
  returned: always
  type: dict
"""

import json
import os
import stat
import tempfile
from dataclasses import asdict, dataclass
from typing import Any

from ansible.module_utils.basic import AnsibleModule

MANIFEST = "manifest.json"


class SnapshotError(Exception):
    """A snapshot that cannot be read or written; the message says which file and why."""


@dataclass(frozen=True)
class Entry:
    """One file of the model as it was: its content lives in the snapshot as `name`."""

    path: str
    present: bool
    name: str = ""
    mode: int = 0
    uid: int = 0
    gid: int = 0


def _read(path: str) -> bytes:
    with open(path, "rb") as handle:
        return handle.read()


def _write_atomically(path: str, content: bytes, mode: int, uid: int, gid: int) -> None:
    """Write beside the target and rename over it: a reader sees the old file or the new one, never half."""
    directory = os.path.dirname(path) or "."
    descriptor, temporary = tempfile.mkstemp(dir=directory, prefix=".snapshot-")
    try:
        # By descriptor, not by name: the directory may be the app user's (its env files), who could
        # swap the name for a symlink between the write and a chmod or chown by path.
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(content)
            os.fchmod(handle.fileno(), mode)
            if (uid, gid) != (os.geteuid(), os.getegid()):
                os.fchown(handle.fileno(), uid, gid)
        os.rename(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


def refuse_a_foreign_directory(directory: str) -> None:
    """The snapshot holds copies of secrets and says where to write them back as root: its directory
    must be a real directory of the user the module runs as, not a symlink someone else laid there."""
    try:
        status = os.lstat(directory)
    except FileNotFoundError:
        return
    if stat.S_ISLNK(status.st_mode) or not stat.S_ISDIR(status.st_mode) or status.st_uid != os.geteuid():
        raise SnapshotError(
            f"{directory} is not a directory of uid {os.geteuid()} (it is a symlink, another kind of file, or"
            f" uid {status.st_uid}'s): it is not this module's snapshot, and nothing was read or written"
        )


def read_manifest(directory: str) -> list[Entry] | None:
    """The saved entries, or None when there is no snapshot."""
    path = os.path.join(directory, MANIFEST)
    try:
        data = json.loads(_read(path))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as error:
        raise SnapshotError(f"The snapshot's manifest {path} cannot be read: {error}") from error
    try:
        return [Entry(**entry) for entry in data["files"]]
    except (KeyError, TypeError) as error:
        raise SnapshotError(
            f"The snapshot's manifest {path} is not one this module wrote: {error}"
        ) from error


def describe(paths: list[str]) -> list[Entry]:
    """The files as they are now: the entries a snapshot taken now would hold."""
    entries = []
    for index, path in enumerate(paths):
        try:
            status = os.stat(path)
        except FileNotFoundError:
            entries.append(Entry(path=path, present=False))
            continue
        entries.append(
            Entry(
                path=path,
                present=True,
                name=str(index),
                mode=status.st_mode & 0o7777,
                uid=status.st_uid,
                gid=status.st_gid,
            )
        )
    return entries


def _saved_content(directory: str, entry: Entry) -> bytes:
    try:
        return _read(os.path.join(directory, entry.name))
    except OSError as error:
        raise SnapshotError(f"The snapshot of {entry.path} in {directory} cannot be read: {error}") from error


def _differs(entry: Entry, content: bytes) -> bool:
    """Whether the file at entry.path is not what entry and content describe."""
    try:
        status = os.stat(entry.path)
    except FileNotFoundError:
        return True
    if (status.st_mode & 0o7777, status.st_uid, status.st_gid) != (entry.mode, entry.uid, entry.gid):
        return True
    return _read(entry.path) != content


def _parse_record(content: bytes, path: str) -> dict[str, Any]:
    """The model record's dict; one that is not a JSON object is not what the deploy wrote."""
    try:
        model = json.loads(content)
    except ValueError as error:
        raise SnapshotError(f"The model record {path} is not JSON: {error}") from error
    if not isinstance(model, dict):
        raise SnapshotError(f"The model record {path} is not a JSON object")
    return model


def _model(directory: str, entries: list[Entry], record: str | None) -> dict[str, Any] | None:
    entry = next((entry for entry in entries if record and entry.path == record and entry.present), None)
    if entry is None:
        return None
    return _parse_record(_saved_content(directory, entry), f"saved from {record}")


def _saved_as(directory: str, previous: Entry | None, entry: Entry, content: bytes | None) -> bool:
    """Whether the snapshot already holds entry with this content. A snapshot that cannot be read
    does not: save replaces it, as it only served to tell whether this save changes anything."""
    if previous != entry:
        return False
    try:
        return not entry.present or _saved_content(directory, previous) == content
    except SnapshotError:
        return False


def save(directory: str, paths: list[str], record: str | None, check_mode: bool) -> dict[str, Any]:
    refuse_a_foreign_directory(directory)
    try:
        before = read_manifest(directory) or []
    except SnapshotError:
        before = []
    old = {entry.path: entry for entry in before}
    entries = describe(paths)
    contents = {entry.path: _read(entry.path) for entry in entries if entry.present}
    # Parsed before anything is written: a broken record fails the save and leaves the last snapshot.
    model = _parse_record(contents[record], record) if record in contents else None
    changed_paths = []
    for entry in entries:
        if not _saved_as(directory, old.get(entry.path), entry, contents.get(entry.path)):
            changed_paths.append(entry.path)
    changed = bool(changed_paths) or [entry.path for entry in before] != [entry.path for entry in entries]
    if changed and not check_mode:
        os.makedirs(directory, mode=0o700, exist_ok=True)
        os.chmod(directory, 0o700)
        for entry in entries:
            if entry.present:
                _write_atomically(
                    os.path.join(directory, entry.name),
                    contents[entry.path],
                    0o600,
                    os.geteuid(),
                    os.getegid(),
                )
        manifest = json.dumps({"files": [asdict(entry) for entry in entries]}, indent=1).encode()
        _write_atomically(os.path.join(directory, MANIFEST), manifest, 0o600, os.geteuid(), os.getegid())
        # Copies of files a shorter list no longer names.
        kept = {MANIFEST} | {entry.name for entry in entries if entry.present}
        for name in set(os.listdir(directory)) - kept:
            os.unlink(os.path.join(directory, name))
    return {
        "changed": changed,
        "found": True,
        "saved": changed_paths,
        "restored": [],
        "removed": [],
        "model": model,
    }


def restore(
    directory: str, record: str | None, check_mode: bool, paths: list[str] | None = None
) -> dict[str, Any]:
    """Put the snapshot back; with paths, only a snapshot of those files (a manifest naming any other
    file is refused before anything is written)."""
    refuse_a_foreign_directory(directory)
    entries = read_manifest(directory)
    if entries is None:
        return {"changed": False, "found": False, "saved": [], "restored": [], "removed": [], "model": None}
    foreign = [entry.path for entry in entries if paths and entry.path not in paths]
    if foreign:
        raise SnapshotError(
            f"The snapshot's manifest names files that are not the app model's: {', '.join(foreign)};"
            " nothing was put back"
        )
    restored, removed = [], []
    for entry in entries:
        if not entry.present:
            if os.path.lexists(entry.path):
                removed.append(entry.path)
                if not check_mode:
                    os.unlink(entry.path)
            continue
        content = _saved_content(directory, entry)
        if _differs(entry, content):
            restored.append(entry.path)
            if not check_mode:
                _write_atomically(entry.path, content, entry.mode, entry.uid, entry.gid)
    return {
        "changed": bool(restored or removed),
        "found": True,
        "saved": [],
        "restored": restored,
        "removed": removed,
        "model": _model(directory, entries, record),
    }


def run_module() -> None:
    module = AnsibleModule(
        argument_spec={
            "state": {"type": "str", "choices": ["saved", "restored"], "required": True},
            "dir": {"type": "path", "required": True},
            "files": {"type": "list", "elements": "path", "default": []},
            "model_record": {"type": "path"},
        },
        supports_check_mode=True,
    )
    params = module.params
    relative = [path for path in params["files"] if not os.path.isabs(path)]
    if relative:
        module.fail_json(msg=f"files must be absolute paths: {', '.join(relative)}")
    try:
        if params["state"] == "saved":
            result = save(params["dir"], params["files"], params["model_record"], module.check_mode)
        else:
            result = restore(params["dir"], params["model_record"], module.check_mode, params["files"])
    except (SnapshotError, OSError) as error:
        module.fail_json(
            msg=f"Could not {params['state'].removesuffix('d')} the app model in {params['dir']}: {error}"
        )
    module.exit_json(**result)


def main() -> None:
    run_module()


if __name__ == "__main__":
    main()
