#!/usr/bin/env bash
# scripts/demo.sh - set everything up and run the deployer's whole loop on real services.
#
# As root on Debian 12: installs what is missing (scripts/setup.sh), starts a throw-away
# etcd (the SDP Configuration Database) and a Slurm 24.11 cluster with slurmrestd on
# loopback (testbed/), runs the pack with the local runner (python -m packrunner start),
# creates a few SDP deployments in etcd - one with a failing script, one with invalid
# args - removes another one while its job runs, and prints how each deployment's state
# evolves until all are settled. Then stops only what it started.
#
#   scripts/demo.sh            run the demo (ports: etcd 22379, Slurm 26817/26818/26820)
#   DEMO_KEEP=1 scripts/demo.sh   leave etcd, Slurm and the runner running afterwards
#
# Ports come from the environment (the testbed scripts' variables), e.g. when the defaults
# are taken:
#   ETCD_LAB_PORT=32379 ETCD_LAB_PEER_PORT=32380 SLURM_LAB_CTLD_PORT=36817 \
#   SLURM_LAB_SLURMD_PORT=36818 SLURM_LAB_REST_PORT=36820 scripts/demo.sh
# DEMO_DIR (default /tmp/slurmdeploy-demo) is where state, config and logs go. Add
# SLURM_LAB_AUTH=munge when another lab cluster with JWT auth runs in the shared chroot.
#
# Deployments are made with the pack's own action, as a newcomer would:
#   .venv/bin/python -m packrunner --pack . --config $DEMO_DIR/config.yaml \
#       run slurmdeploy.deployment_create key=hello args='{"script": "#!/bin/bash\necho hi\n"}'
#
# Run it as root; started by another user it re-runs itself with sudo (when sudo exists).
set -euo pipefail
if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null || { echo "[demo] ERROR: run as root (sudo is not installed)" >&2; exit 1; }
    # sudo drops the environment: pass on what the demo reads from it (ports, directory)
    passed=()
    for name in DEMO_DIR SLURM_LAB_AUTH ETCD_LAB_PORT ETCD_LAB_PEER_PORT SLURM_LAB_CTLD_PORT SLURM_LAB_SLURMD_PORT SLURM_LAB_REST_PORT; do
        if [ -n "${!name:-}" ]; then passed+=("$name=${!name}"); fi
    done
    exec sudo DEMO_KEEP="${DEMO_KEEP:-0}" "${passed[@]}" "$0" "$@"
fi
cd "$(dirname "$0")/.."
REPO=$(pwd -P)
DEMO_DIR=${DEMO_DIR:-/tmp/slurmdeploy-demo}
say() { echo "[demo] $*" >&2; }

T0=$(date +%s%N)
./scripts/setup.sh
say "set-up took $(( ($(date +%s%N) - T0) / 1000000 )) ms"

mkdir -p "$DEMO_DIR"; chmod 0755 "$DEMO_DIR"   # 0755: Slurm's daemons and jobs reach $DEMO_DIR/slurm
# private FILE: make FILE empty and readable by root only before a secret is written into it (the
# JWT in slurm.env and config.yaml; the runner's log): created under umask 077, an existing file
# (an older demo's, maybe 0644) truncated first, then set to 0600.
private() { (umask 077; : > "$1"); chmod 0600 "$1"; }
RUNNER_PID=""
cleanup() {
    if [ "${DEMO_KEEP:-0}" = 1 ]; then
        say "DEMO_KEEP=1: left running (runner pid ${RUNNER_PID:-none}); stop with:"
        say "  kill $RUNNER_PID; testbed/slurm.sh stop $DEMO_DIR/slurm; testbed/etcd.sh stop $DEMO_DIR/etcd"
        return
    fi
    say "stopping what the demo started"
    if [ -n "$RUNNER_PID" ] && kill -0 "$RUNNER_PID" 2>/dev/null; then
        kill -TERM "$RUNNER_PID"; wait "$RUNNER_PID" 2>/dev/null || true
    fi
    testbed/slurm.sh stop "$DEMO_DIR/slurm" >/dev/null 2>&1 || true
    testbed/etcd.sh stop "$DEMO_DIR/etcd" >/dev/null 2>&1 || true
}
trap cleanup EXIT

ETCD_LAB_PORT=${ETCD_LAB_PORT:-22379} ETCD_LAB_PEER_PORT=${ETCD_LAB_PEER_PORT:-22380}
SLURM_LAB_CTLD_PORT=${SLURM_LAB_CTLD_PORT:-26817} SLURM_LAB_SLURMD_PORT=${SLURM_LAB_SLURMD_PORT:-26818}
SLURM_LAB_REST_PORT=${SLURM_LAB_REST_PORT:-26820}
export ETCD_LAB_PORT ETCD_LAB_PEER_PORT SLURM_LAB_CTLD_PORT SLURM_LAB_SLURMD_PORT SLURM_LAB_REST_PORT
say "ports (set these variables to change them): ETCD_LAB_PORT=$ETCD_LAB_PORT ETCD_LAB_PEER_PORT=$ETCD_LAB_PEER_PORT" \
    "SLURM_LAB_CTLD_PORT=$SLURM_LAB_CTLD_PORT SLURM_LAB_SLURMD_PORT=$SLURM_LAB_SLURMD_PORT SLURM_LAB_REST_PORT=$SLURM_LAB_REST_PORT"
say "starting etcd (the SDP Configuration Database)"
private "$DEMO_DIR/etcd.env"; private "$DEMO_DIR/slurm.env"
testbed/etcd.sh start "$DEMO_DIR/etcd" > "$DEMO_DIR/etcd.env"
say "starting Slurm 24.11 with slurmrestd (JWT auth)"
testbed/slurm.sh start trixie "$DEMO_DIR/slurm" > "$DEMO_DIR/slurm.env"
set -a; . "$DEMO_DIR/etcd.env"; . "$DEMO_DIR/slurm.env"; set +a

# The pack config, as /opt/stackstorm/configs/slurmdeploy.yaml would hold it. The JWT
# goes into this 0600 file only, never on a command line or in the output.
private "$DEMO_DIR/config.yaml"
cat > "$DEMO_DIR/config.yaml" <<YAML
slurm_url: "$SLURM_REST_URL"
client_id: "$SLURM_REST_USER"
slurm_jwt: "$SLURM_JWT"
config_host: "$SDP_CONFIG_HOST"
config_port: $SDP_CONFIG_PORT
loop_interval: 2
liveness_file: "$DEMO_DIR/alive"
namespace: demo
YAML
unset SLURM_JWT

say "starting the pack with the local runner: python -m packrunner start (log: $DEMO_DIR/runner.log)"
rm -rf "$DEMO_DIR/state"   # packrunner creates it 0700 (datastore, key file 0600)
# the log is rotated at 50 MiB with 5 files kept, the history pruned to 7 days / 100,000 rows
# (packrunner's retention defaults; packrunner/README.md "Retention")
private "$DEMO_DIR/runner.log"; private "$DEMO_DIR/runner.out"
.venv/bin/python -m packrunner --pack "$REPO" --config "$DEMO_DIR/config.yaml" --log-file "$DEMO_DIR/runner.log" \
    --state-dir "$DEMO_DIR/state" start > "$DEMO_DIR/runner.out" 2>&1 &
RUNNER_PID=$!

.venv/bin/python scripts/demo_deployments.py --config "$DEMO_DIR/config.yaml" --runner-log "$DEMO_DIR/runner.log" \
    --state-dir "$DEMO_DIR/state"

say "executions recorded by the runner (python -m packrunner execution list):"
.venv/bin/python -m packrunner --pack "$REPO" --state-dir "$DEMO_DIR/state" execution list --limit 100 \
    > "$DEMO_DIR/executions.json"
.venv/bin/python - "$DEMO_DIR/executions.json" <<'PY' >&2
import json, sys
rows = json.load(open(sys.argv[1]))
for r in sorted(rows, key=lambda r: r.get("start_time") or ""):
    print("  %s  %-26s %-10s %6.3f s  rule %s" % (r["id"][:8], r["action"], r["status"],
          r.get("elapsed") or 0, r.get("rule") or "-"))
PY
