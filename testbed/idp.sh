#!/usr/bin/env bash
# idp.sh - throw-away local OIDC identity provider (an Entra look-alike built on npm
# oidc-provider, testbed/idp/server.mjs) on loopback, for integration tests of the JWKS auth
# mode (MSAL client credentials -> RS256 JWT -> slurmctld checks it against the JWKS).
# Runs on Debian 12 (nodejs 18 from Debian or newer); no systemd, no docker.
#
#   idp.sh start   [STATE_DIR]   (install if missing), make the TLS CA, start, wait until ready
#   idp.sh stop    [STATE_DIR]   stop the server that start recorded (pid file; cmdline checked)
#   idp.sh status  [STATE_DIR]   exit 0 and print the env lines if running, exit 3 if not
#   idp.sh install               apt-get install nodejs npm openssl curl if missing (root), then
#                                `npm ci` oidc-provider into testbed/idp/node_modules (idempotent)
#
# On success `start` prints KEY=VALUE lines on stdout (also saved to STATE_DIR/idp.env):
#   IDP_AUTHORITY   MSAL authority https://127.0.0.1:<port>/<tenant> (instance discovery off)
#   IDP_ISSUER      <authority>/v2.0 (tokens' iss; JWKS at <issuer>/jwks)
#   IDP_CA_FILE     the self-signed CA (PEM) that signed the server's certificate
#   IDP_CLIENT_ID   IDP_CLIENT_SECRET_FILE (0600 file holding the secret; the secret is never printed)
#   IDP_SCOPE       e.g. api://slurm/.default     IDP_SLURM_USER  the tokens' `sun` claim
#   IDP_JWKS_FILE   the public JWKS with "alg": "RS256" on every key (for slurm.conf jwks=)
#   IDP_TTL         token lifetime (s)   IDP_STATS_URL  JSON request/token counters
#   IDP_PID  IDP_PORT  IDP_STATE_DIR
# Everything else goes to stderr. `start` of a state dir whose server is running restarts it
# (so changed knobs apply); the signing key and CA are kept across restarts of one state dir.
#
# Environment knobs (defaults in brackets):
#   IDP_LAB_STATE_DIR  [/tmp/idp-lab-state]  used when STATE_DIR is not given
#   IDP_LAB_PORT       [18443]   https port (127.0.0.1 only)
#   IDP_LAB_TTL        [3600]    access-token lifetime in seconds
#   IDP_LAB_CLIENT_ID  [11111111-2222-3333-4444-555555555555]
#   IDP_LAB_CLIENT_SECRET [random, kept in STATE_DIR/client_secret]
#   IDP_LAB_SLURM_USER [slurmtest]  the `sun` claim: the Slurm user the tokens map to
#   IDP_LAB_TENANT     [00000000-0000-4000-8000-000000000001]
#   IDP_LAB_RESOURCE   [api://slurm]  (scope = <resource>/.default)
#   IDP_LAB_EXTRA_CLIENTS [""]  "id:secret:sun,..." more clients (empty sun -> token without `sun`)
#   IDP_LAB_KEY_FILE   [STATE_DIR/signing-key.json]  private RS256 JWK (created if missing); two
#                      IdPs given the same file sign with the same key, so one JWKS trusts both
#   IDP_LAB_NODE       [node]    the node binary
#   IDP_LAB_TIMEOUT    [30]      seconds to wait for readiness
set -euo pipefail
set +m   # no job control: the daemon must not become a process-group leader of ours

log() { echo "[idp-lab] $*" >&2; }
die() { echo "[idp-lab] ERROR: $*" >&2; exit 1; }

HERE=$(cd "$(dirname "$0")" && pwd -P)
# shellcheck source=testbed/daemon.sh
. "$HERE/daemon.sh"
APP=$HERE/idp
NODE=${IDP_LAB_NODE:-node}

apt_install() {   # packages...
    [ "$(id -u)" = 0 ] || die "$* not installed and we are not root (apt-get install $*)"
    local aptlog=${IDP_LAB_APT_LOG:-/tmp/slurmdeploy-setup-apt.log}
    log "apt-get install $* (log: $aptlog)"
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-cache policy "$1" 2>/dev/null | grep -q 'Candidate: [0-9]'; then
        apt-get -o DPkg::Lock::Timeout=600 update -qq >> "$aptlog" 2>&1 \
            || { tail -n 30 "$aptlog" >&2; die "apt-get update failed"; }
    fi
    apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "$@" >> "$aptlog" 2>&1 \
        || { tail -n 30 "$aptlog" >&2; die "apt-get install $* failed"; }
}

STAMP=$APP/node_modules/.slurmdeploy-lock.sha256
lock_sum() { sha256sum "$APP/package-lock.json" | cut -d' ' -f1; }
installed() { [ -f "$APP/node_modules/oidc-provider/package.json" ] && [ "$(cat "$STAMP" 2>/dev/null)" = "$(lock_sum)" ]; }

cmd_install() {
    local pkgs=()
    # Debian 12: nodejs 18.x and npm 9.x are separate packages; a host with nodejs from
    # elsewhere (e.g. NodeSource, which bundles npm) keeps it
    command -v "$NODE" >/dev/null || pkgs+=(nodejs)
    command -v npm >/dev/null || pkgs+=(npm)
    command -v openssl >/dev/null || pkgs+=(openssl)
    command -v curl >/dev/null || pkgs+=(curl)
    [ ${#pkgs[@]} = 0 ] || apt_install "${pkgs[@]}"
    if installed; then return 0; fi
    log "npm ci in $APP (oidc-provider from the npm registry, node $("$NODE" --version))"
    (cd "$APP" && npm ci --no-audit --no-fund --loglevel=error >&2) || die "npm ci failed in $APP"
    lock_sum > "$STAMP"
}

state_dir() {
    S=${1:-${IDP_LAB_STATE_DIR:-/tmp/idp-lab-state}}
    mkdir -p "$S"; S=$(cd "$S" && pwd -P)
}

pid_matches() {   # pid -> 0 if it is the IdP of THIS state dir
    local pid=$1 cmd
    [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 1
    cmd=$( { tr '\0' ' ' < "/proc/$pid/cmdline"; } 2>/dev/null) || return 1
    [[ "$cmd" == *server.mjs* && "$cmd" == *"--state-dir $S "* ]]
}

recorded_pid() { cat "$S/idp.pid" 2>/dev/null || true; }

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

ready() {   # issuer -> 0 when the discovery document is served over our TLS
    curl -fsS --max-time 2 --cacert "$S/ca.crt" "$1/.well-known/openid-configuration" >/dev/null 2>&1
}

make_ca() {
    # one self-signed certificate that is its own CA (basicConstraints CA:TRUE), valid for
    # 127.0.0.1 and localhost; regenerated when missing or valid for less than a day
    if [ -f "$S/ca.crt" ] && [ -f "$S/tls.key" ] && openssl x509 -checkend 86400 -noout -in "$S/ca.crt" >/dev/null 2>&1; then
        return 0
    fi
    log "creating the self-signed CA in $S"
    (umask 077; openssl req -x509 -newkey rsa:2048 -nodes -days 7 -subj /CN=127.0.0.1 \
        -addext subjectAltName=IP:127.0.0.1,DNS:localhost -addext basicConstraints=critical,CA:TRUE \
        -keyout "$S/tls.key" -out "$S/ca.crt" 2>/dev/null) || die "openssl could not create the CA"
    chmod 0644 "$S/ca.crt"
}

client_secret_file() {
    if [ -n "${IDP_LAB_CLIENT_SECRET:-}" ]; then
        (umask 077; printf '%s' "$IDP_LAB_CLIENT_SECRET" > "$S/client_secret")
    elif [ ! -s "$S/client_secret" ]; then
        (umask 077; openssl rand -hex 24 > "$S/client_secret")
    fi
}

write_jwks() {   # issuer -> $S/jwks.json: the served public keys, each with "alg": "RS256"
    curl -fsS --max-time 5 --cacert "$S/ca.crt" "$1/jwks" > "$S/jwks.raw.json" || return 1
    "$NODE" -e '
        const fs = require("fs");
        const jwks = JSON.parse(fs.readFileSync(process.argv[1], "utf8"));
        if (!Array.isArray(jwks.keys) || !jwks.keys.length) throw new Error("no keys in the JWKS");
        for (const k of jwks.keys) { if (!k.kid) throw new Error("a key has no kid"); k.alg = k.alg || "RS256"; }
        fs.writeFileSync(process.argv[2], JSON.stringify(jwks, null, 1));
    ' "$S/jwks.raw.json" "$S/jwks.json" && rm -f "$S/jwks.raw.json"
}

cmd_start() {
    state_dir "${1:-}"
    local port=${IDP_LAB_PORT:-18443} ttl=${IDP_LAB_TTL:-3600} timeout=${IDP_LAB_TIMEOUT:-30}
    local tenant=${IDP_LAB_TENANT:-00000000-0000-4000-8000-000000000001}
    local client=${IDP_LAB_CLIENT_ID:-11111111-2222-3333-4444-555555555555}
    local resource=${IDP_LAB_RESOURCE:-api://slurm} user=${IDP_LAB_SLURM_USER:-slurmtest}
    cmd_install
    command -v curl >/dev/null && command -v openssl >/dev/null || die "curl and openssl are needed"

    local pid; pid=$(recorded_pid)
    if pid_matches "$pid"; then cmd_stop "$S"; fi
    port_busy "$port" && die "port $port on 127.0.0.1 is already in use (set IDP_LAB_PORT)"
    make_ca
    client_secret_file

    local authority="https://127.0.0.1:$port/$tenant" t0; t0=$(date +%s%N)
    # setsid: own session, so a terminal's signals (Ctrl-C of pytest) don't reach it
    IDP_PORT=$port IDP_TENANT=$tenant IDP_CLIENT_ID=$client IDP_CLIENT_SECRET_FILE="$S/client_secret" \
    IDP_RESOURCE=$resource IDP_TTL=$ttl IDP_SLURM_USER=$user IDP_EXTRA_CLIENTS=${IDP_LAB_EXTRA_CLIENTS:-} \
    IDP_KEY_FILE="${IDP_LAB_KEY_FILE:-$S/signing-key.json}" IDP_TLS_CERT="$S/ca.crt" IDP_TLS_KEY="$S/tls.key" \
        setsid "$NODE" "$APP/server.mjs" --state-dir "$S" > "$S/idp.log" 2>&1 < /dev/null &
    pid=$!
    echo "$pid" > "$S/idp.pid"
    wait_started "the IdP" "$pid" "$timeout" "$S/idp.log" "$S/idp.pid" ready "$authority/v2.0"
    write_jwks "$authority/v2.0" || { cmd_stop "$S"; die "could not fetch the JWKS from $authority/v2.0/jwks"; }
    log "IdP up on 127.0.0.1:$port (pid $pid, token TTL ${ttl}s) in $(( ($(date +%s%N) - t0) / 1000000 )) ms"
    {
        echo "IDP_AUTHORITY=$authority"
        echo "IDP_ISSUER=$authority/v2.0"
        echo "IDP_CA_FILE=$S/ca.crt"
        echo "IDP_CLIENT_ID=$client"
        echo "IDP_CLIENT_SECRET_FILE=$S/client_secret"
        echo "IDP_SCOPE=$resource/.default"
        echo "IDP_SLURM_USER=$user"
        echo "IDP_JWKS_FILE=$S/jwks.json"
        echo "IDP_TTL=$ttl"
        echo "IDP_STATS_URL=https://127.0.0.1:$port/__stats"
        echo "IDP_PID=$pid"
        echo "IDP_PORT=$port"
        echo "IDP_STATE_DIR=$S"
    } > "$S/idp.env"
    cat "$S/idp.env"
}

cmd_stop() {
    state_dir "${1:-}"
    stop_recorded "the IdP" "$S/idp.pid" "$S/idp.env"
}

cmd_status() {
    state_dir "${1:-}"
    local pid; pid=$(recorded_pid)
    if pid_matches "$pid" && [ -f "$S/idp.env" ]; then
        local issuer; issuer=$(sed -n 's/^IDP_ISSUER=//p' "$S/idp.env")
        if ready "$issuer"; then cat "$S/idp.env"; return 0; fi
        log "IdP (pid $pid) running but not ready"; return 3
    fi
    log "IdP not running from $S"; return 3
}

case "${1:-}" in
    start)   cmd_start "${2:-}" ;;
    stop)    cmd_stop "${2:-}" ;;
    status)  cmd_status "${2:-}" ;;
    install) cmd_install ;;
    *) sed -n '2,/^set -euo pipefail/{/^set -euo/!p}' "$0" >&2; exit 2 ;;
esac
