#!/usr/bin/env bash
# The local demo: one podman container playing a fresh server (inventories/demo/hosts.yml).
# The Makefile's demo targets call this after installing the toolchain and building the
# image (make deps venv image); the script itself installs nothing.
#
# Usage: scripts/demo.sh up|diagnose|recover|clean
#   up        start the demo server (once), bootstrap it, deploy the sample app, print the URL
#             and the smoke results. Again: nothing changes, and bootstrap is skipped while its
#             inputs are unchanged (FORCE=1 runs it anyway).
#   diagnose  run playbooks/diagnose.yml against it (report in reports/)
#   recover   run playbooks/recover.yml against it
#   clean     remove the demo server
#
# Environment: SHIPSHAPE_TEST_IMAGE (exported by the Makefile; default: the current recipe's
# tag), SHIPSHAPE_DEMO_PORT (host port on 127.0.0.1, default 8080), FORCE=1.
set -euo pipefail

cd "$(dirname "$0")/.."
project=$(pwd)
name=shipshape-demo
port=${SHIPSHAPE_DEMO_PORT:-8080}
url="http://127.0.0.1:$port"
logdir=$project/.cache/logs
stamp=/var/lib/shipshape/demo-bootstrap.sha256
export ANSIBLE_CONFIG=${ANSIBLE_CONFIG:-$project/ansible.cfg}
export CONTAINERS_CONF=${CONTAINERS_CONF:-$project/containers.conf}
[[ -x $project/.venv/bin/ansible-playbook ]] && export PATH="$project/.venv/bin:$PATH"

say() { printf '==> %s\n' "$*"; }
die() {
  printf 'demo: %s\n' "$*" >&2
  exit 1
}

state() { podman container inspect --format '{{.State.Status}}' "$name" 2>/dev/null || echo absent; }

# Run a playbook with its full log in .cache/logs; print the recap, or the failure's tail.
play() {
  local playbook=$1 log="$logdir/demo-$(basename "$1" .yml).log"
  shift
  mkdir -p "$logdir"
  local started=$SECONDS
  if ! ansible-playbook "playbooks/$playbook" "$@" >"$log" 2>&1; then
    tail -n 40 "$log" >&2
    die "$playbook failed after $((SECONDS - started))s; full log: ${log#"$project"/}"
  fi
  say "$playbook: done in $((SECONDS - started))s ($(grep -E '^shipshape-demo +:' "$log" | sed -E 's/ +/ /g; s/ $//'))"
}

# Everything bootstrap.yml's result depends on: when none of it changed since this container
# was last bootstrapped, running it again would change nothing.
bootstrap_inputs_hash() {
  find roles plugins playbooks/bootstrap.yml inventories/demo ansible.cfg -type f \
    -not -name '*.pyc' -print0 | sort -z | xargs -0 sha256sum | sha256sum | cut -d' ' -f1
}

start_server() {
  local image=${SHIPSHAPE_TEST_IMAGE:-$(molecule/image/build.sh --print-tag)}
  local current
  current=$(state)
  # Podman keeps saying "running" when the container's processes were killed from outside (the
  # session that started it ended, an OOM kill of conmon): nothing can be run in it, nor stop it.
  if [[ $current == running || $current == stopping ]] && ! podman exec "$name" true 2>/dev/null; then
    say "demo server $name is marked $current but its processes are gone: re-creating it"
    podman rm -f "$name" >/dev/null
    current=absent
  fi
  case $current in
    running) say "demo server $name is running" ;;
    absent)
      podman image exists "$image" || die "no image $image: run 'make image' first"
      say "starting demo server $name from $image, HTTP on $url"
      # A new container must not inherit the facts of an old one with the same name.
      rm -f "$project"/.cache/facts/*"$name"
      # NET_ADMIN: the firewall's nftables rules; SYS_PTRACE: root reads every process's
      # /proc/PID/fd to find who holds an app port, as root on a real server can.
      podman run -d --name "$name" --hostname "$name" --systemd=always \
        --security-opt unmask=/proc/sys --cap-add NET_ADMIN --cap-add SYS_PTRACE \
        -p "127.0.0.1:$port:80" "$image" /sbin/init >/dev/null
      # The test image caches the bytecode of Ansible's module_utils for make test
      # (molecule/image/zipimport_cache.py). The demo server runs modules as a real server
      # does, so that the deploy benchmark run on it measures Ansible's real overhead.
      podman exec "$name" rm -rf /var/cache/shipshape-zipimport
      ;;
    *)
      say "restarting the stopped demo server $name"
      podman start "$name" >/dev/null
      ;;
  esac
  local waited=0 status
  until status=$(podman exec "$name" systemctl is-system-running 2>/dev/null) ||
    [[ $status == degraded ]]; do
    ((waited++ < 60)) || die "systemd in $name did not finish booting in 60s (state: ${status:-unknown})"
    sleep 1
  done
}

up() {
  local started=$SECONDS inputs
  start_server
  inputs=$(bootstrap_inputs_hash)
  if [[ -z ${FORCE:-} ]] && [[ $(podman exec "$name" cat "$stamp" 2>/dev/null) == "$inputs" ]]; then
    say "bootstrap.yml: skipped, nothing it depends on changed since this server was bootstrapped (FORCE=1 runs it)"
  else
    play bootstrap.yml
    podman exec "$name" sh -c "mkdir -p ${stamp%/*} && echo $inputs > $stamp"
  fi
  play deploy.yml
  summary
  say "make demo: done in $((SECONDS - started))s"
}

# What the deploy's smoke tests found, then the same URLs asked from this machine.
summary() {
  echo
  echo "Deploy summary (smoke tests run on the server):"
  sed -n '/TASK \[app : Summarize the deploy\]/,/^$/p' "$logdir/demo-deploy.log" | grep -E '^ {4}' || true
  echo
  echo "From this machine:"
  local path code failed=()
  for path in / /api/health; do
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 "$url$path" || true)
    printf '  GET %-36s %s\n' "$url$path" "$code"
    [[ $code == 200 ]] || failed+=("GET $path: $code")
  done
  # An upload of 5 MB (over nginx's and Node's defaults, under the app model's limit).
  local upload
  upload=$(mktemp)
  head -c $((5 * 1024 * 1024)) /dev/urandom >"$upload"
  code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 60 \
    -F "file=@$upload;filename=shipshape-demo-check.bin" "$url/api/upload" || true)
  rm -f "$upload"
  # A check, not data: the app keeps the file in its uploads directory (UPLOAD_DIR), so remove it.
  podman exec "$name" find /srv/shop/shared/uploads -name '*shipshape-demo-check*' -delete || true
  printf '  POST %-35s %s\n' "$url/api/upload (5 MB)" "$code"
  [[ $code == 201 ]] || failed+=("upload: $code")
  # A campaign, sent by the worker through Redis: it must reach COMPLETED.
  local campaign status=unknown waited
  campaign=$(curl -s --max-time 10 -H 'Content-Type: application/json' \
    -d '{"name":"make demo","recipients":20}' "$url/api/campaigns" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["campaign"]["id"])' 2>/dev/null || true)
  for ((waited = 0; waited < 60 && ${#campaign} > 0; waited++)); do
    status=$(curl -s --max-time 10 "$url/api/campaigns" | python3 -c \
      'import json,sys; print(next(c["status"] for c in json.load(sys.stdin)["campaigns"] if c["id"] == sys.argv[1]))' \
      "$campaign" 2>/dev/null || echo unknown)
    [[ $status == COMPLETED || $status == FAILED ]] && break
    sleep 1
  done
  printf '  POST %-35s campaign %s: %s\n' "$url/api/campaigns" "${campaign:-not created}" "$status"
  echo
  echo "The sample app is at $url"
  [[ $status == COMPLETED ]] || failed+=("campaign: $status")
  ((${#failed[@]} == 0)) || die "the app does not answer as it should from this machine: ${failed[*]}"
}

case ${1:-} in
  up) up ;;
  diagnose)
    [[ $(state) == running ]] || die "the demo server is not running: make demo"
    play diagnose.yml
    sed -n '/TASK \[diagnose : Print the short summary\]/,/^$/p' "$logdir/demo-diagnose.log" | grep -E '^ {4}' || true
    ;;
  recover)
    [[ $(state) == running ]] || die "the demo server is not running: make demo"
    play recover.yml "${@:2}"
    sed -n '/TASK \[[a-z_]* : Summari[sz]e/,/^$/p' "$logdir/demo-recover.log" | grep -E '^ {4}' || true
    ;;
  clean)
    podman rm -f "$name" >/dev/null 2>&1 || true
    rm -f "$project"/.cache/facts/*"$name"
    say "removed the demo server $name"
    ;;
  *)
    sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
    exit 2
    ;;
esac
