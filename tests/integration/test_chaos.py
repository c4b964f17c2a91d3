"""A short chaos run (scripts/chaos.py) on each Slurm version, so CI exercises it: a dozen
deployments through packrunner under a high fault rate; every metric that must be 0 is 0."""

import os
import subprocess
import sys

import pytest

from testbed import REPO


@pytest.mark.parametrize("version", ["22.05", "24.11", "26.05"])
def test_a_short_chaos_run_keeps_every_guarantee(version):
    proc = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "chaos.py"), "--slurm", version, "-n", "14", "--seed", "7",
         "--create-interval", "0.4", "--fault-rate", "6", "--settle-timeout", "150", "--time-limit", "400"],
        capture_output=True, text=True, timeout=500, env=dict(os.environ, SLURM_LAB_AUTH="munge"))
    metrics = dict(line.split(": ", 1) for line in proc.stdout.splitlines() if ": " in line)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-4000:]
    assert int(metrics["deployments"]) >= 14 and int(metrics["jobs"]) > 0 and metrics["settled"] == "yes"
    for name in ("duplicates", "lost", "wrong final states", "orphan states", "untracked jobs",
                 "foreign jobs touched", "secrets found", "idle watch restarts", "idle Slurm requests"):
        assert metrics[name] == "0", (name, proc.stdout)
    faults = proc.stderr.split("faults: ")[-1]
    for fault in ("kill -9", "second runner", "slurm outages", "etcd outages", "expired token", "invalid token",
                  "deletes (recursive)", "deletes (non-recursive)", "planted", "copied-marker jobs (before)",
                  "copied-marker jobs (beside)", "bad inputs"):
        assert fault in faults, (fault, proc.stderr[-2000:])
