#!/usr/bin/env python3
"""A steady loopback load for deploy benchmarks: GET a URL in a loop, count the answers.

Runs on the app host itself against nginx on 127.0.0.1, stops by itself after --seconds (or when
--stop-file appears), and prints a JSON summary. Only loopback targets are accepted.
"""

from __future__ import annotations

import argparse
import json
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
    parser.add_argument("--stop-file", default="/tmp/shipshape-load.stop")
    args = parser.parse_args()
    if urlsplit(args.url).hostname not in ("127.0.0.1", "localhost", "::1"):
        raise SystemExit("load.py only sends traffic to loopback")
    stop = Path(args.stop_file)
    stop.unlink(missing_ok=True)
    answers: Counter[str] = Counter()
    started = time.monotonic()
    while time.monotonic() - started < args.seconds and not stop.exists():
        try:
            with urllib.request.urlopen(args.url, timeout=5) as response:
                answers[str(response.status)] += 1
        except urllib.error.HTTPError as error:
            answers[str(error.code)] += 1
        except (urllib.error.URLError, OSError) as error:
            answers[type(error).__name__] += 1
        time.sleep(args.interval)
    total = sum(answers.values())
    print(
        json.dumps(
            {
                "requests": total,
                "ok": answers["200"],
                "failed": total - answers["200"],
                "answers": dict(answers),
                "seconds": round(time.monotonic() - started, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
