# testbed/slurm/chroot.sh - sourced by testbed/slurm.sh: installing a flavour (Debian packages
# natively, or a debootstrapped chroot shared by every cluster of that flavour) and the mounts a
# chroot needs (/proc, /sys, /dev shared by all its clusters; each cluster's state dir bound at
# the same path inside).

mounts_under() {   # list mount points at or below $1 (deepest first)
    awk -v r="$1" '$2 == r || index($2, r "/") == 1 { print $2 }' /proc/self/mounts | sort -r
}

assert_no_mounts_under() {
    local m; m=$(mounts_under "$1")
    [ -z "$m" ] || die "refusing to delete $1: mounts below it:"$'\n'"$m"
}

# ------------------------------------------------------------- mounts --------
do_mount() {   # type src target  (records what we mounted)
    local type=$1 src=$2 tgt=$3
    mountpoint -q "$tgt" && return 0
    mkdir -p "$tgt"
    if [ "$type" = bind ]; then mount --bind "$src" "$tgt"; else mount -t "$type" "$src" "$tgt"; fi
    echo "$tgt" >> "$S/run/mounts"
}

setup_root_mounts() {
    touch "$S/run/mounts"
    do_mount proc proc "$ROOT/proc"
    do_mount sysfs sysfs "$ROOT/sys"
    do_mount bind /dev "$ROOT/dev"
    do_mount bind /dev/pts "$ROOT/dev/pts"
    [ -d /dev/shm ] && do_mount bind /dev/shm "$ROOT/dev/shm"
    if [ -s /etc/hosts ]; then cp /etc/hosts "$ROOT/etc/hosts"
    else printf '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n' > "$ROOT/etc/hosts"; fi
}

teardown_mounts() {
    [ -f "$S/run/mounts" ] || return 0
    local shared_re="^$ROOT/(proc|sys|dev|dev/pts|dev/shm)\$" m others
    # our own state-dir bind mount(s) first
    for m in $(tac "$S/run/mounts"); do
        [[ "$m" =~ $shared_re ]] && continue
        if mountpoint -q "$m"; then umount "$m" && log "unmounted $m"; fi
    done
    rm -f "$S/run/mounts"
    # proc/sys/dev of the chroot are shared by every state dir using it: the last one out
    # (no other state-dir bind left under ROOT) unmounts them, whoever mounted them
    others=$(mounts_under "$ROOT" | grep -Ev "$shared_re" || true)
    if [ -n "$others" ]; then log "keeping $ROOT/{proc,sys,dev}: still in use by $others"; return 0; fi
    for m in $(mounts_under "$ROOT"); do
        [[ "$m" =~ $shared_re ]] || continue
        unmount_shared "$m"
    done
}

# A process that just exited (a job step, a daemon killed a moment ago) can keep a shared
# mount busy for a little while: retry for ~5 s, then detach it lazily (umount -l frees it
# once the last user is gone) instead of failing the stop after the daemons are down.
unmount_shared() {   # mount point
    local m=$1 i
    for i in 1 2 3 4 5 6 7 8 9 10; do
        umount "$m" 2>/dev/null && { log "unmounted $m"; return 0; }
        mountpoint -q "$m" || return 0
        sleep 0.5
    done
    umount -l "$m" && log "unmounted $m (lazily: still busy after 5 s)"
}

# ------------------------------------------------------------ install --------
install_native() {
    apt_install_host slurmctld slurmd slurmrestd slurm-client munge slurm-wlm-jwt-plugin curl "${ACCOUNTING_PACKAGES[@]}"
}

install_chroot() {
    local mirror; mirror=$(detect_mirror)
    if [ -x "$ROOT/usr/sbin/slurmrestd" ] && ls "$ROOT"/usr/lib/*/slurm-wlm/auth_jwt.so >/dev/null 2>&1 \
       && [ -x "$ROOT/usr/sbin/slurmdbd" ] && [ -x "$ROOT/usr/sbin/mariadbd" ]; then
        return 0
    fi
    apt_install_host debootstrap curl
    if [ ! -f "$ROOT/etc/debian_version" ] || [ -d "$ROOT/debootstrap" ]; then
        if [ -e "$ROOT" ]; then assert_no_mounts_under "$ROOT"; rm -rf "$ROOT"; fi
        local t0; t0=$(now)
        log "debootstrap --variant=minbase $FLAVOUR $ROOT $mirror"
        mkdir -p "$(dirname "$ROOT")"
        # a debootstrap older than the suite has no script named after it (bookworm's has none for
        # forky): testing/unstable bootstrap the same way as sid, so use sid's script for it
        local script=()
        [ -e "/usr/share/debootstrap/scripts/$FLAVOUR" ] || script=(/usr/share/debootstrap/scripts/sid)
        debootstrap --variant=minbase "$FLAVOUR" "$ROOT" "$mirror" "${script[@]}" > "$S/log/debootstrap.log" 2>&1 \
            || { tail -n 30 "$S/log/debootstrap.log" >&2; die "debootstrap failed"; }
        log "debootstrap took $(since "$t0")s"
    fi
    setup_root_mounts
    local t0; t0=$(now)
    log "apt-get install inside $ROOT"
    echo "deb $mirror $FLAVOUR main" > "$ROOT/etc/apt/sources.list"
    # testing's Release file is valid for a week only (Valid-Until; stable's has none): a mirror
    # frozen at a snapshot (this sandbox's is) makes apt refuse it as "expired" -> accept it
    echo 'Acquire::Check-Valid-Until "false";' > "$ROOT/etc/apt/apt.conf.d/99slurm-lab-no-valid-until"
    with_policy_rcd "$ROOT" chroot "$ROOT" /usr/bin/env -i PATH="$PATH_IN" DEBIAN_FRONTEND=noninteractive \
        sh -c 'apt-get update -qq && apt-get install -y -qq --no-install-recommends "$@"' _ \
               slurmctld slurmd slurmrestd slurm-client munge slurm-wlm-jwt-plugin "${ACCOUNTING_PACKAGES[@]}" \
        > "$S/log/apt-chroot.log" 2>&1 || { tail -n 30 "$S/log/apt-chroot.log" >&2; die "apt-get in chroot failed"; }
    log "chroot package install took $(since "$t0")s"
}

# ------------------------------------------------------------ install only ---
cmd_install() {
    FLAVOUR=$1
    check_flavour "$FLAVOUR"
    if [ "$(host_codename)" = "$FLAVOUR" ] && [ "${SLURM_LAB_FORCE_CHROOT:-0}" != 1 ]; then
        ROOT=""; install_native; log "native $FLAVOUR packages installed"; return 0
    fi
    ROOT=${SLURM_LAB_CHROOT:-/var/lib/slurm-lab/$FLAVOUR-root}
    # scratch state dir for install_chroot's logs and its record of the mounts it made
    S=$(mktemp -d /tmp/slurm-lab-install.XXXXXX); chmod 0755 "$S"; mkdir -p "$S/log" "$S/run"
    trap 'teardown_mounts; rm -rf "${S:?}"' EXIT
    local t0; t0=$(now)
    install_chroot
    log "chroot $ROOT ready ($(since "$t0")s): $(chroot "$ROOT" /usr/sbin/slurmctld -V)"
}
