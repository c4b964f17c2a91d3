# testbed/slurm/daemons.sh - sourced by testbed/slurm.sh: the subcommands that run a cluster:
# start (munged, [MariaDB, slurmdbd,] slurmctld, slurmd, slurmrestd in that order, each waited
# for), stop, status, token, exec.

start_daemon() {   # name cmd...   (cmd runs inside the root, in its own session)
    local name=$1; shift
    setsid "${RUNNER[@]}" "$@" > "$S/log/$name.out" 2>&1 < /dev/null &
    local pid=$!
    echo "$pid" > "$S/run/$name.pid"
    sleep 0.3
    if ! pid_matches "$pid" "$name"; then
        log "$name did not stay up (pid $pid); last output:"; tail -n 20 "$S/log/$name.out" >&2 || true
        return 1
    fi
}

# -------------------------------------------------------------- start --------
cmd_start() {
    FLAVOUR=$1; S=${2:-${SLURM_LAB_STATE_DIR:-/tmp/slurm-lab-state}}
    check_flavour "$FLAVOUR"
    mkdir -p "$S"; S=$(cd "$S" && pwd -P)
    mkdir -p "$S"/{etc,state,spool,log,run,munge}
    chmod 0755 "$S" "$S/etc" "$S/log" "$S/run"
    # every ancestor must be traversable by the slurmrestd / job users
    local d=$S
    while [ "$d" != / ]; do
        [ "$(( 0$(stat -c %a "$d") & 01 ))" = 1 ] || die "$d is not world-traversable (o+x); slurmrestd/jobs could not reach $S"
        d=$(dirname "$d")
    done

    CTLD_PORT=${SLURM_LAB_CTLD_PORT:-16817}; SLURMD_PORT=${SLURM_LAB_SLURMD_PORT:-16818}
    REST_PORT=${SLURM_LAB_REST_PORT:-16820}; LAB_USER=${SLURM_LAB_USER:-slurmtest}
    DBD_PORT=${SLURM_LAB_DBD_PORT:-$(( CTLD_PORT + 2 ))}   # Slurm's own defaults: 6817, 6818, 6819
    OTHER_USERS=${SLURM_LAB_OTHER_USERS-mallory}
    REST_USER=${SLURM_LAB_REST_USER:-slurmrest}; LIFESPAN=${SLURM_LAB_TOKEN_LIFESPAN:-86400}

    # idempotency: already running from this state dir -> just re-print env
    # (a cluster with accounting serves a start without SLURM_LAB_ACCOUNTING as it is; one without
    # accounting is restarted for a start that asks for it)
    if load_lab_conf && [ "${LAB_FLAVOUR:-}" = "$FLAVOUR" ] && daemon_alive slurmctld && daemon_alive slurmd \
       && daemon_alive slurmrestd && { ! accounting_enabled || [ "${LAB_ACCOUNTING:-0}" = 1 ]; } \
       && { [ "${LAB_ACCOUNTING:-0}" != 1 ] || daemon_alive slurmdbd; }; then
        log "already running from $S"
        set_runner
        local tok rest; tok=$(mint_token "$LAB_USER" "$LIFESPAN")
        # the new token goes through builtins only (printf), never on a command line (ps shows argv)
        rest=$(grep -v '^SLURM_JWT=' "$S/rest.env")
        { printf '%s\n' "$rest"; printf 'SLURM_JWT=%s\n' "$tok"; } | write_private "$S/rest.env"
        cat "$S/rest.env"; return 0
    fi
    # stale pieces from an earlier run of this state dir: stop them first
    [ -f "$S/run/lab.conf" ] && cmd_stop "$S" >&2

    if [ "$(host_codename)" = "$FLAVOUR" ] && [ "${SLURM_LAB_FORCE_CHROOT:-0}" != 1 ]; then
        ROOT=""
    else
        ROOT=${SLURM_LAB_CHROOT:-/var/lib/slurm-lab/$FLAVOUR-root}
    fi
    printf 'LAB_FLAVOUR=%q\nROOT=%q\nLAB_ACCOUNTING=%q\n' "$FLAVOUR" "$ROOT" "${SLURM_LAB_ACCOUNTING:-0}" > "$S/run/lab.conf"
    set_runner
    trap 'rc=$?; if [ $rc -ne 0 ] && [ "${SLURM_LAB_KEEP_ON_FAIL:-0}" != 1 ]; then log "start failed, cleaning up"; cmd_stop "$S" >&2 || true; fi' EXIT

    local p ports=("$CTLD_PORT" "$SLURMD_PORT" "$REST_PORT")
    accounting_enabled && ports+=("$DBD_PORT")
    for p in "${ports[@]}"; do
        port_busy "$p" && die "port $p on 127.0.0.1 is already in use (set SLURM_LAB_*_PORT)"
    done

    local t_install; t_install=$(now)
    if [ -z "$ROOT" ]; then install_native; else install_chroot; setup_root_mounts; fi
    log "packages ready in $(since "$t_install")s"

    ensure_user "$REST_USER" system
    ensure_user "$LAB_USER"
    local other
    for other in $OTHER_USERS; do ensure_user "$other"; done
    if [ -n "$ROOT" ]; then
        mirror_user_into_root "$REST_USER"; mirror_user_into_root "$LAB_USER"
        for other in $OTHER_USERS; do mirror_user_into_root "$other"; done
        do_mount bind "$S" "$ROOT$S"          # same paths inside and outside the chroot
    fi

    local ver; ver=$(run_in slurmctld -V | awk '{print $2}')
    write_configs "$ver"
    if [ "${SLURM_LAB_KEEP_STATE:-0}" != 1 ]; then
        # the accounting database is state too: kept and wiped with the job state
        rm -rf "${S:?}/state" "${S:?}/spool" "${S:?}/mysql/data"; mkdir -p "$S/state" "$S/spool"
    fi
    accounting_enabled && write_accounting_configs

    local apis rest_plugins rest_flags=()
    if [ "$NEW" = 1 ]; then
        # openapi/slurmctld serves every data_parser plugin installed (24.11: v0.0.40-42;
        # 26.05: v0.0.42-45), so the versions are read from the plugin files
        apis=$(ls "$ROOT"/usr/lib/*/slurm-wlm/ | sed -n 's/^data_parser_v\([0-9]*\)_\([0-9]*\)_\([0-9]*\)\.so$/v\1.\2.\3/p' \
               | sort -t. -k3,3n | tr '\n' ' ')
        apis=${apis% }; [ -n "$apis" ] || die "no data_parser plugin in $ROOT/usr/lib/*/slurm-wlm"
        rest_plugins=openapi/slurmctld; rest_flags=(-g "$REST_USER")
        # /slurmdb/<version>/... of every data_parser version (slurmrestd refuses the plugin
        # without AccountingStorageType=accounting_storage/slurmdbd)
        accounting_enabled && rest_plugins+=,openapi/slurmdbd
    else
        apis="v0.0.36 v0.0.37 v0.0.38"; rest_plugins=openapi/v0.0.38,openapi/v0.0.37,openapi/v0.0.36
        accounting_enabled && rest_plugins+=,openapi/dbv0.0.38,openapi/dbv0.0.37,openapi/dbv0.0.36
    fi
    local newest=${apis##* }

    local t0; t0=$(now)
    if [ "$AUTH" = munge ]; then
        start_daemon munged munged -F --key-file="$S/munge/munge.key" --socket="$S/munge/munge.socket.2" \
            --pid-file="$S/run/munged.daemon.pid" --log-file="$S/log/munged.log" --seed-file="$S/munge/munged.seed"
        wait_for 15 munged run_in sh -c "munge -n -S '$S/munge/munge.socket.2' | unmunge -S '$S/munge/munge.socket.2'" \
            || { tail -n 20 "$S/log/munged.out" >&2; exit 1; }
    fi
    accounting_enabled && start_accounting
    start_daemon slurmctld slurmctld -D -f "$S/etc/slurm.conf"
    wait_for 30 slurmctld sh -c "\"\$@\" scontrol ping | grep -q 'is UP'" _ "${RUNNER[@]}" \
        || { tail -n 30 "$S/log/slurmctld.out" >&2; exit 1; }
    start_daemon slurmd slurmd -D -N "${SLURM_LAB_NODE_NAME:-localhost}" -f "$S/etc/slurm.conf"
    wait_for 30 slurmd sh -c "\"\$@\" sinfo -h -n ${SLURM_LAB_NODE_NAME:-localhost} -o %t | grep -Eq '^(idle|mix|alloc)'" _ "${RUNNER[@]}" \
        || { tail -n 30 "$S/log/slurmd.out" >&2; run_in sinfo -R >&2 || true; exit 1; }
    # slurmrestd: refuses root/SlurmUser -> drop to REST_USER; SLURM_JWT=daemon makes it
    # use auth/jwt for everything (else: "Rejecting thread config token for user ...")
    start_daemon slurmrestd SLURM_JWT=daemon slurmrestd -f "$S/etc/slurm.conf" -a rest_auth/jwt \
        -s "$rest_plugins" -u "$REST_USER" "${rest_flags[@]}" "127.0.0.1:$REST_PORT"

    local tok url="http://127.0.0.1:$REST_PORT"
    tok=$(mint_token "$LAB_USER" "$LIFESPAN"); [ -n "$tok" ] || die "scontrol token failed"
    # /ping answers 200 even for a bad token (pinged: DOWN) -> require UP and an authenticated /jobs;
    # v0.0.45 (26.05) dropped "pinged": it says "responding": true|false and a "status" text.
    # The headers come from a 0600 file (curl -H @FILE), so the token is on no command line (ps).
    local hdr="$S/run/rest-headers"
    printf 'X-SLURM-USER-NAME: %s\nX-SLURM-USER-TOKEN: %s\n' "$LAB_USER" "$tok" | write_private "$hdr"
    wait_for 30 slurmrestd sh -c "curl -fsS -H @'$hdr' $url/slurm/$newest/ping | grep -Eq '\"UP\"|\"responding\": *true' \
            && curl -fsS -o /dev/null -H @'$hdr' $url/slurm/$newest/jobs \
            && { [ '${SLURM_LAB_ACCOUNTING:-0}' != 1 ] || curl -fsS -o /dev/null -H @'$hdr' $url/slurmdb/$newest/accounts; }" \
        || { rm -f "$hdr"; tail -n 30 "$S/log/slurmrestd.out" >&2; exit 1; }
    rm -f "$hdr"
    log "daemons up, first authenticated REST call OK after $(since "$t0")s (Slurm $ver, $FLAVOUR${ROOT:+, chroot $ROOT})"
    trap - EXIT

    {
        echo "SLURM_LAB_FLAVOUR=$FLAVOUR"
        echo "SLURM_LAB_STATE_DIR=$S"
        echo "SLURM_LAB_ROOT=$ROOT"
        echo "SLURM_VERSION=$ver"
        echo "SLURM_REST_URL=$url"
        echo "SLURM_REST_API=$newest"
        echo "SLURM_REST_APIS=\"$apis\""
        echo "SLURM_REST_USER=$LAB_USER"
        echo "SLURM_JWT=$tok"
        echo "SLURM_CONF=$S/etc/slurm.conf"
        echo "SLURM_CLUSTER=$LAB_CLUSTER"
        if accounting_enabled; then
            echo "SLURM_ACCOUNTING=1"
            echo "SLURMDBD_PORT=$DBD_PORT"
            echo "SLURM_ACCOUNT=$LAB_ACCOUNT"
        else
            echo "SLURM_ACCOUNTING=0"
        fi
    } | write_private "$S/rest.env"
    cat "$S/rest.env"
}

# --------------------------------------------------------------- stop --------
# proctrack/linuxproc follows parent links only: a job's child (e.g. `sleep` under the batch
# script) that was reparented when the script was killed escapes scancel and outlives the
# cluster, keeping the chroot's /dev busy (seen on this sandbox). Such processes are ours by
# construction - slurmd gave them SLURM_CONF=<this state dir>/etc/slurm.conf - so they are
# found by that exact value, never by name.
kill_job_leftovers() {
    local conf="$S/etc/slurm.conf" p pid pids=()
    for p in /proc/[0-9]*; do
        pid=${p#/proc/}
        [ "$pid" = "$$" ] || [ "$pid" = "$BASHPID" ] && continue
        { tr '\0' '\n' < "$p/environ"; } 2>/dev/null | grep -qxF "SLURM_CONF=$conf" && pids+=("$pid")
    done
    [ ${#pids[@]} -eq 0 ] && return 0
    log "killing job processes this cluster left behind: ${pids[*]}"
    kill -KILL "${pids[@]}" 2>/dev/null || true
}

kill_daemon() {
    local name=$1 pid
    pid=$(cat "$S/run/$name.pid" 2>/dev/null || true)
    if [ -z "$pid" ]; then return 0; fi
    if pid_matches "$pid" "$name"; then
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 1 50); do pid_matches "$pid" "$name" || break; sleep 0.2; done
        if pid_matches "$pid" "$name"; then log "$name ($pid) ignored SIGTERM, sending SIGKILL"; kill -KILL "$pid" || true; fi
        log "stopped $name (pid $pid)"
    fi
    rm -f "$S/run/$name.pid"
}

cmd_stop() {
    S=${1:-${SLURM_LAB_STATE_DIR:-/tmp/slurm-lab-state}}
    [ -d "$S" ] || { log "no state dir $S"; return 0; }
    S=$(cd "$S" && pwd -P)
    load_lab_conf || { LAB_FLAVOUR=""; ROOT=""; }
    set_runner
    # cancel remaining jobs so their slurmstepd/job processes go away with the cluster
    if daemon_alive slurmctld && daemon_alive slurmd; then
        local ids; ids=$(run_in squeue -h -o %A 2>/dev/null | tr '\n' ' ' || true)
        if [ -n "${ids// /}" ]; then
            log "cancelling jobs: $ids"; run_in scancel $ids 2>/dev/null || true
            wait_for 20 "jobs to end" sh -c "[ -z \"\$(\"\$@\" squeue -h -o %A)\" ]" _ "${RUNNER[@]}" || true
        fi
    fi
    local d
    for d in "${DAEMONS_STOP_ORDER[@]}"; do kill_daemon "$d"; done
    kill_job_leftovers
    [ -n "$ROOT" ] && teardown_mounts
    rm -f "$S/run/lab.conf"
}

cmd_status() {
    S=${1:-${SLURM_LAB_STATE_DIR:-/tmp/slurm-lab-state}}; S=$(cd "$S" && pwd -P)
    load_lab_conf || die "nothing started from $S"
    local d
    for d in munged mariadbd slurmdbd slurmctld slurmd slurmrestd; do
        { [ "$d" = mariadbd ] || [ "$d" = slurmdbd ]; } && [ "${LAB_ACCOUNTING:-0}" != 1 ] && continue
        if daemon_alive "$d"; then echo "$d running (pid $(cat "$S/run/$d.pid"))"; else echo "$d not running"; fi
    done
}

cmd_token() {
    S=${1:-${SLURM_LAB_STATE_DIR:-/tmp/slurm-lab-state}}; S=$(cd "$S" && pwd -P)
    load_lab_conf || die "nothing started from $S"; set_runner
    mint_token "${2:-${SLURM_LAB_USER:-slurmtest}}" "${3:-${SLURM_LAB_TOKEN_LIFESPAN:-86400}}"
}

cmd_exec() {
    S=$1; shift; S=$(cd "$S" && pwd -P)
    load_lab_conf || die "nothing started from $S"; set_runner
    run_in "$@"
}
