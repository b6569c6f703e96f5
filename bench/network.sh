#!/usr/bin/env bash
# Networking costs, inside a throwaway network namespace that stands in for the host (the
# machine's own interfaces and ruleset are never touched):
#   1. `conductor addnetwork` for the 1st .. Nth container (N=100): must stay flat, because a
#      container adds set/map elements to conductor's nftables table, never rules;
#   2. TCP throughput from the host to a container through an exposed port (DNAT) vs direct to
#      the container's address, same run, as a ratio.
# Root only. Writes bench/results/network.md.
set -euo pipefail
cd "$(dirname "$0")/.."
count=${COUNT:-100}
bytes=${BYTES:-2000000000}
out=${OUT:-bench/results}
mkdir -p "$out"
cargo build --release -q -p conductor-cli
c=$PWD/target/x86_64-unknown-linux-gnu/release/conductor
work=$(mktemp -d /tmp/cnd-bench-net.XXXXXX)
ns=cnd-bench-net-$$
export CONDUCTOR_ROOT=$work/data CONDUCTOR_RUNROOT=/run/cnd-bench-net-$$ CONDUCTOR_CONFIG=$work/conductor.toml
# A /16 of /28s: room for 4096 containers.
printf '[network]\npool = "10.128.0.0/16"\nsubnet_prefix = 28\n' > "$CONDUCTOR_CONFIG"
# nsenter joins only the network namespace; `ip netns exec` would also remount /sys, hiding
# the cgroup filesystems.
inns() { nsenter --net=/run/netns/"$ns" "$@"; }
cleanup() {
  for n in $(seq -f 'n%g' 1 "$count") tput; do inns "$c" stop -t 0 "$n" >/dev/null 2>&1 || true; done
  ip netns del "$ns" 2>/dev/null || true
  ip netns del "$ns-lan" 2>/dev/null || true
  rm -rf "$work" "$CONDUCTOR_RUNROOT"
}
trap cleanup EXIT
ip netns add "$ns"
inns ip link set lo up
# The stand-in host's uplink, a veth to a second namespace (its LAN), with a default route.
ip netns add "$ns-lan"
ip link add up0 netns "$ns" type veth peer name eth0 netns "$ns-lan"
inns ip addr add 10.250.0.1/24 dev up0
inns ip link set up0 up
ip netns exec "$ns-lan" ip link set eth0 up
inns ip route add default via 10.250.0.254 dev up0 onlink

mkdir -p "$work/rootfs/bin"
cp /bin/busybox "$work/rootfs/bin/"
for a in $(/bin/busybox --list | grep -vx busybox); do ln -s busybox "$work/rootfs/bin/$a"; done
tar -C "$work/rootfs" -cf "$work/busybox.tar" .
"$c" import "$work/busybox.tar" bb >/dev/null

ms() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b - a) / 1e6 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
echo "== addnetwork -i -e for $count containers"
times=()
for i in $(seq 1 "$count"); do
  inns "$c" run -d bb "n$i" -- sleep inf >/dev/null
  t0=$(date +%s%N)
  inns "$c" addnetwork "n$i" -i -e "8080-$((20000 + i))" >/dev/null
  t1=$(date +%s%N)
  times+=("$(ms "$t0" "$t1")")
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
first10=$(median "${times[@]:0:10}")
last10=$(median "${times[@]: -10}")
elems=$(inns nft -j list set inet conductor containers | python3 -c 'import json,sys; print(sum(len(o["set"].get("elem",[])) for o in json.load(sys.stdin)["nftables"] if "set" in o))')
rules=$(inns nft -a list table inet conductor | grep -c 'handle' || true)

echo "== TCP throughput to one container: direct vs through an exposed port"
inns "$c" run -d bb tput -- sh -c 'while true; do nc -l -p 5001 > /dev/null; done' >/dev/null
inns "$c" addnetwork tput -e 5001-15001 >/dev/null
ip=$(inns "$c" inspect tput | python3 -c 'import json,sys; print(json.load(sys.stdin)["Network"]["allocation"]["container_ip"])')
send() {
  inns python3 - "$1" "$2" "$bytes" <<'EOF'
import socket, sys, time
host, port, total = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
buf = b"\0" * (1 << 20)
for attempt in range(50):
    try:
        s = socket.create_connection((host, port), timeout=5)
        break
    except OSError:
        time.sleep(0.1)
t = time.monotonic()
sent = 0
while sent < total:
    s.sendall(buf)
    sent += len(buf)
s.shutdown(socket.SHUT_WR)
s.recv(1)
print(f"{sent * 8 / (time.monotonic() - t) / 1e9:.2f}")
EOF
}
direct=() exposed=()
for r in 1 2 3; do
  direct+=("$(send "$ip" 5001)")
  exposed+=("$(send 10.250.0.1 15001)")
done
d=$(median "${direct[@]}") e=$(median "${exposed[@]}")

{
  echo "| addnetwork -i -e (median of 10) | ms |"
  echo "|---|---:|"
  echo "| containers 1-10 | $first10 |"
  echo "| containers $((count - 9))-$count | $last10 |"
  echo "| ratio last/first | $(ratio "$last10" "$first10") |"
  echo
  echo "conductor's table after $count containers: $elems set elements, $rules rule/chain/set lines (fixed)."
  echo
  echo "| TCP host -> container, $((bytes / 1000000)) MB, median of 3 | Gbit/s |"
  echo "|---|---:|"
  echo "| direct to $ip:5001 | $d |"
  echo "| exposed port 10.250.0.1:15001 (DNAT) | $e |"
  echo "| ratio exposed/direct | $(ratio "$e" "$d") |"
} | tee "$out/network.md"
