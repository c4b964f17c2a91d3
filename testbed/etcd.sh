#!/usr/bin/env bash
# etcd.sh - throw-away single-member etcd (v3 API + JSON gateway) on loopback, standing in
# for the SKA SDP Configuration Database in integration tests. Runs as root on Debian 12
# (Debian's etcd-server, etcd 3.4); no systemd, no docker.
#
#   etcd.sh start  [STATE_DIR]   install etcd-server if missing, start, wait until healthy
#   etcd.sh stop   [STATE_DIR]   stop the etcd that start recorded (pid file; cmdline checked)
#   etcd.sh status [STATE_DIR]   exit 0 and print the env lines if running, exit 3 if not
#   etcd.sh install              only install etcd-server (idempotent)
#
# On success `start` prints KEY=VALUE lines on stdout (also saved to STATE_DIR/etcd.env):
#   SDP_CONFIG_HOST=127.0.0.1  SDP_CONFIG_PORT=<port>  ETCD_PID=<pid>  ETCD_URL=http://127.0.0.1:<port>
# Everything else goes to stderr. `start` of a state dir whose etcd is already running
# re-prints the env lines (idempotent) unless ETCD_LAB_WIPE=1 asks for a fresh start.
#
# Environment knobs (defaults in brackets):
#   ETCD_LAB_STATE_DIR  [/tmp/etcd-lab-state]  used when STATE_DIR is not given
#   ETCD_LAB_PORT       [12379]  client port (127.0.0.1 only)
#   ETCD_LAB_PEER_PORT  [12380]  peer port (127.0.0.1 only)
#   ETCD_LAB_WIPE       [1]      1 = fresh data dir on every start; 0 = keep data across restarts
#   ETCD_LAB_TIMEOUT    [30]     seconds to wait for /health
set -euo pipefail
set +m   # no job control: the daemon must not become a process-group leader of ours

log() { echo "[etcd-lab] $*" >&2; }
die() { echo "[etcd-lab] ERROR: $*" >&2; exit 1; }

ETCD_BIN=/usr/bin/etcd
# shellcheck source=testbed/daemon.sh
. "$(dirname "$0")/daemon.sh"

install_etcd() {
    local pkgs=()
    [ -x "$ETCD_BIN" ] || pkgs+=(etcd-server)
    command -v curl >/dev/null || pkgs+=(curl)
    [ ${#pkgs[@]} = 0 ] && return 0
    [ "$(id -u)" = 0 ] || die "${pkgs[*]} not installed and we are not root (apt-get install ${pkgs[*]})"
    log "apt-get install ${pkgs[*]}"
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-cache policy "${pkgs[0]}" 2>/dev/null | grep -q 'Candidate: [0-9]'; then
        apt-get -o DPkg::Lock::Timeout=600 update -qq >&2
    fi
    # policy-rc.d: the package's postinst must not try to start a system etcd
    local p=/usr/sbin/policy-rc.d created=0 rc=0
    if [ ! -e "$p" ]; then printf '#!/bin/sh\nexit 101\n' > "$p"; chmod 0755 "$p"; created=1; fi
    apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${pkgs[@]}" >&2 || rc=$?
    [ "$created" = 1 ] && rm -f "$p"
    [ $rc = 0 ] || die "apt-get install ${pkgs[*]} failed"
    [ -x "$ETCD_BIN" ] || die "etcd-server installed but $ETCD_BIN is missing"
}

state_dir() {
    S=${1:-${ETCD_LAB_STATE_DIR:-/tmp/etcd-lab-state}}
    mkdir -p "$S"; S=$(cd "$S" && pwd -P)
}

pid_matches() {   # pid -> 0 if it is the etcd of THIS state dir
    local pid=$1 cmd
    [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 1
    cmd=$( { tr '\0' ' ' < "/proc/$pid/cmdline"; } 2>/dev/null) || return 1
    [[ "$cmd" == *etcd* && "$cmd" == *"--data-dir $S/data"* ]]
}

recorded_pid() { cat "$S/etcd.pid" 2>/dev/null || true; }

healthy() {   # port
    local out
    out=$(curl -fsS --max-time 2 "http://127.0.0.1:$1/health" 2>/dev/null) || return 1
    [[ "$out" == *'"health":"true"'* || "$out" == *'"health": "true"'* ]]
}

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

write_env() {   # port pid
    {
        echo "SDP_CONFIG_HOST=127.0.0.1"
        echo "SDP_CONFIG_PORT=$1"
        echo "ETCD_PID=$2"
        echo "ETCD_URL=http://127.0.0.1:$1"
    } > "$S/etcd.env"
}

cmd_start() {
    state_dir "${1:-}"
    local port=${ETCD_LAB_PORT:-12379} peer=${ETCD_LAB_PEER_PORT:-12380} wipe=${ETCD_LAB_WIPE:-1}
    local timeout=${ETCD_LAB_TIMEOUT:-30}
    install_etcd

    local pid; pid=$(recorded_pid)
    if pid_matches "$pid"; then
        if [ "$wipe" != 1 ] && [ -f "$S/etcd.env" ]; then
            log "already running from $S (pid $pid)"; cat "$S/etcd.env"; return 0
        fi
        cmd_stop "$S"
    fi
    for p in "$port" "$peer"; do
        port_busy "$p" && die "port $p on 127.0.0.1 is already in use (set ETCD_LAB_PORT / ETCD_LAB_PEER_PORT)"
    done
    if [ "$wipe" = 1 ]; then rm -rf "${S:?}/data"; fi
    mkdir -p "$S/data"; chmod 0700 "$S/data"

    local t0; t0=$(date +%s%N)
    # setsid: own session, so a terminal's signals (Ctrl-C of pytest) don't reach it
    setsid "$ETCD_BIN" --name etcd-lab --data-dir "$S/data" \
        --listen-client-urls "http://127.0.0.1:$port" --advertise-client-urls "http://127.0.0.1:$port" \
        --listen-peer-urls "http://127.0.0.1:$peer" --initial-advertise-peer-urls "http://127.0.0.1:$peer" \
        --initial-cluster "etcd-lab=http://127.0.0.1:$peer" --initial-cluster-state new \
        --log-outputs stderr > "$S/etcd.log" 2>&1 < /dev/null &
    pid=$!
    echo "$pid" > "$S/etcd.pid"
    wait_started etcd "$pid" "$timeout" "$S/etcd.log" "$S/etcd.pid" healthy "$port"
    log "etcd up on 127.0.0.1:$port (pid $pid) in $(( ($(date +%s%N) - t0) / 1000000 )) ms"
    write_env "$port" "$pid"
    cat "$S/etcd.env"
}

cmd_stop() {
    state_dir "${1:-}"
    stop_recorded etcd "$S/etcd.pid" "$S/etcd.env"
}

cmd_status() {
    state_dir "${1:-}"
    local pid; pid=$(recorded_pid)
    if pid_matches "$pid" && [ -f "$S/etcd.env" ]; then
        local port; port=$(sed -n 's/^SDP_CONFIG_PORT=//p' "$S/etcd.env")
        if healthy "$port"; then cat "$S/etcd.env"; return 0; fi
        log "etcd (pid $pid) running but not healthy"; return 3
    fi
    log "etcd not running from $S"; return 3
}

case "${1:-}" in
    start)   cmd_start "${2:-}" ;;
    stop)    cmd_stop "${2:-}" ;;
    status)  cmd_status "${2:-}" ;;
    install) install_etcd ;;
    *) sed -n '2,21p' "$0" >&2; exit 2 ;;
esac
