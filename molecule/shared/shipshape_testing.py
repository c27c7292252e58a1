"""Helpers for shipshape's testinfra suites: which hosts to test, and probes run on them."""

from __future__ import annotations

import importlib.util
import json
import os
import shlex
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml


def _inventory() -> dict[str, Any]:
    inventory_file = os.environ.get("MOLECULE_INVENTORY_FILE")
    if not inventory_file:
        raise RuntimeError("MOLECULE_INVENTORY_FILE is not set: run these tests through `molecule verify`.")
    return yaml.safe_load(Path(inventory_file).read_text())


def _group_hosts(node: dict[str, Any], group: str, inside: bool = False) -> set[str]:
    """Host names in `group` anywhere below `node` (molecule nests groups under all.children)."""
    found: set[str] = set()
    for name, child in (node or {}).items():
        if not isinstance(child, dict):
            continue
        here = inside or name == group
        if here:
            found.update((child.get("hosts") or {}).keys())
        found |= _group_hosts(child.get("children") or {}, group, here)
    return found


def molecule_hosts(group: str = "all") -> list[str]:
    """testinfra host specs (podman://NAME) of a molecule group, for `testinfra_hosts`."""
    names = _group_hosts(_inventory(), group)
    if not names:
        raise RuntimeError(f"no host in molecule group {group!r}")
    return [f"podman://{name}" for name in sorted(names)]


def app_model() -> dict[str, Any]:
    """The demo app model (inventories/demo/group_vars/all/app.yml) the scenarios converge with."""
    project = Path(os.environ.get("MOLECULE_PROJECT_DIRECTORY", Path(__file__).parents[2]))
    return yaml.safe_load((project / "inventories/demo/group_vars/all/app.yml").read_text())


def program_instances(app_name: str, processes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One entry per supervisor program (program, process, port, index), from the project's own
    app_program_instances filter: a test counts the programs the roles render, not its own sum."""
    filters = Path(__file__).parents[2] / "plugins/filter/app_model.py"
    spec = importlib.util.spec_from_file_location("shipshape_app_model_filters", filters)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.app_program_instances(app_name, processes)


def run_ok(host: Any, command: str) -> str:
    """Run a command on the host, fail the test with its output unless it exits 0."""
    result = host.run(command)
    assert result.rc == 0, f"{command!r} exited {result.rc}: {result.stdout}{result.stderr}"
    return result.stdout


@dataclass
class Result:
    """What a command run with run_with_secrets gave, named as testinfra names it."""

    rc: int
    stdout: str
    stderr: str


def run_with_secrets(host: Any, command: str, timeout: float = 300, **secrets: str) -> Result:
    """Run a shell command on the podman test host with secrets in its environment (PGPASSWORD=...).

    The secrets go to the host on stdin, one line each, never on a command line: `podman exec`'s
    arguments are visible to anyone on the machine running the tests (ps), and so would be an
    `env NAME=secret` or `NAME=secret command` in them. The command itself gets an empty stdin.
    """
    reads = [f"IFS= read -r {name} || exit 97\nexport {name}" for name in secrets]
    script = "\n".join([*reads, "exec </dev/null", command])
    completed = subprocess.run(
        ["podman", "exec", "-i", host.backend.name, "sh", "-c", script],
        input="".join(f"{value}\n" for value in secrets.values()),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return Result(completed.returncode, completed.stdout, completed.stderr)


def curl(host: Any, url: str, *args: str) -> tuple[int, str]:
    """HTTP status and body of a request made with curl on the host itself."""
    quoted = " ".join(shlex.quote(a) for a in args)
    out = run_ok(host, f"curl -sS -o /tmp/.curl-body -w '%{{http_code}}' {quoted} {shlex.quote(url)}")
    body = host.run("cat /tmp/.curl-body").stdout
    return int(out.strip()), body


def json_of(text: str) -> Any:
    return json.loads(text)


def lock_json(owner: str, acquired: float, expires: float) -> str:
    """A deploy lock file as the deploy_lock module writes it (times in UTC, ISO 8601)."""

    def iso(epoch: float) -> str:
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))

    return json.dumps(
        {
            "owner": owner,
            "pid": 4242,
            "host": owner.split("@")[1],
            "acquired_at": iso(acquired),
            "expires_at": iso(expires),
            "purpose": "deploy",
            "ttl": int(expires - acquired),
        }
    )
