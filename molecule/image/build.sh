#!/usr/bin/env bash
# Build the Debian 12 test-host image from Debian packages and import it into podman.
#
# No image registry can be reached from where shipshape is developed, so the image is
# made with debootstrap. It is tagged with a hash of its own recipe (this script and the
# two package lists): it is built once, and rebuilt only when the recipe changes.
#
# Usage: molecule/image/build.sh [--print-tag]
#   --print-tag   print the image reference for the current recipe and exit
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
name=localhost/shipshape-debian12
mirror=${SHIPSHAPE_DEBIAN_MIRROR:-http://deb.debian.org/debian}
security_mirror=${SHIPSHAPE_DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}

recipe_hash=$(cat "$here/build.sh" "$here/packages.txt" "$here/cache-packages.txt" | sha256sum | cut -c1-12)
tag="$name:$recipe_hash"

if [[ "${1:-}" == "--print-tag" ]]; then
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

echo "building test image $tag (debootstrap bookworm minbase)"
debootstrap --variant=minbase --include="$(read_list "$here/packages.txt" | tr ' ' ',' | sed 's/,$//')" \
  bookworm "$rootfs" "$mirror" >"$workdir/debootstrap.log" 2>&1 || {
  tail -n 40 "$workdir/debootstrap.log"
  exit 1
}

cat >"$rootfs/etc/apt/sources.list" <<EOF
deb $mirror bookworm main
deb $mirror bookworm-updates main
deb $security_mirror bookworm-security main
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
