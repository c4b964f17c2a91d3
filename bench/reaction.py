"""Reaction, burst and runner memory of the whole pack under packrunner, against a floor.

- reaction: deployments created one at a time; for each, the time from the etcd put to the
  state carrying its slurm_job_id (seen through an etcd watch of the states), beside the
  floor measured in the same run, interleaved: a bare loop doing the same etcd put, the
  slurmrestd submit and the etcd state transaction with the same libraries (ConfigDB,
  SlurmClient), nothing else.
- burst: N deployments created at once (64 per etcd transaction); deployments per second until
  every state has its job id, beside raw submit throughput (SlurmClient.submit_job in a loop, one thread, right
  before and right after the burst; the burst is compared with the faster of the two; same
  cluster, same run).
- runner RSS: the packrunner process (sensor + actions) after the burst, with N tracked
  live deployments, and after one more poll.

Usage: .venv/bin/python bench/reaction.py [--quick] [--reuse DIR] [--reactions N] [--burst N] [--keep DIR]
"""

import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

from slurmdeploy.configdb import Deployment  # noqa: E402
from slurmdeploy.jobs import build_job  # noqa: E402
from slurmdeploy.states import DeploymentState  # noqa: E402

SCRIPT = "#!/bin/bash\ntrue\n"
LIVE_SCRIPT = "#!/bin/bash\nsleep 3600\n"
POLL = 15  # loop_interval of the runner: the poll is only the safety net now


def floor_once(settings, db, slurm, key):
    t0 = time.perf_counter()
    db.create_deployment(key, "slurm", {"script": SCRIPT})
    job_id = slurm.submit_job(build_job(settings, Deployment(key, "slurm", {"script": SCRIPT}, 0), {"PATH": "/bin"}))
    db.write_state(key, DeploymentState(key, job_id, "PENDING", "Submitted"), 0)
    return time.perf_counter() - t0


def create_at_once(db, keys, args, per_request=64):
    """Create deployments ``keys`` (kind ``slurm``, ``args``) as a burst: 64 per etcd
    transaction, each put compared on ``create_revision == 0`` like
    :meth:`ConfigDB.create_deployment` and with the same value, so that the burst arrives
    within milliseconds instead of at the pace of 1,000 sequential requests (which bounded
    the measured rate before issue 18: 1,000 puts took 3.7-7.8 s on the shared machine)."""
    from slurmdeploy.configdb import dumps

    for start in range(0, len(keys), per_request):
        chunk = keys[start:start + per_request]
        txn = db.transaction(f"create {len(chunk)} deployments")
        for key in chunk:
            path = db.deployment_path(key)
            txn.require(path, create_revision=0).put(path, dumps({"key": key, "kind": "slurm", "args": args}))
        if not txn.commit():
            raise SystemExit(f"deployments {chunk[0]}..{chunk[-1]} already exist")


def raw_submits(settings, slurm, n):
    """Submit ``n`` jobs in a loop; return ``(jobs per second, CPU ms per job, job ids)``."""
    t0, c0 = time.perf_counter(), time.process_time()
    ids = [slurm.submit_job(build_job(settings, Deployment(f"raw-{i}", "slurm", {"script": LIVE_SCRIPT}, 0),
                                      {"PATH": "/bin"})) for i in range(n)]
    return n / (time.perf_counter() - t0), (time.process_time() - c0) / n * 1000, ids


def cancel(slurm, job_ids):
    """Cancel the long jobs this benchmark left (on a reused cluster)."""
    for job_id in job_ids:
        try:
            slurm.cancel_job(job_id)
        except Exception:  # noqa: BLE001 - best effort
            pass


def main():
    parser = common.parser(__doc__.splitlines()[0])
    parser.add_argument("--reactions", type=int, metavar="N", help="deployments one at a time (default 200, quick 30)")
    parser.add_argument("--burst", type=int, metavar="N", help="deployments of the burst (default 1000, quick 100)")
    parser.add_argument("--keep", metavar="DIR", help="copy the runner's log there, with reactions.json: each "
                        "reaction's key, wall-clock put time and latency (to find where a slow one waited)")
    args = parser.parse_args()
    n_react = args.reactions if args.reactions is not None else 30 if args.quick else 200
    n_burst = args.burst if args.burst is not None else 100 if args.quick else 1000
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    with common.bench_testbed(args.reuse) as (etcd, slurm_info), tempfile.TemporaryDirectory() as work:
        os.chmod(work, 0o755)
        alive = os.path.join(work, "alive")
        config = common.pack_config(etcd, slurm_info, loop_interval=POLL, liveness_file=alive)
        floor_config = common.pack_config(etcd, slurm_info)
        settings, db, _ = common.services(config)
        fsettings, fdb, fslurm = common.services(floor_config)
        fslurm.api  # the floor's one version probe, outside the timings
        watch = common.StateWatch(db)
        with common.runner_process(config, work) as proc:
            common.wait_alive(proc, alive)
            pack, floor, timeline = [], [], []
            for i in range(n_react):
                floor.append(floor_once(fsettings, fdb, fslurm, f"f-{i}"))
                key = f"r-{i}"
                wall, t0 = time.time(), time.perf_counter()
                db.create_deployment(key, "slurm", {"script": SCRIPT})
                if not watch.wait([key], 60):
                    raise SystemExit(f"deployment {key} got no job in 60 s; see {work}/runner.log")
                pack.append(watch.seen[key] - t0)
                timeline.append({"key": key, "put": wall, "ms": round(pack[-1] * 1000, 2)})
            load_react = common.load()
            p, f = common.percentiles(pack), common.percentiles(floor)
            rows = [("", "p50 ms", "p95 ms", "p99 ms", "max ms")]
            for label, d in (("pack (runner)", p), ("floor (put+submit+txn)", f)):
                rows.append((label, *(f"{d[k] * 1000:.1f}" for k in ("p50", "p95", "p99", "max"))))
            rows.append(("ratio pack/floor", *(f"{p[k] / f[k]:.2f}x" for k in ("p50", "p95", "p99", "max"))))
            common.emit(f"reaction, {n_react} deployments one at a time", rows, f"{started}, {load_react}")

            # the raw loop right before the burst too (runner idle, fewer jobs in the cluster): the
            # burst is compared with the faster of the two loops
            before_rate, before_cpu, before_ids = raw_submits(fsettings, fslurm, n_burst)
            keys = [f"b-{i}" for i in range(n_burst)]
            cpu0 = common.cpu_seconds(proc.pid)
            t0 = time.perf_counter()
            create_at_once(db, keys, {"script": LIVE_SCRIPT})
            created = time.perf_counter() - t0
            if not watch.wait(keys, 600):
                missing = [k for k in keys if k not in watch.seen]
                raise SystemExit(f"{len(missing)} burst deployments got no job in 600 s; see {work}/runner.log")
            burst_rate = n_burst / (max(watch.seen[k] for k in keys) - t0)
            burst_cpu = (common.cpu_seconds(proc.pid) - cpu0) / n_burst * 1000
            load_burst = common.load()
            rss_after_burst = common.rss_mib(proc.pid)
            after_rate, after_cpu, raw_ids = raw_submits(fsettings, fslurm, n_burst)
            raw_ids += before_ids
            raw_rate = max(before_rate, after_rate)
            time.sleep(POLL + 2)  # one more poll with every deployment tracked
            rss_after_poll = common.rss_mib(proc.pid)
            rows = [("", "deployments/s", "vs raw", "CPU ms each (runner / raw loop)")]
            rows.append((f"pack burst of {n_burst} (created in {created:.2f} s)", f"{burst_rate:.1f}",
                         f"{burst_rate / raw_rate * 100:.0f}%", f"{burst_cpu:.1f}"))
            for when, rate, cpu in (("before", before_rate, before_cpu), ("after", after_rate, after_cpu)):
                rows.append((f"raw submit, {n_burst} jobs, 1 thread, {when} the burst", f"{rate:.1f}",
                             f"{rate / raw_rate * 100:.0f}%", f"{cpu:.1f}"))
            common.emit(f"burst of {n_burst}", rows, f"{started}, {load_burst}")
            rows = [("", "MiB"), (f"runner RSS, {n_burst} live tracked deployments", f"{rss_after_burst:.1f}"),
                    ("runner RSS after one more poll", f"{rss_after_poll:.1f}")]
            common.emit("runner RSS", rows, f"{started}, {common.load()}")
        watch.close()
        if args.keep:
            os.makedirs(args.keep, exist_ok=True)
            shutil.copy(os.path.join(work, "runner.log"), args.keep)
            with open(os.path.join(args.keep, "reactions.json"), "w") as f:
                json.dump(timeline, f, indent=1)
        if args.reuse:
            cancel(fslurm, raw_ids + list(watch.job_ids.values()))


if __name__ == "__main__":
    main()
