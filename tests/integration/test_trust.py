"""Issue 15, items 1 and 6, on the real Slurm 24.11 and 22.05 testbeds: another cluster user
(``mallory``, created by testbed/slurm.sh) plants a held job with our mcs_label, our job name and
the exact deployment marker ``sdp-deployment:<key>@<create_revision>`` (all readable with
squeue). Only ``user_name`` tells it apart. The pack must never adopt, update or cancel it.

No cancel request for her job may ever reach slurmctld: on Slurm 24.11.5 a REST cancel that
slurmctld refuses stalls its job requests for the whole cluster until it restarts (README.md,
"What the pack trusts"). So every test wraps the deployer's Slurm client in a tripwire that
counts the requests it sends and stops (AssertionError, before sending) any DELETE of one of
her job ids: the test fails - on code that would send it - without stalling the shared cluster.
Her jobs are cancelled at the end with her own token.
"""

import logging

import pytest

import testbed
from integration.conftest import run_actions, settle, wait_for
from slurmdeploy.auth import StaticJWT
from slurmdeploy.jobs import deployment_marker
from slurmdeploy.jobview import JobView, ViewMode
from slurmdeploy.slurm import SlurmClient

#: run a test on Slurm 24.11 (trixie) and 22.05 (bookworm)
BOTH_SLURMS = pytest.mark.parametrize("deployer_cluster", ["trixie", "bookworm"], indirect=True)
MALLORY = "mallory"


class Tripwire:
    """Wraps ``client.request``: records ``(method, path)`` of every request and raises
    AssertionError instead of sending a DELETE of a job in ``forbidden``."""

    def __init__(self, client):
        self.client = client
        self.forbidden = set()
        self.sent = []
        self.stopped = []
        self._request = client.request
        client.request = self

    def __call__(self, method, path, *args, **kwargs):
        if method == "DELETE" and path.rstrip("/").rsplit("/", 1)[-1] in {str(i) for i in self.forbidden}:
            self.stopped.append(path)
            raise AssertionError(f"the pack sent a cancel request for another user's job: {method} {path}")
        self.sent.append((method, path))
        return self._request(method, path, *args, **kwargs)

    def deletes(self):
        return [p for m, p in self.sent if m == "DELETE"]


@pytest.fixture
def mallory(deployer_cluster):
    """Mallory's REST client on the test's cluster; her jobs are cancelled with it afterwards."""
    token = testbed.mint_token(deployer_cluster["state_dir"], MALLORY)
    client = SlurmClient(deployer_cluster["url"], StaticJWT(str(token), MALLORY))
    client.jwt, client.planted = token, []
    yield client
    for job_id in client.planted:
        client.cancel_job(job_id)  # her own jobs, her token: allowed


@pytest.fixture
def tripwire(deployer, deployer_cluster):
    wire = Tripwire(deployer.slurm)
    yield wire
    # our own jobs left running by a failed test would hold the cluster's only node
    for job in deployer.slurm.find_jobs(deployer.mcs_label):
        if job.user_name == deployer_cluster["user"] and not job.finished:
            deployer.slurm.cancel_job(job.job_id)


def plant(mallory, deployer_cluster, deployer, key):
    """Mallory's held copy of deployment ``key``'s job: our label, name and exact marker."""
    revision = deployer.configdb.get_deployment(key).revision
    cluster = dict(deployer_cluster, user=MALLORY, jwt=mallory.jwt)
    job_id = testbed.plant_job(cluster, f"sdp-{key}", deployer.mcs_label, deployment_marker(key, revision))
    mallory.planted.append(job_id)
    job = mallory.get_job(job_id)
    assert (job.user_name, job.job_state, job.comment) == (MALLORY, "PENDING", deployment_marker(key, revision))
    return job_id


def warnings_about(caplog, job_id):
    return [r for r in caplog.records if r.levelno == logging.WARNING and f"Slurm job {job_id} " in r.getMessage()]


@BOTH_SLURMS
def test_a_copy_planted_before_the_submit_is_not_adopted(deployer, deployer_cluster, mallory, tripwire, caplog):
    caplog.set_level(logging.INFO, logger="slurmdeploy")
    db = deployer.configdb
    db.create_deployment("trust-a", "slurm", {"script": "#!/bin/bash\ntrue\n"})
    hers = plant(mallory, deployer_cluster, deployer, "trust-a")
    tripwire.forbidden.add(hers)
    ok, res = deployer.update_state("trust-a", hers)  # by hand, with her job id: refused, nothing written
    assert (ok, res["outcome"]) == (False, "refused") and MALLORY in res["error"]
    assert db.get_state("trust-a")[0].status == "UNSET"
    settle(deployer, ["trust-a"])
    state, _ = db.get_state("trust-a")
    assert state.status == "FINISHED" and state.job_id != hers  # the pack ran its own job
    assert deployer.slurm.get_job(state.job_id).user_name == deployer_cluster["user"]
    assert mallory.get_job(hers).job_state == "PENDING"  # hers untouched
    assert tripwire.stopped == [] and f"/job/{hers}" not in " ".join(tripwire.deletes())
    warned = warnings_about(caplog, hers)
    assert len(warned) == 1, [r.getMessage() for r in warned]  # once, not every poll
    assert "'trust-a'" in warned[0].getMessage() and MALLORY in warned[0].getMessage()


@BOTH_SLURMS
def test_a_copy_planted_before_a_retried_submit_is_not_adopted(deployer, deployer_cluster, mallory, tripwire):
    """A submit that finds a previous attempt's trace lists the cluster and adopts the
    deployment's job: never hers."""
    db = deployer.configdb
    db.create_deployment("trust-r", "slurm", {"script": "#!/bin/bash\ntrue\n"})
    revision = db.get_deployment("trust-r").revision
    # what a submitter that died after claiming leaves: the attempt trace (no owner, no state)
    claim = db.claim("trust-r", 15, attempt_revision=revision)
    db.release(claim)
    hers = plant(mallory, deployer_cluster, deployer, "trust-r")
    tripwire.forbidden.add(hers)
    ok, res = deployer.submit("trust-r")
    assert ok and res["outcome"] == "submitted" and res["job_id"] != hers
    assert db.get_state("trust-r")[0].job_id == res["job_id"]


@BOTH_SLURMS
@pytest.mark.parametrize("view", [False, True], ids=["listing", "job_view"])
def test_a_copy_planted_beside_our_live_job_is_never_cancelled(deployer, deployer_cluster, mallory, tripwire,
                                                               caplog, view):
    caplog.set_level(logging.INFO, logger="slurmdeploy")
    db = deployer.configdb
    if view:  # the sensor's incremental job view (full listing at the first call only)
        deployer = deployer.observing(job_view=JobView(deployer.slurm, deployer.mcs_label, resync_interval=3600))
    db.create_deployment("trust-b", "slurm", {"script": "#!/bin/bash\nsleep 300\n"})
    ok, res = deployer.submit("trust-b")
    ours = res["job_id"]
    hers = plant(mallory, deployer_cluster, deployer, "trust-b")
    tripwire.forbidden.add(hers)
    for _ in range(4):  # four polls, each listing (or viewing) our jobs and running the actions
        run_actions(deployer, deployer.observe())
    state, _ = db.get_state("trust-b")
    assert state.job_id == ours and state.status in ("PENDING", "RUNNING")
    assert mallory.get_job(hers).job_state == "PENDING"
    assert tripwire.stopped == [] and tripwire.deletes() == []  # no cancel request at all
    assert len(warnings_about(caplog, hers)) == 1
    ok, res = deployer.cancel("trust-b", hers, force=True)  # by hand, even with force
    assert not ok and res["jobs"] == [{"job_id": hers, "outcome": "refused"}]
    assert tripwire.deletes() == []
    deployer.cancel("trust-b", ours, force=True)


@BOTH_SLURMS
def test_deleting_the_deployment_cancels_only_our_job(deployer, deployer_cluster, mallory, tripwire):
    db = deployer.configdb
    db.create_deployment("trust-c", "slurm", {"script": "#!/bin/bash\nsleep 300\n"})
    ok, res = deployer.submit("trust-c")
    ours = res["job_id"]
    hers = plant(mallory, deployer_cluster, deployer, "trust-c")
    tripwire.forbidden.add(hers)
    db.delete_deployment("trust-c")
    events = deployer.observe()
    assert [(e.trigger, e.payload["job_id"]) for e in events if e.payload["key"] == "trust-c"] == [
        ("deployment_removed", ours)]
    run_actions(deployer, events)
    ok, res = deployer.cancel("trust-c")  # by name: every unfinished job of ours named sdp-trust-c
    assert ok and res["jobs"] == []
    assert wait_for(lambda: deployer.slurm.get_job(ours).job_state == "CANCELLED", what=f"job {ours} CANCELLED")
    assert mallory.get_job(hers).job_state == "PENDING"
    assert tripwire.stopped == [] and tripwire.deletes() == [f"/slurm/{deployer.slurm.api.name}/job/{ours}"]


@BOTH_SLURMS
def test_two_runners_cancelling_one_job_both_succeed(deployer, deployer_cluster, tripwire):
    """Item 6: both runners read the job unfinished, both send the cancel. Slurm 24.11 (v0.0.42)
    answers the second with HTTP 200 and error 2021; the pack reads the job back and reports it
    already finished (no SlurmAPIError, no failed execution). 22.05 answers a bare 200."""
    db = deployer.configdb
    db.create_deployment("trust-6", "slurm", {"script": "#!/bin/bash\nsleep 300\n"})
    ok, res = deployer.submit("trust-6")
    job_id = res["job_id"]
    wait_for(lambda: deployer.slurm.get_job(job_id).job_state in ("PENDING", "RUNNING"), what=f"job {job_id}")
    db.delete_deployment("trust-6")
    seen = deployer.slurm.get_job(job_id)  # what both runners read before cancelling
    first = deployer._cancel_one("trust-6", seen, None, None, False)
    second = deployer._cancel_one("trust-6", seen, None, None, False)
    # only v0.0.42 reports error 2021; v0.0.38 (22.05) and v0.0.40/41 answer a bare 200
    expected = "already_finished" if deployer.slurm.api.name == "v0.0.42" else "cancelled"
    assert (first, second) == ("cancelled", expected)
    assert wait_for(lambda: deployer.slurm.get_job(job_id).job_state == "CANCELLED", what=f"job {job_id} CANCELLED")


@BOTH_SLURMS
def test_our_job_first_seen_through_its_state_stays_ours(deployer, deployer_cluster, tripwire, caplog):
    """The sensor's job view learns a job recorded by our state from ``jobs/state`` (no user on
    24.11): it is the pack's (the pack recorded it), so it is neither logged as a lookalike nor
    kept from its cancel when its deployment is deleted."""
    caplog.set_level(logging.INFO, logger="slurmdeploy")
    db = deployer.configdb
    deployer = deployer.observing(job_view=JobView(deployer.slurm, deployer.mcs_label, resync_interval=3600))
    assert deployer.observe() == [] and deployer.job_view.last_mode is ViewMode.FULL  # the listing, before the job
    db.create_deployment("trust-v", "slurm", {"script": "#!/bin/bash\nsleep 300\n"})
    ok, res = deployer.submit("trust-v")
    ours = res["job_id"]
    deployer.observe()
    assert deployer.job_view.last_mode is ViewMode.INCREMENTAL and ours in {j.job_id for j in deployer.job_view._jobs.values()}
    assert warnings_about(caplog, ours) == []
    db.delete_deployment("trust-v")
    events = deployer.observe()
    assert [(e.trigger, e.payload["job_id"]) for e in events] == [("deployment_removed", ours)]
    run_actions(deployer, events)
    assert wait_for(lambda: deployer.slurm.get_job(ours).job_state == "CANCELLED", what=f"job {ours} CANCELLED")
