#!/usr/bin/env bash
# conductor-runtime vs runc vs crun, side by side in one hyperfine run, on a busybox bundle
# running /bin/true: `run` (create+start+wait+delete) and create/start/delete as separate
# commands; then peak RSS of each runtime's process tree. Root only.
#
# crun refuses this machine's hybrid cgroups unless /sys/fs/cgroup/unified is hidden, so the
# whole benchmark runs in a private mount namespace without it (the same for all three).
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${RUNS:-100}
out=${OUT:-bench/results}
if [ "${1:-}" != --inside ]; then
  cargo build --release -q -p conductor-runtime-cli
  exec unshare -m --propagation private "$0" --inside
fi
umount /sys/fs/cgroup/unified 2>/dev/null || true
mkdir -p "$out"
# State and bundle on tmpfs, where each runtime keeps its state by default (/run/...).
work=$(mktemp -d /run/cnd-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
cr=$PWD/target/x86_64-unknown-linux-gnu/release/conductor-runtime

# A busybox bundle: static busybox plus a link per applet.
mkdir -p "$work/bundle/rootfs/bin"
cp /bin/busybox "$work/bundle/rootfs/bin/"
for a in $(/bin/busybox --list | grep -vx busybox); do ln -sf busybox "$work/bundle/rootfs/bin/$a"; done
(cd "$work/bundle" && "$cr" spec)
python3 - "$work/bundle/config.json" <<'PY'
import json, sys
p = sys.argv[1]; c = json.load(open(p))
c["process"]["terminal"] = False
c["process"]["args"] = ["/bin/true"]
c["ociVersion"] = "1.0.2"  # what Debian 12s crun accepts
json.dump(c, open(p, "w"), indent=1)
PY

declare -A bin=([conductor]="$cr" [runc]=runc [crun]=crun)
run_cmds=() cycle_cmds=()
for r in conductor runc crun; do
  s="$work/state-$r"
  run_cmds+=(-n "$r" "${bin[$r]} --root $s run --bundle $work/bundle b-$r")
  cycle_cmds+=(-n "$r" "${bin[$r]} --root $s create --bundle $work/bundle c-$r && ${bin[$r]} --root $s start c-$r && ${bin[$r]} --root $s delete --force c-$r")
done

echo "== run /bin/true"
hyperfine -N --warmup 10 --runs "$runs" --export-json "$out/run.json" --export-markdown "$out/run.md" "${run_cmds[@]}"
echo "== create + start + delete"
hyperfine --warmup 10 --runs "$runs" --export-json "$out/cycle.json" --export-markdown "$out/cycle.md" "${cycle_cmds[@]}"

# busybox (small and static, so its own pre-exec memory does not count) reports ru_maxrss
# multiplied by 4: it takes the kernel's KiB for pages. Divided back here.
echo "== peak RSS of the runtime's process tree (busybox time -v, median of 20 runs)"
for r in conductor runc crun; do
  for i in $(seq 20); do
    /bin/busybox time -v ${bin[$r]} --root "$work/state-$r" run --bundle "$work/bundle" "m-$r" 2>&1 >/dev/null |
      awk -F: '/Maximum resident/ {print ($2+0)/4}'
  done | sort -n | awk -v r="$r" '{v[NR]=$1} END {printf "%-10s %6d KiB\n", r, v[int((NR+1)/2)]}'
done | tee "$out/rss.txt"
