"""The pack's metadata registers cleanly: packrunner's copy of StackStorm's registration checks
(pack.yaml, action metadata and parameter positions, config.schema.yaml, sensors and trigger
payload schemas, rules). In a real StackStorm, ``st2-validate-pack`` / ``st2ctl reload`` check the
same; without packrunner installed (e.g. under ``st2-run-pack-tests``) tests/conftest.py puts its source
on sys.path, so this test runs there too."""

import os
import subprocess
import sys

import pytest

# packrunner: installed, or its source put on sys.path by tests/conftest.py (never skipped)

from packrunner.validate import validate_pack  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_pack_metadata_passes_validate():
    assert validate_pack(ROOT) == []
    p = subprocess.run([sys.executable, "-m", "packrunner", "--pack", ROOT, "validate"], capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 0, p.stdout
    assert p.stdout.strip() == "OK: no problems found"
