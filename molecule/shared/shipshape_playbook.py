"""Run shipshape's playbooks from a testinfra suite, against the scenario's molecule hosts.

Flow tests (deploy, rollback, diagnose, recover) prove what a playbook does when run the way an
operator runs it: `ansible-playbook playbooks/X.yml` with the project's ansible.cfg, here pointed at
the molecule inventory.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

PROJECT = Path(os.environ.get("MOLECULE_PROJECT_DIRECTORY", Path(__file__).parents[2]))


@dataclass
class PlaybookRun:
    returncode: int
    output: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def recap_changed(self) -> int:
        """Sum of changed= over the PLAY RECAP lines."""
        total = 0
        for line in self.output.splitlines():
            if "changed=" in line and "ok=" in line:
                total += int(line.split("changed=")[1].split()[0])
        return total


def _command(
    playbook: str, extra: tuple[str, ...], inventory: str | Path | None = None
) -> tuple[list[str], dict[str, str]]:
    inventory = inventory or os.environ["MOLECULE_INVENTORY_FILE"]
    env = {
        **os.environ,
        "ANSIBLE_CONFIG": str(PROJECT / "ansible.cfg"),
        "ANSIBLE_NOCOLOR": "1",
        # Only the run's total time: per-task profiles would bury the output tests read. An empty
        # value is not "none" for ansible-core 2.19: it fails on "a non-empty plugin name".
        "ANSIBLE_CALLBACKS_ENABLED": "ansible.posix.timer",
    }
    # group_vars next to the molecule inventory are the demo's (linked by .config/molecule/config.yml).
    return ["ansible-playbook", "-i", str(inventory), str(PROJECT / "playbooks" / playbook), *extra], env


def run_playbook(
    playbook: str, *extra: str, timeout: int = 1500, inventory: str | Path | None = None
) -> PlaybookRun:
    """Run playbooks/<playbook> against the molecule inventory (or another); never raises on failure."""
    cmd, env = _command(playbook, extra, inventory)
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout, check=False)
    return PlaybookRun(proc.returncode, proc.stdout + proc.stderr)


class StartedPlaybook:
    """A playbook run in the background, as a second operator's terminal runs it."""

    def __init__(self, playbook: str, *extra: str) -> None:
        cmd, env = _command(playbook, extra)
        self._proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
        )

    def running(self) -> bool:
        return self._proc.poll() is None

    def wait(self, timeout: int = 1500) -> PlaybookRun:
        output, _ = self._proc.communicate(timeout=timeout)
        return PlaybookRun(self._proc.returncode, output)


def run_diagnose(reports: Path, label: str) -> Path:
    """Run diagnose.yml, which must pass and change nothing; the JSON report it wrote in reports."""
    run = run_playbook(
        "diagnose.yml", "-e", f"diagnose_report_dir={reports}", "-e", f"diagnose_report_label={label}"
    )
    assert run.ok, run.output[-4000:]
    assert run.recap_changed() == 0, "diagnose changed something"
    written = sorted(reports.glob(f"*-{label}.json"))
    assert written, f"no JSON report in {reports}"
    return written[-1]
