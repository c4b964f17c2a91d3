#!/usr/bin/env bash
# scripts/st2-run-pack-tests.sh - run the pack's tests the way StackStorm's `st2-run-pack-tests -p <pack>`
# does (st2common/bin/st2-run-pack-tests, StackStorm 3.9), on a machine without StackStorm:
#
#   1. copy the pack (tracked and new files, as `st2 pack install` would install them, minus .venv
#      and caches) to $ST2_PACK_TESTS_DIR/slurmdeploy, readable by every user;
#   2. a fresh virtualenv with only the pack's requirements.txt and requirements-tests.txt
#      (nothing from .venv: no packrunner, no st2tests - the tests then use packrunner's shims of
#      StackStorm's base classes and st2tests, and packrunner's source for the rule replays and
#      metadata validation, both found in the pack's own packrunner/ directory by tests/conftest.py);
#   3. `python -m pytest tests/` from the pack root with PYTHONPATH = lib/ sensors/ actions/
#      actions/lib/ etc/ (lib/ because StackStorm-Exchange CI enables common libs), and with no
#      SLURMDEPLOY_INTEGRATION, so the integration tests are skipped;
#   4. as root, the tests run as user `nobody` (runuser): they must pass without root and without
#      services. As another user, they run as that user.
#
# Environment: ST2_PACK_TESTS_DIR [/tmp/slurmdeploy-st2-pack-tests-<hash of the repo path>]; PYTHON [/usr/bin/python3, an
# interpreter user nobody can run (not one under /root)].
# The virtualenv is reused while requirements.txt and requirements-tests.txt are unchanged.
# Exit status: pytest's.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd -P)
WORK=${ST2_PACK_TESTS_DIR:-/tmp/slurmdeploy-st2-pack-tests-$(echo "$REPO" | sha256sum | cut -c1-8)}
PACK=$WORK/slurmdeploy
VENV=$WORK/venv
say() { echo "[st2-run-pack-tests] $*" >&2; }

mkdir -p "$WORK"; chmod 0755 "$WORK"
rm -rf "$PACK"; mkdir -p "$PACK"
if command -v git > /dev/null 2>&1 && git -C "$REPO" rev-parse --git-dir > /dev/null 2>&1; then
    # what `st2 pack install` would get: the files git knows (plus new, not ignored ones)
    git -C "$REPO" ls-files -z --cached --others --exclude-standard \
        | (cd "$REPO" && xargs -0 -r tar -cf - --ignore-failed-read 2>/dev/null) | tar -xf - -C "$PACK"
else
    # no git checkout (e.g. a source archive of the pack): the tree without local state
    say "no git checkout at $REPO: copying the tree without .git, .venv, .state, node_modules"
    tar -C "$REPO" -cf - --exclude=./.git --exclude=./.venv --exclude=./.state --exclude=node_modules \
        --exclude=__pycache__ . | tar -xf - -C "$PACK"
fi
chmod -R a+rX "$PACK"

want=$(cat "$PACK/requirements.txt" "$PACK/requirements-tests.txt" | sha256sum | cut -d' ' -f1)
if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$VENV/.requirements.sha256" 2>/dev/null)" != "$want" ]; then
    say "creating $VENV with requirements.txt + requirements-tests.txt only"
    rm -rf "$VENV"
    "${PYTHON:-/usr/bin/python3}" -m venv "$VENV"
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check \
        -r "$PACK/requirements.txt" -r "$PACK/requirements-tests.txt" > "$WORK/pip.log" 2>&1 \
        || { tail -n 30 "$WORK/pip.log" >&2; say "pip install failed (log: $WORK/pip.log)"; exit 1; }
    echo "$want" > "$VENV/.requirements.sha256"
    chmod -R a+rX "$VENV"
fi

PYPATH="$PACK/lib/:$PACK/sensors/:$PACK/actions/:$PACK/actions/lib/:$PACK/etc/"
RUN=(env -i "PATH=$VENV/bin:/usr/bin:/bin" "HOME=/tmp" "PYTHONPATH=$PYPATH" "$VENV/bin/python" -m pytest tests/ "$@")
cd "$PACK"
if [ "$(id -u)" = 0 ]; then
    say "running 'python -m pytest tests/' in $PACK as user nobody"
    exec runuser -u nobody -- "${RUN[@]}"
fi
say "running 'python -m pytest tests/' in $PACK as $(id -un)"
exec "${RUN[@]}"
