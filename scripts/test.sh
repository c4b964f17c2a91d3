#!/usr/bin/env bash
# scripts/test.sh [PYTEST ARGS...] - set up (scripts/setup.sh) then run the whole test suite:
# the pack's tests (tests/, integration tests included) and the local runner's (packrunner/tests/).
#
# Integration tests start their own etcd and Slurm and need root; they run only when
# SLURMDEPLOY_INTEGRATION=1, which this script sets (unless already set: SLURMDEPLOY_INTEGRATION=0
# skips them). As root, run it as it is; as a user with sudo, `sudo ./scripts/test.sh`. Unit tests
# only, any user: scripts/test.sh -m "not integration".
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
export SLURMDEPLOY_INTEGRATION=${SLURMDEPLOY_INTEGRATION:-1}
exec .venv/bin/python -m pytest "$@"
