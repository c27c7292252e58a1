#!/usr/bin/env bash
# Deploy benchmarks, on the demo host (run `make demo` first; `make bench` does both):
#  1. the wall time of deploy.yml for a changed source against a raw `npm ci && next build`
#     of the same source on the same host, in the same run (the ratio is Ansible's overhead);
#  2. failed requests during that deploy under a steady loopback load through nginx.
# Results are printed and added to the deploy table of docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/.."
host=${SHIPSHAPE_DEMO_HOST:-shipshape-demo}
app_root=/srv/shop
work=$(mktemp -d)
# The deploy's full log, with profile_tasks' per-task times: where the overhead goes.
log=.cache/logs/bench-deploy.log
mkdir -p .cache/logs
trap 'rm -rf "$work"' EXIT

# A changed source: a new hash, so deploy.yml builds and switches for real.
mkdir "$work/app"
tar -C examples/app --exclude ./node_modules --exclude ./.next -cf - . | tar -C "$work/app" -xf -
echo "// bench $(date +%s%N)" >> "$work/app/app/page.js"

podman cp bench/load.py "$host:/tmp/shipshape-load.py"
podman exec -d "$host" sh -c 'python3 /tmp/shipshape-load.py --seconds 900 > /tmp/shipshape-load.json'
sleep 1

start=$(date +%s.%N)
ansible-playbook playbooks/deploy.yml -e "{\"app_source\": {\"type\": \"archive\", \"path\": \"$work/app\"}}" \
  > "$log" 2>&1 || { tail -n 40 "$log"; exit 1; }
deploy_seconds=$(python3 -c "print(round($(date +%s.%N) - $start, 1))")
# The deploy's own build steps, from profile_tasks' lines in the log: the build alone varies by
# 5 s or more from one run to the next on two cores, so the time beside the build (what Ansible
# and the deploy's other steps cost) is the steadier measure of overhead.
deploy_build_seconds=$(python3 bench/profile_tasks.py "$log" \
  "app : Install the dependencies of the release" "app : Generate the Prisma client" "app : Build the release")
beside_seconds=$(python3 -c "print(round($deploy_seconds - $deploy_build_seconds, 1))")

podman exec "$host" touch /tmp/shipshape-load.stop
sleep 2
load=$(podman exec "$host" cat /tmp/shipshape-load.json)

# The same build by hand, on the same host, with the same warm npm cache, under the same
# load (the app keeps serving it, as during the deploy's build), so the ratio compares like
# with like.
podman exec "$host" rm -rf /tmp/shipshape-raw
podman cp "$work/app" "$host:/tmp/shipshape-raw"
podman exec "$host" chown -R shop:shop /tmp/shipshape-raw
podman exec -d "$host" sh -c 'python3 /tmp/shipshape-load.py --seconds 900 > /tmp/shipshape-load-raw.json'
sleep 1
raw_start=$(date +%s.%N)
podman exec --user shop -w /tmp/shipshape-raw -e HOME=/home/shop -e npm_config_cache=$app_root/shared/npm-cache \
  -e NEXT_TELEMETRY_DISABLED=1 "$host" sh -c 'npm ci --no-audit --no-fund --prefer-offline >/dev/null && npx prisma generate >/dev/null && npm run build >/dev/null'
raw_seconds=$(python3 -c "print(round($(date +%s.%N) - $raw_start, 1))")
podman exec "$host" touch /tmp/shipshape-load.stop
podman exec "$host" rm -rf /tmp/shipshape-raw

ratio=$(python3 -c "print(round($deploy_seconds / $raw_seconds, 2))")
# The load's JSON in a table cell: requests sent, how many did not get a 200, and what they got.
load_cell=$(python3 - "$load" <<'PY'
import json, sys
result = json.loads(sys.argv[1])
other = {answer: count for answer, count in result["answers"].items() if answer != "200"}
outage = f", for {result['longest_outage_seconds']} s" if result["failed"] else ""
print(f"{result['requests']} requests, {result['failed']} failed{outage}" + (f" ({other})" if other else ""))
PY
)
cpus=$(nproc)
summary="| $(date -u +%Y-%m-%d) | $(printf %.0f "$deploy_seconds") s | $(printf %.0f "$raw_seconds") s | $ratio \
| $(printf %.0f "$deploy_build_seconds") s + $(printf %.0f "$beside_seconds") s | $load_cell | $cpus CPUs, load $(cut -d' ' -f1 /proc/loadavg) |"
echo "deploy.yml ${deploy_seconds}s (its build steps ${deploy_build_seconds}s, the rest ${beside_seconds}s)," \
  "raw npm ci + prisma generate + next build ${raw_seconds}s, ratio $ratio"
echo "load during the deploy: $load"
# Into the deploy table, above its marker (other sections follow it).
python3 - "$summary" <<'PY'
import sys
from pathlib import Path
page = Path("docs/benchmarks.md")
marker = "<!-- bench/deploy.sh adds its rows above this line -->"
text = page.read_text()
if marker not in text:
    raise SystemExit(f"{page}: the marker {marker!r} is missing")
page.write_text(text.replace(marker, sys.argv[1] + "\n" + marker, 1))
PY
