#!/usr/bin/env bash
# The seed's Task 2 with conductor, in its three stages, on an image that holds container_prog
# and its shared-library closure and nothing else (`conductor image from-binary`):
#   2a  a new root only: the host's PID and UTS namespaces (pids are host pids);
#   2b  new PID and UTS namespaces: pid 1 and 2, its own hostname, the host's unchanged;
#   2c  as 2b with a cgroup CPU cap of 50% (`--cpus 0.5`): the computation takes about twice as long.
# Root only. CONDUCTOR and CONTAINER_PROG name prebuilt binaries (default: a release build here).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${CONDUCTOR:-}" ] || [ -z "${CONTAINER_PROG:-}" ]; then
  cargo build --release -q -p conductor-cli -p conductor-lab
  CONDUCTOR=${CONDUCTOR:-$PWD/target/x86_64-unknown-linux-gnu/release/conductor}
  CONTAINER_PROG=${CONTAINER_PROG:-$PWD/target/x86_64-unknown-linux-gnu/release/container_prog}
fi
c=$CONDUCTOR
image=container-prog-$$
name=simple-$$
cleanup() {
  "$c" stop -t 0 "$name" >/dev/null 2>&1 || true
  "$c" rmi "$image" >/dev/null 2>&1 || true
}
trap cleanup EXIT

# The empty root, filled with the program and what ld.so would load for it.
"$c" image from-binary "$image" "$CONTAINER_PROG" >/dev/null

stage() { "$c" run "$@" "$image" "$name"; "$c" stop "$name" >/dev/null; }

echo "Output Subtask 2a"
stage --pid host --uts host
echo "__________________________________________"
echo
echo "Output Subtask 2b"
stage --hostname new_hostname
echo
echo "Hostname in the host: $(hostname)"
echo "__________________________________________"
echo
echo "Output Subtask 2c"
stage --hostname new_hostname --cpus 0.5
