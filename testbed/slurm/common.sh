# testbed/slurm/common.sh - sourced by testbed/slurm.sh: logging, the flavour table, host
# packages, and the helpers every subcommand uses to find and drive a cluster's processes
# (pid files in STATE_DIR/run, the command prefix that runs a program in the cluster's root).
# Globals set by the subcommands: S (state dir), ROOT (chroot, "" = native), RUNNER (array).

log() { echo "[slurm-lab] $*" >&2; }
die() { echo "[slurm-lab] ERROR: $*" >&2; exit 1; }
# write_private FILE: stdin -> FILE, readable by its owner only (issue 15: another local user read the
# JWT in a 0644 rest.env). A new file is created 0600 (umask 077 in a subshell, no window in which it
# is readable); an existing looser one is tightened, with a log line, before it is rewritten.
write_private() {
    local f=$1
    if [ -e "$f" ] && [ "$(stat -c %a "$f")" != 600 ]; then
        log "tightening $f to 0600 (it holds a secret; was $(stat -c %a "$f"))"
        chmod 0600 "$f"
    fi
    ( umask 077; cat > "$f" )
}
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# slurmdbd after slurmctld (which sends it the last job records on shutdown), MariaDB after
# slurmdbd, munged last (every daemon authenticates through it)
DAEMONS_STOP_ORDER=(slurmrestd slurmd slurmctld slurmdbd mariadbd munged)
PATH_IN=/usr/sbin:/usr/bin:/sbin:/bin

#: the flavours, each named after the Debian suite whose Slurm packages it runs:
#:   bookworm  Debian 12, Slurm 22.05 (native on a bookworm host)
#:   trixie    Debian 13, Slurm 24.11 (debootstrapped chroot)
#:   forky     Debian testing, Slurm 26.05 (debootstrapped chroot)
FLAVOURS=(bookworm trixie forky)

check_flavour() {   # flavour -> dies unless it is one of FLAVOURS
    local f
    for f in "${FLAVOURS[@]}"; do [ "$1" = "$f" ] && return 0; done
    die "flavour must be one of: ${FLAVOURS[*]} (got '$1')"
}

# ----------------------------------------------------------------- host --
host_codename() { . /etc/os-release 2>/dev/null; echo "${VERSION_CODENAME:-unknown}"; }

detect_mirror() {
    if [ -n "${SLURM_LAB_MIRROR:-}" ]; then echo "$SLURM_LAB_MIRROR"; return; fi
    local uri=""
    if [ -f /etc/apt/sources.list.d/debian.sources ]; then
        uri=$(awk '/^URIs:/ { for (i = 2; i <= NF; i++) if ($i !~ /security/) { print $i; exit } }' \
              /etc/apt/sources.list.d/debian.sources)
    fi
    if [ -z "$uri" ] && [ -f /etc/apt/sources.list ]; then
        uri=$(awk '$1 == "deb" && $0 !~ /security/ { for (i = 2; i <= NF; i++) if ($i ~ /^https?:/) { print $i; exit } }' \
              /etc/apt/sources.list)
    fi
    echo "${uri:-http://deb.debian.org/debian}"
}

# run a command with a temporary policy-rc.d so package postinsts never start services
with_policy_rcd() {   # $1 = root ("" for host), rest = command
    local root=$1; shift
    local p="$root/usr/sbin/policy-rc.d" created=0 rc=0
    if [ ! -e "$p" ]; then printf '#!/bin/sh\nexit 101\n' > "$p"; chmod 0755 "$p"; created=1; fi
    "$@" || rc=$?
    [ "$created" = 1 ] && rm -f "$p"
    return $rc
}

apt_install_host() {   # packages...
    local missing=() p
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    local aptlog=${SLURM_LAB_APT_LOG:-/tmp/slurmdeploy-setup-apt.log}
    log "apt-get install (host): ${missing[*]} (log: $aptlog)"
    if ! apt-cache policy "${missing[0]}" 2>/dev/null | grep -q 'Candidate: [0-9]'; then
        apt-get -o DPkg::Lock::Timeout=600 update -qq >> "$aptlog" 2>&1 \
            || { tail -n 30 "$aptlog" >&2; die "apt-get update failed"; }
    fi
    with_policy_rcd "" env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 \
        install -y -qq --no-install-recommends "${missing[@]}" >> "$aptlog" 2>&1 \
        || { tail -n 30 "$aptlog" >&2; die "apt-get install ${missing[*]} failed"; }
}

# -------------------------------------------------------------- processes --
# slurmdbd has no option naming its configuration (it reads slurmdbd.conf beside $SLURM_CONF), so
# its command line does not show the state dir: a daemon is also ours when its environment holds
# this cluster's SLURM_CONF (set_runner puts it there for every program run in the root).
pid_matches() {   # pid daemon -> 0 if /proc/pid is that daemon of THIS state dir
    local pid=$1 name=$2 cmd
    [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 1
    cmd=$( { tr '\0' ' ' < "/proc/$pid/cmdline"; } 2>/dev/null) || return 1
    [[ "$cmd" == *"$name"* ]] || return 1
    [[ "$cmd" == *"$S/"* ]] && return 0
    { tr '\0' '\n' < "/proc/$pid/environ"; } 2>/dev/null | grep -qxF "SLURM_CONF=$S/etc/slurm.conf"
}

daemon_alive() { pid_matches "$(cat "$S/run/$1.pid" 2>/dev/null || true)" "$1"; }

load_lab_conf() {
    [ -f "$S/run/lab.conf" ] || return 1
    # shellcheck disable=SC1091
    . "$S/run/lab.conf"
}

# build the command prefix that runs a program in the cluster's root
set_runner() {
    if [ -n "$ROOT" ]; then
        RUNNER=(chroot "$ROOT" /usr/bin/env -i PATH="$PATH_IN" HOME=/root LANG=C.UTF-8 SLURM_CONF="$S/etc/slurm.conf")
    else
        RUNNER=(env PATH="$PATH_IN:$PATH" SLURM_CONF="$S/etc/slurm.conf")
    fi
}
run_in() { "${RUNNER[@]}" "$@"; }

wait_for() {   # timeout_s description command...   (description = daemon name -> fail fast if it died)
    local t=$1 what=$2; shift 2
    local end=$(( $(date +%s) + t ))
    until "$@" >/dev/null 2>&1; do
        if [ -f "$S/run/$what.pid" ] && ! daemon_alive "$what"; then log "$what exited"; return 1; fi
        [ "$(date +%s)" -lt "$end" ] || { log "timed out after ${t}s waiting for $what"; return 1; }
        sleep 0.2
    done
}

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

mint_token() {   # user lifespan
    run_in scontrol token username="$1" lifespan="$2" | sed -n 's/^SLURM_JWT=//p'
}
