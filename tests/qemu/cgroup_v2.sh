#!/usr/bin/env bash
# Run the root integration tests on PURE cgroup v2, inside a QEMU guest (this host is cgroup v1
# hybrid). Called by CI as root; exits non-zero when any guest check or test fails.
#
#  1. Kernel: Debian's generic kernel package (the one linux-image-amd64 depends on), fetched with
#     `apt-get download` (the mirror is whatever apt is configured with) and unpacked with
#     `dpkg-deb -x` -- no bootloader hooks. Only the bzImage and the virtio/9p modules are kept,
#     with their load order from depmod + modprobe --show-depends. The .deb and the slim kernel
#     are cached under $CACHE, so re-runs need no network (the newest cached kernel is used).
#  2. Test binaries: built with cargo on the host; found through --message-format=json. The
#     cgroups crate's integration tests (crates/cgroups/tests/*.rs), the root package's
#     tests/runtime_*.rs (they need the built conductor-runtime and /bin/busybox), and the
#     engine's tests/engine.rs, tests/resources.rs and tests/simple_container.rs (the built
#     conductor and container_prog; overlayfs, hence the overlay module).
#  3. Guest: an initramfs of static busybox + those modules + tests/qemu/guest-init.sh as /init.
#     The host's / is shared read-only over 9p; the guest mounts fresh /proc, /sys, cgroup2 (only)
#     at /sys/fs/cgroup, /dev, /tmp and /run over it and pivot_roots into it, so the host's glibc,
#     the binaries and /bin/busybox all just work. Each test runs in a process of its own (libtest
#     --exact) with a timeout, and must leave no cgroup behind. TCG, not KVM (nested KVM crawls).
#  4. Result: the guest prints "@@ RESULT <nonce> PASS|FAIL" on the serial console and writes
#     0 (pass) / 1 (fail) to isa-debug-exit (qemu exits (v<<1)|1). A panicking or rebooting guest
#     makes qemu exit 0, so success needs BOTH exit status 1 and the PASS line with this nonce.
#
# Environment knobs: CONDUCTOR_QEMU_CACHE (default /var/cache/conductor/qemu),
# CONDUCTOR_QEMU_KERNEL_PKG (e.g. linux-image-6.1.0-57-amd64; default: newest cached, else what
# linux-image-amd64 depends on), CONDUCTOR_QEMU_TIMEOUT (whole guest, s, default 900),
# CONDUCTOR_QEMU_TEST_TIMEOUT (one test, s, default 120), CONDUCTOR_QEMU_FILTER (extended regex
# on "binary::test", e.g. '^root::'), CONDUCTOR_QEMU_MEM (MiB, default 2048),
# CONDUCTOR_QEMU_SMP (default 2), CONDUCTOR_QEMU_LOG (keep the console log there).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
CACHE=${CONDUCTOR_QEMU_CACHE:-/var/cache/conductor/qemu}
TIMEOUT=${CONDUCTOR_QEMU_TIMEOUT:-900}
TEST_TIMEOUT=${CONDUCTOR_QEMU_TEST_TIMEOUT:-120}
FILTER=${CONDUCTOR_QEMU_FILTER:-}
MEM=${CONDUCTOR_QEMU_MEM:-2048}
SMP=${CONDUCTOR_QEMU_SMP:-2}
MODULES=(virtio_pci 9pnet_virtio 9p overlay)
START=$SECONDS

say() { printf '== qemu-cgroup-v2: %s\n' "$*" >&2; }
die() { say "ERROR: $*"; exit 1; }

[ "$(id -u)" = 0 ] || die "must run as root (the guest's tests need it, and so does the cache)"
for tool in qemu-system-x86_64 depmod modprobe dpkg-deb apt-get cargo timeout; do
    command -v "$tool" >/dev/null || die "$tool not found (Debian packages: qemu-system-x86 kmod)"
done
[ -x /bin/busybox ] || die "/bin/busybox missing (Debian package busybox-static)"
if [[ "$(LC_ALL=C ldd /bin/busybox 2>&1 || true)" != *"not a dynamic executable"* ]]; then
    die "/bin/busybox is dynamically linked; the initramfs needs Debian's busybox-static"
fi

WORK=$(mktemp -d /tmp/conductor-qemu.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

# ------------------------------------------------------------------------------ 1. kernel
mkdir -p "$CACHE/debs" "$CACHE/kernel"
# One preparer at a time; what an interrupted one left half-made is removed.
exec 9> "$CACHE/.lock"
flock 9
rm -rf "$CACHE"/kernel/.unpack.* "$CACHE"/debs/.dl.*

# Unpack package $1 (its .deb in $CACHE/debs) into $CACHE/kernel/$1: vmlinuz, modules/*.ko
# (decompressed) and modules/order.
prepare_kernel() {
    local pkg=$1 deb tmp ver dest kos
    deb=$(ls -t "$CACHE/debs/${pkg}"_*.deb 2>/dev/null | head -n1 || true)
    if [ -z "$deb" ]; then
        say "downloading $pkg with apt-get download"
        local dl
        dl=$(mktemp -d "$CACHE/debs/.dl.XXXXXX")
        if ! (cd "$dl" && apt-get -q -o APT::Sandbox::User=root download "$pkg" >&2); then
            say "apt-get download failed; running apt-get update once and retrying"
            apt-get update -qq >&2 || true
            (cd "$dl" && apt-get -q -o APT::Sandbox::User=root download "$pkg" >&2) \
                || { rm -rf "$dl"; die "cannot download $pkg"; }
        fi
        mv "$dl"/*.deb "$CACHE/debs/"
        rm -rf "$dl"
        deb=$(ls -t "$CACHE/debs/${pkg}"_*.deb | head -n1)
    fi
    say "unpacking $(basename "$deb")"
    tmp=$(mktemp -d "$CACHE/kernel/.unpack.XXXXXX")
    dpkg-deb -x "$deb" "$tmp/x"
    ver=$(ls "$tmp/x/lib/modules" | head -n1)
    [ -n "$ver" ] && [ -f "$tmp/x/boot/vmlinuz-$ver" ] || { rm -rf "$tmp"; die "$deb has no kernel"; }
    depmod -b "$tmp/x" "$ver"
    dest="$tmp/k"
    mkdir -p "$dest/modules"
    cp "$tmp/x/boot/vmlinuz-$ver" "$dest/vmlinuz"
    echo "$ver" > "$dest/version"
    # One insmod line per module in load order, dependencies first, each module once.
    kos=$(for m in "${MODULES[@]}"; do
        modprobe -d "$tmp/x" -S "$ver" --show-depends "$m" || exit 1
    done | awk '$1 == "insmod" && !seen[$2]++ {print $2}') || { rm -rf "$tmp"; die "modprobe --show-depends failed"; }
    : > "$dest/modules/order"
    for ko in $kos; do
        local name
        name=$(basename "$ko")
        case "$name" in
            *.ko.xz) xz -dc "$ko" > "$dest/modules/${name%.xz}"; name=${name%.xz} ;;
            *.ko.zst) zstd -qdc "$ko" > "$dest/modules/${name%.zst}"; name=${name%.zst} ;;
            *.ko.gz) gzip -dc "$ko" > "$dest/modules/${name%.gz}"; name=${name%.gz} ;;
            *) cp "$ko" "$dest/modules/$name" ;;
        esac
        echo "$name" >> "$dest/modules/order"
    done
    rm -rf "${CACHE:?}/kernel/$pkg"
    mv "$dest" "$CACHE/kernel/$pkg"
    rm -rf "$tmp"
}

PKG=${CONDUCTOR_QEMU_KERNEL_PKG:-}
if [ -z "$PKG" ]; then
    # The newest kernel already prepared: re-runs need neither network nor apt lists.
    PKG=$(ls -t "$CACHE/kernel" 2>/dev/null | grep '^linux-image-' | head -n1 || true)
fi
if [ -z "$PKG" ]; then
    PKG=$(apt-cache depends linux-image-amd64 2>/dev/null \
        | awk '/Depends: linux-image-/ {print $2; exit}' || true)
    if [ -z "$PKG" ]; then
        apt-get update -qq >&2 || true
        PKG=$(apt-cache depends linux-image-amd64 2>/dev/null \
            | awk '/Depends: linux-image-/ {print $2; exit}' || true)
    fi
    [ -n "$PKG" ] || die "cannot resolve the generic kernel package from linux-image-amd64"
fi
case "$PKG" in *-cloud-*|*-rt-*) die "$PKG: use the generic kernel (-cloud lacks 9p)";; esac
KDIR="$CACHE/kernel/$PKG"
[ -f "$KDIR/vmlinuz" ] && [ -s "$KDIR/modules/order" ] || prepare_kernel "$PKG"
touch "$KDIR"
flock -u 9
say "kernel: $PKG ($(cat "$KDIR/version")), modules: $(tr '\n' ' ' < "$KDIR/modules/order")"

# ------------------------------------------------------------------------------ 2. test binaries
cd "$ROOT"
say "building the test binaries"
TARGET=$(cargo metadata --format-version 1 --no-deps --locked \
    | sed -E 's/.*"target_directory":"([^"]*)".*/\1/')
[ -d "$TARGET" ] || die "cannot find cargo's target directory (got '$TARGET')"
# Prints "<label> <cwd> <executable>" for each integration-test binary cargo reports.
test_binaries() {
    cargo test --locked --no-run --message-format=json "$@" \
        | grep '"reason":"compiler-artifact"' \
        | grep '"kind":\["test"\]' \
        | grep '"executable":"/' \
        | sed -E 's/.*"manifest_path":"([^"]*)\/Cargo.toml".*"name":"([^"]*)","src_path".*"executable":"([^"]*)".*/\2 \1 \3/'
}
LIST="$WORK/binaries"
test_binaries -p conductor-cgroups --test '*' > "$LIST" \
    || die "building the conductor-cgroups integration tests failed"
[ -s "$LIST" ] || die "no integration test binary found for conductor-cgroups"
if compgen -G "$ROOT/tests/runtime_*.rs" >/dev/null; then
    RT=$(cargo build --locked -p conductor-runtime-cli --message-format=json \
        | grep '"executable":"/' | sed -E 's/.*"executable":"([^"]*)".*/\1/' | tail -n 1)
    [ -x "$RT" ] || die "conductor-runtime was not built (got '$RT')"
    test_binaries -p conductor-tests --test 'runtime_*' >> "$LIST" \
        || die "building the tests/runtime_*.rs binaries failed"
fi
# The engine on pure v2: containers, resource limits from the kernel's counters, the seed's Task 2.
cargo build --locked -q -p conductor-cli -p conductor-lab || die "building conductor failed"
for t in engine resources simple_container; do
    test_binaries -p conductor-tests --test "$t" >> "$LIST" || die "building tests/$t.rs failed"
done
while read -r label cwd exe; do
    [ -x "$exe" ] || die "test binary $exe ($label) missing"
    case "$label$cwd$exe" in *[[:space:]]*) die "whitespace in a path: $cwd $exe";; esac
done < "$LIST"
say "test binaries: $(awk '{print $1}' "$LIST" | tr '\n' ' ')"

# The guest mounts fresh tmpfs over /tmp and /run, which would hide a checkout (or a target
# dir) there; so both are also shared on their own and mounted at the same paths in the guest.
SHARES=("checkout $ROOT")
case "$TARGET/" in "$ROOT"/*) ;; *) SHARES+=("target $TARGET") ;; esac
VIRTFS=()
for s in "${SHARES[@]}"; do
    VIRTFS+=(-virtfs "local,path=${s#* },mount_tag=${s%% *},security_model=none,readonly=on,multidevs=remap")
done

# ------------------------------------------------------------------------------ 3. initramfs
NONCE=$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')
INITRD="$WORK/initrd"
mkdir -p "$INITRD/bin" "$INITRD/modules"
cp /bin/busybox "$INITRD/bin/busybox"
cp "$HERE/guest-init.sh" "$INITRD/init"
chmod 0755 "$INITRD/init"
cp "$KDIR/modules/"* "$INITRD/modules/"
{
    echo "nonce=$NONCE"
    echo "test_timeout=$TEST_TIMEOUT"
    echo "filter=$FILTER"
    for s in "${SHARES[@]}"; do echo "share $s"; done
    sed 's/^/test /' "$LIST"
} > "$INITRD/plan"
(cd "$INITRD" && find . | /bin/busybox cpio -o -H newc 2>/dev/null) > "$WORK/initrd.cpio"

# ------------------------------------------------------------------------------ 4. boot
LOG=${CONDUCTOR_QEMU_LOG:-$WORK/console.log}
say "booting the guest (TCG, $SMP vCPUs, $MEM MiB; timeout ${TIMEOUT}s); console follows"
BOOT=$SECONDS
set +e
timeout -k 10 "$TIMEOUT" qemu-system-x86_64 \
    -M pc -accel tcg,thread=multi -smp "$SMP" -m "$MEM" \
    -nodefaults -no-user-config -display none -no-reboot -nic none \
    -kernel "$KDIR/vmlinuz" -initrd "$WORK/initrd.cpio" \
    -append "console=ttyS0 loglevel=2 panic=-1 oops=panic rdinit=/init" \
    -chardev stdio,id=con,signal=off -serial chardev:con \
    -virtfs local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap \
    "${VIRTFS[@]}" \
    -device isa-debug-exit,iobase=0xf4,iosize=0x04 \
    < /dev/null 2>&1 | tr -d '\r' | tee "$LOG"
QEMU_RC=${PIPESTATUS[0]}
set -e
GUEST_SECS=$((SECONDS - BOOT))

# ------------------------------------------------------------------------------ 5. summary
echo
echo "================ cgroup v2 guest summary ================"
grep '^@@ GUEST' "$LOG" | sed 's/^@@ /  /' || true
grep '^@@ CHECK' "$LOG" | sed 's/^@@ CHECK /  check: /' || true
grep '^@@ BINARY ' "$LOG" | sed 's/^@@ /  /' || true
# One line per test; under a failed one, where it panicked and the message.
awk '
    /^@@ (BINARY|TEST) / {
        if ($2 == "TEST") {
            printf "    %-8s %s", $4, $3
            for (i = 5; i < NF; i++) printf " %s", $i
            printf "  (%s)\n", $NF
            if ($4 != "ok") for (i = 0; i < n; i++) print "             | " substr(why[i], 1, 240)
        }
        n = 0; grab = 0; next
    }
    grab && (/^stack backtrace:/ || /^note: / || /^$/) { grab = 0 }
    grab && n < 8 { why[n++] = $0; next }
    /panicked at / && n < 8 { why[n++] = $0; grab = 1 }
' "$LOG"
PASSED=$(grep -c '^@@ TEST [^ ]* ok ' "$LOG" || true)
FAILED=$(grep '^@@ TEST ' "$LOG" | grep -vc '^@@ TEST [^ ]* ok ' || true)
CHECK_FAILS=$(grep -c '^@@ CHECK FAIL' "$LOG" || true)
VERDICT=FAIL
REASON=
if grep -qx "@@ RESULT $NONCE PASS" "$LOG" && [ "$QEMU_RC" = 1 ]; then
    VERDICT=PASS
    if [ "$((PASSED + FAILED))" = 0 ]; then
        VERDICT=FAIL
        REASON="no test ran (CONDUCTOR_QEMU_FILTER='$FILTER')"
    fi
elif [ "$QEMU_RC" = 124 ] || [ "$QEMU_RC" = 137 ]; then
    REASON="the guest did not finish within ${TIMEOUT}s"
elif ! grep -q "^@@ RESULT $NONCE " "$LOG"; then
    REASON="the guest never reported a result (qemu exit $QEMU_RC: crash, panic or early stop)"
else
    REASON="the guest reported failure (qemu exit $QEMU_RC)"
fi
echo "  guest time ${GUEST_SECS}s, whole script $((SECONDS - START))s"
echo "cgroup-v2: $PASSED passed, $FAILED failed"
if [ "$VERDICT" = PASS ]; then
    echo "== qemu-cgroup-v2: PASS (pure cgroup v2 guest, kernel $(cat "$KDIR/version"))"
    exit 0
fi
echo "== qemu-cgroup-v2: FAIL: $REASON ($FAILED tests failed, $CHECK_FAILS checks failed)"
[ -n "${CONDUCTOR_QEMU_LOG:-}" ] || { cp "$LOG" "/tmp/conductor-qemu-console.log"; echo "   console log: /tmp/conductor-qemu-console.log"; }
exit 1
