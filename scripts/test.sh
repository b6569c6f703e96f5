#!/usr/bin/env bash
# The whole test suite: build every binary once, then unit and root integration tests on this
# machine, then the cgroup tests again on pure cgroup v2 in a QEMU guest.
set -euo pipefail
cd "$(dirname "$0")/.."
# On a fresh machine, install what the tests need first (.ci/run has done so already).
for tool in nft debootstrap busybox qemu-system-x86_64 runc crun podman ctr cc fakeroot; do
  command -v "$tool" >/dev/null || { ./scripts/deps.sh; break; }
done
export PATH="$HOME/.cargo/bin:$PATH"
cargo build --workspace --locked
cargo test --workspace --locked -- --test-threads=4
tests/qemu/cgroup_v2.sh
