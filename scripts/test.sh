#!/usr/bin/env bash
# scripts/test.sh [PYTEST ARGS...] - set up (scripts/setup.sh) then run the test suite.
# Integration tests start their own etcd and Slurm (as root); see tests/conftest.py.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
exec .venv/bin/python -m pytest "$@"
