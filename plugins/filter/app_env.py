"""Filters for the app's environment files: connection URLs and shell-safe lines.

Each process gets shared/env/<process>.env (0600, app user), loaded by `sh` with `set -a; . FILE`
before node is exec'd. A value must therefore survive the shell byte for byte, and a password with
`@`, `/` or `:` must not break the URL it is put in.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from ansible.errors import AnsibleFilterError

ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def service_url(
    scheme: str, host: str, port: Any, password: Any = None, user: str = "", path: str = ""
) -> str:
    """A connection URL with user and password percent-encoded (every reserved character)."""
    if not host:
        raise AnsibleFilterError(f"service_url: no host for the {scheme} URL; check the inventory groups.")
    userinfo = quote(str(user), safe="")
    if password not in (None, ""):
        userinfo += ":" + quote(str(password), safe="")
    at = "@" if userinfo else ""
    bracketed = f"[{host}]" if ":" in host else host
    return f"{scheme}://{userinfo}{at}{bracketed}:{int(port)}{'/' + path if path != '' else ''}"


def env_file_line(name: Any, value: Any) -> str:
    """`NAME='value'` for POSIX sh, with single quotes inside the value escaped."""
    if not isinstance(name, str) or not ENV_NAME_RE.match(name):
        raise AnsibleFilterError(
            f"{name!r} is not a valid environment variable name (letters, digits and _, not starting "
            "with a digit); check app_env and app_secret_env."
        )
    if value is None:
        raise AnsibleFilterError(f"environment variable {name} has no value; set it or leave it out.")
    text = str(value).lower() if isinstance(value, bool) else str(value)
    if "\n" in text or "\x00" in text:
        raise AnsibleFilterError(f"environment variable {name} has a newline or NUL byte in its value.")
    return f"{name}='" + text.replace("'", "'\\''") + "'"


def missing_env(required: Any, environments: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Names in `required` that no process gets, or gets empty (outage I12). Names only, never values."""
    if not isinstance(required, list) or not all(isinstance(n, str) for n in required):
        raise AnsibleFilterError(f"app_required_env must be a list of names, got {required!r}.")
    present = {name for env in environments.values() for name, value in env.items() if str(value) != ""}
    return [name for name in required if name not in present]


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {
            "service_url": service_url,
            "env_file_line": env_file_line,
            "missing_env": missing_env,
        }
