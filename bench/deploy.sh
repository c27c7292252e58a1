#!/usr/bin/env bash
# Deploy benchmarks, on the demo host (run `make demo` first; `make bench` does both):
#  1. the wall time of deploy.yml for a changed source against a raw `npm ci && next build`
#     of the same source on the same host, in the same run (the ratio is Ansible's overhead).
#     The raw build runs twice, once before the deploy and once after, so neither side alone
#     gets the warmer page cache; the "raw build" cell is the mean of the two;
#  2. failed requests during that deploy under a steady loopback load through nginx.
# Results are printed and added to the deploy table of docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/.."
host=${SHIPSHAPE_DEMO_HOST:-shipshape-demo}
# The app user and release tree, from the demo's app model (one place for them).
model=$(.venv/bin/python - <<'PY'
import yaml
path = "inventories/demo/group_vars/all/app.yml"
with open(path) as file:
    model = yaml.safe_load(file)
values = [str(model["app_user"]), str(model["app_root"])]
if any("{{" in value or " " in value for value in values):
    raise SystemExit(f"bench/deploy.sh: app_user and app_root in {path} must be plain values, not templates")
print(*values)
PY
)
read -r app_user app_root <<< "$model"
# The deploy's full log, with profile_tasks' per-task times: where the overhead goes.
log=.cache/logs/bench-deploy.log
mkdir -p .cache/logs

# Each load gets its own stop file and result in a directory of this run on the host: a second
# load never touches the first one's files.
remote=$(podman exec "$host" mktemp -d /tmp/shipshape-bench.XXXXXX) \
  || { echo "bench: cannot reach the demo host $host: run make demo first" >&2; exit 1; }
work=$(mktemp -d)
declare -A running=()
start_load() {  # $1: a label for this load
  podman exec -d "$host" python3 "$remote/load.py" --seconds 900 \
    --stop-file "$remote/$1.stop" --output "$remote/$1.json" >/dev/null
  running[$1]=1
  sleep 1
}
# Stop a load and wait for its result in $load_json. load.py ends after its current request,
# which may take up to its 5 s timeout, and only then writes the file: reading at once could
# find nothing.
stop_load() {  # $1: the label given to start_load
  podman exec "$host" touch "$remote/$1.stop"
  unset "running[$1]"
  for _ in $(seq 60); do
    if load_json=$(podman exec "$host" cat "$remote/$1.json" 2>/dev/null); then return 0; fi
    sleep 0.5
  done
  echo "bench: load '$1' wrote no $remote/$1.json on $host within 30 s of its stop file" >&2
  return 1
}
# Whatever ends the script (a failed deploy or build, ^C), no load is left running for 900 s.
cleanup() {
  for label in "${!running[@]}"; do stop_load "$label" >/dev/null 2>&1 || true; done
  podman exec "$host" rm -rf "$remote" /tmp/shipshape-raw 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# A changed source: a new hash, so deploy.yml builds and switches for real.
mkdir "$work/app"
tar -C examples/app --exclude ./node_modules --exclude ./.next -cf - . | tar -C "$work/app" -xf -
echo "// bench $(date +%s%N)" >> "$work/app/app/page.js"
podman cp bench/load.py "$host:$remote/load.py"

# The same build as the deploy's, by hand, on the same host, with the same warm npm cache, under
# the same load (the app keeps serving it, as during the deploy's build), so the ratio compares
# like with like. Sets $raw_seconds.
raw_build() {  # $1: a label (before, after)
  podman exec "$host" rm -rf /tmp/shipshape-raw
  podman cp "$work/app" "$host:/tmp/shipshape-raw"
  podman exec "$host" chown -R "$app_user:" /tmp/shipshape-raw
  start_load "raw-$1"
  local raw_start
  raw_start=$(date +%s.%N)
  podman exec --user "$app_user" -w /tmp/shipshape-raw -e HOME="/home/$app_user" \
    -e npm_config_cache="$app_root/shared/npm-cache" -e NEXT_TELEMETRY_DISABLED=1 "$host" \
    sh -c 'npm ci --no-audit --no-fund --prefer-offline >/dev/null && npx prisma generate >/dev/null && npm run build >/dev/null' \
    || { echo "bench: the raw build $1 the deploy failed" >&2; exit 1; }
  raw_seconds=$(python3 -c "print(round($(date +%s.%N) - $raw_start, 1))")
  stop_load "raw-$1"
  podman exec "$host" rm -rf /tmp/shipshape-raw
}

raw_build before
raw_before_seconds=$raw_seconds

start_load deploy
start=$(date +%s.%N)
ansible-playbook -i inventories/demo/hosts.yml playbooks/deploy.yml \
  -e "{\"app_source\": {\"type\": \"archive\", \"path\": \"$work/app\"}}" \
  > "$log" 2>&1 || { tail -n 40 "$log"; exit 1; }
deploy_seconds=$(python3 -c "print(round($(date +%s.%N) - $start, 1))")
stop_load deploy
load=$load_json
# The deploy's own build steps, from profile_tasks' lines in the log: the build alone varies by
# 5 s or more from one run to the next on two cores, so the time beside the build (what Ansible
# and the deploy's other steps cost) is the steadier measure of overhead.
deploy_build_seconds=$(python3 bench/profile_tasks.py "$log" \
  "app : Install the dependencies of the release" "app : Generate the Prisma client" "app : Build the release")
beside_seconds=$(python3 -c "print(round($deploy_seconds - $deploy_build_seconds, 1))")
# What the smoke tests' settle check waited (the rest of the window in which no program may
# restart, I5): deliberate waiting, not overhead. Given apart, with the ratio without it, as the
# settle window alone takes most of what a ratio of 1.15 leaves beside the build.
settle_seconds=$(python3 bench/profile_tasks.py "$log" \
  "app : Check every program runs app_smoke_settle_seconds without a restart")

raw_build after
raw_after_seconds=$raw_seconds
raw_seconds=$(python3 -c "print(round(($raw_before_seconds + $raw_after_seconds) / 2, 1))")

ratio=$(python3 -c "print(round($deploy_seconds / $raw_seconds, 2))")
ratio_unsettled=$(python3 -c "print(round(($deploy_seconds - $settle_seconds) / $raw_seconds, 2))")
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
summary="| $(date -u +%Y-%m-%d) | $(printf %.0f "$deploy_seconds") s | $(printf %.0f "$raw_seconds") s \
| $ratio ($ratio_unsettled without the settle wait) \
| $(printf %.0f "$deploy_build_seconds") s + $(printf %.0f "$beside_seconds") s (settle wait $settle_seconds s) \
| $load_cell | $cpus CPUs, load $(cut -d' ' -f1 /proc/loadavg) |"
echo "deploy.yml ${deploy_seconds}s (its build steps ${deploy_build_seconds}s, the rest ${beside_seconds}s," \
  "of which the settle check waited ${settle_seconds}s)," \
  "raw npm ci + prisma generate + next build ${raw_seconds}s (mean of ${raw_before_seconds}s before" \
  "and ${raw_after_seconds}s after the deploy), ratio $ratio ($ratio_unsettled without the settle wait)"
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
