"""The Slurm client and its version adapters against answers recorded from real slurmrestd
(Slurm 24.11.5; see tests/fixtures/slurm/README.md). Replayed through a requests transport
adapter, so the client's real transport code runs."""

import pytest
import requests

from slurm_replay import FIXTURES, TOKEN, Replay, recorded
from slurmdeploy.auth import StaticJWT
from slurmdeploy.errors import SlurmAPIError, SlurmAuthError
from slurmdeploy.slurm import JobRequest, SlurmClient
from slurmdeploy.slurm.versions import ADAPTERS, adapter, no_val_number, set_number

#: versions with recordings: every adapter but v0.0.39 (no Slurm 23.x here; see test_slurm_v0039.py)
VERSIONS = sorted(set(ADAPTERS) - {"v0.0.39"})

#: What the recordings of each version show where versions differ
#: (Slurm 22.05.8 for v0.0.38, 24.11.5 for the others; tests/fixtures/slurm/README.md):
#: rejected submit without environment -> (HTTP status, Slurm error number);
#: a cancelled job's flags and signal; whether a DELETE of an unknown id says so.
RECORDED_DIFFERENCES = {
    "v0.0.38": {"submit_error": (400, 2127), "cancelled_flags": (), "cancelled_signal": 15,
                "unknown_cancel_reported": True},
    "v0.0.40": {"submit_error": (500, 2019), "cancelled_flags": ("COMPLETING",), "cancelled_signal": None,
                "unknown_cancel_reported": False},
    "v0.0.41": {"submit_error": (500, 2019), "cancelled_flags": ("COMPLETING",), "cancelled_signal": None,
                "unknown_cancel_reported": False},
    "v0.0.42": {"submit_error": (500, 2019), "cancelled_flags": ("COMPLETING",), "cancelled_signal": None,
                "unknown_cancel_reported": True},
    # Slurm 26.05.5: a submit without environment is 422 + 2127 (24.11: 500 + 2019)
    **{v: {"submit_error": (422, 2127), "cancelled_flags": ("COMPLETING",), "cancelled_signal": None,
           "unknown_cancel_reported": True} for v in ("v0.0.43", "v0.0.44", "v0.0.45")},
}
#: versions recorded on Slurm 26.05.5
NEWER = ("v0.0.43", "v0.0.44", "v0.0.45")


def replay_client(recordings, source=None, api_version="v0.0.42"):
    """A client whose session answers from ``recordings``; returns ``(client, replay)``."""
    replay = Replay(recordings)
    session = requests.Session()
    session.mount("http://", replay)
    client = SlurmClient("http://slurm.test:6820", source or StaticJWT(TOKEN, "slurmtest"),
                         api_version=api_version, session=session)
    return client, replay


def client_for(version, *names, api_version=None, extra=()):
    recs = [recorded(version, n) for n in names] + list(extra)
    return replay_client(recs, api_version=api_version or version)


def test_recordings_exist_for_every_supported_version():
    for version in VERSIONS:
        assert (FIXTURES / version / "submit.json").exists(), version


@pytest.mark.parametrize("version", VERSIONS)
def test_served_openapi_lists_the_paths_the_client_uses(version):
    # slurmrestd documents collections with a trailing slash and serves both forms
    paths = {p.rstrip("/") for p in recorded(version, "openapi_v3_paths")["body"]}
    api = adapter(version)
    for path in (api.ping_path(), api.diag_path(), api.jobs_path(), api.submit_path()):
        assert path in paths
    assert f"/slurm/{version}/job/{{job_id}}" in paths


@pytest.mark.parametrize("version", VERSIONS)
def test_submit_body_is_the_body_slurm_accepted(version):
    accepted = recorded(version, "submit")["request"]["body"]
    req = JobRequest(name="rec-ok", script="#!/bin/bash\nsleep 3\necho done",
                     environment={"PATH": "/usr/bin:/bin", "SDP_DEPLOYMENT": "rec-ok"},
                     mcs_label="rec_ok", current_working_directory="/tmp", time_limit=5)
    assert adapter(version).submit_body(req) == accepted


@pytest.mark.parametrize("version", VERSIONS)
def test_submit_returns_the_job_id(version):
    client, replay = client_for(version, "submit")
    req = JobRequest(name="n", script="#!/bin/bash\n", environment={"A": "1"}, mcs_label="l",
                     current_working_directory="/tmp")
    assert client.submit_job(req) == recorded(version, "submit")["body"]["job_id"]
    method, path, headers, _ = replay.sent[0]
    assert (method, path) == ("POST", f"/slurm/{version}/job/submit")
    assert headers["X-SLURM-USER-NAME"] == "slurmtest" and headers["X-SLURM-USER-TOKEN"] == TOKEN


@pytest.mark.parametrize("version", VERSIONS)
def test_rejected_submit_carries_slurm_error_numbers_and_endpoint_not_the_token(version):
    client, _ = client_for(version, "submit_error")
    req = JobRequest(name="n", script="#!/bin/bash\n", environment={}, mcs_label="l", current_working_directory="/tmp")
    with pytest.raises(SlurmAPIError) as err:
        client.submit_job(req)
    status, number = RECORDED_DIFFERENCES[version]["submit_error"]
    assert err.value.status == status and number in err.value.error_numbers
    assert err.value.endpoint == f"/slurm/{version}/job/submit" and err.value.api_version == version
    assert TOKEN not in str(err.value)


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize(
    "name, base, flags, reason, exit_code, signal, finished",
    [
        ("job_pending_or_running", "PENDING", (), None, None, None, False),
        ("job_completed", "COMPLETED", (), "None", 0, None, True),
        ("job_failed", "FAILED", (), "NonZeroExitCode", 3, None, True),
        ("job_cancelled", "CANCELLED", "cancelled_flags", "None", 0, "cancelled_signal", True),
    ],
)
def test_job_records_are_normalised(version, name, base, flags, reason, exit_code, signal, finished):
    differences = RECORDED_DIFFERENCES[version]
    flags, signal = differences.get(flags, flags), differences.get(signal, signal)
    rec = recorded(version, name)
    client, _ = client_for(version, name)
    job_id = int(rec["request"]["path"].rsplit("/", 1)[1])
    job = client.get_job(job_id)
    assert job.job_id == job_id and job.job_state == base and job.finished is finished
    assert job.base_state_known
    if name != "job_pending_or_running":
        assert job.state_flags == flags and job.state_reason == reason
        assert (job.exit_code, job.exit_signal) == (exit_code, signal)
        assert job.end_time and job.end_time >= job.start_time >= job.submit_time > 1.7e9
    if name == "job_completed":
        assert job.time_limit == 5  # minutes, as submitted
    assert job.mcs_label and job.name and job.user_name == "slurmtest" and job.partition


@pytest.mark.parametrize("version", VERSIONS)
def test_unknown_job_is_none(version):
    client, _ = client_for(version, "job_unknown")
    assert client.get_job(999999) is None


@pytest.mark.parametrize("version", VERSIONS)
def test_cancel_of_unknown_job_and_of_running_job(version):
    client, _ = client_for(version, "delete_unknown", "cancel")
    # v0.0.38 answers 500 + error 2017, v0.0.42 reports error 2017 per job; v0.0.40/41
    # answer a bare 200 (recorded), so an unknown id cannot be told apart there - the
    # deployer reads the job before cancelling
    unknown = "not_found" if RECORDED_DIFFERENCES[version]["unknown_cancel_reported"] else "cancelled"
    assert client.cancel_job(999999) == unknown
    cancelled = int(recorded(version, "cancel")["request"]["path"].rsplit("/", 1)[1])
    assert client.cancel_job(cancelled) == "cancelled"


@pytest.mark.parametrize("version", VERSIONS)
def test_cancel_of_a_job_already_cancelled_is_success(version):
    """Issue 15: two runners cancel one job. 24.11.5's v0.0.42 answers HTTP 200 with error 2021
    "Job/step already completing or completed" per job (recorded); the client reads the job
    back and says it had already ended instead of raising "Slurm refused to cancel the job".
    v0.0.40/41 and 22.05 answer a bare 200 (nothing to tell apart there); 26.05's v0.0.43-45
    answer as 24.11's v0.0.42 does (recorded)."""
    client, replay = client_for(version, "cancel_cancelled", "job_cancel_readback")
    job_id = int(recorded(version, "cancel_cancelled")["request"]["path"].rsplit("/", 1)[1])
    answer = client.cancel_job(job_id)
    if version not in ("v0.0.38", "v0.0.39", "v0.0.40", "v0.0.41"):
        assert answer == "already_ended"
        assert [m for m, *_ in replay.sent] == ["DELETE", "GET"]  # the read-back
    else:
        assert answer == "cancelled" and [m for m, *_ in replay.sent] == ["DELETE"]
    read_back = client.get_job(job_id)
    assert read_back.job_state == "CANCELLED"


def test_error_2021_for_a_job_still_running_is_an_error():
    """Error 2021 alone proves nothing: when the read-back shows the job not ended (here the
    recorded PENDING job), raise."""
    running = recorded("v0.0.42", "job_pending_or_running")
    job_id = running["body"]["jobs"][0]["job_id"]
    refused = recorded("v0.0.42", "cancel_cancelled")
    refused = dict(refused, request=dict(refused["request"], path=f"/slurm/v0.0.42/job/{job_id}"))
    client, _ = replay_client([refused, running])
    with pytest.raises(SlurmAPIError, match="refused to cancel"):
        client.cancel_job(job_id)


@pytest.mark.parametrize("version", VERSIONS)
def test_listing_and_label_filter(version):
    client, _ = client_for(version, "jobs")
    jobs = client.list_jobs()
    assert len(jobs) == len(recorded(version, "jobs")["body"]["jobs"]) > 0
    label = jobs[0].mcs_label
    found = client.find_jobs(label)
    assert found and all(j.mcs_label == label for j in found)
    assert client.find_jobs("no-such-label") == []


def test_auto_detection_takes_the_newest_version_the_server_answers():
    client, replay = client_for("v0.0.41", "ping", api_version="auto")
    assert client.api_version == "v0.0.41"
    assert [p for _, p, _, _ in replay.sent] == ["/slurm/v0.0.45/ping", "/slurm/v0.0.44/ping", "/slurm/v0.0.43/ping",
                                                 "/slurm/v0.0.42/ping", "/slurm/v0.0.41/ping"]


def test_auto_detection_on_slurm_26_05_takes_v0045_in_one_request():
    client, replay = client_for("v0.0.45", "ping", api_version="auto")
    assert client.api_version == "v0.0.45" and len(replay.sent) == 1


def test_auto_detection_without_any_supported_version_lists_what_was_probed():
    client, _ = client_for("v0.0.41", api_version="auto")
    with pytest.raises(SlurmAPIError, match=r"v0.0.45: HTTP 404.*v0.0.42: HTTP 404.*v0.0.40: HTTP 404"):
        client.api_version


class Rotating(StaticJWT):
    """A token source that can renew (like MSAL): counts invalidations."""

    def __init__(self):
        super().__init__(TOKEN, "slurmtest")
        self.invalidations = 0

    def invalidate(self):
        self.invalidations += 1
        return True


def test_rejected_token_is_renewed_and_the_request_sent_exactly_once_more():
    rejected = {"request": {"method": "GET", "path": "/slurm/v0.0.42/ping"}, "status": 511,
                "body": {"errors": [{"error_number": 1007, "error": "Protocol authentication error"}]}}
    source = Rotating()
    client, replay = replay_client([rejected, recorded("v0.0.42", "ping")], source)
    assert client.ping()["pings"]
    assert source.invalidations == 1 and len(replay.sent) == 2


def test_token_rejected_twice_is_an_auth_error():
    rejected = {"request": {"method": "GET", "path": "/slurm/v0.0.42/ping"}, "status": 511,
                "body": {"errors": [{"error_number": 1007, "error": "Protocol authentication error"}]}}
    client, replay = replay_client([rejected], Rotating())
    with pytest.raises(SlurmAuthError) as err:
        client.ping()
    assert err.value.status == 511 and 1007 in err.value.error_numbers and len(replay.sent) == 2
    assert TOKEN not in str(err.value)


def test_numbers_in_slurm_no_val_form():
    assert no_val_number({"set": True, "infinite": False, "number": 5}) == 5
    assert no_val_number({"set": False, "infinite": False, "number": 0}) is None
    assert no_val_number({"set": True, "infinite": True, "number": 0}) is None
    assert no_val_number(7) == 7 and no_val_number(None) is None
    assert set_number(3) == {"set": True, "infinite": False, "number": 3}


def test_bare_404_is_an_error_not_a_vanished_job():
    """Only Slurm's error 2017 means "no such job"; a 404 without it (e.g. the version's
    plugin is gone) must never make a running job look vanished."""
    bare = {"request": {"method": "GET", "path": "/slurm/v0.0.42/job/5"}, "status": 404, "body": {}}
    client, _ = client_for("v0.0.42", extra=[bare])
    with pytest.raises(SlurmAPIError) as err:
        client.get_job(5)
    assert err.value.status == 404


class Expiring(Rotating):
    def expiring(self, margin=30):
        return True


def test_submit_is_never_sent_twice_after_a_500_even_with_an_expiring_token():
    failed = {"request": {"method": "POST", "path": "/slurm/v0.0.42/job/submit"}, "status": 500,
              "body": {"errors": [{"error_number": 1, "error": "Unspecified error"}]}}
    source = Expiring()
    client, replay = replay_client([failed], source)
    req = JobRequest(name="n", script="#!/bin/bash\n", environment={"A": "1"}, mcs_label="l",
                     current_working_directory="/tmp")
    with pytest.raises(SlurmAPIError):
        client.submit_job(req)
    assert len(replay.sent) == 1 and source.invalidations == 0


def test_a_get_with_an_expiring_token_is_retried_after_a_500():
    failed = {"request": {"method": "GET", "path": "/slurm/v0.0.42/ping"}, "status": 500,
              "body": {"errors": [{"error_number": 1, "error": "Unspecified error"}]}}
    source = Expiring()
    client, replay = replay_client([failed, recorded("v0.0.42", "ping")], source)
    assert client.ping()["pings"] and source.invalidations == 1 and len(replay.sent) == 2


def test_auto_detection_finds_v0038_on_slurm_22_05():
    client, replay = client_for("v0.0.38", "ping", api_version="auto")
    assert client.api_version == "v0.0.38"
    probed = [p for _, p, _, _ in replay.sent]
    assert probed[0] == "/slurm/v0.0.45/ping" and probed[-1] == "/slurm/v0.0.38/ping"


@pytest.mark.parametrize("version", VERSIONS)
def test_diag_returns_slurmctld_statistics(version):
    client, replay = client_for(version, "diag")
    statistics = client.diag()["statistics"]
    assert statistics["jobs_submitted"] >= 0 and "server_thread_count" in statistics
    assert replay.sent[0][:2] == ("GET", f"/slurm/{version}/diag")


@pytest.mark.parametrize("flag, provisional", [("COMPLETING", "RUNNING"), ("CONFIGURING", "PENDING")])
def test_v0038_flag_shown_instead_of_the_base_state(flag, provisional):
    """22.05's job_state_string() shows a flag instead of the base state: the model says
    so (base_state_known False), keeps the flag, and is not finished."""
    from slurmdeploy import states

    record = dict(recorded("v0.0.38", "job_completed")["body"]["jobs"][0], job_state=flag)
    job = adapter("v0.0.38").parse_job(record)
    assert (job.job_state, job.state_flags, job.base_state_known, job.finished) == (flag, (flag,), False, False)
    assert states.sdp_status(job.job_state) == provisional


def test_v0038_exit_code_is_a_raw_wait_status():
    from slurmdeploy.slurm.versions import wait_status

    assert wait_status(768) == (3, None)  # exit 3 (recorded job_failed)
    assert wait_status(15) == (0, 15)  # killed by SIGTERM (recorded job_cancelled)
    assert wait_status(None) == (None, None) and wait_status(True) == (None, None)


@pytest.mark.parametrize("version", sorted(ADAPTERS))
def test_every_option_is_written_in_the_version_s_shape(version):
    req = JobRequest(name="n", script="#!/bin/bash\n", environment={"A": "1"}, mcs_label="l",
                     current_working_directory="/tmp", partition="debug", account="acct", qos="normal",
                     comment="c", time_limit=10, nodes=2, tasks=4, cpus_per_task=2, memory_per_node=512,
                     standard_output="/tmp/o-%j", standard_error="/tmp/e-%j")
    body = adapter(version).submit_body(req)
    job = body["job"]
    strings = {"partition": "debug", "account": "acct", "qos": "normal", "comment": "c",
               "standard_output": "/tmp/o-%j", "standard_error": "/tmp/e-%j"}
    assert {k: job[k] for k in strings} == strings
    if version == "v0.0.38":
        assert body["script"] == "#!/bin/bash\n" and "script" not in job and job["environment"] == {"A": "1"}
        assert (job["time_limit"], job["tasks"], job["cpus_per_task"], job["memory_per_node"]) == (10, 4, 2, 512)
        assert job["nodes"] == "2-2"  # [2, 2] is silently ignored by 22.05 (read back in integration)
    else:
        assert list(body) == ["job"] and job["script"] == "#!/bin/bash\n" and job["environment"] == ["A=1"]
        # v0.0.39 before 23.02.4 refuses memory_per_node in the {"set", ...} form (parsers.c)
        memory = 512 if version == "v0.0.39" else set_number(512)
        assert job["time_limit"] == set_number(10) and job["memory_per_node"] == memory
        assert job["tasks"] == 4 and job["cpus_per_task"] == 2  # plain int32 (24.11 warns otherwise)
        assert (job["minimum_nodes"], job["maximum_nodes"]) == (2, 2)


def test_a_submit_answered_with_warnings_and_no_job_id_names_the_field():
    # answer seen from Slurm 24.11.5 v0.0.42 when tasks was sent as {"set", ...}
    unparsed = {"request": {"method": "POST", "path": "/slurm/v0.0.42/job/submit"}, "status": 200,
                "body": {"errors": [], "warnings": [{
                    "description": "Expected OpenAPI type=integer format=int32 (Slurm type=64 bit integer) but got "
                                   "OpenAPI type=object (Slurm type=dictionary): {\"set\":true,\"infinite\":false,\"number\":1}",
                    "source": "#/job/tasks/"}]}}
    client, _ = replay_client([unparsed])
    req = JobRequest(name="n", script="#!/bin/bash\n", environment={"A": "1"}, mcs_label="l",
                     current_working_directory="/tmp")
    with pytest.raises(SlurmAPIError, match=r"slurm warning at #/job/tasks/: Expected OpenAPI type=integer"):
        client.submit_job(req)


@pytest.mark.parametrize("version", VERSIONS)
def test_a_refused_submit_is_submit_rejected_with_the_job_slurm_created_anyway(version):
    from slurmdeploy.errors import SubmitRejected

    client, _ = client_for(version, "submit_refused")
    req = JobRequest(name="rec-cpus", script="#!/bin/bash\ntrue", environment={"A": "1"}, mcs_label="l",
                     current_working_directory="/tmp", cpus_per_task=999)
    with pytest.raises(SubmitRejected) as err:
        client.submit_job(req)
    if version == "v0.0.38":  # HTTP 200, a job id and error 2015: the job exists, PENDING
        assert err.value.job_id == recorded(version, "submit_refused")["body"]["job_id"]
        assert err.value.error_numbers == [2015] and err.value.status == 200
    elif version in NEWER:  # 26.05: HTTP 200, a job id, no error, only a warning: the job exists
        assert err.value.job_id == recorded(version, "submit_refused")["body"]["job_id"]
        assert err.value.error_numbers == [] and err.value.status == 200
        assert "Job submission resulted in non-zero return code: Requested partition configuration" in str(err.value)
    else:  # HTTP 500, error 2014, no job id
        assert err.value.job_id is None and err.value.error_numbers == [2014] and err.value.status == 500


def test_a_submit_26_05_answers_with_a_job_id_and_a_non_zero_return_code_warning_is_rejected():
    """Slurm 26.05.5 answers the same refused submit with HTTP 200, a job id, no ``errors`` and
    the warning "Job submission resulted in non-zero return code: ..." (recorded at v0.0.42;
    docs/slurm-rest-26.05.md): that job exists (PENDING, PartitionConfig), so it is a rejection
    that carries the job id for the caller to record and cancel, never a successful submit."""
    from slurmdeploy.errors import SubmitRejected

    answer = recorded("v0.0.42", "submit_refused_26.05")
    assert answer["status"] == 200 and answer["body"]["errors"] == [] and answer["body"]["job_id"]
    client, _ = replay_client([answer])
    req = JobRequest(name="rec-cpus", script="#!/bin/bash\ntrue", environment={"A": "1"}, mcs_label="l",
                     current_working_directory="/tmp", cpus_per_task=999)
    with pytest.raises(SubmitRejected, match="Requested partition configuration not available now") as err:
        client.submit_job(req)
    assert err.value.job_id == answer["body"]["job_id"] and err.value.status == 200 and err.value.errors == []


@pytest.mark.parametrize("version", VERSIONS)
def test_a_listing_with_an_invalid_signature_is_an_auth_error(version):
    client, _ = client_for(version, "jobs_bad_signature", "jobs_bad_signature")
    with pytest.raises(SlurmAuthError) as err:
        client.list_jobs()
    assert err.value.status == (500 if version == "v0.0.38" else 511)


@pytest.mark.parametrize("version", VERSIONS)
def test_a_submit_with_an_unverifiable_token_is_never_read_as_refused(version):
    """22.05 answers HTTP 500 with only error 5005 (slurmctld dropped the request): the job
    may or may not exist as far as the client can tell; 24.11 answers 511: an auth error."""
    from slurmdeploy.errors import SubmitOutcomeUnknown

    client, _ = client_for(version, "submit_bad_signature")
    req = JobRequest(name="rec-badsig", script="#!/bin/bash\ntrue", environment={"A": "1"}, mcs_label="l",
                     current_working_directory="/tmp")
    with pytest.raises(SubmitOutcomeUnknown if version == "v0.0.38" else SlurmAuthError):
        client.submit_job(req)
@pytest.mark.parametrize("version", [v for v in VERSIONS if v != "v0.0.38"])
def test_job_states_asks_for_ids_as_repeated_parameters_and_reads_base_states(version):
    rec = recorded(version, "jobs_state")
    done, failed, unknown = (int(value) for _, value in rec["request"]["params"])
    client, replay = client_for(version, "jobs_state")
    assert client.job_states([failed, done, unknown]) == {done: "COMPLETED", failed: "FAILED"}
    assert replay.urls == [f"http://slurm.test:6820/slurm/{version}/jobs/state/"
                           f"?job_id={min(done, failed)}&job_id={max(done, failed)}&job_id={unknown}"]
    assert client.job_states([]) == {} and len(replay.urls) == 1  # never an unfiltered query


def test_job_states_on_v0038_reads_each_job():
    job_id = recorded("v0.0.38", "job_completed")["body"]["jobs"][0]["job_id"]
    client, replay = client_for("v0.0.38", "job_completed")
    assert client.job_states([job_id]) == {job_id: "COMPLETED"}
    assert [p for _, p, _, _ in replay.sent] == [f"/slurm/v0.0.38/job/{job_id}"]


def test_the_clients_slurm_user_is_the_user_name_it_sends():
    """``SlurmClient.user_name`` (the pack's Slurm user, README "What the pack trusts") is the
    ``X-SLURM-USER-NAME`` of its requests: the configured name, else the JWT's ``sun``."""
    for source, expected in ((StaticJWT(TOKEN, "sdpdeployer"), "sdpdeployer"), (StaticJWT(TOKEN), "slurmtest")):
        client, replay = replay_client([recorded("v0.0.42", "ping")], source=source)
        client.ping()
        assert client.user_name == expected == replay.sent[0][2]["X-SLURM-USER-NAME"]
