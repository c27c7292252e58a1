#!/usr/bin/env python3
"""A steady loopback load for deploy benchmarks: GET a URL in a loop, count the answers.

Runs on the app host itself against nginx on 127.0.0.1, stops by itself after --seconds or when
--stop-file appears, and writes a JSON summary to --output (stdout by default). Each run needs its
own stop file: a shared one let a second run delete the first run's stop signal. The output file
appears only once complete (written beside it, then renamed), so a caller can wait for it to exist.
Only loopback targets are accepted.
"""

from __future__ import annotations

import argparse
import json
import os
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", default="http://127.0.0.1/api/health")
    parser.add_argument("--seconds", type=float, default=600)
    parser.add_argument("--interval", type=float, default=0.05)
    parser.add_argument(
        "--stop-file", required=True, help="a path of this run only; the load ends once it exists"
    )
    parser.add_argument("--output", default="-", help="where the JSON summary goes (- for stdout)")
    args = parser.parse_args()
    if urlsplit(args.url).hostname not in ("127.0.0.1", "localhost", "::1"):
        raise SystemExit("load.py only sends traffic to loopback")
    stop = Path(args.stop_file)
    if stop.exists():
        raise SystemExit(f"load.py: the stop file {stop} exists already: give each run a new path")
    answers: Counter[str] = Counter()
    started = time.monotonic()
    # The longest stretch from a first failed request to the next good one: the outage a user sees.
    failing_since: float | None = None
    longest_outage = 0.0
    while time.monotonic() - started < args.seconds and not stop.exists():
        sent = time.monotonic()
        try:
            with urllib.request.urlopen(args.url, timeout=5) as response:
                answer = str(response.status)
        except urllib.error.HTTPError as error:
            answer = str(error.code)
        except (urllib.error.URLError, OSError) as error:
            answer = type(error).__name__
        answers[answer] += 1
        if answer != "200":
            failing_since = sent if failing_since is None else failing_since
        elif failing_since is not None:
            longest_outage = max(longest_outage, sent - failing_since)
            failing_since = None
        time.sleep(args.interval)
    if failing_since is not None:
        longest_outage = max(longest_outage, time.monotonic() - failing_since)
    total = sum(answers.values())
    summary = {
        "requests": total,
        "ok": answers["200"],
        "failed": total - answers["200"],
        "answers": dict(answers),
        "longest_outage_seconds": round(longest_outage, 1),
        "seconds": round(time.monotonic() - started, 1),
    }
    write_output(args.output, json.dumps(summary))


def write_output(output: str, text: str) -> None:
    """Print the summary, or write it to a file that appears only once it is complete."""
    if output == "-":
        print(text)
        return
    path = Path(output)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text + "\n")
    os.replace(partial, path)


if __name__ == "__main__":
    main()
