#!/usr/bin/env bash
# make demo: run a real pod from the bundled busybox image with the default stage1 (ns).
set -euo pipefail
cd "$(dirname "$0")/.."
rkt=target/release/rkt
dir=$(mktemp -d /tmp/rkt-demo.XXXXXX)
cleanup() {
	"$rkt" --dir="$dir" gc --grace-period=0s >/dev/null 2>&1 || true
	# Never delete through a mount: refuse if anything is still mounted below.
	if awk '{print $5}' /proc/self/mountinfo | grep -q "^$dir"; then
		echo "demo: mounts remain under $dir; not removing it" >&2
		return
	fi
	rm -rf --one-file-system "$dir"
}
trap cleanup EXIT

echo "+ rkt fetch target/images/busybox.aci"
"$rkt" --dir="$dir" --insecure-options=image fetch target/images/busybox.aci
echo "+ rkt image list"
"$rkt" --dir="$dir" image list
script='echo "hello from a pod on $(uname -s), hostname $(hostname)"; id; ps -o pid,comm; exit 3'
echo "+ rkt run --net=none example.com/busybox --exec /bin/sh -- -c '$script'"
set +e
"$rkt" --dir="$dir" run --net=none example.com/busybox --exec /bin/sh -- -c "$script"
rc=$?
set -e
echo "+ exit code: $rc"
echo "+ rkt list"
"$rkt" --dir="$dir" list
uuid=$("$rkt" --dir="$dir" list --no-legend --full | head -n1 | cut -f1)
echo "+ rkt status $uuid"
"$rkt" --dir="$dir" status "$uuid"
echo "+ rkt gc --grace-period=0s"
"$rkt" --dir="$dir" gc --grace-period=0s
