"""The deployer's I/O shell (observe, submit) on the in-memory Configuration DB
(``ConfigDB.in_memory()``, held to etcd's semantics by tests/integration/test_kvstore_etcd.py)
and Slurm answers recorded from real slurmrestd 24.11 (v0.0.42). What is checked is what the
shell reads and writes around the pure decisions (decisions.plan_observation, submit_next);
the integration tests run the same paths on real etcd and Slurm.
"""

from test_slurm_recorded import replay_client

from slurm_replay import recorded
from slurmdeploy.configdb import ConfigDB
from slurmdeploy.decisions import DEPLOYMENT_NEW
from slurmdeploy.deployer import Deployer
from slurmdeploy.settings import Settings

ARGS = {"script": "#!/bin/bash\ntrue\n"}


def deployer(*names):
    """A Deployer on a fresh in-memory Configuration DB and a Slurm client replaying ``names``
    (v0.0.42 recordings); returns ``(deployer, replay)``."""
    slurm, replay = replay_client([recorded("v0.0.42", n) for n in names])
    return Deployer(Settings.from_config({}, {}), ConfigDB.in_memory("/sdp"), slurm, environ={"PATH": "/bin"}), replay


def slurm_requests(replay):
    return [(method, path.split("/slurm/v0.0.42/")[1]) for method, path, *_ in replay.sent]


def test_a_fresh_deployment_is_submitted_with_one_slurm_request_and_its_state_written():
    dep, replay = deployer("submit")
    dep.configdb.create_deployment("fresh", "slurm", ARGS)
    ok, res = dep.submit("fresh")
    assert ok and res["outcome"] == "submitted" and res["job_id"] == 9 and res["state_written"]
    assert slurm_requests(replay) == [("POST", "job/submit")]  # no listing: no attempt trace before
    state, _ = dep.configdb.get_state("fresh")
    assert (state.job_id, state.status) == (9, "PENDING")
    assert dep.configdb.get_owner("fresh") is None and dep.configdb.get_attempt("fresh") is None
    ok, res = dep.submit("fresh")  # a duplicate trigger: decided from the first read alone
    assert ok and res["outcome"] == "already_submitted" and len(replay.sent) == 1


def test_invalid_args_are_recorded_failed_without_a_slurm_request():
    dep, replay = deployer()
    dep.configdb.create_deployment("bad", "slurm", {"scirpt": "x"})
    ok, res = dep.submit("bad")
    assert not ok and res["outcome"] == "rejected" and res["state_written"]
    assert dep.configdb.get_state("bad")[0].state_reason == "InvalidDeployment"
    assert replay.sent == [] and dep.configdb.get_owner("bad") is None


def test_a_claimed_deployment_is_left_to_its_owner():
    dep, replay = deployer()
    dep.configdb.create_deployment("busy", "slurm", ARGS)
    assert dep.configdb.claim("busy", 30, attempt_revision=dep.configdb.get_deployment("busy").revision)
    ok, res = dep.submit("busy")
    assert ok and res["outcome"] == "claimed_elsewhere" and replay.sent == []


def test_observe_without_a_view_lists_the_cluster_once_and_emits_the_new_deployment():
    dep, replay = deployer("jobs")  # the recorded listing holds no job of our mcs_label
    dep.configdb.create_deployment("new-1", "slurm", ARGS)
    dep.configdb.create_deployment("helm-1", "helm", {})
    events = dep.observe()
    assert [(e.trigger, e.payload["key"], e.trace_tag) for e in events] == [
        (DEPLOYMENT_NEW, "new-1", f"new-1@{dep.configdb.get_deployment('new-1').revision}")]
    assert slurm_requests(replay) == [("GET", "jobs")] and dep.observed_keys is None
