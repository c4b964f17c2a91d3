#!/usr/bin/env bash
# scripts/setup.sh - the one set-up command for development and CI (idempotent).
#
# As root on Debian 12 (fresh or not):
#   1. apt-get install what is missing: python3 python3-venv python3-pip curl ca-certificates
#      etcd-server debootstrap git (apt-get update only when something must be installed; git:
#      scripts/st2-run-pack-tests.sh copies the pack's tracked files, as `st2 pack install` does)
#   2. create .venv in the repo if missing (or broken), pip install -r requirements-dev.txt
#      (the pack's requirements.txt + requirements-tests.txt) and the local runner as its own
#      package: pip install -e ./packrunner (skipped when requirements*.txt and
#      packrunner/pyproject.toml have not changed since the last successful install)
#   3. pre-install the test daemons: etcd (testbed/etcd.sh install) and the three Slurm testbeds
#      (testbed/slurm.sh install trixie: a debootstrapped Debian 13 chroot with Slurm 24.11;
#      testbed/slurm.sh install bookworm: Debian 12's own Slurm 22.05 packages;
#      testbed/slurm.sh install forky: a debootstrapped Debian testing chroot with Slurm 26.05;
#      each also with slurmdbd, mariadb-server-core and mariadb-client-core of its suite, for the
#      accounting testbed: an existing chroot without them gets them by apt-get inside it)
#   4. the local OIDC identity provider of the JWKS tests (testbed/idp.sh install): Debian's
#      nodejs + npm (when `node`/`npm` are missing) and openssl, then `npm ci` of oidc-provider
#      from the npm registry into testbed/idp/node_modules (skipped when the lock file is unchanged)
#
# Environment: PYTHON [python3] interpreter for the venv; SLURMDEPLOY_SLURM_FLAVOURS
# ["trixie bookworm forky"] the Slurm testbeds to install; SLURMDEPLOY_SETUP_SKIP_TESTBED=1 skips
# steps 3 and 4 (unit tests only).
set -euo pipefail

cd "$(dirname "$0")/.."
REPO=$(pwd -P)
log() { echo "[setup] $*" >&2; }
die() { echo "[setup] ERROR: $*" >&2; exit 1; }
ms() { date +%s%N | cut -b1-13; }
T_ALL=$(ms)
step() {   # name command...
    local name=$1 t0; shift; t0=$(ms)
    "$@"
    log "$name: done in $(( $(ms) - t0 )) ms"
}

APT_PACKAGES=(ca-certificates curl python3 python3-venv python3-pip etcd-server debootstrap git)

apt_packages() {
    local missing=() p
    for p in "${APT_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    [ "$(id -u)" = 0 ] || die "missing Debian packages ${missing[*]}; run as root (or apt-get install them)"
    export DEBIAN_FRONTEND=noninteractive
    log "apt-get update"
    local aptlog=/tmp/slurmdeploy-setup-apt.log
    apt-get -o DPkg::Lock::Timeout=600 update -qq > "$aptlog" 2>&1 || { tail -n 30 "$aptlog" >&2; die "apt-get update failed"; }
    log "apt-get install ${missing[*]} (log: $aptlog)"
    # policy-rc.d: package postinsts (etcd-server) must not start system services
    local prc=/usr/sbin/policy-rc.d created=0 rc=0
    if [ ! -e "$prc" ]; then printf '#!/bin/sh\nexit 101\n' > "$prc"; chmod 0755 "$prc"; created=1; fi
    apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >> "$aptlog" 2>&1 || rc=$?
    [ "$created" = 1 ] && rm -f "$prc"
    [ $rc = 0 ] || { tail -n 30 "$aptlog" >&2; die "apt-get install failed"; }
}

venv() {
    local py=${PYTHON:-python3} stamp=.venv/.requirements.sha256 want
    if [ -e .venv ] && ! .venv/bin/python -c 'import sys' >/dev/null 2>&1; then
        log ".venv is broken (interpreter gone?): recreating"; rm -rf .venv
    fi
    if [ ! -x .venv/bin/python ]; then
        command -v "$py" >/dev/null || die "$py not found (set PYTHON=...)"
        log "creating .venv with $($py -V 2>&1) ($(command -v "$py"))"
        "$py" -m venv .venv || die "python -m venv failed (python3-venv missing for $py?)"
    fi
    want=$(cat requirements.txt requirements-tests.txt requirements-dev.txt packrunner/pyproject.toml | sha256sum | cut -d' ' -f1)
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
        log "requirements unchanged since last install: skipping pip"; return 0
    fi
    log "pip install -r requirements-dev.txt -e ./packrunner"
    .venv/bin/python -m pip install -q --disable-pip-version-check -r requirements-dev.txt -e ./packrunner >&2
    echo "$want" > "$stamp"
}

testbed() {
    if [ "${SLURMDEPLOY_SETUP_SKIP_TESTBED:-0}" = 1 ]; then log "SLURMDEPLOY_SETUP_SKIP_TESTBED=1: skipping"; return 0; fi
    [ "$(id -u)" = 0 ] || { log "not root: cannot pre-install the testbed (integration tests need root)"; return 0; }
    "$REPO/testbed/etcd.sh" install
    local flavour
    for flavour in ${SLURMDEPLOY_SLURM_FLAVOURS:-trixie bookworm forky}; do
        "$REPO/testbed/slurm.sh" install "$flavour"
    done
}

# JWKS auth tests (issue 3): a self-contained step, additive to the ones above
identity_provider() {
    if [ "${SLURMDEPLOY_SETUP_SKIP_TESTBED:-0}" = 1 ]; then log "SLURMDEPLOY_SETUP_SKIP_TESTBED=1: skipping"; return 0; fi
    if [ "$(id -u)" != 0 ] && ! command -v node >/dev/null; then
        log "not root and no node: cannot install the identity provider (integration tests need root)"; return 0
    fi
    "$REPO/testbed/idp.sh" install
}

step "Debian packages" apt_packages
step "python venv" venv
step "testbed install (etcd, Slurm ${SLURMDEPLOY_SLURM_FLAVOURS:-trixie bookworm forky})" testbed
step "identity provider (node, oidc-provider)" identity_provider
log "set-up complete in $(( $(ms) - T_ALL )) ms"
