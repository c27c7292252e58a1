"""Write a report's files (diagnose's .md and .json) on the controller, inside Ansible's own process.

The report is output, like a log: it belongs to the controller, and writing it changes no host. Done
with `file` and `template` delegated to localhost, it cost a module run per file and one for the
directory, about 0.5 s each: 1.5 s per diagnosis, and recover.yml diagnoses twice. Here it is one
step of a few milliseconds. The caller renders the text (a template lookup); this writes it.
Its documentation is plugins/modules/controller_report.py, where ansible-doc looks for it.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Mapping

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

EXTENSION = re.compile(r"^[a-z0-9]+$")


def report_paths(base: str, contents: Mapping[str, str]) -> list[str]:
    """The file of each extension: BASE.EXT. An extension is a plain word: never a path."""
    bad = [extension for extension in contents if not EXTENSION.match(extension)]
    if bad:
        raise ValueError(f"not a file extension: {', '.join(map(repr, bad))} (lowercase letters and digits)")
    return [f"{base}.{extension}" for extension in contents]


def write_report(
    base: str, contents: Mapping[str, str], mode: int = 0o640, dir_mode: int = 0o750
) -> list[str]:
    """Write each text to BASE.EXT, whole or not at all (a temporary file renamed), with `mode`.

    The directory is created with `dir_mode` when it does not exist; an existing one is left as its
    owner set it. A text is written as given, ended by a newline.
    """
    paths = report_paths(base, contents)
    directory = os.path.dirname(base) or "."
    if not os.path.isdir(directory):
        os.makedirs(directory, exist_ok=True)
        os.chmod(directory, dir_mode)
    for path, text in zip(paths, contents.values(), strict=True):
        handle, scratch = tempfile.mkstemp(dir=directory, prefix=".report-", suffix=".tmp")
        try:
            os.fchmod(handle, mode)
            with os.fdopen(handle, "w", encoding="utf-8") as file:
                file.write(text if text.endswith("\n") else text + "\n")
            os.replace(scratch, path)
        except BaseException:
            if os.path.exists(scratch):
                os.unlink(scratch)
            raise
    return paths


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _supports_check_mode = True
    _supports_async = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        _, args = self.validate_argument_spec(
            argument_spec={
                "base": {"type": "path", "required": True},
                "contents": {"type": "dict", "required": True},
                "mode": {"type": "raw", "default": "0640"},
                "dir_mode": {"type": "raw", "default": "0750"},
            }
        )
        try:
            mode, dir_mode = (int(str(args[name]), 8) for name in ("mode", "dir_mode"))
        except ValueError as error:
            raise AnsibleActionFail(f"mode and dir_mode are octal strings such as '0640': {error}") from error
        contents = {str(key): str(value) for key, value in args["contents"].items()}
        try:
            if self._task.check_mode:
                paths = report_paths(args["base"], contents)
            else:
                paths = write_report(args["base"], contents, mode, dir_mode)
        except (OSError, ValueError) as error:
            raise AnsibleActionFail(f"cannot write the report {args['base']}: {error}") from error
        # Output on the controller, not a change to any host.
        result.update(changed=False, paths=paths)
        return result
