#!/bin/busybox sh
# /init of the QEMU guest built by tests/qemu/cgroup_v2.sh: PID 1 throughout, busybox only.
#
# Stage 1 (in the initramfs): copy the initramfs onto a tmpfs and switch_root there: while / is
#   the initramfs itself, pivot_root fails with EINVAL.
# Stage 2 (on that tmpfs): load the virtio/9p modules; mount the host's root filesystem
#   (read-only, over 9p) at /host and fresh /proc, /sys, cgroup2 (and no v1) at /sys/fs/cgroup,
#   /dev, /dev/pts, /dev/shm, /tmp and /run over it; pivot_root into it. A real root, not a
#   chroot: the kernel refuses new user namespaces to a chrooted process.
# Stage 3 (on the host's root): check the hierarchy is pure cgroup v2, run every test listed in
#   the plan (one process per test, with a timeout and a leaked-cgroup check), then report on
#   the serial console (a marker line with the run's nonce) and through isa-debug-exit (port
#   0xf4: 0 = pass, 1 = fail).
#
# Lines starting with "@@" are for the host script to parse; everything else is for people.

STAGE=${1:-stage1}
TOOLS=/run/conductor-qemu          # stage 3: busybox, its applets and the plan (on /run's tmpfs)

if [ "$STAGE" = stage1 ]; then
    export PATH=/bin
    /bin/busybox mkdir -p /proc /sys /dev /newroot
    /bin/busybox --install -s /bin
    mount -t tmpfs -o mode=0755 tmpfs /newroot
    for f in init bin modules plan; do cp -a "/$f" /newroot/; done
    exec switch_root /newroot /init stage2
    echo "@@ FATAL switch_root failed"
    poweroff -f
fi

if [ "$STAGE" = stage2 ]; then
    PLAN=/plan
    export PATH=/bin
else
    PLAN=$TOOLS/plan
    export PATH=$TOOLS/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
fi
NONCE=$(sed -n 's/^nonce=//p' $PLAN)
TEST_TIMEOUT=$(sed -n 's/^test_timeout=//p' $PLAN)
FILTER=$(sed -n 's/^filter=//p' $PLAN)
FAILURES=0

fail() {
    echo "@@ CHECK FAIL $*"
    FAILURES=$((FAILURES + 1))
}
ok() { echo "@@ CHECK ok $*"; }

# Report and stop the machine. Both channels: a panicking or rebooting guest also makes qemu
# exit, so the host requires the marker line AND the exit status.
finish() {
    if [ "$FAILURES" -eq 0 ]; then
        echo "@@ RESULT $NONCE PASS"
        code='\000'
    else
        echo "@@ RESULT $NONCE FAIL ($FAILURES failed checks or tests)"
        code='\001'
    fi
    sync
    printf "$code" | dd of=/dev/port bs=1 seek=244 count=1 conv=notrunc 2>/dev/null
    echo "@@ FATAL isa-debug-exit did not stop the machine"
    poweroff -f
    sleep 10
}

die() {
    fail "$*"
    finish
}

# ---------------------------------------------------------------- stage 2
if [ "$STAGE" = stage2 ]; then
    mkdir -p /proc /sys /dev /host
    mount -t proc proc /proc
    mount -t sysfs sysfs /sys
    mount -t devtmpfs devtmpfs /dev
    echo "@@ GUEST up: $(uname -r), $(nproc) cpus, $(awk '/MemTotal/ {print $2 " kB"}' /proc/meminfo)"

    # Modules, in the order the host computed with modprobe --show-depends.
    while read -r mod; do
        insmod "/modules/$mod" || die "insmod $mod"
    done < /modules/order

    # The host's root filesystem, read-only. Nothing changes it while the guest runs, so the
    # page cache may keep what it read.
    mount -t 9p -o trans=virtio,version=9p2000.L,ro,cache=loose,msize=512000 hostroot /host \
        || die "mount 9p hostroot"
    mount -t proc proc /host/proc || die "mount /proc"
    mount -t sysfs sysfs /host/sys || die "mount /sys"
    mount -t cgroup2 -o nsdelegate cgroup2 /host/sys/fs/cgroup || die "mount cgroup2"
    mount -t devtmpfs devtmpfs /host/dev || die "mount /dev"
    mkdir -p /host/dev/pts /host/dev/shm
    mount -t devpts -o newinstance,ptmxmode=0666 devpts /host/dev/pts || die "mount /dev/pts"
    mount -t tmpfs -o mode=1777 tmpfs /host/dev/shm || die "mount /dev/shm"
    mount -t tmpfs -o mode=1777 tmpfs /host/tmp || die "mount /tmp"
    mount -t tmpfs -o mode=0755 tmpfs /host/run || die "mount /run"
    # The checkout (and cargo's target dir when outside it), at their host paths: visible even
    # when they live under /tmp or /run on the host.
    grep '^share ' /plan > /shares
    while read -r _ tag path; do
        mkdir -p "/host$path" 2>/dev/null
        mount -t 9p -o trans=virtio,version=9p2000.L,ro,cache=loose,msize=512000 "$tag" "/host$path" \
            || die "mount share $tag at $path"
    done < /shares

    mkdir -p /host$TOOLS/bin /host/run/oldroot
    cp /bin/busybox /host$TOOLS/bin/busybox
    for applet in $(busybox --list); do
        [ "$applet" = busybox ] || ln -s busybox /host$TOOLS/bin/$applet
    done
    cp /init /host$TOOLS/init
    cp /plan /host$TOOLS/plan
    cd /host || die "cd /host"
    pivot_root . run/oldroot || die "pivot_root"
    exec chroot . $TOOLS/bin/sh $TOOLS/init stage3
    die "exec stage3"
fi

# ---------------------------------------------------------------- stage 3
cd /
umount -l /run/oldroot && rmdir /run/oldroot || fail "cannot detach the old root"

# ---- the hierarchy must be pure cgroup v2
CG=/sys/fs/cgroup
if [ -f $CG/cgroup.controllers ]; then
    ok "cgroup2 mounted at /sys/fs/cgroup (controllers: $(cat $CG/cgroup.controllers))"
else
    fail "/sys/fs/cgroup/cgroup.controllers missing"
fi
v1=$(awk '$3 == "cgroup" {print $2}' /proc/mounts)
if [ -z "$v1" ]; then ok "no cgroup v1 mounts"; else fail "cgroup v1 mounts present: $v1"; fi
cg2=$(awk '$3 == "cgroup2" {print $2}' /proc/mounts)
if [ "$cg2" = /sys/fs/cgroup ]; then
    ok "exactly one cgroup2 mount, at /sys/fs/cgroup"
else
    fail "cgroup2 mounts: $(echo $cg2)"
fi
if [ "$(cat /proc/self/cgroup)" = "0::/" ]; then
    ok "/proc/self/cgroup is the single v2 line 0::/"
else
    fail "/proc/self/cgroup: $(cat /proc/self/cgroup | tr '\n' ' ')"
fi
for c in cpu memory pids; do
    grep -qw "$c" $CG/cgroup.controllers || fail "controller $c not available in cgroup v2"
done

# ---- the tests: plan lines "test <label> <cwd> <executable>". Each test runs in a process of
# its own (libtest --exact), so a hung test is killed alone and every failure prints at once.
ENVV="PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root TMPDIR=/tmp RUST_BACKTRACE=1"
in_dir() { # CWD ARGV...: with a clean environment, from CWD
    # shellcheck disable=SC2086 # ENVV is split on purpose
    env -i $ENVV /bin/sh -c 'cd "$1" && shift && exec "$@"' sh "$@" < /dev/null
}
W=$TOOLS/work
mkdir -p $W
grep '^test ' $PLAN > $W/bins
while read -r _ label cwd exe; do
    if ! in_dir "$cwd" "$exe" --list --format terse > $W/list 2> $W/err; then
        fail "test binary $label: --list failed: $(cat $W/err)"
        continue
    fi
    sed -n 's/: test$//p' $W/list > $W/names
    echo "@@ BINARY $label: $(wc -l < $W/names) tests"
    while read -r name; do
        if [ -n "$FILTER" ] && ! echo "$label::$name" | grep -qE "$FILTER"; then
            continue
        fi
        # (The sentinel line: busybox grep -f with an empty pattern file matches every line.)
        { echo "@@sentinel"; find $CG -mindepth 1 -type d; } > $W/cg0
        t0=$(cut -d. -f1 /proc/uptime)
        # shellcheck disable=SC2086 # ENVV is split on purpose
        timeout -s KILL "$TEST_TIMEOUT" env -i $ENVV /bin/sh -c 'cd "$1" && shift && exec "$@"' \
            sh "$cwd" "$exe" --exact "$name" --test-threads=1 < /dev/null
        rc=$?
        secs=$(( $(cut -d. -f1 /proc/uptime) - t0 ))
        case $rc in
            0) res=ok ;;
            137) res="TIMEOUT (killed after ${TEST_TIMEOUT}s)" ;;
            *) res="FAILED (exit $rc)" ;;
        esac
        # Extra check: a test leaves no cgroup behind. Removed here, so the next test starts
        # clean.
        find $CG -mindepth 1 -type d > $W/cg1
        new=$(grep -vxF -f $W/cg0 $W/cg1 | sed "s|^$CG||")
        if [ -n "$new" ] && [ "$rc" -eq 0 ]; then
            res="LEAKED cgroups: $(echo $new)"
            rc=1
        fi
        for d in $(grep -vxF -f $W/cg0 $W/cg1 | sort -r); do
            # What a killed (timed-out) test left: thaw, kill, then remove once empty.
            echo 0 > "$d/cgroup.freeze" 2>/dev/null
            echo 1 > "$d/cgroup.kill" 2>/dev/null
            for _ in 1 2 3 4 5 6 7 8 9 10; do rmdir "$d" 2>/dev/null && break; sleep 0.2; done
        done
        echo "@@ TEST $label::$name $res ${secs}s"
        [ "$rc" -eq 0 ] || FAILURES=$((FAILURES + 1))
    done < $W/names
done < $W/bins

leftover=$(find $CG -mindepth 1 -type d | sed "s|^$CG||")
if [ -z "$leftover" ]; then ok "no cgroups left behind"; else fail "cgroups left behind: $(echo $leftover)"; fi

finish
