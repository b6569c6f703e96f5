#!/usr/bin/env bash
# System packages conductor's build, demo and tests need (Debian 12, as root).
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends \
  ca-certificates curl gcc libc6-dev pkg-config \
  python3 busybox-static procps iproute2 kmod \
  runc crun podman containerd hyperfine debootstrap nftables qemu-system-x86 fakeroot >/dev/null
# Rust: the machine's toolchain if there is one, else rustup (Debian 12's rustc is too old).
if ! command -v cargo >/dev/null; then
  [ -x "$HOME/.cargo/bin/cargo" ] || curl -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal
fi
