"""The testbed itself: real etcd and Slurm answer as the rest of the suite expects."""

import json
import os
import time

import requests

import testbed
from slurmdeploy.auth import StaticJWT
from slurmdeploy.slurm import JobRequest, SlurmClient


def _headers(cluster, token=None):
    return {
        "X-SLURM-USER-NAME": cluster["user"],
        "X-SLURM-USER-TOKEN": str(token or cluster["jwt"]),
        "Content-Type": "application/json",
    }


def _wait_for_state(cluster, job_id, wanted, timeout=60):
    api = cluster["api_version"]
    deadline = time.monotonic() + timeout
    states = []
    while time.monotonic() < deadline:
        r = requests.get(f"{cluster['url']}/slurm/{api}/job/{job_id}", headers=_headers(cluster), timeout=10)
        assert r.status_code == 200, r.text
        jobs = r.json()["jobs"]
        assert len(jobs) == 1 and jobs[0]["job_id"] == job_id
        states = jobs[0]["job_state"]
        if wanted in states:
            return jobs[0]
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} did not reach {wanted} in {timeout}s (last {states})")


def test_etcd_put_get(etcd_client, configdb_prefix):
    key = f"{configdb_prefix}/testbed/tb-smoke"  # etcd alone, not the deployment layout
    value = json.dumps({"key": "tb-smoke", "kind": "slurm", "args": {}}, sort_keys=True)
    assert etcd_client.put(key, value)
    got = etcd_client.get(key)
    assert [v.decode() if isinstance(v, bytes) else v for v in got] == [value]
    assert etcd_client.get(f"{configdb_prefix}/missing") == []


def test_etcd_info(etcd_server):
    assert etcd_server["host"] == "127.0.0.1"
    r = requests.get(f"{etcd_server['url']}/version", timeout=5)
    assert r.status_code == 200 and "etcdserver" in r.json()
    assert etcd_server["pid"] > 1


def test_slurm_openapi_lists_reported_versions(slurm_cluster):
    assert slurm_cluster["api_versions"], "slurm.sh reported no REST API versions"
    assert slurm_cluster["api_version"] == slurm_cluster["api_versions"][-1]
    r = requests.get(f"{slurm_cluster['url']}/openapi/v3", headers=_headers(slurm_cluster), timeout=30)
    assert r.status_code == 200
    paths = r.json()["paths"]
    for api in slurm_cluster["api_versions"]:
        assert f"/slurm/{api}/job/submit" in paths, api
        assert f"/slurm/{api}/job/{{job_id}}" in paths, api
        assert f"/slurm/{api}/jobs/" in paths or f"/slurm/{api}/jobs" in paths, api


def _submit_body(api, script, job):
    """The raw submit body of REST API ``api`` (the testbed checks the wire, not the library):
    v0.0.38 (Slurm 22.05) takes a top-level ``script`` and an ``environment`` dict
    (``v0.0.38_job_submission`` in Slurm 22.05's OpenAPI document); v0.0.40+ the script inside
    ``job`` and ``environment`` as a ``NAME=value`` list."""
    env = job.pop("environment")
    if api == "v0.0.38":
        return {"script": script, "job": dict(job, environment=env)}
    return {"job": dict(job, script=script, environment=[f"{k}={v}" for k, v in env.items()])}


def test_submit_job_completes(any_slurm_cluster):
    cluster = any_slurm_cluster
    api = cluster["api_version"]
    body = _submit_body(api, "#!/bin/bash\necho hi", {
        "name": "tb-smoke",
        "environment": {"PATH": "/usr/bin:/bin"},
        "current_working_directory": "/tmp",
        "mcs_label": "tb_smoke",
    })
    r = requests.post(f"{cluster['url']}/slurm/{api}/job/submit", json=body,
                      headers=_headers(cluster), timeout=30)
    assert r.status_code == 200, r.text
    answer = r.json()
    assert not answer.get("errors"), answer["errors"]
    job_id = answer["job_id"]
    assert isinstance(job_id, int) and job_id > 0
    job = _wait_for_state(cluster, job_id, "COMPLETED")
    assert job["name"] == "tb-smoke"
    assert job["mcs_label"] == "tb_smoke"
    # the CLI sees the same job (slurm_exec runs in the cluster's root)
    out = testbed.slurm_exec(cluster["state_dir"], "scontrol", "show", "job", str(job_id), check=True)
    assert "JobState=COMPLETED" in out.stdout


def test_mint_token_works(slurm_cluster):
    token = testbed.mint_token(slurm_cluster["state_dir"], lifespan=600)
    assert token.count(".") == 2 and token != slurm_cluster["jwt"]
    assert "<redacted>" in repr(token) and str(token) not in repr(slurm_cluster)
    api = slurm_cluster["api_version"]
    r = requests.get(f"{slurm_cluster['url']}/slurm/{api}/jobs", headers=_headers(slurm_cluster, token), timeout=30)
    assert r.status_code == 200, r.text
    bad = requests.get(f"{slurm_cluster['url']}/slurm/{api}/jobs",
                       headers=_headers(slurm_cluster, token[:-4] + "AAAA"), timeout=30)
    assert bad.status_code != 200


def test_slurm_exec_squeue(slurm_cluster):
    out = testbed.slurm_exec(slurm_cluster["state_dir"], "sinfo", "-h", "-o", "%P %a", check=True)
    assert "up" in out.stdout


def _processes_of_cluster(state_dir):
    """PIDs whose environment names this cluster's slurm.conf (daemons and job processes)."""
    conf = f"SLURM_CONF={state_dir}/etc/slurm.conf".encode()
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/environ", "rb") as f:
                    if conf in f.read().split(b"\0"):
                        pids.append(int(entry))
            except OSError:
                pass
    return pids


def test_stop_leaves_no_job_process_behind(testbed_dir):
    """A job's child reparented away from the job (double fork) escapes scancel under
    proctrack/linuxproc; slurm.sh stop finds it by its SLURM_CONF and kills it, so the
    chroot's mounts can go (without kill_job_leftovers this test fails)."""
    state_dir = os.path.join(testbed_dir, "slurm-escape")
    # munge: a second auth/slurm cluster in the shared chroot beside slurm_cluster fails to
    # verify its own credentials (seen; see SLURM_LAB_AUTH in testbed/slurm.sh)
    cluster = testbed.start_slurm(state_dir, flavour="trixie", ports=testbed.free_ports(3),
                                  env={"SLURM_LAB_AUTH": "munge"})
    state_dir = cluster["state_dir"]
    try:
        client = SlurmClient(cluster["url"], StaticJWT(str(cluster["jwt"]), cluster["user"]))
        job_id = client.submit_job(JobRequest(
            name="tb-escape", script="#!/bin/bash\n( setsid sleep 300 </dev/null >/dev/null 2>&1 & )\nsleep 300\n",
            environment={"PATH": "/usr/bin:/bin"}, mcs_label="tb_escape", current_working_directory="/tmp"))
        deadline = time.monotonic() + 60
        while client.get_job(job_id).job_state != "RUNNING" and time.monotonic() < deadline:
            time.sleep(0.2)
        daemons = set(_processes_of_cluster(state_dir))
        time.sleep(1)
        assert len(_processes_of_cluster(state_dir)) >= 4, "slurmctld, slurmd, slurmrestd and the job's sleeps"
    finally:
        testbed.stop_slurm(state_dir)
    assert daemons and _processes_of_cluster(state_dir) == []
    with open("/proc/self/mounts") as f:
        assert state_dir not in f.read()
