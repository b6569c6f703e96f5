#!/usr/bin/env bash
# `conductor run IMAGE NAME -- /bin/true` + `stop`, side by side with `podman run --rm` on the
# same busybox image in one hyperfine run; and the same for a ~300 MB debootstrap image, which
# should cost the same (the rootfs is an overlay, never a copy). Root only.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${RUNS:-30}
out=${OUT:-bench/results}
mkdir -p "$out"
cargo build --release -q -p conductor-cli
c=$PWD/target/x86_64-unknown-linux-gnu/release/conductor
work=$(mktemp -d /tmp/cnd-bench-engine.XXXXXX)
export CONDUCTOR_ROOT=$work/data CONDUCTOR_RUNROOT=/run/cnd-bench-engine-$$
cleanup() {
  for n in b d; do "$c" stop -t 0 "$n" >/dev/null 2>&1 || true; done
  podman_cmd rm -af >/dev/null 2>&1 || true
  rm -rf "$work" "$CONDUCTOR_RUNROOT"
}
trap cleanup EXIT

# A busybox rootfs tarball, imported into both engines.
mkdir -p "$work/rootfs/bin"
cp /bin/busybox "$work/rootfs/bin/"
for a in $(/bin/busybox --list | grep -vx busybox); do ln -s busybox "$work/rootfs/bin/$a"; done
tar -C "$work/rootfs" -cf "$work/busybox.tar" .
"$c" import "$work/busybox.tar" bb >/dev/null
echo "== building the debootstrap image (cached under /var/cache/conductor after the first time)"
"$c" build deb --variant minbase --include procps,iproute2,python3 >/dev/null
"$c" images

# podman with its own storage and config, with runc (Debian 12 crun refuses hybrid cgroups);
# this machine needs ulimits podman cannot raise.
mkdir -p "$work/podman/tmp" "$work/podman/cni"
printf '[engine]\nlock_type = "file"\n[network]\nnetwork_backend = "cni"\nnetwork_config_dir = "%s/net"\ncni_plugin_dirs = ["%s/cni"]\n' \
  "$work/podman" "$work/podman" > "$work/podman/containers.conf"
printf '[storage]\ndriver = "overlay"\ngraphroot = "%s/root"\nrunroot = "%s/runroot"\n' "$work/podman" "$work/podman" > "$work/podman/storage.conf"
podman_cmd() {
  CONTAINERS_CONF=$work/podman/containers.conf CONTAINERS_STORAGE_CONF=$work/podman/storage.conf TMPDIR=$work/podman/tmp \
    podman --runtime runc --cgroup-manager cgroupfs --events-backend file "$@"
}
export -f podman_cmd; export work
podman_cmd import "$work/busybox.tar" bb >/dev/null
nproc_max=$(ulimit -Hu); { [ "$nproc_max" = unlimited ] || [ "$nproc_max" -gt 32768 ]; } && nproc_max=32768
ul="--ulimit nofile=20000:20000 --ulimit nproc=$nproc_max:$nproc_max"

hyperfine --shell bash --warmup 3 --runs "$runs" --export-json "$out/engine.json" --export-markdown "$out/engine.md" \
  -n "conductor busybox" "$c run bb b -- /bin/true && $c stop -t 0 b >/dev/null" \
  -n "conductor debian" "$c run deb d -- /bin/true && $c stop -t 0 d >/dev/null" \
  -n "podman busybox" "podman_cmd run --rm --network none $ul bb /bin/true"
