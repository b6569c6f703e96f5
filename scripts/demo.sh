#!/usr/bin/env bash
# Install what is needed, build, and run a real container from a busybox bundle with
# conductor-runtime: new pid/uts/ipc/mount/net/cgroup namespaces, pivot_root, a cgroup.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/deps.sh
export PATH="$HOME/.cargo/bin:$PATH"
cargo build --release --workspace
rt=$PWD/target/release/conductor-runtime
work=$(mktemp -d /tmp/conductor-demo.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/bundle/rootfs/bin"
cp /bin/busybox "$work/bundle/rootfs/bin/"
for a in $(/bin/busybox --list | grep -vx busybox); do ln -s busybox "$work/bundle/rootfs/bin/$a"; done
(cd "$work/bundle" && "$rt" spec)
python3 - "$work/bundle/config.json" <<'PY'
import json, sys
p = sys.argv[1]; c = json.load(open(p))
c["process"]["terminal"] = False
c["process"]["args"] = ["sh", "-c", "echo \"hello from pid $$ on $(hostname)\"; ps; ls /"]
json.dump(c, open(p, "w"), indent=1)
PY
"$rt" --root "$work/state" run --bundle "$work/bundle" demo
