"""A changed ``release_name`` or ``namespace`` (hence mcs_label) on the real Slurm 22.05 and 24.11.

issue 15, item 3: the deployer's mcs_label is ``sdp_slurm_deployer_{release_name}_{namespace}``.
After a change, the jobs submitted under the old label were reported gone: every live
deployment became FAILED (``JobVanished``) and its job kept running untracked. Now the
recorded job, still carrying the deployment's marker, is recognised: an ERROR names both
labels and the fix; the state is not written and the job is not cancelled.
"""

import logging

import pytest

from integration.conftest import wait_for
from slurmdeploy.deployer import Deployer
from slurmdeploy.watch import SensorLoop

ENV = {"PATH": "/usr/bin:/bin"}


@pytest.mark.parametrize("deployer_cluster", ["trixie", "bookworm"], indirect=True)
def test_a_changed_release_name_leaves_states_and_jobs_alone_and_says_so(pack_config, caplog):
    before = Deployer.from_config(pack_config, environ=ENV)
    db = before.configdb
    db.create_deployment("lbl-1", "slurm", {"script": "#!/bin/bash\nsleep 120\n"})
    ok, res = before.submit("lbl-1")
    assert ok and res["outcome"] == "submitted", res
    job_id = res["job_id"]
    wait_for(lambda: before.slurm.get_job(job_id).job_state == "RUNNING", timeout=60, what="the job running")
    assert before.update_state("lbl-1")[1]["outcome"] == "updated"
    recorded, mod = db.get_state("lbl-1")
    assert recorded.status == "RUNNING"
    old_label = before.mcs_label

    after = Deployer.from_config(dict(pack_config, release_name="renamed"), environ=ENV)
    assert after.mcs_label != old_label
    caplog.set_level(logging.INFO, logger="slurmdeploy")
    try:
        # the sensor restarted with the new label: a full observation, then its loop's poll
        assert after.observe() == []
        loop = SensorLoop(after, poll_interval=600, resync_interval=600, quiet_period=0)
        try:
            assert loop.step(timeout=5) == []
            loop.poll_now()
            assert loop.step(timeout=5) == []
        finally:
            loop.stop()
        # update_state (a stale trigger, or by hand) refuses to write
        ok, res = after.update_state("lbl-1", job_id)
        assert (ok, res["outcome"], res["job_id"], res["mcs_label"]) == (False, "label_changed", job_id, old_label)
        ok, res = after.update_state("lbl-1")
        assert (ok, res["outcome"]) == (False, "label_changed")
        # nothing written, nothing cancelled
        assert db.get_state("lbl-1") == (recorded, mod)
        assert after.slurm.get_job(job_id).job_state == "RUNNING"
        errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
        assert errors and all(old_label in e and after.mcs_label in e and "lbl-1" in e and str(job_id) in e
                              for e in errors), errors
        assert "release_name" in errors[0] and "left alone" in errors[0]
        # and with the label set back, the deployment is followed again as before
        assert before.observe() == []
    finally:
        before.slurm.cancel_job(job_id)
