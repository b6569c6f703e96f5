#!/usr/bin/env bash
# The whole test suite: build every binary once, then unit and root integration tests on this
# machine, then the cgroup tests again on pure cgroup v2 in a QEMU guest.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --workspace --locked
cargo test --workspace --locked -- --test-threads=4
tests/qemu/cgroup_v2.sh
