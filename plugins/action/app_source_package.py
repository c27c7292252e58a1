"""Package an archive source on the controller, reproducibly, and hash it: the release id's source hash.

An action plugin, so it runs inside the controller's Ansible process: no module is shipped and
started for it. It replaces four controller tasks (a temporary file, GNU tar, a checksum, the
removal), each a module run of about 0.25 s, by one step of a few milliseconds on a deploy's path.
Python's tarfile also makes the package the same on a controller without GNU tar (macOS).
Its documentation is plugins/modules/app_source_package.py, where ansible-doc looks for it.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import re
import tarfile
import tempfile

from ansible import constants
from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

TARBALL = re.compile(r"\.(tar|tar\.gz|tgz)$")
# Build output and dependencies: never part of a source, at any depth.
ALWAYS_EXCLUDED = ("node_modules", ".next")
# A developer's env files (Next.js loads .env and .env*.local), at any depth: they hold that
# developer's secrets, and a release's environment is the inventory's (app_env, app_secret_env).
# Packed, they would land readable by the app's group (nginx among it) in every release kept.
LOCAL_ENV_FILES = (".env", ".env*.local")


def normalized_mode(mode: int, is_dir: bool) -> int:
    """GNU tar's --mode=u+rwX,go+rX,go-w: readable by all, writable by the owner only."""
    executable = is_dir or bool(mode & 0o111)
    mode |= 0o644 | (0o111 if executable else 0)
    return mode & ~0o022 & 0o7777


def excluded(arcname: str, excludes: list[str]) -> bool:
    """Whether a member (named "./relative/path") is left out."""
    basename = os.path.basename(arcname)
    if basename in ALWAYS_EXCLUDED or any(fnmatch.fnmatchcase(basename, env) for env in LOCAL_ENV_FILES):
        return True
    return any(
        fnmatch.fnmatchcase(arcname, "./" + pattern.removeprefix("./").rstrip("/")) for pattern in excludes
    )


def pack(source: str, destination: str, excludes: list[str]) -> None:
    """Write the reproducible tar of the directory `source` to the file `destination`."""

    def normalize(member: tarfile.TarInfo) -> tarfile.TarInfo | None:
        if member.name != "." and excluded(member.name, excludes):
            return None
        member.mtime = 0
        member.uid = member.gid = 0
        member.uname = member.gname = ""
        member.mode = normalized_mode(member.mode, member.isdir())
        return member

    with tarfile.open(destination, "w", format=tarfile.GNU_FORMAT) as archive:
        # tarfile.add walks a directory in sorted order. It stores a symlink as a symlink, the top
        # too: a source path that is a symlink to the tree (~/app -> ~/code/app) is resolved first.
        archive.add(os.path.realpath(source), arcname=".", recursive=True, filter=normalize)


def sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _supports_check_mode = True
    _supports_async = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        _, args = self.validate_argument_spec(
            argument_spec={
                "path": {"type": "path", "required": True},
                "excludes": {"type": "list", "elements": "str", "default": []},
                "prefix": {"type": "str", "default": "shipshape-"},
            }
        )
        source = args["path"]
        if TARBALL.search(source):
            if not os.path.isfile(source):
                raise AnsibleActionFail(f"app_source.path {source} is not a file on the controller")
            result.update(changed=False, package=source, checksum=sha256(source), packed=False)
            return result
        if not os.path.isdir(source):
            raise AnsibleActionFail(
                f"app_source.path {source} is neither a directory nor a tarball on the controller"
            )
        # The run's own temporary directory: two runs from one controller (two terminals, two test
        # scenarios) never unpack each other's source, and Ansible removes it when the run ends.
        handle, package = tempfile.mkstemp(
            prefix=args["prefix"], suffix=".tar", dir=constants.DEFAULT_LOCAL_TMP
        )
        os.close(handle)
        try:
            pack(source, package, args["excludes"])
        except OSError as error:
            os.unlink(package)
            raise AnsibleActionFail(f"cannot pack {source}: {error}") from error
        # A scratch file on the controller, not a change to any host.
        result.update(changed=False, package=package, checksum=sha256(package), packed=True)
        return result
