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


def running_job_of(pack_config, key):
    """Create deployment ``key``, submit it under ``pack_config``'s label and wait until its job
    runs with its state recorded. Returns (the Deployer of that config, the job_id)."""
    before = Deployer.from_config(pack_config, environ=ENV)
    before.configdb.create_deployment(key, "slurm", {"script": "#!/bin/bash\nsleep 120\n"})
    ok, res = before.submit(key)
    assert ok and res["outcome"] == "submitted", res
    job_id = res["job_id"]
    wait_for(lambda: before.slurm.get_job(job_id).job_state == "RUNNING", timeout=60, what="the job running")
    assert before.update_state(key)[1]["outcome"] == "updated"
    return before, job_id


@pytest.mark.parametrize("deployer_cluster", ["trixie", "bookworm"], indirect=True)
def test_a_changed_release_name_leaves_states_and_jobs_alone_and_says_so(pack_config, caplog):
    before, job_id = running_job_of(pack_config, "lbl-1")
    db = before.configdb
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


@pytest.mark.parametrize("deployer_cluster", ["trixie", "bookworm"], indirect=True)
def test_a_label_changed_deployment_deleted_is_not_reported_removed_and_says_so_once(pack_config, caplog):
    """The gap left after item 3: the sensor's job view took a job its state records for a
    job with our label without reading it (after the start-up listing), so deleting a
    label-changed deployment dispatched ``deployment_removed`` at every wake and poll, and
    ``cancel`` refused it each time (a failed execution per retry). Now the view never
    invents our label for a job the start-up listing did not show; the deletion is logged
    once at ERROR with the job, both labels and the fix, and nothing is dispatched."""
    before, job_id = running_job_of(pack_config, "lbl-2")
    db = before.configdb
    old_label = before.mcs_label

    after = Deployer.from_config(dict(pack_config, release_name="renamed"), environ=ENV)
    caplog.set_level(logging.INFO, logger="slurmdeploy")
    try:
        # the sensor restarted under the new label: its start-up (full) observation, then polls
        loop = SensorLoop(after, poll_interval=600, resync_interval=600, quiet_period=0)
        try:
            dispatched = list(loop.step(timeout=5))
            for _ in range(2):
                loop.poll_now()
                dispatched += loop.step(timeout=5)
            assert dispatched == []
            # the deployment is deleted: the watch wakes, then polls follow
            assert db.delete_deployment("lbl-2")
            dispatched += loop.step(timeout=10)
            for _ in range(2):
                loop.poll_now()
                dispatched += loop.step(timeout=5)
        finally:
            loop.stop()
        assert [e for e in dispatched if e.payload.get("job_id") == job_id] == [], dispatched
        # cancel (a stale trigger, or by hand) still refuses the job and sends nothing
        ok, res = after.cancel("lbl-2", job_id)
        assert not ok and res["jobs"] == [{"job_id": job_id, "outcome": "refused"}], res
        assert after.slurm.get_job(job_id).job_state == "RUNNING"
        # the label change itself was said once, not again at every poll
        changed = [r.getMessage() for r in caplog.records
                   if r.levelno == logging.ERROR and "left alone" in r.getMessage()]
        assert len(changed) == 1, changed
        deleted = [r.getMessage() for r in caplog.records
                   if r.levelno == logging.ERROR and "deleted" in r.getMessage()]
        assert len(deleted) == 1, deleted
        assert (str(job_id) in deleted[0] and old_label in deleted[0] and after.mcs_label in deleted[0]
                and "scancel" in deleted[0] and "lbl-2" in deleted[0]), deleted
    finally:
        before.slurm.cancel_job(job_id)
