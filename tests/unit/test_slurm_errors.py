"""The error tree (slurmdeploy.errors): every error answer recorded from real slurmrestd
(tests/fixtures/slurm/, Slurm 22.05.8, 24.11.5, 26.05.5) replayed through the client's real
transport, and the type it becomes. One row per recording; the rows are the specification."""

import glob
import json
from pathlib import Path

import pytest
import requests

from slurm_replay import FIXTURES, TOKEN, Replay, ReplayClock, recorded
from slurmdeploy.auth import StaticJWT
from slurmdeploy.errors import (BadRequest, ConfigDBError, InvalidDeployment, NotFound, SlurmAPIError,
                                SlurmAuthError, SlurmControllerUnavailable, SlurmDeployError, SubmitOutcomeUnknown,
                                SubmitRejected, UnsupportedOperation, WriteOutcomeUnknown, action_error,
                                error_from_answer, reports_errors)
from slurmdeploy.slurm import JobRequest, SlurmClient
from slurmdeploy.slurm.operations import SlurmOperations

OLD, MID, NEW = ("v0.0.38",), ("v0.0.40", "v0.0.41", "v0.0.42"), ("v0.0.43", "v0.0.44", "v0.0.45")
JOB = JobRequest(name="sdp-x", script="#!/bin/bash\ntrue", environment={"A": "1"}, mcs_label="sdp",
                 current_working_directory="/tmp")


def client_for(version, *names):
    clock = ReplayClock()
    replay = Replay([recorded(version, n) for n in names], clock=clock)
    session = requests.Session()
    session.mount("http://", replay)
    client = SlurmClient("http://slurm.test:6820", StaticJWT(TOKEN, "slurmtest"), api_version=version,
                         session=session)
    client.clock = clock
    return client, replay


def send_as_recorded(client, name, version):
    """Send the recording's own request the way the library sends it (a submit through
    submit_job, anything else through SlurmClient.request)."""
    req = recorded(version, name)["request"]
    if req["path"].endswith("/job/submit"):
        return client.submit_job(JOB)
    return client.request(req["method"], req["path"], body=req.get("body"))


#: recording -> {versions: error type}. Every recording whose answer is an error is listed
#: (test_every_recorded_error_has_a_row checks that none is left out).
ROWS = {
    "job_unknown": {OLD + MID + NEW: NotFound},                 # 404 (22.05: 500) + 2017
    "delete_unknown": {OLD: NotFound},                          # 22.05: 500 + 2017 (later: 200)
    "submit_error": {OLD + MID + NEW: SubmitRejected},          # 400 + 2127/9001, 500 + 2019, 422 + 2127
    "submit_refused": {OLD + MID + NEW: SubmitRejected},        # 200 + job id + 2015, 500 + 2014, 200 + warning
    "submit_bad_signature": {OLD: SubmitOutcomeUnknown,         # 22.05: 500 + 5005 (dropped: may exist)
                             MID + NEW: SlurmAuthError},        # 511 + 1007
    "jobs_bad_signature": {OLD + MID + NEW: SlurmAuthError},    # 22.05: quick 500 + -1; 511 + 1007
    "nodes_bad_signature": {OLD + MID: SlurmAuthError},         # 22.05: quick 500 + errno -1
    # 22.05: quick 500 + 1000 to a POST: the same answer as a refusal, so not taken for a bad token
    "job_update_bad_signature": {OLD: SlurmAPIError, MID: SlurmAuthError},
    "job_update_priority_lowered": {OLD: SlurmAPIError},        # 500 + 2095 (applied anyway)
    "stalled_job_get": {OLD + MID: SlurmControllerUnavailable},  # 500 + -1 after 20 s
    "stalled_job_update": {OLD + MID: SlurmControllerUnavailable},  # 500 + 1000 after 10 s
    "stalled_delete": {OLD + MID: SlurmControllerUnavailable},  # 500 + 5004 / 1 after 10 s
    "stalled_nodes": {OLD + MID: SlurmControllerUnavailable},   # 500 + -1 / 504 + 5004
    "reservation_delete_unknown": {NEW: BadRequest},            # 422 + 2053
    "reservation_end_before_start": {NEW: BadRequest},          # 422 + 2053
    "reservation_overlap": {NEW: BadRequest},                   # 422 + 2058
    "reservation_unknown_user": {NEW: SlurmAPIError},           # 500 + -1 at once ("Unspecified error")
    "version_not_loaded": {NEW: SlurmAPIError},                 # 404, plain text: REST version not loaded
}
CASES = [(name, version, kind) for name, row in ROWS.items() for versions, kind in row.items()
         for version in versions]


@pytest.mark.parametrize("name, version, kind", CASES)
def test_each_recorded_error_becomes_its_type(name, version, kind):
    client, replay = client_for(version, name)
    with pytest.raises(SlurmAPIError) as caught:
        send_as_recorded(client, name, version)
    assert type(caught.value) is kind, str(caught.value)
    assert caught.value.request_sent is True and caught.value.status == recorded(version, name)["status"]
    assert TOKEN not in str(caught.value) and TOKEN not in json.dumps(action_error(caught.value))


def _is_error(rec):
    body = rec["body"]
    return not (200 <= rec["status"] < 300) or (isinstance(body, dict) and (body.get("errors") or any(
        "non-zero return code" in str(w.get("description")) for w in body.get("warnings") or [])))


def test_every_recorded_error_has_a_row():
    listed = {(name, version) for name, version, _ in CASES}
    for path in sorted(glob.glob(str(FIXTURES / "v*" / "*.json"))):
        name, version = Path(path).stem, Path(path).parent.name
        rec = json.loads(Path(path).read_text())
        # accounting_*: slurmdbd's answers, typed by slurm.accounting.Accounting.call (test_accounting.py)
        # accounts_*: typed by slurm.accounts.AccountAdmin.call (test_slurm_accounts.py)
        if "request" in rec and _is_error(rec) and not name.endswith("26.05") \
                and not name.startswith(("accounting_", "accounts_")):
            assert (name, version) in listed, f"{version}/{name}.json: add a row to ROWS"


def test_the_whole_tree_is_under_slurm_api_error():
    for kind in (BadRequest, NotFound, SlurmAuthError, SlurmControllerUnavailable, WriteOutcomeUnknown,
                 SubmitOutcomeUnknown, SubmitRejected, UnsupportedOperation):
        assert issubclass(kind, SlurmAPIError) and issubclass(kind, SlurmDeployError), kind
    assert issubclass(SubmitOutcomeUnknown, WriteOutcomeUnknown)


def test_request_sent_is_known_at_construction():
    # nothing sent: bad input and unsupported operations are found before any request
    assert BadRequest("x").request_sent is False
    assert UnsupportedOperation("node_update", "POST /node/{node_name}", "v0.0.38", "23.02", "v0.0.39").request_sent \
        is False
    assert error_from_answer(None, method="POST", request_sent=False).request_sent is False
    # sent, no answer: a write's outcome is unknown, a read is a plain failure
    assert type(error_from_answer(None, method="POST", endpoint="/slurm/v0.0.42/job/1")) is WriteOutcomeUnknown
    assert type(error_from_answer(None, method="DELETE")) is WriteOutcomeUnknown
    assert type(error_from_answer(None, method="POST", submit=True)) is SubmitOutcomeUnknown
    assert type(error_from_answer(None, method="GET")) is SlurmAPIError


@pytest.mark.parametrize("status, numbers, took, kind", [
    (504, [5004], 10.0, SlurmControllerUnavailable),
    (500, [5004], 0.1, SlurmControllerUnavailable),
    (500, [-1], 10.0, SlurmControllerUnavailable),
    (500, [-1], 0.01, SlurmAPIError),                 # at once: Slurm's own answer
    (511, [1007], 0.01, SlurmAuthError),
    (401, [], 0.01, SlurmAuthError),
    (504, [1007], 10.0, SlurmAuthError),              # 1007: the credentials, not the controller
    (500, [2017], 30.0, NotFound),                    # slow but Slurm's own "Invalid job id"
    (422, [2000], 0.01, NotFound),
    (400, [9001], 0.01, BadRequest),
    (500, [2095], 0.01, SlurmAPIError),
])
def test_status_and_error_numbers_decide_the_type(status, numbers, took, kind):
    errors = [{"error_number": n, "error": "x"} for n in numbers]
    assert type(error_from_answer(status, errors, method="GET", took=took)) is kind


@pytest.mark.parametrize("status, numbers, job_id, kind", [
    (503, [], None, SubmitOutcomeUnknown),
    (500, [], None, SubmitOutcomeUnknown),
    (500, [5005], None, SubmitOutcomeUnknown),
    (500, [2014], None, SubmitRejected),
    (200, [2015], 7, SubmitRejected),
    (503, [], 7, SubmitRejected),                     # a job id: Slurm made the job, so it is known
    (504, [5004], None, SubmitOutcomeUnknown),        # a stalled slurmctld may still create it
])
def test_a_submit_is_rejected_or_of_unknown_outcome(status, numbers, job_id, kind):
    errors = [{"error_number": n} for n in numbers]
    err = error_from_answer(status, errors, method="POST", submit=True, job_id=job_id, took=10.0,
                            subject="job 'sdp-x'")
    assert type(err) is kind and "job 'sdp-x'" in str(err)
    if kind is SubmitRejected:
        assert err.job_id == job_id


def test_an_ignored_field_is_a_bad_request():
    # 24.11 accepts {"nmae": ...} with HTTP 200 and only a warning (test_operations.py)
    err = error_from_answer(200, [], warnings=[{"description": "Ignoring unknown field \"nmae\""}], method="POST")
    assert type(err) is BadRequest and "Ignoring unknown field" in str(err)


def test_action_error_is_the_one_failure_result():
    client, _ = client_for("v0.0.42", "job_unknown")
    with pytest.raises(NotFound) as caught:
        SlurmOperations(client).get_job(999999)
    result = action_error(caught.value)
    assert result["error_type"] == "NotFound" and result["job_id"] == 999999
    assert result["error_types"] == ["NotFound", "SlurmAPIError", "SlurmDeployError"]
    assert "Slurm job 999999 not found" in result["error"] and result["api_version"] == "v0.0.42"
    assert action_error(InvalidDeployment("d1", "args.script is required"))["key"] == "d1"
    assert action_error(ConfigDBError("etcd down")) == {"error": "etcd down", "error_type": "ConfigDBError",
                                                        "error_types": ["ConfigDBError", "SlurmDeployError"]}


def test_reports_errors_returns_the_result_and_lets_bugs_raise():
    class Action:
        logger = None

        @reports_errors
        def run(self, what):
            if what == "bug":
                raise KeyError("bug")
            raise SlurmControllerUnavailable("slow", elapsed=10.0, status=504, errors=[{"error_number": 5004}])

    ok, result = Action().run("slurm")
    assert ok is False and result["error_type"] == "SlurmControllerUnavailable"
    assert result["http_status"] == 504 and result["slurm_errors"] == [5004] and result["elapsed"] == 10.0
    with pytest.raises(KeyError):
        Action().run("bug")
