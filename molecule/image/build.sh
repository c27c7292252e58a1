#!/usr/bin/env bash
# Build a Debian test-host image from Debian packages and import it into podman: Debian 12
# (bookworm), which most scenarios run on, or Debian 13 (trixie), which the bootstrap and nginx
# scenarios run on.
#
# No image registry can be reached from where shipshape is developed, so the image is
# made with debootstrap. It is tagged with a hash of its own recipe (this script, the two package
# lists, zipimport_cache.py and the release): it is built once, and rebuilt only when the recipe
# changes.
#
# Usage: molecule/image/build.sh [--print-tag] [bookworm|trixie]
#   --print-tag   print the image reference for the current recipe and exit
#   bookworm      Debian 12, the default; trixie: Debian 13
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
print_tag=false
suite=bookworm
for arg in "$@"; do
  case $arg in
    --print-tag) print_tag=true ;;
    bookworm | trixie) suite=$arg ;;
    *) echo "usage: $0 [--print-tag] [bookworm|trixie]" >&2; exit 2 ;;
  esac
done
case $suite in
  bookworm) name=localhost/shipshape-debian12 ;;
  trixie) name=localhost/shipshape-debian13 ;;
esac
mirror=${SHIPSHAPE_DEBIAN_MIRROR:-http://deb.debian.org/debian}
security_mirror=${SHIPSHAPE_DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}

recipe_hash=$({ cat "$here/build.sh" "$here/packages.txt" "$here/cache-packages.txt" "$here/zipimport_cache.py"
  echo "$suite"; } \
  | sha256sum | cut -c1-12)
tag="$name:$recipe_hash"

if $print_tag; then
  echo "$tag"
  exit 0
fi

if podman image exists "$tag"; then
  echo "test image $tag is up to date"
  exit 0
fi

# Lists are comment- and blank-line-tolerant: one package per line.
read_list() { grep -Ev '^[[:space:]]*(#|$)' "$1" | tr '\n' ' '; }

workdir=$(mktemp -d /var/tmp/shipshape-image.XXXXXX)
cleanup() {
  for fs in proc sys dev/pts dev; do umount -lf "$workdir/rootfs/$fs" 2>/dev/null || true; done
  rm -rf "$workdir"
}
trap cleanup EXIT
rootfs="$workdir/rootfs"
started=$(date +%s)

echo "building test image $tag (debootstrap $suite minbase)"
debootstrap --variant=minbase --include="$(read_list "$here/packages.txt" | tr ' ' ',' | sed 's/,$//')" \
  "$suite" "$rootfs" "$mirror" >"$workdir/debootstrap.log" 2>&1 || {
  tail -n 40 "$workdir/debootstrap.log"
  exit 1
}

cat >"$rootfs/etc/apt/sources.list" <<EOF
deb $mirror $suite main
deb $mirror $suite-updates main
deb $security_mirror $suite-security main
EOF

# Fill the apt lists and cache so that scenarios install packages for real without
# downloading them each time. apt keeps downloaded archives unless told otherwise.
chroot "$rootfs" /usr/bin/env DEBIAN_FRONTEND=noninteractive bash -euc "
  apt-get update -qq
  apt-get install -qq --download-only --no-install-recommends $(read_list "$here/cache-packages.txt") >/dev/null
"

# Trust what the build machine trusts: where egress goes through a TLS-inspecting proxy,
# its CA is in /usr/local/share/ca-certificates, and npm in the test hosts needs it too.
if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
  cp /usr/local/share/ca-certificates/*.crt "$rootfs/usr/local/share/ca-certificates/"
  chroot "$rootfs" update-ca-certificates >/dev/null 2>&1
fi

# Ansible modules import their module_utils from a zip, which Python compiles on every run: the
# test hosts cache that bytecode (zipimport_cache.py says why and how; scripts/demo.sh turns it
# off on the demo server). A .pth file in site-packages runs its import line at startup.
site_packages=$(chroot "$rootfs" python3 -c 'import site; print(site.getsitepackages()[0])')
install -d -m 0755 "$rootfs$site_packages" "$rootfs/var/cache/shipshape-zipimport"
install -m 0644 "$here/zipimport_cache.py" "$rootfs$site_packages/shipshape_zipimport_cache.py"
echo 'import shipshape_zipimport_cache' >"$rootfs$site_packages/shipshape-zipimport-cache.pth"

# A container has no consoles and no kernel modules to load; these units only fail there.
for unit in getty@tty1.service console-getty.service systemd-modules-load.service \
            sys-kernel-config.mount systemd-remount-fs.service; do
  ln -sf /dev/null "$rootfs/etc/systemd/system/$unit"
done
# An empty machine-id makes systemd generate one per container at boot.
: >"$rootfs/etc/machine-id"
echo 'LANG=C.UTF-8' >"$rootfs/etc/default/locale"

tar -C "$rootfs" -c . | podman import \
  --change 'CMD ["/sbin/init"]' \
  --change 'ENV container=podman' \
  --change 'STOPSIGNAL SIGRTMIN+3' \
  - "$tag" >/dev/null
podman tag "$tag" "$name:latest"
echo "built $tag in $(($(date +%s) - started))s"
