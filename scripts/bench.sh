#!/usr/bin/env bash
# make bench: measure rkt against the alternatives on this machine, in the same
# run, and print ratios. Results go to stdout; BENCHMARKS.md keeps the latest.
#
# BENCH_SECTIONS="3 4" runs only some sections (default: all); BENCH_PODS
# sets the number of pods of section 4 (default 100); BENCH_DIR puts the
# bench's files (pods, bundles, stores) on another file system (default /tmp).
set -euo pipefail
cd "$(dirname "$0")/.."
rkt=$PWD/target/release/rkt
fly="--stage1-path=$PWD/target/release/stage1-fly.aci"
ns="--stage1-path=$PWD/target/release/stage1-ns.aci"
sections=" ${BENCH_SECTIONS:-1 2 3 4 5 6 7 8 9} "
work=$(mktemp -d "${BENCH_DIR:-/tmp}/rkt-bench.XXXXXX")
cleanup() {
	"$rkt" --dir="$work/data" gc --grace-period=0s >/dev/null 2>&1 || true
	if awk '{print $5}' /proc/self/mountinfo | grep -q "^$work"; then
		echo "bench: mounts remain under $work; not removing it" >&2
		return
	fi
	rm -rf --one-file-system "$work"
}
trap cleanup EXIT
R() { "$rkt" --dir="$work/data" --local-config="$work/etc" --system-config="$work/sys" "$@"; }
now() { date +%s.%N; }
elapsed() { echo "$2 - $1" | bc -l; }
ratio() { echo "scale=2; $1 / $2" | bc -l; }
want() { [[ $sections == *" $1 "* ]]; }
command -v bc >/dev/null || { apt-get install -y -qq bc >/dev/null; }

echo "== machine: $(nproc) cores, $(uname -r)"
R --insecure-options=image fetch target/images/busybox.aci >/dev/null 2>&1

# The ~200 MB (uncompressed) gzip ACI of sections 1 and 7, built once.
build_big() {
[ -f "$work/big.aci" ] && return
echo "== building a ~200 MB ACI from /usr"
mkdir -p "$work/big/rootfs"
# Real binaries and libraries: representative of image content and compressibility.
tar -C / -cf - usr/lib/x86_64-linux-gnu usr/bin usr/share/locale 2>/dev/null \
	| head -c 210000000 | tar -C "$work/big/rootfs" -xf - 2>/dev/null || true
cat >"$work/big/manifest.json" <<JSON
{"acKind":"ImageManifest","acVersion":"0.8.11","name":"example.com/big",
 "labels":[{"name":"version","value":"1"},{"name":"os","value":"linux"},{"name":"arch","value":"amd64"}]}
JSON
target/release/build-aci dir --manifest "$work/big/manifest.json" --rootfs "$work/big/rootfs" --gzip "$work/big.aci" >/dev/null
# $work/big stays until the end: deleting its files now would slow the
# inode allocations of the imports timed next (see BENCHMARKS.md).
}

# --- 3. rkt run (fly, ns) vs crun run vs runc run of the same rootfs -------
# Section 3 runs first: the sections that delete big trees and many pods
# leave this ext4 slow to allocate inodes for a while, which rkt (about 40
# per pod) feels and crun (its bundle made once) does not (BENCHMARKS.md).
if want 3; then
echo "== start-to-exit of /bin/true on the busybox rootfs (hyperfine, median)"
bundle="$work/bundle"
mkdir -p "$bundle/rootfs"
tar -C "$bundle" -xf target/images/busybox.aci rootfs
(cd "$bundle" && { crun spec >/dev/null 2>&1 || runc spec; })
# The OCI config made equivalent to what the ns stage1 gives an app: the
# spec's namespaces (pid, network, ipc, uts, mount), its masked and
# read-only /proc and /sys paths, a cgroup per container (crun and runc
# make one by default), rkt's 14 default capabilities and rkt's default
# seccomp whitelist (anything else kills), both read from the stage1
# sources so they cannot drift.
python3 - "$bundle/config.json" <<'EOF_CONFIG'
import json, re, sys
p = sys.argv[1]; c = json.load(open(p))
def names(const, path):
    m = re.search(r"const %s: [^=]*= &?\[(.*?)\];" % const, open(path).read(), re.S)
    return re.findall(r'"([^"]+)"', m.group(1))
seccomp = "stage1-flavors/common/src/isolators/seccomp.rs"
allow = names("DOCKER_DEFAULT_WHITELIST", seccomp) + names("MODERN_WHITELIST_ADDITIONS", seccomp)
caps = names("DEFAULT_CAPABILITIES", "stage1-flavors/common/src/isolators/caps.rs")
assert len(caps) == 14 and len(allow) > 300, (len(caps), len(allow))
c["process"]["args"] = ["/bin/true"]; c["process"]["terminal"] = False
for k in ("bounding", "effective", "permitted"):
    c["process"]["capabilities"][k] = caps
c["process"]["capabilities"]["inheritable"] = []
c["process"]["capabilities"]["ambient"] = []
c["linux"]["seccomp"] = {"defaultAction": "SCMP_ACT_KILL_PROCESS",
    "architectures": ["SCMP_ARCH_X86_64"],
    "syscalls": [{"names": allow, "action": "SCMP_ACT_ALLOW"}]}
json.dump(c, open(p, "w"))
ns = ",".join(n["type"] for n in c["linux"]["namespaces"])
print(f"   crun/runc config: namespaces {ns}; {len(caps)} capabilities; seccomp allow-list of "
      f"{len(allow)} names, kill otherwise; {len(c['linux']['maskedPaths'])} masked and "
      f"{len(c['linux']['readonlyPaths'])} read-only paths; default cgroup")
EOF_CONFIG
# crun refuses hybrid cgroups; run it in a private mount namespace without cgroup2 (host.md).
crun_cmd="unshare -m sh -c 'umount /sys/fs/cgroup/unified 2>/dev/null; cd $bundle && crun run b\$\$'"
runc_cmd="cd $bundle && runc run b\$\$"
rkt_run="$rkt --dir=$work/data --local-config=$work/etc --system-config=$work/sys run --insecure-options=image"
# The stage1s in the store, selected by hash: what a run with the default
# stage1 costs (rkt finds it in the store by name and version). With
# --stage1-path rkt imports the file again on every run, which hashes the
# whole ACI: rkt-ns-path shows that cost.
fly_key=$(R --insecure-options=image fetch --full target/release/stage1-fly.aci 2>/dev/null)
ns_key=$(R --insecure-options=image fetch --full target/release/stage1-ns.aci 2>/dev/null)
fly_cmd="$rkt_run --stage1-hash=$fly_key example.com/busybox --exec /bin/true"
# No CNI networking yet: --net=none (a new network namespace, loopback up).
ns_cmd="$rkt_run --stage1-hash=$ns_key --net=none example.com/busybox --exec /bin/true"
ns_path_cmd="$rkt_run $ns --net=none example.com/busybox --exec /bin/true"
# Three rounds of ten runs each, every command in every round, and the
# medians over all thirty: a machine whose speed drifts over the minute
# the section takes then slows every command alike, not the ones that
# happened to run last.
for round in 1 2 3; do
hyperfine -N --warmup 3 --runs 10 --export-json "$work/hf$round.json" \
	-n rkt-fly "$fly_cmd" -n rkt-ns "$ns_cmd" -n rkt-ns-path "$ns_path_cmd" \
	-n crun "bash -c \"$crun_cmd\"" -n runc "bash -c \"$runc_cmd\"" >/dev/null 2>&1 || \
hyperfine --warmup 3 --runs 10 --export-json "$work/hf$round.json" \
	-n rkt-fly "$fly_cmd" -n rkt-ns "$ns_cmd" -n rkt-ns-path "$ns_path_cmd" \
	-n crun "$crun_cmd" -n runc "$runc_cmd" >/dev/null
done
python3 - "$work"/hf[123].json <<'EOF_RATIOS'
import json, statistics, sys
times = {}
for path in sys.argv[1:]:
    for x in json.load(open(path))["results"]:
        times.setdefault(x["command"], []).extend(x["times"])
med = {k: statistics.median(v) * 1000 for k, v in times.items()}
for k, v in med.items():
    print(f"   {k:11s} {v:7.1f} ms  ({len(times[k])} runs)")
for k in ("rkt-fly", "rkt-ns", "rkt-ns-path"):
    print(f"   {k} / crun = {med[k] / med['crun']:.2f}   {k} / runc = {med[k] / med['runc']:.2f}")
EOF_RATIOS
R gc --grace-period=0s >/dev/null 2>&1 || true
fi

# --- 1. Import of a ~200 MB (uncompressed) gzip ACI, tree rendered ----------
if want 1; then
build_big
echo "== import of the ~200 MB ACI from a file"
size_unc=$(gzip -dc "$work/big.aci" | wc -c)
echo "   ACI: $(du -m "$work/big.aci" | cut -f1) MB gzip, $((size_unc / 1000000)) MB uncompressed"
best_pipe=999; best_rkt=999
for i in 1 2 3 4 5; do
	sync; t0=$(now); gzip -dc "$work/big.aci" | sha512sum >/dev/null; t1=$(now)
	p=$(elapsed "$t0" "$t1"); best_pipe=$(echo "if ($p < $best_pipe) $p else $best_pipe" | bc -l)
	# A fresh store each time; the old ones are deleted after the timings, so
	# freeing their inodes does not weigh on the next import's allocations.
	sync; t0=$(now); "$rkt" --dir="$work/import$i" --insecure-options=image fetch "$work/big.aci" >/dev/null 2>&1; t1=$(now)
	r=$(elapsed "$t0" "$t1"); best_rkt=$(echo "if ($r < $best_rkt) $r else $best_rkt" | bc -l)
done
rm -rf --one-file-system "$work"/import?
printf "   gzip -dc | sha512sum: %.2f s   rkt fetch (import + render): %.2f s   speedup: %sx\n" \
	"$best_pipe" "$best_rkt" "$(ratio "$best_pipe" "$best_rkt")"
fi

# --- 2. run with 200 exited pods present, gc of 200 pods -------------------
if want 2; then
echo "== pods: run with 0 vs 200 exited pods; gc of 200 pods"
runs() { for _ in $(seq "$1"); do R run "$fly" example.com/busybox --exec /bin/true >/dev/null; done; }
runs 1
t0=$(now); runs 10; t1=$(now); empty=$(echo "$(elapsed "$t0" "$t1") / 10" | bc -l)
runs 190
t0=$(now); runs 10; t1=$(now); full=$(echo "$(elapsed "$t0" "$t1") / 10" | bc -l)
npods=$(R list --no-legend | wc -l)
printf "   rkt run (fly, /bin/true): %.1f ms with none, %.1f ms with %d exited pods (ratio %s)\n" \
	"$(echo "$empty * 1000" | bc -l)" "$(echo "$full * 1000" | bc -l)" "$npods" "$(ratio "$full" "$empty")"
t0=$(now); R gc --grace-period=0s >/dev/null 2>&1; t1=$(now)
printf "   rkt gc of %d exited pods: %.2f s\n" "$npods" "$(elapsed "$t0" "$t1")"
fi

# --- 4. supervisor memory of 100 running ns pods; all gone after gc -------
if want 4; then
npods=${BENCH_PODS:-100}
echo "== $npods ns pods of sleep 600 (--net=none): resident memory, then stop + gc"
mkdir -p "$work/u"
for i in $(seq "$npods"); do
	R run "$ns" --net=none --uuid-file-save="$work/u/$i" example.com/busybox \
		--exec /bin/sleep -- 600 >/dev/null 2>&1 &
done
uuids=()
for i in $(seq "$npods"); do
	for _ in $(seq 300); do [ -s "$work/u/$i" ] && break; sleep 0.1; done
	u=$(cat "$work/u/$i" 2>/dev/null || true)
	[ -n "$u" ] || { echo "   pod $i never got a UUID" >&2; continue; }
	R status --wait-ready=60s "$u" >/dev/null || echo "   pod $u never became ready" >&2
	uuids+=("$u")
done
running=$(R list --no-legend 2>/dev/null | grep -c running || true)
echo "   ${#uuids[@]} pods started, $running listed as running"
# PID 1 and run unmap their setup code after a second without events.
sleep 2
# Per pod: VmRSS of the supervisor (pod PID 1) and of the run entrypoint
# (its parent, which waits for it); and the supervisor's anonymous RSS and
# PSS, the part of its memory it does not share with the other pods.
pids=()
for u in "${uuids[@]}"; do
	sup=$(cat "$work/data/pods/run/$u/pid")
	parent=$(awk '/^PPid:/{print $2}' "/proc/$sup/status")
	pids+=("$sup" "$parent")
	printf '%s %s %s %s\n' \
		"$(awk '/^VmRSS:/{print $2}' "/proc/$sup/status")" \
		"$(awk '/^VmRSS:/{print $2}' "/proc/$parent/status")" \
		"$(awk '/^RssAnon:/{print $2}' "/proc/$sup/status")" \
		"$(awk '/^Pss:/{print $2}' "/proc/$sup/smaps_rollup")"
done >"$work/rss"
python3 - "$work/rss" <<'EOF_RSS'
import statistics, sys
rows = [list(map(int, l.split())) for l in open(sys.argv[1]) if l.strip()]
names = ["supervisor VmRSS", "run (parent) VmRSS", "supervisor RssAnon", "supervisor Pss"]
for i, n in enumerate(names):
    col = [r[i] for r in rows]
    print(f"   {n:20s} median {statistics.median(col) / 1024:5.2f} MiB   max {max(col) / 1024:5.2f} MiB   (n={len(col)})")
EOF_RSS
t0=$(now)
R stop "${uuids[@]}" >/dev/null 2>&1 || echo "   rkt stop failed" >&2
wait
t1=$(now)
R gc --grace-period=0s >/dev/null 2>&1 || echo "   rkt gc failed" >&2
t2=$(now)
printf "   rkt stop of %d pods (until every rkt run returned): %.2f s, rkt gc: %.2f s\n" \
	"${#uuids[@]}" "$(elapsed "$t0" "$t1")" "$(elapsed "$t1" "$t2")"
left=()
for p in "${pids[@]}"; do
	[ -d "/proc/$p" ] && left+=("process $p ($(cat "/proc/$p/comm" 2>/dev/null))")
done
# Any process (the apps included) whose root is in this bench's pod dirs.
for r in /proc/[0-9]*/root; do
	t=$(readlink "$r" 2>/dev/null || true)
	case "$t" in "$work"/*) left+=("process ${r#/proc/} rooted in $t") ;; esac
done
for u in "${uuids[@]}"; do
	for d in /sys/fs/cgroup/*/machine.slice/machine-rkt-"$u"* /sys/fs/cgroup/machine.slice/machine-rkt-"$u"*; do
		[ -e "$d" ] && left+=("cgroup $d")
	done
done
while read -r m; do left+=("mount $m"); done < <(awk -v w="$work/data" 'index($5, w) == 1 {print $5}' /proc/self/mountinfo)
n=$(R list --no-legend 2>/dev/null | wc -l)
[ "$n" -eq 0 ] || left+=("$n pods still listed")
if [ ${#left[@]} -eq 0 ]; then
	echo "   all gone"
else
	echo "   left behind (${#left[@]}):"
	printf '     %s\n' "${left[@]}" | head -20
fi
fi

# --- 5. networking: --net=default over --net=none; our CNI plugins vs the reference ones
if want 5; then
echo "== pod networking (ns stage1, hyperfine median)"
ns_key=$(R --insecure-options=image fetch --full target/release/stage1-ns.aci 2>/dev/null)
rkt_run="$rkt --dir=$work/data --local-config=$work/etc --system-config=$work/sys run --insecure-options=image --stage1-hash=$ns_key"
hyperfine -N --warmup 3 --runs 30 --export-json "$work/net.json" \
	-n none "$rkt_run --net=none example.com/busybox --exec /bin/true" \
	-n default "$rkt_run --net=default example.com/busybox --exec /bin/true" >/dev/null
R gc --grace-period=0s >/dev/null 2>&1 || true
# CNI CHECK of a running pod on default (status --check-networks: the
# stage1's net/check entrypoint runs ptp's CHECK, which calls host-local's)
# against a plain status of the same pod.
$rkt_run --uuid-file-save="$work/check.uuid" --net=default example.com/busybox \
	--exec /bin/sleep -- 600 >/dev/null 2>&1 &
check_pod=$!
R status --wait-ready=20s "$(until [ -s "$work/check.uuid" ]; do sleep 0.05; done; cat "$work/check.uuid")" >/dev/null
rkt_status="$rkt --dir=$work/data --local-config=$work/etc --system-config=$work/sys status $(cat "$work/check.uuid")"
hyperfine -N --warmup 3 --runs 30 --export-json "$work/check.json" \
	-n status "$rkt_status" \
	-n check "$rkt_status --check-networks" >/dev/null
R stop "$(cat "$work/check.uuid")" >/dev/null 2>&1 || true
wait $check_pod || true
R gc --grace-period=0s >/dev/null 2>&1 || true
# ADD + DEL of the same ptp + host-local chain in a fresh netns, driven the
# way a runtime does (CNI_* environment, config on stdin).
ip netns add rkt-bench-cni
trap 'ip netns del rkt-bench-cni 2>/dev/null; cleanup' EXIT
cat >"$work/cni.sh" <<'EOS'
#!/bin/sh
# usage: cni.sh PLUGIN_DIR LEASE_DIR
conf="{\"cniVersion\":\"1.0.0\",\"name\":\"bench\",\"type\":\"ptp\",\"ipMasq\":true,
 \"ipam\":{\"type\":\"host-local\",\"subnet\":\"172.30.250.0/24\",\"dataDir\":\"$2\"}}"
export CNI_CONTAINERID=bench CNI_NETNS=/run/netns/rkt-bench-cni CNI_IFNAME=eth0 CNI_PATH="$1"
res=$(echo "$conf" | CNI_COMMAND=ADD "$1/ptp") || exit 1
# DEL gets the ADD's result as prevResult, as a runtime passes its cache.
echo "${conf%\}},\"prevResult\":$res}" | CNI_COMMAND=DEL "$1/ptp" >/dev/null
EOS
chmod +x "$work/cni.sh"
ours=$PWD/target/release
hyperfine -N --warmup 3 --runs 30 --export-json "$work/cni.json" \
	-n ours "$work/cni.sh $ours $work/leases-ours" \
	-n reference "$work/cni.sh /usr/lib/cni $work/leases-ref" >/dev/null
python3 - "$work/net.json" "$work/cni.json" "$work/check.json" <<'EOF_NET'
import json, sys
med = {}
for f in sys.argv[1:]:
    for x in json.load(open(f))["results"]:
        med[x["command"]] = x["median"] * 1000
print(f"   rkt run --net=none     {med['none']:7.1f} ms")
print(f"   rkt run --net=default  {med['default']:7.1f} ms   network setup adds {med['default'] - med['none']:.1f} ms")
print(f"   rkt status --check-networks {med['check']:.1f} ms (plain status {med['status']:.1f} ms): CHECK adds {med['check'] - med['status']:.1f} ms")
print(f"   ptp+host-local ADD+DEL: ours {med['ours']:.1f} ms, reference {med['reference']:.1f} ms: "
      f"ours {med['reference'] / med['ours']:.2f}x faster")
EOF_NET
# 50 pods started at once on default: distinct addresses, all reach the
# host, nothing left after gc.
n50=50
mkdir -p "$work/c50"
start=$(date +%s.%N)
for i in $(seq 1 $n50); do
	$rkt_run --uuid-file-save="$work/c50/$i.uuid" --net=default example.com/busybox --exec /bin/sh -- -c \
		'ip -4 -o addr show eth0; ping -c1 -W5 172.16.28.1 >/dev/null && echo host-reachable' \
		>"$work/c50/$i.out" 2>&1 &
done
wait
end=$(date +%s.%N)
addrs=$(cat "$work/c50"/*.out | awk '$3 == "inet" {print $4}' | sort -u | wc -l)
reached=$(cat "$work/c50"/*.out | grep -c '^host-reachable$' || true)
R gc --grace-period=0s >/dev/null 2>&1 || true
left=0
for f in "$work/c50"/*.uuid; do
	u=$(cat "$f")
	[ -e "/run/netns/rkt-$u" ] && left=$((left + 1))
	grep -rls "$u" /var/lib/cni/networks/default >/dev/null 2>&1 && left=$((left + 1))
	iptables -t nat -S | grep -q "$u" && left=$((left + 1))
done
printf '   %d pods at once on default: %d distinct addresses, %d reached the host, %.1f s wall; after gc: %s\n' \
	"$n50" "$addrs" "$reached" "$(awk -v a="$start" -v b="$end" 'BEGIN {print b - a}')" "$([ $left -eq 0 ] && echo 'nothing left' || echo "$left things left")"
fi

# --- 6. services: metadata-service throughput; ListPods over 1000 pods
if want 6; then
echo "== services"
if curl -s -o /dev/null --unix-socket /run/rkt/metadata-svc.sock http://localhost/ 2>/dev/null; then
	echo "   a metadata service already runs on this host; skipping its benchmark" >&2
else
	"$rkt" metadata-service >"$work/mds.log" 2>&1 &
	mds=$!
	for _ in $(seq 100); do [ -S /run/rkt/metadata-svc.sock ] && break; sleep 0.05; done
	uuid=$(cat /proc/sys/kernel/random/uuid)
	token=$(head -c16 /dev/urandom | od -An -tx1 | tr -d ' \n')
	printf '{"acVersion":"0.8.11","acKind":"PodManifest","apps":[],"annotations":[]}' >"$work/pm.json"
	curl -s --unix-socket /run/rkt/metadata-svc.sock -X PUT --data-binary @"$work/pm.json" \
		"http://localhost/pods/$uuid?token=$token" >/dev/null
	# Two loads: 16 clients, and 64 (more than the 2 cores can serve
	# without queueing, so its tail shows the queue).
	for c in 16 64; do
		wrk -t2 -c$c -d10s --latency "http://127.0.0.1:18112/$token/acMetadata/v1/pod/uuid" >"$work/wrk.out"
		rps=$(awk '/^Requests\/sec:/ {print $2}' "$work/wrk.out")
		p50=$(awk '$1 == "50%" {print $2}' "$work/wrk.out")
		p99=$(awk '$1 == "99%" {print $2}' "$work/wrk.out")
		errors=$(grep -E 'Non-2xx|Socket errors' "$work/wrk.out" || echo "no errors")
		echo "   metadata service, GET /pod/uuid, wrk -t2 -c$c -d10s: $rps requests/s, p50 $p50, p99 $p99 ($errors)"
	done
	kill "$mds"; wait "$mds" 2>/dev/null || true
fi
# 1000 exited ns pods, then ListPods with detail from the Python client.
n=${BENCH_API_PODS:-1000}
ns_key=$(R --insecure-options=image fetch --full target/release/stage1-ns.aci 2>/dev/null)
seq "$n" | xargs -P2 -I{} "$rkt" --dir="$work/data" --local-config="$work/etc" --system-config="$work/sys" \
	run --insecure-options=image --stage1-hash="$ns_key" --net=none example.com/busybox --exec /bin/true >/dev/null 2>&1 || true
port=15997
# Not through R: $! must be the service itself, for the kill below.
"$rkt" --dir="$work/data" --local-config="$work/etc" --system-config="$work/sys" \
	api-service --listen=127.0.0.1:$port >"$work/api.log" 2>&1 &
api=$!
for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.05; done
stubs="$work/stubs"
mkdir -p "$stubs"
target/grpc-venv/bin/python -m grpc_tools.protoc -Istage0/proto --python_out="$stubs" --grpc_python_out="$stubs" v1alpha/api.proto
for detail in true false; do
	target/grpc-venv/bin/python tests/grpc/client.py "$stubs" 127.0.0.1:$port ListPods "{\"detail\": $detail}" \
		--print-seconds pods --repeat 11 >"$work/listpods-$detail.json"
done
if ! kill "$api" 2>/dev/null; then
	echo "   the api service died during the benchmark:" >&2
	sed 's/^/     /' "$work/api.log" >&2
fi
wait "$api" 2>/dev/null || true
python3 - "$work/listpods-true.json" "$work/listpods-false.json" <<'EOF_API'
import json, sys
d, s = (json.load(open(f)) for f in sys.argv[1:])
print(f"   ListPods over {d['count']} pods (median of 11, Python grpcio client): "
      f"detail {d['seconds'] * 1000:.1f} ms, summary {s['seconds'] * 1000:.1f} ms")
EOF_API
t0=$(now)
R gc --grace-period=0s >/dev/null 2>&1 || true
printf "   rkt gc of those pods: %.2f s\n" "$(elapsed "$t0" "$(now)")"
fi

# --- 7. fetch over HTTPS: verified and stored vs curl | gzip -dc | sha512sum
if want 7; then
build_big
echo "== fetch of the ~200 MB ACI from a loopback HTTPS server (own CA), signature verified"
www="$work/www"; pki="$work/pki"; export GNUPGHOME="$work/gnupg"
mkdir -p "$www" "$pki" "$GNUPGHOME"; chmod 700 "$GNUPGHOME"
cp "$work/big.aci" "$www/big.aci"
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -keyout "$pki/ca.key" -out "$pki/ca.pem" \
	-subj "/CN=bench CA" -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign 2>/dev/null
openssl req -newkey rsa:2048 -nodes -keyout "$pki/server.key" -out "$pki/server.csr" -subj "/CN=localhost" 2>/dev/null
printf "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n" >"$pki/ext"
openssl x509 -req -in "$pki/server.csr" -CA "$pki/ca.pem" -CAkey "$pki/ca.key" -CAcreateserial -days 1 \
	-extfile "$pki/ext" -out "$pki/server.pem" 2>/dev/null
gpg --batch --quiet --passphrase '' --quick-gen-key 'Bench <bench@example.com>' ed25519 sign 1d
gpg --batch --quiet --armor --detach-sign "$www/big.aci"
gpg --batch --quiet --armor --export bench@example.com >"$work/bench.asc"
R trust --prefix=example.com/big --skip-fingerprint-review "$work/bench.asc" >/dev/null
python3 tests/http/server.py "$www" "$pki/server.pem" "$pki/server.key" >"$work/port" 2>/dev/null &
server=$!
for _ in $(seq 100); do [ -s "$work/port" ] && break; sleep 0.05; done
url="https://127.0.0.1:$(head -1 "$work/port")/big.aci"
best_pipe=999; best_rkt=999
for i in 1 2 3 4 5; do
	sync; t0=$(now); curl -s --cacert "$pki/ca.pem" "$url" | gzip -dc | sha512sum >/dev/null; t1=$(now)
	p=$(elapsed "$t0" "$t1"); best_pipe=$(echo "if ($p < $best_pipe) $p else $best_pipe" | bc -l)
	sync; t0=$(now)
	SSL_CERT_FILE="$pki/ca.pem" "$rkt" --dir="$work/fetch$i" --local-config="$work/etc" --system-config="$work/sys" \
		fetch "$url" >/dev/null 2>"$work/fetch.err" || { cat "$work/fetch.err" >&2; break; }
	t1=$(now)
	r=$(elapsed "$t0" "$t1"); best_rkt=$(echo "if ($r < $best_rkt) $r else $best_rkt" | bc -l)
done
kill "$server" 2>/dev/null; wait "$server" 2>/dev/null || true
rm -rf --one-file-system "$work"/fetch?
printf "   curl | gzip -dc | sha512sum: %.2f s   rkt fetch (download, verify, import, render): %.2f s   speedup: %sx\n" \
	"$best_pipe" "$best_rkt" "$(ratio "$best_pipe" "$best_rkt")"
fi

# --- 8. a 5-layer OCI image from a local registry: rkt fetch vs skopeo copy + umoci unpack
if want 8; then
build_big
echo "== pull of a 5-layer OCI image (the ~200 MB tree) from docker-registry on 127.0.0.1"
oci="$work/oci"; mkdir -p "$oci/lists"
# Five layers of about equal size: the tree's files in five groups.
(cd "$work/big/rootfs" && find . -type f -printf '%s %p\n' | sort -k2) >"$oci/files"
total=$(awk '{s += $1} END {print s}' "$oci/files")
awk -v total="$total" -v dir="$oci/lists" '{
	n = int(sum * 5 / total); if (n > 4) n = 4; sum += $1; print $2 > (dir "/" n)
}' "$oci/files"
umoci init --layout "$oci/img" && umoci new --image "$oci/img:v1"
for n in 0 1 2 3 4; do
	tar -C "$work/big/rootfs" --numeric-owner -cf "$oci/layer.tar" -T "$oci/lists/$n"
	umoci raw add-layer --image "$oci/img:v1" "$oci/layer.tar"
done
rm -f "$oci/layer.tar"
umoci config --image "$oci/img:v1" --config.entrypoint /usr/bin/true --os linux --architecture amd64
umoci gc --layout "$oci/img"
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
printf 'version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: 127.0.0.1:%s\n  secret: bench\n' \
	"$oci/registry" "$port" >"$oci/registry.yml"
docker-registry serve "$oci/registry.yml" >/dev/null 2>&1 &
registry=$!
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.05; done
skopeo copy --quiet --dest-tls-verify=false "oci:$oci/img:v1" "docker://127.0.0.1:$port/bench/big:v1"
echo "   layers (gzip): $(for l in "$oci"/img/blobs/sha256/*; do s=$(stat -c %s "$l"); [ "$s" -gt 100000 ] && echo -n "$((s / 1000000)) "; done)MB"
best_base=999; best_rkt=999
for i in 1 2 3; do
	sync; t0=$(now)
	skopeo copy --quiet --src-tls-verify=false "docker://127.0.0.1:$port/bench/big:v1" "oci:$oci/pulled$i:v1"
	umoci unpack --image "$oci/pulled$i:v1" "$oci/bundle$i" >/dev/null 2>&1
	t1=$(now)
	b=$(elapsed "$t0" "$t1"); best_base=$(echo "if ($b < $best_base) $b else $best_base" | bc -l)
	sync; t0=$(now)
	"$rkt" --dir="$work/pull$i" --insecure-options=image,http fetch "docker://127.0.0.1:$port/bench/big:v1" \
		>/dev/null 2>"$work/pull.err" || { cat "$work/pull.err" >&2; break; }
	t1=$(now)
	r=$(elapsed "$t0" "$t1"); best_rkt=$(echo "if ($r < $best_rkt) $r else $best_rkt" | bc -l)
done
kill "$registry" 2>/dev/null; wait "$registry" 2>/dev/null || true
rm -rf --one-file-system "$work"/pull? "$oci"/pulled? "$oci"/bundle?
printf "   skopeo copy + umoci unpack: %.2f s   rkt fetch (download, verify, merge, import, render): %.2f s   speedup: %sx\n" \
	"$best_base" "$best_rkt" "$(ratio "$best_base" "$best_rkt")"
fi

# --- 9. kvm: a pod's VM from rkt run to its exit vs a bare QEMU boot -------
if want 9; then
echo "== 9. rkt run on the kvm stage1 (/bin/true) vs the same kernel booted bare to an init that powers off"
kvm_key=$(R --insecure-options=image fetch --full target/release/stage1-kvm.aci 2>/dev/null)
bare="$work/bare"; mkdir -p "$bare/root/bin"
tar -C "$bare" -xf target/release/stage1-kvm.aci rootfs/kvm/vmlinux
cp /bin/busybox "$bare/root/bin/busybox"
printf '#!/bin/busybox sh\n/bin/busybox poweroff -f\n' >"$bare/root/init"
chmod 755 "$bare/root/init"
(cd "$bare/root" && find . | busybox cpio -o -H newc 2>/dev/null) >"$bare/initramfs.cpio"
tsc=$(awk -F: '/^cpu MHz/ { printf "%d", $2 * 1000; exit }' /proc/cpuinfo)
# What kvm-run gives QEMU, minus the pod's devices: the machine, CPU,
# memory and kernel command line are the same.
bare_cmd="qemu-system-x86_64 -M microvm,rtc=on -accel tcg -cpu max -smp 1 -m 512M -nodefaults -no-user-config -nographic -no-reboot -kernel $bare/rootfs/kvm/vmlinux -initrd $bare/initramfs.cpio -append 'console=ttyS0 quiet panic=-1 rdinit=/init tsc_early_khz=$tsc' -serial null"
kvm_run="$rkt --dir=$work/data --local-config=$work/etc --system-config=$work/sys run --insecure-options=image --stage1-hash=$kvm_key"
kvm_none="$kvm_run --net=none example.com/busybox --exec /bin/true"
kvm_default="$kvm_run --net=default example.com/busybox --exec /bin/true"
hyperfine --warmup 1 --runs 10 --export-json "$work/kvm.json" \
	-n bare-qemu "$bare_cmd" -n rkt-kvm-none "$kvm_none" -n rkt-kvm-default "$kvm_default" >/dev/null
python3 - "$work/kvm.json" <<'EOF_KVM'
import json, sys
r = {x["command"]: x for x in json.load(open(sys.argv[1]))["results"]}
med = {k: v["median"] * 1000 for k, v in r.items()}
for k, v in med.items():
    print(f"   {k:16s} {v:7.0f} ms")
for k in ("rkt-kvm-none", "rkt-kvm-default"):
    print(f"   {k} / bare-qemu = {med[k] / med['bare-qemu']:.2f}")
EOF_KVM
R gc --grace-period=0s >/dev/null 2>&1 || true
fi
