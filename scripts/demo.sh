#!/usr/bin/env bash
# Install what is needed, build, and run a real container with conductor: a busybox image
# imported from a tarball, a container in new pid/uts/ipc/mount/net/cgroup namespaces on an
# overlay rootfs, its logs, an exec into it, and a stop that removes every trace.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/deps.sh
export PATH="$HOME/.cargo/bin:$PATH"
cargo build --release --workspace
c=$PWD/target/x86_64-unknown-linux-gnu/release/conductor
work=$(mktemp -d /tmp/conductor-demo.XXXXXX)
export CONDUCTOR_ROOT=$work/data CONDUCTOR_RUNROOT=$work/run
trap '"$c" stop -t 0 demo >/dev/null 2>&1 || true; rm -rf "$work"' EXIT

mkdir -p "$work/rootfs/bin"
cp /bin/busybox "$work/rootfs/bin/"
for a in $(/bin/busybox --list | grep -vx busybox); do ln -s busybox "$work/rootfs/bin/$a"; done
tar -C "$work/rootfs" -cf "$work/busybox.tar" .
set -x
"$c" import "$work/busybox.tar" busybox
"$c" images
"$c" run busybox hello -- sh -c 'echo "hello from pid $$ on $(hostname)"; ps'
"$c" stop hello
"$c" run -d --cpus 0.5 --memory 64m busybox demo -- sh -c 'while :; do date; sleep 1; done'
"$c" ps
"$c" exec demo -- ps -o pid,comm
sleep 2
"$c" logs --tail 2 demo
"$c" stop -t 1 demo
"$c" rmi busybox
