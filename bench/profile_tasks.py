#!/usr/bin/env python3
"""Sum the seconds profile_tasks gave the named tasks in an ansible-playbook log.

Usage: profile_tasks.py LOG "role : task name" [...]. Prints the total, e.g. 54.8.

profile_tasks prints a time line under each task header: the wall clock, in parentheses the
duration of the task before, then the time since the play began. A task's duration is thus the
next task's elapsed time minus its own (the last task's, the end of the run's).
"""

from __future__ import annotations

import itertools
import re
import sys
from pathlib import Path

HEADER = re.compile(r"^(?:TASK|RUNNING HANDLER) \[(?P<name>.*)\]")
ELAPSED = re.compile(r"\(\d+:\d+:[\d.]+\)\s+(?P<h>\d+):(?P<m>\d+):(?P<s>[\d.]+)")


def task_seconds(lines: list[str]) -> list[tuple[str, float]]:
    """(task name, seconds) in the order the tasks ran."""
    started: list[tuple[str, float]] = []
    pending = None
    for line in lines:
        header = HEADER.match(line)
        if header:
            pending = header["name"]
            continue
        elapsed = ELAPSED.search(line)
        if elapsed:
            at = int(elapsed["h"]) * 3600 + int(elapsed["m"]) * 60 + float(elapsed["s"])
            if pending is not None:
                started.append((pending, at))
                pending = None
            else:
                # The recap's line: when the last task ended.
                started.append(("", at))
    return [(name, round(end - begin, 3)) for (name, begin), (_, end) in itertools.pairwise(started) if name]


def main(argv: list[str]) -> int:
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    durations = task_seconds(Path(argv[1]).read_text().splitlines())
    wanted = set(argv[2:])
    missing = wanted - {name for name, _ in durations}
    if missing:
        print(f"{argv[1]}: no profile_tasks time for {sorted(missing)}", file=sys.stderr)
        return 1
    print(round(sum(seconds for name, seconds in durations if name in wanted), 1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
