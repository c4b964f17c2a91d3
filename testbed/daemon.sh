# testbed/daemon.sh - sourced by etcd.sh and idp.sh: wait for, and stop, the one daemon a state
# dir recorded in its pid file. The caller defines `log`, `cmd_stop STATE_DIR`, the state dir `S`
# and `pid_matches PID` (0 when PID is that daemon of THIS state dir, checked on /proc/PID/cmdline:
# daemons are never matched by name).

wait_started() {   # name pid timeout logfile pidfile check-command... : until the check passes
    local name=$1 pid=$2 timeout=$3 logf=$4 pidfile=$5; shift 5
    local end=$(( $(date +%s) + timeout ))
    until "$@"; do
        if ! pid_matches "$pid"; then
            log "$name exited during start; last log lines:"; tail -n 20 "$logf" >&2 || true
            rm -f "$pidfile"; exit 1
        fi
        if [ "$(date +%s)" -ge "$end" ]; then
            log "$name not ready after ${timeout}s; last log lines:"; tail -n 20 "$logf" >&2 || true
            cmd_stop "$S"; exit 1
        fi
        sleep 0.1
    done
}

stop_recorded() {   # name pidfile [more files to remove]: SIGTERM, then SIGKILL after 10 s
    local name=$1 pidfile=$2 pid; shift 2
    pid=$(cat "$pidfile" 2>/dev/null || true)
    if [ -z "$pid" ]; then log "nothing recorded in $S"; return 0; fi
    if pid_matches "$pid"; then
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 1 100); do pid_matches "$pid" || break; sleep 0.1; done
        if pid_matches "$pid"; then log "$name ($pid) ignored SIGTERM, sending SIGKILL"; kill -KILL "$pid" 2>/dev/null || true; sleep 0.2; fi
        log "stopped $name (pid $pid)"
    else
        log "recorded pid $pid is not our $name (already gone)"
    fi
    rm -f "$pidfile" "$@"
}
