#!/usr/bin/env bash
# The whole test suite: build every binary once, then run unit and root integration tests.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --workspace --locked
# Integration tests create containers; run test binaries one after another, tests within a binary in parallel.
cargo test --workspace --locked -- --test-threads=4
