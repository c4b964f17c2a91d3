"""Operations checks of issue 15 (item 8) over answers recorded from real slurmrestd
(tests/fixtures/slurm/, Slurm 22.05.8 for v0.0.38 and 24.11.5 for v0.0.40-42):

- a slurmctld that did not answer slurmrestd in time (recorded with slurmctld stopped by
  SIGSTOP) is :class:`SlurmControllerUnavailable`, never a rejected token, and the request is
  not sent again; a bad token is still :class:`SlurmAuthError`, also for Slurm 22.05's node
  listing (its errors carry ``errno``, not ``error_number``);
- a job update that Slurm 22.05 answers with error 2095 although it applied it is read back
  and reported per field;
- job ids, empty names, hostlists and empty feature lists are checked before any request.
"""

from pathlib import Path

import jsonschema
import pytest
import requests
import yaml

from slurm_replay import TOKEN, Replay, ReplayClock, recorded
from slurmdeploy.auth import StaticJWT
from slurmdeploy.errors import BadRequest, SlurmAPIError, SlurmAuthError, SlurmControllerUnavailable
from slurmdeploy.slurm import SlurmClient
from slurmdeploy.slurm.client import CONTROLLER_SLOW_ANSWER, controller_did_not_answer
from slurmdeploy.slurm.operations import MAX_JOB_ID, SlurmOperations, expand_node_names, valid_job_id

REPO = Path(__file__).resolve().parents[2]
VERSIONS = ("v0.0.38", "v0.0.40", "v0.0.41", "v0.0.42")


def ops_for(version, *names):
    """SlurmOperations answering from the recordings ``names`` of ``version``, timed by a
    ReplayClock; returns ``(ops, replay)``."""
    clock = ReplayClock()
    replay = Replay([recorded(version, n) for n in names], clock=clock)
    session = requests.Session()
    session.mount("http://", replay)
    client = SlurmClient("http://slurm.test:6820", StaticJWT(TOKEN, "slurmtest"), api_version=version,
                         session=session)
    client.clock = clock
    return SlurmOperations(client), replay


# ------------------------------------------------------------ a stalled slurmctld vs a bad token

@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("name, call", [
    ("stalled_job_get", lambda ops: ops.client.get_job(999999)),
    ("stalled_job_update", lambda ops: ops._post("job_update", {"comment": "x"}, job_id=999999)),
    ("stalled_delete", lambda ops: ops.client.cancel_job(999999)),
    ("stalled_nodes", lambda ops: ops.list_nodes()),
])
def test_a_stalled_slurmctld_is_unavailable_not_a_rejected_token(version, name, call):
    ops, replay = ops_for(version, name)
    with pytest.raises(SlurmControllerUnavailable, match="slurmctld did not answer slurmrestd in time") as caught:
        call(ops)
    assert not isinstance(caught.value, SlurmAuthError)
    assert caught.value.elapsed >= 10 and "the credentials were not checked" in str(caught.value)
    assert len(replay.sent) == 1  # not sent again "with a fresh token"
    assert TOKEN not in str(caught.value)


@pytest.mark.parametrize("version", VERSIONS)
def test_a_bad_token_is_still_an_auth_error_for_the_node_listing(version):
    """22.05 answers GET /nodes with a bad token as 500 + {"errno": -1} within milliseconds
    (the node-state sensor reported it as a plain HTTP 500); 24.11 with 511 + 1007."""
    ops, _ = ops_for(version, "nodes_bad_signature")
    with pytest.raises(SlurmAuthError, match="rejected the jwt credentials") as caught:
        ops.list_nodes()
    assert caught.value.error_numbers == ([-1] if version == "v0.0.38" else [1007])


def test_on_22_05_only_the_time_tells_a_stall_from_a_bad_token():
    stalled, bad = recorded("v0.0.38", "stalled_nodes"), recorded("v0.0.38", "nodes_bad_signature")
    assert (stalled["status"], stalled["body"]["errors"]) == (bad["status"], bad["body"]["errors"])
    assert stalled["elapsed"] >= 10 > 1 > bad["elapsed"]
    assert controller_did_not_answer(500, [-1], stalled["elapsed"])
    assert not controller_did_not_answer(500, [-1], bad["elapsed"])
    assert not controller_did_not_answer(500, [2017], CONTROLLER_SLOW_ANSWER + 5)  # Slurm's own answer, slow
    assert not controller_did_not_answer(511, [1007], 20) and controller_did_not_answer(504, [], 0.1)


def test_a_stalled_submit_is_an_unknown_outcome_not_unavailable():
    """A submit slurmctld did not answer may still have created the job: SubmitOutcomeUnknown.
    (The stalled POST answer recorded for /job/{id} stands for the submit's: same stall, same body.)"""
    from slurmdeploy.errors import SubmitOutcomeUnknown
    from slurmdeploy.slurm import JobRequest

    stalled = dict(recorded("v0.0.42", "stalled_job_update"))
    stalled["request"] = {"method": "POST", "path": "/slurm/v0.0.42/job/submit"}
    clock = ReplayClock()
    replay = Replay([stalled], clock=clock)
    session = requests.Session()
    session.mount("http://", replay)
    client = SlurmClient("http://slurm.test:6820", StaticJWT(TOKEN, "slurmtest"), api_version="v0.0.42",
                         session=session)
    client.clock = clock
    with pytest.raises(SubmitOutcomeUnknown):
        client.submit_job(JobRequest(name="x", script="#!/bin/bash\ntrue", environment={"A": "1"}, mcs_label="",
                                     current_working_directory="/tmp"))


# ------------------------------------------------------------------------ job update read back

def test_22_05_error_2095_on_an_applied_priority_is_reported_as_applied():
    ops, replay = ops_for("v0.0.38", "job_priority_lowered", "job_update_priority_lowered")
    job_id = recorded("v0.0.38", "job_priority_lowered")["body"]["jobs"][0]["job_id"]
    result = ops.update_job(job_id, {"priority": 10})
    assert result["applied"] == ["priority"] and result["unverified"] == []
    assert [e["error_number"] for e in result["slurm_errors"]] == [2095]
    assert [m for m, *_ in replay.sent] == ["GET", "POST", "GET"]  # read before, update, read back


def test_a_refused_update_that_reads_back_unchanged_says_so_per_field():
    ops, _ = ops_for("v0.0.38", "job_priority_lowered", "job_update_priority_lowered")
    job_id = recorded("v0.0.38", "job_priority_lowered")["body"]["jobs"][0]["job_id"]
    with pytest.raises(SlurmAPIError, match=r"not \(fully\) applied, read back: not applied: priority.*slurm "
                                            r"error 2095") as caught:
        ops.update_job(job_id, {"priority": 99})
    assert caught.value.error_numbers == [2095]
    with pytest.raises(SlurmAPIError, match="applied: priority; unverified: nice"):
        ops.update_job(job_id, {"priority": 10, "nice": 5})  # 22.05's job records have no nice


# ----------------------------------------------------------------- checked before any request

@pytest.mark.parametrize("bad", [0, -1, 2**32 - 2, 2**32 - 1, 2**32 + 1, True, "12a", None, 1.5e10])
def test_job_ids_outside_slurms_range_never_reach_slurm(bad):
    ops, replay = ops_for("v0.0.38", "job_priority_lowered")
    with pytest.raises(BadRequest, match="job_id"):
        ops.get_job(bad)
    with pytest.raises(BadRequest, match="job_id"):
        ops.update_job(bad, {"priority": 1})
    with pytest.raises(BadRequest, match="job_id"):
        ops.cancel_jobs(job_id=bad)
    assert replay.sent == []


def test_job_id_range_is_slurms_uint32_without_no_val_and_infinite():
    assert MAX_JOB_ID == 2**32 - 3
    assert valid_job_id("4294967293") == MAX_JOB_ID and valid_job_id(1) == 1


def test_action_parameter_schemas_bound_job_ids_and_names():
    for action in ("job_get", "job_cancel", "job_hold", "job_release", "job_update", "cancel", "update_state"):
        schema = yaml.safe_load((REPO / "actions" / f"{action}.yaml").read_text())["parameters"]["job_id"]
        schema = {k: v for k, v in schema.items() if k not in ("required", "description")}
        jsonschema.validate(MAX_JOB_ID, schema)
        for bad in (0, MAX_JOB_ID + 1, 2**32 + 1):
            with pytest.raises(jsonschema.ValidationError):
                jsonschema.validate(bad, schema)
    for action, param in (("partition_get", "partition"), ("reservation_get", "reservation"),
                          ("node_drain", "node"), ("node_update", "node")):
        schema = yaml.safe_load((REPO / "actions" / f"{action}.yaml").read_text())["parameters"][param]
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate("", {k: v for k, v in schema.items() if k not in ("required", "description")})


@pytest.mark.parametrize("call", [
    lambda ops: ops.get_partition(""), lambda ops: ops.get_partition("  "), lambda ops: ops.get_reservation(""),
    lambda ops: ops.get_reservation(None), lambda ops: ops.update_reservation("", duration=5),
    lambda ops: ops.delete_reservation(""),
])
def test_empty_partition_or_reservation_names_send_nothing(call):
    ops, replay = ops_for("v0.0.42", "ping")
    with pytest.raises(BadRequest, match="name must be a non-empty string"):
        call(ops)
    assert replay.sent == []


def test_hostlists_expand_like_slurms():
    assert expand_node_names("n[1-3],m1") == ["n1", "n2", "n3", "m1"]
    assert expand_node_names("n[01-02]") == ["n01", "n02"] and expand_node_names("n1") == ["n1"]
    for bad in ("n[1-", "", " ", None):
        with pytest.raises(BadRequest):
            expand_node_names(bad)


@pytest.mark.parametrize("fields", [{"features": []}, {"features": ""}, {"features_act": []}, {"gres": ""}])
def test_an_empty_feature_list_is_refused_before_any_request(fields):
    """24.11.5 answers POST /node/{name} {"features": []} with 200 and changes nothing."""
    ops, replay = ops_for("v0.0.42", "ping")
    with pytest.raises(BadRequest, match="is ignored by slurmrestd"):
        ops.update_node("localhost", fields)
    with pytest.raises(BadRequest, match="not a valid Slurm hostlist"):
        ops.update_node("n[1-", {"weight": 2})
    assert replay.sent == []


def test_the_runner_refuses_out_of_range_job_ids_and_empty_names_before_running(tmp_path):
    """As StackStorm's API does (the action's parameter schema), packrunner refuses the
    execution before any action process starts: no request could reach Slurm."""
    runner_mod = pytest.importorskip("packrunner.runner", reason="needs packrunner (pip install -e ./packrunner)")
    errors = pytest.importorskip("packrunner.errors")
    config = {"slurm_url": "http://127.0.0.1:9", "client_id": "slurmtest", "slurm_jwt": TOKEN}
    with runner_mod.Runner(str(REPO), config=config, state_dir=str(tmp_path / "state")) as runner:
        for ref, params, message in [
            ("job_get", {"job_id": 2**32 + 1}, "greater than the maximum of 4294967293"),
            ("job_update", {"job_id": 0, "priority": 1}, "less than the minimum of 1"),
            ("job_cancel", {"job_id": 2**32 - 2}, "greater than the maximum"),
            ("partition_get", {"partition": ""}, "should be non-empty|is too short"),
            ("node_drain", {"node": "", "reason": "x"}, "should be non-empty|is too short"),
        ]:
            with pytest.raises(errors.ParameterError, match=message):
                runner.run_action(f"slurmdeploy.{ref}", params)
