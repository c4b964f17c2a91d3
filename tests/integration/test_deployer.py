"""The deployer's loop on the real Configuration DB (etcd) and the real Slurm 24.11; the
core lifecycle tests also on Debian 12's own Slurm 22.05 (REST v0.0.38).

Each test has its own etcd prefix and its own mcs_label (see conftest.pack_config).
"""

import threading

import pytest

import testbed
from integration.conftest import settle, wait_for
from slurmdeploy.auth import StaticJWT
from slurmdeploy.jobs import job_name
from slurmdeploy.layout import deployment_marker
from slurmdeploy.slurm import JobRequest, SlurmClient

#: run a test on Slurm 24.11 (trixie), 22.05 (bookworm) and 26.05 (forky)
ALL_SLURMS = pytest.mark.parametrize("deployer_cluster", ["trixie", "bookworm", "forky"], indirect=True)

SCRIPT_OK = "#!/bin/bash\nsleep 3\necho \"greeting=$GREETING site=$SITE_NAME config=$SDP_CONFIG_HOST:$SDP_CONFIG_PORT\"\n"


def slurm_output(cluster, job_id):
    out = testbed.slurm_exec(cluster["state_dir"], "cat", f"/tmp/slurm-{job_id}.out")
    return out.stdout


@ALL_SLURMS
def test_deployment_becomes_a_job_and_its_state_goes_pending_running_finished(deployer, deployer_cluster):
    db = deployer.configdb
    assert db.create_deployment("life-1", "slurm", {"script": SCRIPT_OK, "environment": {"GREETING": "hi"}})
    seen = settle(deployer, ["life-1"])
    assert seen["life-1"] == ["PENDING", "RUNNING", "FINISHED"]
    state, _ = db.get_state("life-1")
    job = deployer.slurm.get_job(state.job_id)
    assert job.name == "sdp-life-1" and job.mcs_label == deployer.mcs_label
    assert job.comment == deployment_marker("life-1", db.get_deployment("life-1").revision)
    assert job.job_state == "COMPLETED" and job.exit_code == 0
    port = deployer.settings.config_port
    assert f"greeting=hi site=lab config=127.0.0.1:{port}" in slurm_output(deployer_cluster, state.job_id)
    stored = state.to_dict()
    assert stored["num_job"] == 1 and stored["jobs"]["life-1"]["slurm_job_id"] == state.job_id
    assert "error_state" not in stored


@ALL_SLURMS
def test_failing_script_ends_failed_with_error_state(deployer):
    deployer.configdb.create_deployment("fail-1", "slurm", {"script": "#!/bin/bash\nexit 3\n"})
    settle(deployer, ["fail-1"])
    state, _ = deployer.configdb.get_state("fail-1")
    data = state.to_dict()
    assert state.status == "FAILED" and state.state_reason == "NonZeroExitCode"
    assert "exit code 3" in data["error_state"] and str(state.job_id) in data["error_state"]


def test_invalid_args_fail_that_deployment_only(deployer):
    db = deployer.configdb
    db.create_deployment("bad-1", "slurm", {"script": "no shebang", "mcs_label": "steal"})
    db.create_deployment("good-1", "slurm", {"script": "#!/bin/bash\ntrue\n"})
    settle(deployer, ["bad-1", "good-1"])
    bad, _ = db.get_state("bad-1")
    good, _ = db.get_state("good-1")
    assert bad.status == "FAILED" and bad.job_id is None and bad.state_reason == "InvalidDeployment"
    assert "args.mcs_label is not allowed" in bad.to_dict()["error_state"]
    assert "must start with #!" in bad.to_dict()["error_state"]
    assert deployer.slurm.find_jobs(deployer.mcs_label, job_name("bad-1")) == []
    assert good.status == "FINISHED"


def foreign_job(cluster, name, label="someone_else"):
    """Submit a job of someone else (another mcs_label) with the raw client; its id."""
    client = SlurmClient(cluster["url"], StaticJWT(str(cluster["jwt"]), cluster["user"]))
    return client.submit_job(JobRequest(name=name, script="#!/bin/bash\nsleep 120\n", mcs_label=label,
                                        environment={"PATH": "/usr/bin:/bin"}, current_working_directory="/tmp"))


@ALL_SLURMS
def test_removing_a_deployment_cancels_its_job_and_only_its_job(deployer, deployer_cluster):
    db = deployer.configdb
    db.create_deployment("rm-1", "slurm", {"script": "#!/bin/bash\nsleep 120\n"})
    # same name, another label: must never be touched
    other = foreign_job(deployer_cluster, "sdp-rm-1")
    ok, res = deployer.submit("rm-1")
    assert ok and res["outcome"] == "submitted"
    ours = res["job_id"]
    # a hand-run cancel of the foreign job by id is refused
    ok, res = deployer.cancel("rm-1", other)
    assert not ok and res["jobs"] == [{"job_id": other, "outcome": "refused"}]
    # while the deployment exists, its job is kept
    ok, res = deployer.cancel("rm-1", ours)
    assert res["jobs"] == [{"job_id": ours, "outcome": "kept"}]
    db.delete_deployment("rm-1")
    removed = [e for e in deployer.observe() if e.trigger == "deployment_removed"]
    assert [(e.payload["key"], e.payload["job_id"]) for e in removed] == [("rm-1", ours)]
    ok, res = deployer.cancel("rm-1", ours)
    assert ok and res["jobs"] == [{"job_id": ours, "outcome": "cancelled"}]
    # 22.05 may show COMPLETING (a flag, instead of the base state) for a moment
    assert wait_for(lambda: deployer.slurm.get_job(ours).job_state == "CANCELLED")
    foreign = deployer.slurm.get_job(other)
    assert foreign.job_state in ("PENDING", "RUNNING"), foreign
    assert [e for e in deployer.observe() if e.trigger == "deployment_removed"] == []
    deployer.slurm.cancel_job(other)  # clean up with the raw client


def test_concurrent_duplicate_submits_give_exactly_one_job(deployer, pack_config):
    from slurmdeploy.deployer import Deployer

    deployer.configdb.create_deployment("dup-1", "slurm", {"script": "#!/bin/bash\nsleep 2\n"})
    results = []
    workers = [Deployer.from_config(pack_config, environ={"PATH": "/bin"}) for _ in range(6)]
    threads = [threading.Thread(target=lambda d=d: results.append(d.submit("dup-1"))) for d in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    outcomes = sorted(r[1]["outcome"] for r in results)
    assert outcomes.count("submitted") == 1, outcomes
    assert set(outcomes) <= {"submitted", "claimed_elsewhere", "already_submitted"}
    assert len(deployer.slurm.find_jobs(deployer.mcs_label, "sdp-dup-1")) == 1
    # and a later, sequential duplicate is a no-op
    ok, res = deployer.submit("dup-1")
    assert ok and res["outcome"] == "already_submitted"
    assert len(deployer.slurm.find_jobs(deployer.mcs_label, "sdp-dup-1")) == 1


def test_crash_between_submit_and_state_write_is_adopted_not_resubmitted(deployer):
    """A submitter that dies after Slurm accepted the job but before the state was
    written leaves an owner key (until its lease expires) and a job without state."""
    from slurmdeploy.jobs import build_job

    db = deployer.configdb
    db.create_deployment("crash-1", "slurm", {"script": "#!/bin/bash\nsleep 2\n"})
    claim = db.claim("crash-1", ttl=2)  # never released: the crashed process
    job_id = deployer.slurm.submit_job(build_job(deployer.settings, db.get_deployment("crash-1"), {"PATH": "/bin"}))
    # while the claim lives, nobody touches the deployment
    assert [e for e in deployer.observe() if e.payload["key"] == "crash-1"] == []
    ok, res = deployer.submit("crash-1")
    assert res["outcome"] == "claimed_elsewhere"
    settle(deployer, ["crash-1"])
    state, _ = db.get_state("crash-1")
    assert state.job_id == job_id and state.status == "FINISHED"
    assert len(deployer.slurm.find_jobs(deployer.mcs_label, "sdp-crash-1")) == 1
    assert claim.key == "crash-1"


def test_recreated_deployment_gets_a_new_job_not_the_old_ones(deployer):
    db = deployer.configdb
    db.create_deployment("again-1", "slurm", {"script": "#!/bin/bash\ntrue\n"})
    settle(deployer, ["again-1"])
    first, _ = db.get_state("again-1")
    db.delete_deployment("again-1")
    db.create_deployment("again-1", "slurm", {"script": "#!/bin/bash\ntrue\n"})
    events = deployer.observe()
    assert [e.trigger for e in events if e.payload["key"] == "again-1"] == ["deployment_new"]
    settle(deployer, ["again-1"])
    second, _ = db.get_state("again-1")
    assert second.status == "FINISHED" and second.job_id != first.job_id


def test_vanished_job_becomes_failed_and_terminal_states_are_never_overwritten(deployer):
    from slurmdeploy.states import DeploymentState

    db = deployer.configdb
    db.create_deployment("gone-1", "slurm", {"script": "#!/bin/bash\ntrue\n"})
    assert db.write_state("gone-1", DeploymentState("gone-1", 99999999, "RUNNING"), 0)
    events = [e for e in deployer.observe() if e.payload["key"] == "gone-1"]
    assert [(e.trigger, e.payload["status"], e.payload["state_reason"]) for e in events] == [
        ("job_state_changed", "FAILED", "JobVanished")]
    ok, res = deployer.update_state("gone-1", 99999999)
    assert res["outcome"] == "updated"
    state, rev = db.get_state("gone-1")
    assert state.status == "FAILED" and "no longer known" in state.to_dict()["error_state"]
    ok, res = deployer.update_state("gone-1", 99999999)
    assert res["outcome"] == "terminal"
    assert db.get_state("gone-1")[1] == rev  # not written again
    assert [e for e in deployer.observe() if e.payload["key"] == "gone-1"] == []


def test_liveness_file_is_touched_on_every_healthy_poll(deployer, pack_config):
    import os

    deployer.observe()
    first = os.stat(pack_config["liveness_file"]).st_mtime_ns
    deployer.observe()
    assert os.stat(pack_config["liveness_file"]).st_mtime_ns >= first


def test_a_duplicate_job_of_a_deployment_is_cancelled_and_the_recorded_one_kept(deployer):
    from slurmdeploy.jobs import build_job

    db = deployer.configdb
    db.create_deployment("twin-1", "slurm", {"script": "#!/bin/bash\nsleep 60\n"})
    ok, res = deployer.submit("twin-1")
    recorded = res["job_id"]
    # a duplicate with the same marker, as a lost submit answer could leave behind
    twin = deployer.slurm.submit_job(build_job(deployer.settings, db.get_deployment("twin-1"), {"PATH": "/bin"}))
    removed = [e.payload for e in deployer.observe() if e.trigger == "deployment_removed"]
    assert [(p["key"], p["job_id"]) for p in removed] == [("twin-1", twin)]
    ok, res = deployer.cancel("twin-1", twin)
    assert res["jobs"] == [{"job_id": twin, "outcome": "cancelled"}]
    ok, res = deployer.cancel("twin-1", recorded)
    assert res["jobs"] == [{"job_id": recorded, "outcome": "kept"}]
    assert deployer.slurm.get_job(recorded).job_state in ("PENDING", "RUNNING")
    deployer.cancel("twin-1", recorded, force=True)


def test_other_kinds_are_left_alone(deployer):
    db = deployer.configdb
    db.create_deployment("helm-2", "helm", {"chart": "x"})
    assert [e for e in deployer.observe() if e.payload["key"] == "helm-2"] == []
    ok, res = deployer.submit("helm-2")
    assert not ok and res["outcome"] == "not_ours"
    assert db.get_state("helm-2")[1] == 0  # nothing written


def test_owner_key_and_results_carry_no_secret(deployer, pack_config):
    import json

    db = deployer.configdb
    db.create_deployment("own-1", "slurm", {"script": "#!/bin/bash\ntrue\n"})
    claim = db.claim("own-1", ttl=30)
    owner = db.get_owner("own-1")
    assert owner["command"] == ["slurmdeploy", "submit", "own-1"] and owner["pid"] > 0
    ok, res = deployer.submit("own-1")
    assert res["outcome"] == "claimed_elsewhere" and set(res["owner"]) == {"pid", "hostname"}
    db.release(claim)
    ok, res = deployer.submit("own-1")
    text = json.dumps(res) + json.dumps(owner)
    assert res["outcome"] == "submitted"
    assert pack_config["slurm_jwt"] not in text
