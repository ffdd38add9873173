#!/bin/bash
# Fetches the Linux kernel the kvm stage1 boots its VMs with: Debian's
# generic amd64 kernel (it has 9p and virtio as modules), unpacked from its
# package into DEST without installing it on the host. DEST gets `vmlinuz`
# and `modules/` with the modules the VM's devices need (the image builder
# resolves their load order); `.complete` marks a finished fetch.
#
#   scripts/guest-kernel.sh DEST
set -euo pipefail

dest=${1:?usage: $0 DEST}
[ -f "$dest/.complete" ] && exit 0

package() {
    apt-cache depends linux-image-amd64 2>/dev/null |
        awk '/Depends: linux-image-[0-9]/ { print $2; exit }'
}
# Empty or stale package lists (a cleaned image): update once, then retry.
pkg=$(package || true)
if [ -z "$pkg" ]; then
    apt-get update -qq
    pkg=$(package || true)
fi
[ -n "$pkg" ] || { echo "guest-kernel: apt knows no linux-image-amd64 kernel" >&2; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "guest-kernel: fetching $pkg for the kvm stage1"
download() { (cd "$tmp" && apt-get download -qq -o APT::Sandbox::User=root "$pkg" >/dev/null); }
if ! download; then
    apt-get update -qq
    pkg=$(package || true)
    download
fi
dpkg-deb -x "$tmp"/*.deb "$tmp/root"
# lib/modules in Debian 12's packages, usr/lib/modules in later ones.
kernel=$(ls -d "$tmp"/root/lib/modules/*/kernel "$tmp"/root/usr/lib/modules/*/kernel 2>/dev/null | head -n1 || true)
[ -n "$kernel" ] || { echo "guest-kernel: $pkg has no modules directory" >&2; exit 1; }

rm -rf "$dest"
mkdir -p "$dest/modules"
cp "$tmp"/root/boot/vmlinuz-* "$dest/vmlinuz"
for dir in drivers/virtio net/9p fs/9p fs/netfs fs/fscache; do
    mkdir -p "$dest/modules/$dir"
    cp -r "$kernel/$dir/." "$dest/modules/$dir/"
done
for file in drivers/net/virtio_net drivers/net/net_failover net/core/failover drivers/char/virtio_console; do
    mkdir -p "$dest/modules/$(dirname "$file")"
    cp "$kernel/$file".ko* "$dest/modules/$(dirname "$file")/"
done
touch "$dest/.complete"
