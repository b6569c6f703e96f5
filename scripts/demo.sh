#!/usr/bin/env bash
# Install what is needed, build, and run a real container with conductor: a busybox image
# imported from a tarball, a container in new pid/uts/ipc/mount/net/cgroup namespaces on an
# overlay rootfs, its logs, an exec into it, and a stop that removes every trace. Then the
# seed's networking (addnetwork -e, peer), inside a throwaway network namespace that stands in
# for the host, so this machine's interfaces and firewall are left alone.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/deps.sh
export PATH="$HOME/.cargo/bin:$PATH"
cargo build --release --workspace
c=$PWD/target/x86_64-unknown-linux-gnu/release/conductor
work=$(mktemp -d /tmp/conductor-demo.XXXXXX)
export CONDUCTOR_ROOT=$work/data CONDUCTOR_RUNROOT=$work/run
ns=conductor-demo-$$
inns() { nsenter --net=/run/netns/"$ns" "$@"; }
cleanup() {
  set +x
  for n in demo web client; do inns "$c" stop -t 0 "$n" >/dev/null 2>&1 || "$c" stop -t 0 "$n" >/dev/null 2>&1 || true; done
  ip netns del "$ns" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

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

# Networking, in a namespace of our own standing in for the host.
ip netns add "$ns"
inns ip link set lo up
inns "$c" run -d busybox web -- sh -c 'mkdir /www && hostname > /www/index.html && exec httpd -f -p 8080 -h /www'
inns "$c" run -d busybox client -- sleep inf
inns "$c" --explain addnetwork web -e 8080-3000
inns "$c" addnetwork client
inns "$c" network ls
inns busybox wget -qO- http://127.0.0.1:3000/  # the host reaches the exposed port
inns "$c" exec client -- timeout 3 wget -qO- http://web:8080/ || echo "client cannot reach web: not peered"
inns "$c" peer client web
inns "$c" exec client -- timeout 3 wget -qO- http://web:8080/
inns "$c" stop -t 1 web
inns "$c" stop -t 1 client
"$c" rmi busybox
