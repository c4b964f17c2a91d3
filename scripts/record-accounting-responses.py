#!/usr/bin/env python3
"""Record slurmrestd's answers of the accounting API (``/slurmdb/<v>/...``) from a running testbed
cluster with accounting, for the unit tests (``tests/fixtures/slurm/<version>/accounting_*.json``,
listed in ``tests/fixtures/slurm/README.md``), with ``sacct``'s view of the same jobs beside them
(``accounting_sacct.txt``) so the unit tests compare the parsed records with sacct field by field.

Usage (as root, after ``scripts/setup.sh``)::

    SLURM_LAB_ACCOUNTING=1 SLURM_LAB_AUTH=munge testbed/slurm.sh start trixie /tmp/acct-lab
    .venv/bin/python scripts/record-accounting-responses.py /tmp/acct-lab [--stop-slurmdbd]

It submits three jobs as the testbed's user (two ``srun`` steps and exit 0; ``exit 3``; a
running ``sleep``), waits for the first two to end and slurmdbd to hold them, then records, for
every REST version the server offers: the window listing, each job with its steps, an unknown
job id, known and unknown account/user/cluster, and the query errors. ``--stop-slurmdbd`` then
stops the cluster's slurmdbd (SIGTERM to the pid in ``STATE_DIR/run/slurmdbd.pid``) and records
the answers given while slurmctld is up and slurmdbd is not.
"""

import argparse
import json
import os
import signal
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO / "lib"), str(REPO / "tests")]

import testbed  # noqa: E402
from slurmdeploy.auth import StaticJWT  # noqa: E402
from slurmdeploy.slurm.client import SlurmClient  # noqa: E402
from slurmdeploy.slurm.accounting import EPOCH_REFUSED  # noqa: E402
from slurmdeploy.slurm.versions import ADAPTERS  # noqa: E402
from slurmdeploy.slurm.models import JobRequest  # noqa: E402

FIXTURES = REPO / "tests" / "fixtures" / "slurm"
SACCT_FIELDS = ("JobID,JobName,User,Account,Partition,State,ExitCode,ElapsedRaw,Submit,Eligible,Start,End,"
                "ReqTRES,AllocTRES,TotalCPU,MaxRSS,ConsumedEnergyRaw,NTasks,NodeList")

#: the jobs: (name, script)
JOBS = (
    # step 1 holds a 50 MiB buffer for 6 s (dd blocked writing into a pipe nobody reads), so
    # jobacct_gather/linux (JobAcctGatherFrequency=task=5) samples a MaxRSS above 50 MiB
    ("acct-steps", "#!/bin/bash\nsrun -n1 sleep 1\nsrun -n1 sh -c 'dd if=/dev/zero bs=50M count=1 2>/dev/null "
                   "| sleep 6'\necho done\n"),
    ("acct-exit3", "#!/bin/bash\nsleep 1\nexit 3\n"),
    ("acct-running", "#!/bin/bash\nsleep 600\n"),
)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("state_dir")
    parser.add_argument("--stop-slurmdbd", action="store_true")
    args = parser.parse_args()
    env = testbed.parse_env(Path(args.state_dir, "rest.env").read_text())
    user = env.get("SLURM_REST_USER", "slurmtest")
    client = SlurmClient(env["SLURM_REST_URL"], StaticJWT(testbed.mint_token(args.state_dir, user), user_name=user))
    # jobs of earlier runs still running would fall into the recorded window: end them first
    testbed.slurm_exec(args.state_dir, "scancel", f"--user={user}")
    time.sleep(3)
    ids = []
    started = int(time.time()) - 1
    for name, script in JOBS:
        ids.append(client.submit_job(JobRequest(name=name, script=script, environment={"PATH": "/usr/bin:/bin"},
                                                mcs_label="", current_working_directory="/tmp", time_limit=10)))
    print("submitted", ids)
    sacct = ["sacct", "-a", "-P", "--noconvert", "-j", ",".join(map(str, ids)), "-o", SACCT_FIELDS]
    deadline = time.time() + 120
    while time.time() < deadline:
        out = testbed.slurm_exec(args.state_dir, *sacct).stdout
        lines = out.splitlines()
        done = [ln for ln in lines if ln.split("|")[0] in (str(ids[0]), str(ids[1]))
                and ln.split("|")[5] in ("COMPLETED", "FAILED")]
        if len(done) == 2 and any(ln.startswith(f"{ids[0]}.1|") and ln.split("|")[5] == "COMPLETED" for ln in lines):
            break
        time.sleep(1)
    else:
        raise SystemExit(f"jobs did not end in time; sacct said:\n{out}")
    time.sleep(2)
    ended = int(time.time()) + 5
    versions = [v for v in client.offered_versions() if v in ADAPTERS]
    window = {"start_time": started, "end_time": ended}
    recordings = {}
    for version in versions:
        base = f"/slurmdb/{version}"
        t0, t1 = query_time(version, started), query_time(version, ended)
        wanted = {
            "accounting_jobs": ("GET", f"{base}/jobs/", [("start_time", t0), ("end_time", t1)]),
            "accounting_jobs_no_steps": ("GET", f"{base}/jobs/", [("start_time", t0), ("end_time", t1)]
                                         + ([("skip_steps", "true")] if version == "v0.0.38" else
                                            [("skip_steps", "true"), ("disable_truncate_usage_time", "true")])),
            # the form first tried: a "flags" list (v0.0.40+ ignore it with a warning)
            "accounting_jobs_flags_list": ("GET", f"{base}/jobs/", [("start_time", t0), ("end_time", t1),
                                                                    ("flags", "skip_steps")]),
            "accounting_jobs_epoch_time": ("GET", f"{base}/jobs/", [("start_time", str(started))]),
            "accounting_jobs_users": ("GET", f"{base}/jobs/", [("start_time", t0), ("end_time", t1),
                                                               ("users", user)]),
            "accounting_job_steps": ("GET", f"{base}/job/{ids[0]}", None),
            "accounting_job_failed": ("GET", f"{base}/job/{ids[1]}", None),
            "accounting_job_running": ("GET", f"{base}/job/{ids[2]}", None),
            "accounting_job_unknown": ("GET", f"{base}/job/999999", None),
            "accounting_account": ("GET", f"{base}/account/{env.get('SLURM_ACCOUNT', 'labaccount')}", None),
            "accounting_account_unknown": ("GET", f"{base}/account/nosuchaccount", None),
            "accounting_user": ("GET", f"{base}/user/{user}", None),
            "accounting_user_unknown": ("GET", f"{base}/user/nosuchuser", None),
            "accounting_cluster": ("GET", f"{base}/cluster/{env.get('SLURM_CLUSTER', 'labcluster')}", None),
            "accounting_cluster_unknown": ("GET", f"{base}/cluster/nosuchcluster", None),
        }
        for name, (method, path, params) in wanted.items():
            recordings[(version, name)] = record(client, method, path, params)
    sacct_out = testbed.slurm_exec(args.state_dir, *sacct).stdout
    if args.stop_slurmdbd:
        pid = int(Path(args.state_dir, "run", "slurmdbd.pid").read_text().split()[0])
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0]
        if not cmdline.endswith(b"slurmdbd"):
            raise SystemExit(f"pid {pid} is not slurmdbd ({cmdline!r}); not stopping it")
        os.kill(pid, signal.SIGTERM)
        time.sleep(2)
        for version in versions:
            base = f"/slurmdb/{version}"
            t0 = query_time(version, started)
            recordings[(version, "accounting_jobs_dbd_down")] = record(client, "GET", f"{base}/jobs/",
                                                                       [("start_time", t0)])
            recordings[(version, "accounting_account_dbd_down")] = record(
                client, "GET", f"{base}/account/{env.get('SLURM_ACCOUNT', 'labaccount')}", None)
    release = env.get("SLURM_VERSION", "")
    for (version, name), rec in recordings.items():
        rec["slurm"] = release
        out = FIXTURES / version / f"{name}.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(rec, indent=1, sort_keys=True) + "\n")
    for version in versions:
        meta = {"slurm": release, "job_ids": ids, "window": window, "user": user,
                "sacct": " ".join(sacct), "sacct_output": sacct_out}
        (FIXTURES / version / "accounting_sacct.json").write_text(json.dumps(meta, indent=1) + "\n")
    print(f"recorded {len(recordings)} answers for {', '.join(versions)} (Slurm {release})")


def query_time(version, epoch):
    """As slurm.accounting.Accounting._query_time: local ISO where the version refuses epoch numbers."""
    if version in EPOCH_REFUSED:
        return time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(epoch))
    return str(epoch)


def record(client, method, path, params):
    started = time.monotonic()
    status, data = client.request(method, path, params=params, allow_statuses=range(300, 600))
    data.pop("meta", None)
    return {"request": {"method": method, "path": path, "params": params}, "status": status, "body": data,
            "elapsed": round(time.monotonic() - started, 3)}


if __name__ == "__main__":
    main()
