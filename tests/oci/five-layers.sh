#!/bin/sh
# Builds an OCI image layout of five layers with umoci, as a user without
# docker would: DIR TAG.
#   1 busybox (static) with a shell, /etc/passwd, /etc/deleteme, /data/old/{a,b}
#   2 /etc/hello.txt
#   3 deletes /etc/deleteme               (a .wh.deleteme whiteout)
#   4 makes /data/old opaque, adds c      (.wh..wh..opq, hand-made: umoci
#                                          repack writes one whiteout per file)
#   5 /bin/app, a script printing its arguments, its user and its directory
# and a config with entrypoint, cmd, user, workdir, env, a volume and ports.
set -eu
dir=$1 tag=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
umoci init --layout "$dir"
umoci new --image "$dir:$tag"
layer() {
	umoci unpack --image "$dir:$tag" "$work/b"
	"$@" "$work/b/rootfs"
	umoci repack --image "$dir:$tag" "$work/b"
	rm -rf "$work/b"
}
base() {
	mkdir -p "$1/bin" "$1/etc" "$1/data/old" "$1/tmp" "$1/data/vol"
	cp /bin/busybox "$1/bin/busybox"
	for a in sh ls cat echo id pwd test; do ln -s busybox "$1/bin/$a"; done
	printf 'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1001:app:/data:/bin/sh\n' >"$1/etc/passwd"
	printf 'root:x:0:\napp:x:1001:\n' >"$1/etc/group"
	echo gone >"$1/etc/deleteme"
	echo a >"$1/data/old/a"
	echo b >"$1/data/old/b"
}
hello() { echo hello >"$1/etc/hello.txt"; }
delete() { rm "$1/etc/deleteme"; }
app() {
	printf '#!/bin/sh\necho "app $* uid=$(id -u) gid=$(id -g) cwd=$(pwd) foo=$FOO"\nls /data/old /etc\n' >"$1/bin/app"
	chmod 755 "$1/bin/app"
}
layer base
layer hello
layer delete
mkdir -p "$work/opq/data/old"
: >"$work/opq/data/old/.wh..wh..opq"
echo c >"$work/opq/data/old/c"
tar --numeric-owner --owner=0 --group=0 -C "$work/opq" -cf "$work/opq.tar" data
umoci raw add-layer --image "$dir:$tag" "$work/opq.tar"
layer app
umoci config --image "$dir:$tag" --config.entrypoint /bin/app --config.cmd arg1 --config.cmd arg2 \
	--config.user app --config.workingdir /data --config.env FOO=bar --config.env PATH=/bin \
	--config.volume /data/vol --config.exposedports 8080/tcp --config.exposedports 53/udp \
	--os linux --architecture amd64
umoci gc --layout "$dir"
