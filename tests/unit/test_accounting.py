"""Accounting (slurmdbd through slurmrestd) against answers recorded from real Slurm, with
``sacct``'s view of the same jobs recorded in the same run (``scripts/record-accounting-responses.py``,
tests/fixtures/slurm/README.md): every parsed field is compared with sacct's."""

import json
from datetime import datetime, timezone

import pytest
import requests

from slurm_replay import FIXTURES, TOKEN, Replay, recorded
from slurmdeploy.auth import StaticJWT
from slurmdeploy.errors import BadRequest, NotFound, SlurmAPIError
from slurmdeploy.slurm import SlurmClient
from slurmdeploy.slurm.accounting import (Accounting, AccountingUnavailable, decode_token, encode_token, parse_job,
                                          parse_time, report_csv, time_window, tres_dict, usage_seconds)

#: versions with accounting recordings
VERSIONS = sorted(p.parent.name for p in FIXTURES.glob("v*/accounting_sacct.json"))


def sacct_meta(version):
    return json.loads((FIXTURES / version / "accounting_sacct.json").read_text())


def sacct_rows(version):
    """sacct -P --noconvert output of the recording run -> {JobID: {field: value}}."""
    lines = sacct_meta(version)["sacct_output"].strip().splitlines()
    head = lines[0].split("|")
    return {row[0]: dict(zip(head, row)) for row in (ln.split("|") for ln in lines[1:])}


def sacct_tres(text):
    """sacct's ReqTRES/AllocTRES (``billing=1,cpu=1,mem=21694M,node=1``) -> {name: count}, memory
    in MB as the REST records carry it."""
    units = {"K": 1 / 1024, "M": 1, "G": 1024, "T": 1024 * 1024}
    out = {}
    for item in filter(None, text.split(",")):
        name, value = item.split("=", 1)
        if value[-1] in units:
            out[name] = int(round(float(value[:-1]) * units[value[-1]]))
        else:
            out[name] = int(value)
    return out


def sacct_time(text):
    """sacct's Submit/Start/End (recorded on a UTC host) -> epoch seconds, None for Unknown."""
    if text in ("Unknown", "None", ""):
        return None
    return int(datetime.fromisoformat(text).replace(tzinfo=timezone.utc).timestamp())


def sacct_cpu(text):
    """sacct's TotalCPU (``00:00.094``, ``01:02:03``, ``1-00:00:00``) -> seconds."""
    days = 0
    if "-" in text:
        d, text = text.split("-", 1)
        days = int(d)
    parts = [float(p) for p in text.split(":")]
    while len(parts) < 3:
        parts.insert(0, 0.0)
    return days * 86400 + parts[0] * 3600 + parts[1] * 60 + parts[2]


def accounting_on(version, names, clock=None):
    replay = Replay([recorded(version, n) for n in names])
    session = requests.Session()
    session.mount("http://", replay)
    client = SlurmClient("http://slurm.test", StaticJWT(TOKEN, user_name="slurmtest"), api_version=version,
                         session=session)
    meta = sacct_meta(version)
    return Accounting(client, clock=clock or (lambda: meta["window"]["end_time"])), replay


def recorded_jobs(version):
    return [parse_job(r, version) for r in recorded(version, "accounting_jobs")["body"]["jobs"]]


@pytest.mark.parametrize("version", VERSIONS)
def test_recorded_jobs_match_sacct_field_by_field(version):
    rows = sacct_rows(version)
    jobs = recorded_jobs(version)
    assert sorted(j["job_id"] for j in jobs) == sorted(sacct_meta(version)["job_ids"])
    for job in jobs:
        row = rows[str(job["job_id"])]
        assert job["name"] == row["JobName"]
        assert job["user_name"] == row["User"]
        assert job["account"] == row["Account"]
        assert job["partition"] == row["Partition"]
        assert job["job_state"] == row["State"].split()[0]
        if job["job_state"] == "RUNNING":  # sacct ran a few seconds after the recording
            assert 0 < job["elapsed"] <= int(row["ElapsedRaw"])
        else:
            assert job["elapsed"] == int(row["ElapsedRaw"])
        assert job["submit_time"] == sacct_time(row["Submit"])
        assert job["eligible_time"] == sacct_time(row["Eligible"])
        assert job["start_time"] == sacct_time(row["Start"])
        assert job["end_time"] == sacct_time(row["End"])
        assert job["tres_requested"] == sacct_tres(row["ReqTRES"])
        assert job["tres_allocated"] == sacct_tres(row["AllocTRES"])
        assert job["nodes"] == row["NodeList"]
        if job["job_state"] != "RUNNING":
            # sacct prints TotalCPU to the millisecond, truncated
            assert job["cpu_time"] == pytest.approx(sacct_cpu(row["TotalCPU"]), abs=0.001)
        code, signal = (int(x) for x in row["ExitCode"].split(":"))
        if version == "v0.0.38" and job["job_state"] not in ("COMPLETED", "RUNNING"):
            # 22.05.8 reports a non-zero exit as SUCCESS/0: read as unknown, never as 0
            assert code != 0 and job["exit_code"] is None
        else:
            assert (job["exit_code"], job["exit_signal"] or 0) == (code, signal)
        assert [s["step_id"] for s in job["steps"]] == [k.split(".", 1)[1] for k in rows
                                                        if k.startswith(f"{job['job_id']}.")]
        for step in job["steps"]:
            srow = rows[f"{job['job_id']}.{step['step_id']}"]
            assert step["name"] == srow["JobName"]
            assert step["job_state"] == srow["State"].split()[0]
            assert step["tasks"] == int(srow["NTasks"])
            assert step["nodes"] == srow["NodeList"]
            assert step["tres_allocated"] == sacct_tres(srow["AllocTRES"])
            assert step["start_time"] == sacct_time(srow["Start"])
            assert step["end_time"] == sacct_time(srow["End"])
            assert step["max_rss"] == (int(srow["MaxRSS"]) if srow["MaxRSS"] else None) or (
                step["job_state"] == "RUNNING")
            if srow["ConsumedEnergyRaw"]:
                assert step["energy"] == int(srow["ConsumedEnergyRaw"])
            if step["job_state"] != "RUNNING":
                assert step["cpu_time"] == pytest.approx(sacct_cpu(srow["TotalCPU"]), abs=0.001)
        steps_rss = [s["max_rss"] for s in job["steps"] if s["max_rss"]]
        assert job["max_rss"] == (max(steps_rss) if steps_rss else None)


@pytest.mark.parametrize("version", VERSIONS)
def test_job_history_reads_the_window_and_filters_users(version):
    meta = sacct_meta(version)
    names = ["accounting_user", "accounting_jobs", "accounting_job_running"]
    accounting, replay = accounting_on(version, names)
    window = meta["window"]
    out = accounting.job_history(window["start_time"], window["end_time"], users="slurmtest", chunk=86400)
    assert [j["job_id"] for j in out["jobs"]] == sorted(meta["job_ids"])
    assert out["next"] is None
    urls = [u for u in replay.urls if "/jobs/" in u]
    assert urls and all(("users=" in u) == (version != "v0.0.38") for u in urls)
    if version == "v0.0.38":
        # 22.05 refuses an epoch number: the window goes out as local ISO times
        assert all("start_time=20" in u for u in urls)
        assert recorded(version, "accounting_jobs_users")["body"]["errors"][0]["description"] == "Unknown Query field"
        assert recorded(version, "accounting_jobs_epoch_time")["status"] == 500


@pytest.mark.parametrize("version", VERSIONS)
def test_job_history_limit_returns_a_token_that_resumes_after_the_last_job(version):
    meta = sacct_meta(version)
    accounting, _ = accounting_on(version, ["accounting_jobs", "accounting_job_running"])
    window = meta["window"]
    first = accounting.job_history(window["start_time"], window["end_time"], limit=2, chunk=86400)
    assert [j["job_id"] for j in first["jobs"]] == sorted(meta["job_ids"])[:2]
    assert first["next"]
    rest = accounting.job_history(window["start_time"], window["end_time"], limit=2, next_token=first["next"],
                                  chunk=86400)
    assert [j["job_id"] for j in rest["jobs"]] == sorted(meta["job_ids"])[2:]
    assert rest["next"] is None


@pytest.mark.parametrize("version", VERSIONS)
def test_a_job_spanning_chunks_is_returned_once(version):
    meta = sacct_meta(version)
    window = meta["window"]
    # every chunk answers the same three jobs (the one recording), as slurmdbd answers a job
    # running across chunks in each of them
    accounting, replay = accounting_on(version, ["accounting_jobs", "accounting_job_steps", "accounting_job_failed",
                                                 "accounting_job_running"])
    jobs = list(accounting.iter_jobs(window["start_time"], window["start_time"] + 600, chunk=60))
    assert sorted(j["job_id"] for j, _ in jobs) == sorted(meta["job_ids"])
    # chunks of 60, 120, 240 s, then the rest (a chunk with few records doubles the next one)
    assert len([u for u in replay.urls if "/jobs/" in u]) == 4
    # slurmdbd returns only the steps inside the query window: a job running past its chunk is
    # read again whole (here the running one, whose chunk ends before now)
    assert [u.rsplit("/", 1)[1] for u in replay.urls if "/job/" in u] == [str(meta["job_ids"][2])]


@pytest.mark.parametrize("version", VERSIONS)
def test_job_steps_of_several_jobs(version):
    meta = sacct_meta(version)
    rows = sacct_rows(version)
    accounting, _ = accounting_on(version, ["accounting_job_steps", "accounting_job_failed"])
    out = accounting.job_steps(meta["job_ids"][:2])
    assert [j["job_id"] for j in out["jobs"]] == meta["job_ids"][:2]
    for job in out["jobs"]:
        assert [f"{job['job_id']}.{s['step_id']}" for s in job["steps"]] == [
            k for k in rows if k.startswith(f"{job['job_id']}.")]


@pytest.mark.parametrize("version", VERSIONS)
def test_unknown_job_account_user_cluster_are_not_found(version):
    meta = sacct_meta(version)
    window = meta["window"]
    accounting, _ = accounting_on(version, ["accounting_job_unknown"])
    with pytest.raises(NotFound, match="no accounting record of Slurm job 999999"):
        accounting.job_steps([999999])
    for kind, name in (("account", "nosuchaccount"), ("user", "nosuchuser"), ("cluster", "nosuchcluster")):
        accounting, replay = accounting_on(version, [f"accounting_{kind}_unknown"])
        with pytest.raises(NotFound, match=f"unknown {kind} '{name}'"):
            accounting.job_history(window["start_time"], window["end_time"], **{f"{kind}s": name})
        assert not [u for u in replay.urls if "/jobs/" in u], "no job query after an unknown name"


@pytest.mark.parametrize("version", [v for v in VERSIONS if (FIXTURES / v / "accounting_jobs_dbd_down.json").exists()])
def test_slurmdbd_down_is_an_error_not_an_empty_history(version):
    meta = sacct_meta(version)
    window = meta["window"]
    down = recorded(version, "accounting_jobs_dbd_down")
    # 22.05.8: HTTP 200, "jobs": [] and error 7000 - an empty history to a client reading only the
    # status; 24.11.5 and 26.05.5: HTTP 502 (retried by urllib3) and error 7000
    assert down["status"] == (200 if version == "v0.0.38" else 502)
    assert not down["body"].get("jobs") and 7000 in [e.get("error_number") for e in down["body"]["errors"]]
    accounting, _ = accounting_on(version, ["accounting_jobs_dbd_down"])
    with pytest.raises(AccountingUnavailable, match="slurmdbd did not answer"):
        accounting.job_history(window["start_time"], window["end_time"])
    accounting, _ = accounting_on(version, ["accounting_account_dbd_down"])
    with pytest.raises(AccountingUnavailable):
        accounting.usage_report(window["start_time"], window["end_time"], accounts="labaccount")


@pytest.mark.parametrize("version", VERSIONS)
def test_usage_report_matches_sacct_cpu_time_per_account_and_user(version):
    meta = sacct_meta(version)
    rows = sacct_rows(version)
    window = meta["window"]
    accounting, _ = accounting_on(version, ["accounting_jobs_no_steps"])
    report = accounting.usage_report(window["start_time"], window["end_time"], group_by="account,user",
                                     output="csv", chunk=86400)
    [row] = report["rows"]
    assert (row["account"], row["user"]) == ("labaccount", "slurmtest")
    assert row["jobs"] == row["jobs_ran"] == 3
    end = window["end_time"]
    expected = 0
    for job_id in meta["job_ids"]:
        r = rows[str(job_id)]
        ran = (sacct_time(r["End"]) or end) - sacct_time(r["Start"])
        expected += ran * sacct_tres(r["AllocTRES"])["cpu"]
    assert row["tres_seconds"]["cpu"] == expected
    assert row["tres_minutes"]["cpu"] == round(expected / 60, 3)
    assert report["csv"].splitlines()[0].startswith("account,user,jobs,jobs_ran,cpu_minutes")
    assert report["csv"].splitlines()[1].startswith("labaccount,slurmtest,3,3,")


def test_usage_seconds_truncates_to_the_window_like_sacct_T():
    job = {"start_time": 100, "end_time": 400}
    assert usage_seconds(job, 0, 1000, 2000) == 300
    assert usage_seconds(job, 200, 300, 2000) == 100
    assert usage_seconds(job, 500, 600, 2000) == 0
    assert usage_seconds({"start_time": 100, "end_time": None}, 0, 1000, 250) == 150
    assert usage_seconds({"start_time": None, "end_time": 300}, 0, 1000, 2000) == 0


@pytest.mark.parametrize("start, end, message", [
    (None, None, "start_time is required"),
    ("", "now", "start_time is required"),
    (2000, 1000, "empty or reversed"),
    (1000, 1000, "empty or reversed"),
    ("yesterday", None, "cannot read 'yesterday' as a time"),
    (0, 10 * 366 * 86400 + 10, "longer than ten years"),
])
def test_bad_time_windows_are_refused_before_any_request(start, end, message):
    with pytest.raises(BadRequest, match=message):
        time_window(start, end, now=10 ** 9)


def test_time_forms():
    now = 1_800_000_000
    assert parse_time("now", now, "x") == now
    assert parse_time("now-7d", now, "x") == now - 7 * 86400
    assert parse_time("now-30minutes", now, "x") == now - 1800
    assert parse_time("2026-12-01", now, "x") == 1796083200
    assert parse_time("2026-12-01T01:00:00+01:00", now, "x") == 1796083200
    assert parse_time(12345, now, "x") == parse_time("12345", now, "x") == 12345


def test_bad_filters_and_tokens_are_refused():
    accounting = Accounting(client=None, clock=lambda: 10 ** 9)
    with pytest.raises(BadRequest, match="unknown job state"):
        accounting.job_history("now-1d", states="DONE")
    with pytest.raises(BadRequest, match="limit must be"):
        accounting.job_history("now-1d", limit=0)
    with pytest.raises(BadRequest, match="not one job_history returned"):
        accounting.job_history("now-1d", next_token="garbage!")
    with pytest.raises(BadRequest, match="end_time is required"):
        accounting.usage_report("now-1d", None)
    with pytest.raises(BadRequest, match="group_by"):
        accounting.usage_report("now-1d", "now", group_by="partition")
    with pytest.raises(BadRequest, match="job_ids"):
        accounting.job_steps([])
    with pytest.raises(BadRequest, match="not a Slurm job id"):
        accounting.job_steps([0])
    assert decode_token(encode_token(5, 60, 7)) == (5, 60, 7)


def test_tres_names_as_sacct_prints_them():
    assert tres_dict([{"type": "cpu", "name": None, "count": 2}, {"type": "gres", "name": "gpu", "count": 1},
                      {"type": "energy", "name": None, "count": None}]) == {"cpu": 2, "gres/gpu": 1}


def test_report_csv_columns():
    report = {"group_by": ["account"], "tres": ["cpu", "gres/gpu"],
              "rows": [{"account": "a", "jobs": 2, "jobs_ran": 1, "tres_minutes": {"cpu": 1.5}}]}
    assert report_csv(report) == "account,jobs,jobs_ran,cpu_minutes,gres/gpu_minutes\na,2,1,1.5,0\n"


def test_unknown_version_answer_without_the_plugin_says_how_to_load_it():
    replay = Replay([{"request": {"method": "GET", "path": "/slurmdb/v0.0.42/jobs/"}, "status": 404,
                      "body": "Unable to find requested URL endpoint"},
                     {"request": {"method": "GET", "path": "/openapi/v3"}, "status": 200,
                      "body": {"paths": {"/slurm/v0.0.42/ping": {}}}}])
    session = requests.Session()
    session.mount("http://", replay)
    client = SlurmClient("http://slurm.test", StaticJWT(TOKEN, user_name="slurmtest"), api_version="v0.0.42",
                         session=session)
    with pytest.raises(AccountingUnavailable, match="openapi/slurmdbd"):
        Accounting(client, clock=lambda: 10 ** 9).job_history("now-1h")
    with pytest.raises(SlurmAPIError):
        raise AccountingUnavailable("x")


@pytest.mark.parametrize("version", VERSIONS)
def test_a_window_without_jobs_is_an_empty_history(version):
    # 22.05.8 answers a query that finds nothing with HTTP 200 and error 9003 "Nothing found" (the
    # recorded unknown job id; an empty window gives the same answer, seen in
    # tests/integration/test_accounting_sacct.py); 24.11+ with an empty list
    empty = recorded(version, "accounting_job_unknown")
    empty["request"]["path"] = f"/slurmdb/{version}/jobs/"
    replay = Replay([empty])
    session = requests.Session()
    session.mount("http://", replay)
    client = SlurmClient("http://slurm.test", StaticJWT(TOKEN, user_name="slurmtest"), api_version=version,
                         session=session)
    out = Accounting(client, clock=lambda: 10 ** 9).job_history(10 ** 9 - 3600, chunk=86400)
    assert out["jobs"] == [] and out["next"] is None


def test_flags_are_query_keys_of_their_own_and_skip_steps_alone_truncates():
    # v0.0.40+: a "flags" list is ignored with a warning (the steps come back) - recorded with the
    # recorder's first query form on 24.11.5 and 26.05.5
    for version in [v for v in VERSIONS if v != "v0.0.38"]:
        ignored = recorded(version, "accounting_jobs_no_steps")
        assert ("flags", "skip_steps") in [tuple(p) for p in ignored["request"]["params"]]
        assert 'Ignoring unknown field "flags"' in ignored["body"]["warnings"][0]["description"]
        assert any(j["steps"] for j in ignored["body"]["jobs"])
    # skip_steps=true alone replaces the default DUP|NO_TRUNC: times truncated to the window (24.11.5)
    truncated = recorded("v0.0.42", "accounting_jobs_skip_steps_truncated")["body"]["jobs"]
    whole = recorded("v0.0.42", "accounting_jobs_skip_steps")["body"]["jobs"]
    window_end = int(recorded("v0.0.42", "accounting_jobs_skip_steps")["request"]["params"][1][1])
    assert [j["time"]["end"] for j in truncated if j["time"]["end"] != [w for w in whole
                                                                         if w["job_id"] == j["job_id"]][0]["time"]["end"]]
    assert all(not j["steps"] for j in truncated + whole)
    late = [w for w in whole if w["time"]["end"] > window_end]
    assert late and all(t["time"]["end"] == window_end for t in truncated if t["job_id"] in {w["job_id"] for w in late})
    # so the usage report asks for both
    replay = Replay([recorded("v0.0.42", "accounting_jobs_skip_steps")])
    session = requests.Session()
    session.mount("http://", replay)
    client = SlurmClient("http://slurm.test", StaticJWT(TOKEN, user_name="slurmtest"), api_version="v0.0.42",
                         session=session)
    Accounting(client, clock=lambda: window_end).usage_report(window_end - 34, window_end, chunk=86400)
    [url] = [u for u in replay.urls if "/jobs/" in u]
    assert "skip_steps=true" in url and "disable_truncate_usage_time=true" in url and "flags=" not in url
