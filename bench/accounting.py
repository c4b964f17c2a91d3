"""Job history and usage report over N accounting records from real jobs, against sacct.

Starts a Slurm 24.11 cluster with slurmdbd and MariaDB (the testbed scripts, accounting on, free
ports, munge as internal auth), runs N tiny real jobs through it (job arrays of up to 1,000
``true`` tasks, submitted through slurmrestd as the testbed's job user; nothing is written into
the database by hand), waits until slurmdbd holds all of them, then measures in the same run, each
in a fresh process so that its peak memory is its own:

- ``job_history``: every record of the window with its steps, read as the action reads it
  (pages of ``limit`` 1,000 with the continuation token: :meth:`Accounting.job_history`);
- ``sacct`` for the same query (``-a -S -E -P``, steps included, the fields job_history returns);
- ``usage_report`` per account and user (TRES-minutes, job counts);
- ``sacct -X -T`` for the same query (what its numbers come from).

Printed per measurement: wall seconds, peak RSS (MiB; ``ru_maxrss`` of the measuring process, and
for sacct of the ``sacct`` process run in the cluster's root) and records.

Usage: sudo .venv/bin/python bench/accounting.py [--quick] [--jobs N] [--reuse DIR]
(``--quick``: 1,000 jobs; ``--reuse DIR``: a running cluster with accounting in DIR/slurm.)
"""

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

import testbed  # noqa: E402
from slurmdeploy.auth import StaticJWT  # noqa: E402
from slurmdeploy.slurm import SlurmClient  # noqa: E402

ARRAY = 1000  # tasks per job array (Slurm's default MaxArraySize is 1001)
SACCT_HISTORY = "JobID,JobName,User,Account,Partition,State,ExitCode,ElapsedRaw,Submit,Start,End,ReqTRES,AllocTRES," \
                "TotalCPU,MaxRSS,ConsumedEnergyRaw,NTasks,NodeList"
SACCT_USAGE = "JobID,Account,User,CPUTimeRAW,AllocTRES,Start,End"


def client_of(slurm):
    return SlurmClient(slurm["url"], StaticJWT(str(slurm["jwt"]), slurm["user"]), read_timeout=300)


def submit_arrays(client, total):
    """Submit ``total`` tasks as arrays of :data:`ARRAY`; returns the array job ids."""
    method, path = client.endpoint("job_submit")
    ids = []
    for first in range(0, total, ARRAY):
        size = min(ARRAY, total - first)
        body = {"job": {"name": "acct-bench", "script": "#!/bin/bash\ntrue\n", "environment": ["PATH=/bin:/usr/bin"],
                        "current_working_directory": "/tmp", "array": f"0-{size - 1}",
                        "standard_output": "/dev/null", "standard_error": "/dev/null"}}
        _, data = client.request(method, path, body=body)
        ids.append(client.api.submitted_job_id(data))
    return ids


def sacct_count(slurm, start, end):
    out = testbed.slurm_exec(slurm["state_dir"], "sacct", "-a", "-X", "-n", "-P", "-S", start, "-E", end,
                             "-s", "CD", "-o", "JobID", timeout=600, check=True).stdout
    return len([ln for ln in out.splitlines() if ln.strip()])


def measure_sacct(slurm, args):
    """Run sacct in the cluster's root from a fresh process; returns (seconds, peak RSS MiB of the
    largest process it waited for - sacct itself, the chroot wrapper being smaller -, lines)."""
    proc = subprocess.run([sys.executable, __file__, "--measure", "sacct", "--state", slurm["state_dir"], "--",
                           *args], capture_output=True, text=True, timeout=3600)
    if proc.returncode:
        raise SystemExit(f"measure sacct failed:\n{proc.stderr[-3000:]}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    return out["seconds"], out["peak_rss_mib"], out["lines"]


def sacct_child(state, args):
    t0 = time.perf_counter()
    out = testbed.slurm_exec(state, "sacct", *args, timeout=1800, check=True).stdout
    took = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    print(json.dumps({"seconds": round(took, 2), "peak_rss_mib": round(peak / 1024, 1),
                      "lines": len(out.splitlines())}))


def measure_action(slurm, what, start, end):
    """Run one measurement in a fresh Python process (its own peak RSS)."""
    proc = subprocess.run([sys.executable, __file__, "--measure", what, "--state", slurm["state_dir"],
                           "--start", str(start), "--end", str(end)], capture_output=True, text=True, timeout=3600)
    if proc.returncode:
        raise SystemExit(f"measure {what} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def child(what, state, start, end):
    """Inside the measuring process: one job_history walk or one usage_report."""
    from slurmdeploy.slurm.accounting import Accounting

    slurm = testbed.slurm_status(state)
    acct = Accounting(client_of(slurm))
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    records, pages, steps = 0, 0, 0
    if what.startswith("history"):
        token = None
        chunk = 60 if what == "history-60s" else 6 * 3600
        while True:
            out = acct.job_history(start, end, limit=1000, next_token=token, chunk=chunk)
            records += out["count"]
            steps += sum(len(j["steps"]) for j in out["jobs"])
            pages += 1
            token = out["next"]
            if not token:
                break
    else:
        report = acct.usage_report(start, end, group_by="account,user")
        records = sum(r["jobs"] for r in report["rows"])
    took = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"seconds": round(took, 2), "peak_rss_mib": round(peak / 1024, 1),
                      "rss_before_mib": round(base / 1024, 1), "records": records, "steps": steps, "pages": pages,
                      "requests": acct.client.stats["requests"], "bytes": acct.client.stats["bytes"]}))


def main():
    p = common.parser(__doc__.split("\n\n")[0])
    p.add_argument("--jobs", type=int, default=10000)
    p.add_argument("--since", type=int, help="with --reuse: submit nothing, measure the jobs submitted since this "
                                             "epoch second (e.g. a run that was interrupted while its jobs ran)")
    p.add_argument("--measure", choices=("history", "history-60s", "usage", "sacct"), help=argparse_hidden())
    p.add_argument("sacct_args", nargs="*", help=argparse_hidden())
    p.add_argument("--state", help=argparse_hidden())
    p.add_argument("--start", help=argparse_hidden())
    p.add_argument("--end", help=argparse_hidden())
    args = p.parse_args()
    if args.measure == "sacct":
        return sacct_child(args.state, args.sacct_args)
    if args.measure:
        return child(args.measure, args.state, int(args.start), int(args.end))
    total = 1000 if args.quick else args.jobs
    os.environ.setdefault("SLURM_LAB_AUTH", "munge")
    if args.reuse:
        slurm = testbed.slurm_status(os.path.join(args.reuse, "slurm"))
        return run(slurm, total, since=args.since)
    path = tempfile.mkdtemp(prefix="slurmdeploy-bench-acct-", dir="/tmp")
    os.chmod(path, 0o755)
    slurm_dir = os.path.join(path, "slurm")
    try:
        print(f"starting Slurm 24.11 with slurmdbd in {path} ...", file=sys.stderr, flush=True)
        slurm = testbed.start_slurm(slurm_dir, flavour="trixie", ports=testbed.free_ports(4), accounting=True,
                                    env={"SLURM_LAB_MAX_JOB_COUNT": str(common.MAX_JOB_COUNT),
                                         "SLURM_LAB_MIN_JOB_AGE": "2"})
        run(slurm, total)
    finally:
        testbed.stop_slurm(slurm_dir)


def argparse_hidden():
    import argparse

    return argparse.SUPPRESS


def run(slurm, total, since=None):
    client = client_of(slurm)
    start = since or int(time.time()) - 1
    t0 = time.perf_counter()
    if since is None:
        arrays = submit_arrays(client, total)
        print(f"submitted {total} jobs as {len(arrays)} arrays", file=sys.stderr, flush=True)
    iso = lambda t: time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(t))  # noqa: E731
    deadline = time.monotonic() + 3 * 3600
    while True:
        done = sacct_count(slurm, iso(start), iso(int(time.time()) + 60))
        print(f"  {done}/{total} completed in accounting after {time.perf_counter() - t0:.0f} s", file=sys.stderr,
              flush=True)
        if done >= total:
            break
        if time.monotonic() > deadline:
            raise SystemExit("jobs did not complete in 3 h")
        time.sleep(10)
    run_seconds = time.perf_counter() - t0
    time.sleep(2)
    end = int(time.time())
    rows = []
    history = measure_action(slurm, "history", start, end)
    s_took, s_peak, s_lines = measure_sacct(slurm, ["-a", "-P", "--noconvert", "-S", iso(start), "-E", iso(end),
                                                    "-o", SACCT_HISTORY])
    rows.append(("python + library imported, before the first request", "", f"{history['rss_before_mib']} MiB"))
    rows.append(("job_history (pages of 1,000, steps)", f"{history['seconds']} s", f"{history['peak_rss_mib']} MiB",
                 f"{history['records']} jobs + {history['steps']} steps", f"{history['pages']} pages",
                 f"{history['requests']} requests", f"{history['bytes'] / 2**20:.1f} MiB read"))
    small = measure_action(slurm, "history-60s", start, end)
    rows.append(("job_history, first chunk 60 s", f"{small['seconds']} s", f"{small['peak_rss_mib']} MiB",
                 f"{small['records']} jobs + {small['steps']} steps", f"{small['pages']} pages",
                 f"{small['requests']} requests", f"{small['bytes'] / 2**20:.1f} MiB read"))
    rows.append(("sacct -a -P (same window, steps)", f"{s_took:.2f} s", f"{s_peak} MiB", f"{s_lines - 1} lines"))
    usage = measure_action(slurm, "usage", start, end)
    u_took, u_peak, u_lines = measure_sacct(slurm, ["-a", "-X", "-T", "-P", "--noconvert", "-S", iso(start), "-E",
                                                    iso(end), "-o", SACCT_USAGE])
    rows.append(("usage_report (account,user)", f"{usage['seconds']} s", f"{usage['peak_rss_mib']} MiB",
                 f"{usage['records']} jobs", f"{usage['requests']} requests",
                 f"{usage['bytes'] / 2**20:.1f} MiB read"))
    rows.append(("sacct -a -X -T (same window)", f"{u_took:.2f} s", f"{u_peak} MiB", f"{u_lines - 1} lines"))
    common.emit("accounting", rows, {"jobs": total, "slurm": slurm.get("slurm_version"),
                                     "jobs_ran_in_s": round(run_seconds), "load": common.load(),
                                     "window_s": end - start})


if __name__ == "__main__":
    main()
