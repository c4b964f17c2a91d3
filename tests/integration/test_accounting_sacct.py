"""The accounting actions on real Slurm with slurmdbd (22.05, 24.11, 26.05): every result is compared
with what ``sacct`` prints for the same jobs and window, field by field.

The jobs: one with two ``srun`` steps (one holding a 50 MiB buffer, so jobacct_gather samples a
MaxRSS) and one that exits 3, submitted as the testbed's job user with a name unique to the test.
"""

import json
import time
import uuid

import pytest

import testbed
from integration.conftest import wait_for
from slurmdeploy import configdb as configdb_module
from slurmdeploy.accounted import AccountedJobs, deployment_usage
from slurmdeploy.auth import StaticJWT
from slurmdeploy.configdb import ConfigDB
from slurmdeploy.decisions import Event
from slurmdeploy.errors import BadRequest, NotFound
from slurmdeploy.jobs import deployment_marker, job_name
from slurmdeploy.settings import Settings
from slurmdeploy.slurm import JobRequest, SlurmClient
from slurmdeploy.slurm.accounting import Accounting
from slurmdeploy.states import DeploymentState
from unit.test_accounting import sacct_cpu, sacct_time, sacct_tres

FLAVOURS = ("bookworm", "trixie", "forky")
SACCT_FIELDS = ("JobID,JobName,User,Account,Partition,State,ExitCode,ElapsedRaw,Submit,Start,End,ReqTRES,AllocTRES,"
                "TotalCPU,MaxRSS,NTasks,NodeList,CPUTimeRAW")
STEPS_SCRIPT = ("#!/bin/bash\nsrun -n1 sleep 1\nsrun -n1 sh -c 'dd if=/dev/zero bs=50M count=1 2>/dev/null | sleep 6'\n"
                "echo done\n")


@pytest.fixture(params=FLAVOURS)
def cluster(request, slurm_cluster_of):
    info = slurm_cluster_of(request.param)
    assert info["accounting"], "the session clusters run slurmdbd (SLURMDEPLOY_TESTBED_ACCOUNTING)"
    return info


def client_of(cluster):
    return SlurmClient(cluster["url"], StaticJWT(str(cluster["jwt"]), cluster["user"]), connect_timeout=2,
                       read_timeout=30)


def sacct(cluster, *args):
    out = testbed.slurm_exec(cluster["state_dir"], "sacct", "-P", "--noconvert", *args, check=True).stdout
    lines = out.strip().splitlines()
    head = lines[0].split("|")
    return {row[0]: dict(zip(head, row)) for row in (ln.split("|") for ln in lines[1:])}


def submit(client, name, script, comment=None):
    return client.submit_job(JobRequest(name=name, script=script, environment={"PATH": "/usr/bin:/bin"},
                                        mcs_label="", current_working_directory="/tmp", time_limit=5,
                                        comment=comment))


def wait_accounted(cluster, ids, steps_of=None, timeout=90):
    """Until sacct shows every job ended (and ``steps_of``'s step 1 ended: its record arrives last)."""
    wanted = {str(i) for i in ids}

    def done():
        rows = sacct(cluster, "-j", ",".join(wanted), "-o", "JobID,State")
        ended = all(rows.get(i, {}).get("State", "").split(" ")[0] in ("COMPLETED", "FAILED") for i in wanted)
        return ended and (steps_of is None or rows.get(f"{steps_of}.1", {}).get("State") == "COMPLETED")
    wait_for(done, timeout=timeout, what=f"sacct to show jobs {sorted(wanted)} ended")


@pytest.fixture
def finished_jobs(cluster):
    client = client_of(cluster)
    tag = uuid.uuid4().hex[:8]
    start = int(time.time()) - 1
    steps = submit(client, f"acct-{tag}-steps", STEPS_SCRIPT)
    failed = submit(client, f"acct-{tag}-exit3", "#!/bin/bash\nsleep 1\nexit 3\n")
    wait_accounted(cluster, [steps, failed], steps_of=steps)
    time.sleep(1)
    return {"client": client, "tag": tag, "ids": [steps, failed], "start": start, "end": int(time.time()) + 1}


def test_job_history_matches_sacct_field_by_field(cluster, finished_jobs):
    acct = Accounting(finished_jobs["client"])
    ids = finished_jobs["ids"]
    names = [f"acct-{finished_jobs['tag']}-steps", f"acct-{finished_jobs['tag']}-exit3"]
    out = acct.job_history(finished_jobs["start"], finished_jobs["end"], job_names=names, users=cluster["user"],
                           accounts=cluster["account"])
    assert [j["job_id"] for j in out["jobs"]] == sorted(ids) and out["next"] is None
    rows = sacct(cluster, "-j", ",".join(map(str, ids)), "-o", SACCT_FIELDS)
    for job in out["jobs"]:
        row = rows[str(job["job_id"])]
        assert (job["name"], job["user_name"], job["account"], job["partition"]) == (
            row["JobName"], row["User"], row["Account"], row["Partition"])
        assert job["job_state"] == row["State"]
        assert job["elapsed"] == int(row["ElapsedRaw"])
        assert (job["submit_time"], job["start_time"], job["end_time"]) == (
            sacct_time(row["Submit"]), sacct_time(row["Start"]), sacct_time(row["End"]))
        assert job["tres_requested"] == sacct_tres(row["ReqTRES"])
        assert job["tres_allocated"] == sacct_tres(row["AllocTRES"])
        assert job["cpu_time"] == pytest.approx(sacct_cpu(row["TotalCPU"]), abs=0.001)
        code = int(row["ExitCode"].split(":")[0])
        if cluster["api_version"] == "v0.0.38" and job["job_state"] != "COMPLETED":
            assert code == 3 and job["exit_code"] is None  # 22.05's REST says SUCCESS/0: read as unknown
        else:
            assert job["exit_code"] == code
        for step in job["steps"]:
            srow = rows[f"{job['job_id']}.{step['step_id']}"]
            assert (step["name"], step["job_state"], step["tasks"], step["nodes"]) == (
                srow["JobName"], srow["State"], int(srow["NTasks"]), srow["NodeList"])
            assert step["max_rss"] == (int(srow["MaxRSS"]) if srow["MaxRSS"] else None)
            assert step["cpu_time"] == pytest.approx(sacct_cpu(srow["TotalCPU"]), abs=0.001)
    steps_job = next(j for j in out["jobs"] if j["job_id"] == ids[0])
    assert [s["step_id"] for s in steps_job["steps"]] == ["batch", "0", "1"]
    assert steps_job["max_rss"] > 50 * 1024 * 1024  # the dd step's 50 MiB buffer


def test_job_steps_match_sacct(cluster, finished_jobs):
    ids = finished_jobs["ids"]
    out = Accounting(finished_jobs["client"]).job_steps(ids)
    rows = sacct(cluster, "-j", ",".join(map(str, ids)), "-o", "JobID,JobName,State")
    for job in out["jobs"]:
        assert [f"{job['job_id']}.{s['step_id']}" for s in job["steps"]] == [
            k for k in rows if k.startswith(f"{job['job_id']}.") and not k.endswith(".extern")]
        assert [s["name"] for s in job["steps"]] == [rows[f"{job['job_id']}.{s['step_id']}"]["JobName"]
                                                    for s in job["steps"]]
    with pytest.raises(NotFound, match="no accounting record of Slurm job 4000000"):
        Accounting(finished_jobs["client"]).job_steps([4000000])


def test_usage_report_matches_sacct_truncated_cpu_time(cluster, finished_jobs):
    start, end = finished_jobs["start"], finished_jobs["end"]
    acct = Accounting(finished_jobs["client"])
    report = acct.usage_report(start, end, group_by="account,user", users=cluster["user"], output="csv")
    iso = [time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(t)) for t in (start, end)]
    # the same query to sacct: allocations only (-X), truncated to the window (-T), every state
    rows = sacct(cluster, "-X", "-T", "-u", cluster["user"], "-S", iso[0], "-E", iso[1], "-o",
                 "JobID,Account,User,CPUTimeRAW,AllocTRES,Start")
    expected = {}
    for row in rows.values():
        group = (row["Account"], row["User"])
        expected.setdefault(group, {"jobs": 0, "cpu": 0})
        expected[group]["jobs"] += 1
        expected[group]["cpu"] += int(row["CPUTimeRAW"] or 0)
    got = {(r["account"], r["user"]): {"jobs": r["jobs"], "cpu": r["tres_seconds"].get("cpu", 0)}
           for r in report["rows"]}
    assert got == expected
    assert got[(cluster["account"], cluster["user"])]["jobs"] >= 2
    assert report["csv"].splitlines()[0].startswith("account,user,jobs,jobs_ran,cpu_minutes")


def test_bad_input_is_refused_with_a_clear_error(cluster):
    acct = Accounting(client_of(cluster))
    with pytest.raises(NotFound, match="unknown account 'no-such-account'"):
        acct.job_history("now-1h", accounts="no-such-account")
    with pytest.raises(NotFound, match="unknown user 'no-such-user'"):
        acct.usage_report("now-1h", "now", users="no-such-user")
    with pytest.raises(NotFound, match="unknown cluster 'no-such-cluster'"):
        acct.job_history("now-1h", clusters="no-such-cluster")
    with pytest.raises(BadRequest, match="empty or reversed"):
        acct.job_history("now", "now-1h")
    with pytest.raises(BadRequest, match="start_time is required"):
        acct.job_history(None)


def test_deployment_usage_and_the_job_accounted_event(cluster, finished_jobs, etcd_server, configdb_prefix, tmp_path):
    settings = Settings.from_config({"slurm_url": cluster["url"], "client_id": cluster["user"], "slurm_jwt": "x",
                                     "config_host": etcd_server["host"], "config_port": etcd_server["port"],
                                     "config_prefix": configdb_prefix, "liveness_file": str(tmp_path / "a")}, {})
    db = ConfigDB.from_settings(settings)
    key = f"acct-{finished_jobs['tag']}"
    ok, created = configdb_module.deployment_create(db, key, {"script": "#!/bin/bash\ntrue\n"})
    assert ok, created
    dep = db.get_deployment(key)
    client = finished_jobs["client"]
    job_id = submit(client, job_name(key), "#!/bin/bash\nsleep 1\n", comment=deployment_marker(key, dep.revision))
    # another user's copy with the same name and marker is never reported
    mallory = SlurmClient(cluster["url"], StaticJWT(str(testbed.mint_token(cluster["state_dir"], "mallory")),
                                                    "mallory"))
    copy = submit(mallory, job_name(key), "#!/bin/bash\nsleep 1\n", comment=deployment_marker(key, dep.revision))
    assert db.write_state(key, DeploymentState(key, job_id, "RUNNING", None), 0, dep.revision)
    acct = Accounting(client)
    accounted = AccountedJobs(acct, cluster["user"], check_interval=0)
    accounted.note([Event("job_state_changed", {"key": key, "job_id": job_id, "job_state": "COMPLETED",
                                                "previous_status": "RUNNING", "status": "FINISHED",
                                                "state_reason": None, "state_description": None}, "t")])
    events = []
    wait_for(lambda: events.extend(accounted.check(force=True)) or events, timeout=90,
             what=f"job_accounted for job {job_id}")
    wait_accounted(cluster, [job_id, copy])
    rows = sacct(cluster, "-j", str(job_id), "-o", SACCT_FIELDS)
    [event] = events
    payload = event.payload
    assert (payload["key"], payload["job_id"], payload["job_state"], payload["complete"]) == (
        key, job_id, "COMPLETED", True)
    assert payload["elapsed"] == int(rows[str(job_id)]["ElapsedRaw"])
    assert payload["tres_allocated"] == sacct_tres(rows[str(job_id)]["AllocTRES"])
    usage = deployment_usage(db, acct, cluster["user"], key, start_time=finished_jobs["start"])
    assert usage["deployment_exists"] and usage["job_id"] == job_id
    assert [j["job_id"] for j in usage["jobs"]] == [job_id]  # mallory's copy left out
    assert usage["current"]["elapsed"] == int(rows[str(job_id)]["ElapsedRaw"])
    with pytest.raises(NotFound, match="does not exist"):
        deployment_usage(db, acct, cluster["user"], "acct-never-created", start_time="now-1h")


def test_accounting_actions_run_through_the_runner(cluster, finished_jobs, etcd_server, configdb_prefix, tmp_path):
    """The action files as StackStorm runs them (packrunner): parameters cast from their YAML
    (job_ids as st2 run passes "a,b"), (ok, result), errors as failed executions, never the token."""
    from pathlib import Path

    Runner = pytest.importorskip("packrunner.runner", reason="needs packrunner").Runner
    repo = Path(__file__).resolve().parents[2]
    token = str(cluster["jwt"])
    config = {"slurm_url": cluster["url"], "client_id": cluster["user"], "slurm_jwt": token,
              "config_host": etcd_server["host"], "config_port": etcd_server["port"],
              "config_prefix": configdb_prefix, "liveness_file": ""}
    ids = finished_jobs["ids"]
    window = {"start_time": str(finished_jobs["start"]), "end_time": str(finished_jobs["end"])}
    with Runner(str(repo), config=config, state_dir=str(tmp_path / "state")) as runner:
        results = {
            "history": runner.run_action("slurmdeploy.job_history", dict(
                window, job_names=[f"acct-{finished_jobs['tag']}-steps", f"acct-{finished_jobs['tag']}-exit3"],
                limit=1)),
            "steps": runner.run_action("slurmdeploy.job_steps", {"job_ids": [str(i) for i in ids]}),
            "usage": runner.run_action("slurmdeploy.usage_report", dict(window, group_by="user", output="csv")),
            "deployment": runner.run_action("slurmdeploy.deployment_usage", {"key": "acct-never-created"}),
            "reversed": runner.run_action("slurmdeploy.job_history", {"start_time": "now", "end_time": "now-1h"}),
            "account": runner.run_action("slurmdeploy.usage_report", {"period": "last_month",
                                                                      "accounts": ["no-such-account"]}),
        }
    status = {k: r["status"] for k, r in results.items()}
    assert status == {"history": "succeeded", "steps": "succeeded", "usage": "succeeded", "deployment": "failed",
                      "reversed": "failed", "account": "failed"}
    history = results["history"]["result"]
    assert [j["job_id"] for j in history["jobs"]] == [min(ids)] and history["next"]
    assert [j["job_id"] for j in results["steps"]["result"]["jobs"]] == ids
    assert results["usage"]["result"]["csv"].startswith("user,jobs,jobs_ran,cpu_minutes")
    assert results["deployment"]["result"]["error_type"] == "NotFound"
    assert results["reversed"]["result"]["error_type"] == "BadRequest"
    assert "unknown account 'no-such-account'" in results["account"]["result"]["error"]
    assert token not in json.dumps(results)
