"""The deployer under the faults and hostile input of issue 9, on the real etcd and Slurm:
non-recursive deletes and re-creations, orphan states, planted lookalike jobs, a submit that
Slurm answers with a job id and an error, and one bad input per row of a table."""

import json
import logging

import pytest

import testbed
from integration.conftest import settle, wait_for
from slurmdeploy.layout import deployment_marker

#: run a test on Slurm 24.11 (trixie), 22.05 (bookworm) and 26.05 (forky)
ALL_SLURMS = pytest.mark.parametrize("deployer_cluster", ["trixie", "bookworm", "forky"], indirect=True)


def delete_only_the_deployment(db, key):
    """``etcdctl del [prefix]/deploy/<key>``: the deployment alone, not its state or owner."""
    db.client.delete(db.deployment_path(key).encode("utf-8"))


def raw_put(db, path, value):
    """Write ``value`` (bytes) at ``<path>`` under the deployment prefix as any etcd client could."""
    db.client.put(f"{db.deploy_prefix}{path}".encode("utf-8"), value)


def planted_job(cluster, name, label, comment=None, hold=True):
    """A job planted by a user of the cluster: our mcs_label and job name (anyone can set
    both), with ``comment``; held, so it never starts. Returns its id."""
    assert hold
    return testbed.plant_job(cluster, name, label, comment)


def messages(caplog, text):
    return [r.getMessage() for r in caplog.records if text in r.getMessage()]


# ------------------------------------------------------------------ defect 1
def test_a_deployment_recreated_after_a_non_recursive_delete_runs_again(deployer):
    db = deployer.configdb
    db.create_deployment("rec-1", "slurm", {"script": "#!/bin/bash\ntrue\n"})
    settle(deployer, ["rec-1"])
    first, _ = db.get_state("rec-1")
    delete_only_the_deployment(db, "rec-1")
    db.create_deployment("rec-1", "slurm", {"script": "#!/bin/bash\ntrue\n"})
    assert db.get_state("rec-1")[0].status == "FINISHED"  # the earlier deployment's state is still there
    assert [e.trigger for e in deployer.observe() if e.payload["key"] == "rec-1"] == ["deployment_new"]
    settle(deployer, ["rec-1"])
    revision = db.get_deployment("rec-1").revision
    second, _ = db.get_state("rec-1", revision)
    assert second.status == "FINISHED" and second.job_id not in (None, first.job_id)
    assert deployer.slurm.get_job(second.job_id).comment == deployment_marker("rec-1", revision)


def test_a_recreated_deployment_cancels_the_earlier_job_and_runs_its_own(deployer):
    db = deployer.configdb
    db.create_deployment("rec-2", "slurm", {"script": "#!/bin/bash\nsleep 300\n"})
    ok, res = deployer.submit("rec-2")
    old = res["job_id"]
    delete_only_the_deployment(db, "rec-2")
    db.create_deployment("rec-2", "slurm", {"script": "#!/bin/bash\ntrue\n"})
    events = {(e.trigger, e.payload.get("job_id")) for e in deployer.observe() if e.payload["key"] == "rec-2"}
    assert events == {("deployment_new", None), ("deployment_removed", old)}
    settle(deployer, ["rec-2"])
    state, _ = db.get_state("rec-2")
    assert state.status == "FINISHED" and state.job_id != old
    assert wait_for(lambda: deployer.slurm.get_job(old).job_state == "CANCELLED", what=f"job {old} CANCELLED")


# ------------------------------------------------------------------ defect 2
def test_the_state_and_owner_of_a_deployment_deleted_alone_are_removed(deployer):
    db = deployer.configdb
    db.create_deployment("orph-1", "slurm", {"script": "#!/bin/bash\ntrue\n"})
    settle(deployer, ["orph-1"])  # the job ended before the delete: cancel never runs
    delete_only_the_deployment(db, "orph-1")
    owner = {"command": ["slurmdeploy", "submit", "orph-2"], "hostname": "gone", "pid": 1}
    db.client.put(db.owner_path("orph-2").encode(), json.dumps(owner).encode())  # a crashed submitter's, no lease
    db.client.put(db.state_path("other-1").encode(), b'{"status": "RUNNING"}')  # another deployer's: not ours
    assert db.get_state("orph-1")[1] != 0
    deployer.observe()
    assert db.get_state("orph-1")[1] == 0 and db.get_owner("orph-2") is None
    assert db.get_state("other-1")[1] != 0


# ------------------------------------------------------------------ defect 3
def test_planted_lookalike_jobs_are_never_adopted_updated_or_cancelled(deployer, deployer_cluster, caplog):
    caplog.set_level(logging.INFO, logger="slurmdeploy")
    db = deployer.configdb
    label = deployer.mcs_label
    held = planted_job(deployer_cluster, "sdp-look-1", label, hold=True)  # label-only lookalike
    other = planted_job(deployer_cluster, "sdp-look-1", label, comment=deployment_marker("other", 1))
    db.create_deployment("look-1", "slurm", {"script": "#!/bin/bash\nsleep 1\n"})
    try:
        settle(deployer, ["look-1"])
        state, _ = db.get_state("look-1")
        assert state.status == "FINISHED" and state.job_id not in (held, other)
        ok, res = deployer.update_state("look-1", held)
        assert res["outcome"] in ("terminal", "other_job")
        deployer.observe()
        for planted in (held, other):
            assert len(messages(caplog, f"Slurm job {planted} (user")) == 1, planted  # once, not every poll
        db.delete_deployment("look-1")
        assert [e for e in deployer.observe() if e.trigger == "deployment_removed"] == []
        ok, res = deployer.cancel("look-1", held)
        assert not ok and res["jobs"] == [{"job_id": held, "outcome": "refused"}]
        ok, res = deployer.cancel("look-1")
        assert ok and res["jobs"] == []
        assert {deployer.slurm.get_job(j).job_state for j in (held, other)} == {"PENDING"}
    finally:
        for planted in (held, other):
            deployer.slurm.cancel_job(planted)


def test_a_label_only_lookalike_does_not_stop_a_deployment_from_running(deployer, deployer_cluster):
    """A planted *held* job with our label and name once kept a deployment PENDING for ever."""
    db = deployer.configdb
    held = planted_job(deployer_cluster, "sdp-look-2", deployer.mcs_label, hold=True)
    try:
        ok, res = deployer.submit("look-2") if db.create_deployment("look-2", "slurm",
                                                                      {"script": "#!/bin/bash\ntrue\n"}) else (0, {})
        assert ok and res["outcome"] == "submitted" and res["job_id"] != held
    finally:
        deployer.slurm.cancel_job(held)


# ------------------------------------------------------------------ defect 5
@ALL_SLURMS
def test_a_job_slurm_creates_while_refusing_it_is_recorded_and_cancelled(deployer, deployer_cluster):
    db = deployer.configdb
    db.create_deployment("cpu-1", "slurm", {"script": "#!/bin/bash\ntrue\n", "cpus_per_task": 999})
    ok, res = deployer.submit("cpu-1")
    state, _ = db.get_state("cpu-1")
    assert not ok and res["outcome"] == "rejected"
    assert state.status == "FAILED" and state.state_reason == "SubmitFailed"
    jobs = deployer.slurm.find_jobs(deployer.mcs_label, "sdp-cpu-1")
    # 22.05: HTTP 200, a job id and error 2015 (the job stays PENDING until cancelled);
    # 24.11: HTTP 500, error 2014, no job id, yet a FAILED job is listed;
    # 26.05: HTTP 200, a job id, no error, a warning "Job submission resulted in non-zero return
    # code: Requested partition configuration not available now" (PENDING, PartitionConfig).
    # All three are recorded as rejected and the job is cancelled.
    error = {"bookworm": "2015", "trixie": "2014",
             "forky": "non-zero return code: Requested partition configuration not available now"}[
        deployer_cluster["flavour"]]
    assert [j.job_id for j in jobs] == [state.job_id] and error in state.to_dict()["error_state"]
    assert wait_for(lambda: deployer.slurm.get_job(state.job_id).finished, what=f"job {state.job_id} ended")
    assert [e for e in deployer.observe() if e.payload["key"] == "cpu-1"] == []


# ------------------------------------------------------------------ defect 7
#: input | expected state, or the log line (once)
BAD_INPUTS = [
    ("bad-json", b"{not json", None, "deployment 'bad-json' ignored: the stored value is not JSON"),
    ("bad-array", b'["slurm"]', None, "deployment 'bad-array' ignored: the stored value is a JSON list"),
    ("bad-nokind", b'{"key": "bad-nokind", "args": {"script": "#!/bin/sh"}}', None,
     "deployment 'bad-nokind' ignored: the stored object has no 'kind'"),
    ("bad-kind", b'{"key": "bad-kind", "kind": "Slurm", "args": {}}', None,
     "deployment 'bad-kind' ignored: kind 'Slurm' is not 'slurm'"),
    ("d\u00e9ploy", b'{"kind": "slurm", "args": {"script": "#!/bin/sh"}}', None, "'d\u00e9ploy' does not match"),
    ("has space", b'{"kind": "slurm", "args": {"script": "#!/bin/sh"}}', None, "'has space' does not match"),
    ("a/b", b'{"kind": "slurm", "args": {"script": "#!/bin/sh"}}', None, "'a/b' contains '/'"),
    ("x" * 300, b'{"kind": "slurm", "args": {"script": "#!/bin/sh"}}', None, "... (300 characters) does not match"),
    ("bad-args", b'{"key": "bad-args", "kind": "slurm", "args": ["#!/bin/sh"]}',
     ("InvalidDeployment", "'args' must be an object, got list"), None),
    ("bad-noscript", b'{"key": "bad-noscript", "kind": "slurm", "args": {}}',
     ("InvalidDeployment", "args.script is required"), None),
    ("bad-shebang", b'{"key": "bad-shebang", "kind": "slurm", "args": {"script": "echo hi"}}',
     ("InvalidDeployment", "args.script must start with #!"), None),
    ("bad-label", b'{"key": "bad-label", "kind": "slurm", "args": {"script": "#!/bin/sh", "mcs_label": "x"}}',
     ("InvalidDeployment", "args.mcs_label is not allowed"), None),
    ("bad-field", b'{"key": "bad-field", "kind": "slurm", "args": {"script": "#!/bin/sh", "nodse": 2}}',
     ("InvalidDeployment", "unknown field(s) args.nodse"), None),
    ("bad-nodes", b'{"key": "bad-nodes", "kind": "slurm", "args": {"script": "#!/bin/sh", "nodes": 0}}',
     ("InvalidDeployment", "args.nodes: 0 is less than the minimum of 1"), None),
    ("bad-env", b'{"key": "bad-env", "kind": "slurm", "args": {"script": "#!/bin/sh", "environment": {"A B": "1"}}}',
     ("InvalidDeployment", "environment variable name 'A B' must match"), None),
    ("bad-cwd", b'{"key": "bad-cwd", "kind": "slurm", "args": {"script": "#!/bin/sh", '
                b'"current_working_directory": "tmp"}}', ("InvalidDeployment", "must be an absolute path"), None),
]


@pytest.mark.parametrize("path, value, state, log", BAD_INPUTS, ids=[row[0][:20] for row in BAD_INPUTS])
def test_each_bad_input_fails_only_itself_with_a_clear_reason(deployer, caplog, path, value, state, log):
    caplog.set_level(logging.INFO, logger="slurmdeploy")
    db = deployer.configdb
    raw_put(db, path, value)
    db.create_deployment("good-2", "slurm", {"script": "#!/bin/bash\ntrue\n"})
    settle(deployer, ["good-2"] + ([path] if state else []))
    assert db.get_state("good-2")[0].status == "FINISHED"
    if state:
        got, _ = db.get_state(path)
        assert (got.status, got.state_reason, got.job_id) == ("FAILED", state[0], None)
        assert state[1] in got.to_dict()["error_state"] and path in got.to_dict()["error_state"]
    else:
        deployer.observe()
        assert len(messages(caplog, log)) == 1, [r.getMessage() for r in caplog.records]  # once, not per poll
        assert all(r.levelno >= logging.INFO for r in caplog.records if log in r.getMessage())
        assert deployer.slurm.find_jobs(deployer.mcs_label) == deployer.slurm.find_jobs(deployer.mcs_label, "sdp-good-2")
