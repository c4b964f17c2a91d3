"""One sensor poll at 0, 1,000 and 10,000 foreign jobs: incremental vs list-everything.

Foreign jobs (no mcs_label of ours, submitted held so they stay in the queue) are added to
the cluster in steps. At each step, with T tracked deployments whose jobs are live:

- incremental: the sensor's poll (``SensorLoop`` with ``JobView``): a fresh etcd read and
  one ``GET .../jobs/state/?job_id=...`` for the tracked ids;
- list-everything: ``Deployer.observe()`` without a view, as every poll did before: a fresh
  etcd read and ``GET .../jobs`` (the whole cluster);

each repeated R times; printed: median ms, Slurm requests and response bytes per poll, and
slurmrestd's RSS before and after the step's incremental polls and its full listings. The
floor is the incremental poll at 0 foreign jobs, measured in the same run.

Usage: .venv/bin/python bench/poll.py [--quick] [--reuse DIR]
"""

import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

from slurmdeploy.deployer import Deployer  # noqa: E402
from slurmdeploy.watch import SensorLoop  # noqa: E402


def submit_foreign(slurm, count, threads=4):
    """Submit ``count`` held jobs without our label (raw bodies, as another user's tool would)."""
    api = slurm.api
    body = {"job": {"name": "foreign", "script": "#!/bin/bash\nsleep 3600\n", "environment": ["PATH=/bin"],
                    "current_working_directory": "/tmp", "hold": True}}
    ids, lock = [], threading.Lock()

    def work(n):
        for _ in range(n):
            _, data = slurm.request("POST", api.submit_path(), body=body)
            with lock:
                ids.append(api.submitted_job_id(data))

    workers = [threading.Thread(target=work, args=(count // threads + (1 if i < count % threads else 0),))
               for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return ids


def measure(fn, slurm, repeat):
    times, reqs, nbytes = [], [], []
    for _ in range(repeat):
        r0, b0 = slurm.stats["requests"], slurm.stats["bytes"]
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
        reqs.append(slurm.stats["requests"] - r0)
        nbytes.append(slurm.stats["bytes"] - b0)
    return statistics.median(times), statistics.median(reqs), statistics.median(nbytes)


def main():
    args = common.parser(__doc__.splitlines()[0]).parse_args()
    steps = (0, 200, 1000) if args.quick else (0, 1000, 10000)
    tracked = 10 if args.quick else 50
    repeat_inc, repeat_full = (5, 3) if args.quick else (9, 3)
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    with common.bench_testbed(args.reuse) as (etcd, slurm_info):
        config = common.pack_config(etcd, slurm_info, loop_interval=3600, resync_interval=3600)
        env = {"PATH": "/usr/bin:/bin"}
        sensor = Deployer.from_config(config, environ=env)
        lister = Deployer.from_config(config, environ=env)
        keys = [f"t-{i}" for i in range(tracked)]
        for key in keys:
            sensor.configdb.create_deployment(key, "slurm", {"script": "#!/bin/bash\nsleep 3600\n"})
            sensor.submit(key)
        loop = SensorLoop(sensor, poll_interval=3600, resync_interval=3600, quiet_period=3600)
        loop.step()  # start-up: the one full listing

        def incremental():
            loop.poll_now()
            loop.step()

        rest = common.slurmrestd_pid(slurm_info)
        rows = [("foreign jobs", "mode", "ms/poll", "requests", "KiB", "slurmrestd RSS MiB before -> after")]
        foreign_ids, floor_ms, results = [], None, {}
        for step in steps:
            if step > len(foreign_ids):
                t0 = time.perf_counter()
                foreign_ids += submit_foreign(lister.slurm, step - len(foreign_ids))
                print(f"{len(foreign_ids)} foreign jobs queued ({time.perf_counter() - t0:.1f} s)", file=sys.stderr)
            rss0 = common.rss_mib(rest)
            inc = measure(incremental, sensor.slurm, repeat_inc)
            rss1 = common.rss_mib(rest)
            full = measure(lister.observe, lister.slurm, repeat_full)
            rss2 = common.rss_mib(rest)
            floor_ms = inc[0] if floor_ms is None else floor_ms
            results[step] = (inc, full)
            rows.append((f"{step}", "incremental", f"{inc[0]:.1f}", inc[1], f"{inc[2] / 1024:.1f}",
                         f"{rss0:.0f} -> {rss1:.0f}"))
            rows.append((f"{step}", "list-everything", f"{full[0]:.1f}", full[1], f"{full[2] / 1024:.1f}",
                         f"{rss1:.0f} -> {rss2:.0f}"))
        last = steps[-1]
        rows.append((f"{last} vs 0", "incremental", f"{results[last][0][0] / floor_ms:.2f}x", "", "", ""))
        rows.append((f"{last} vs 0", "list-everything", f"{results[last][1][0] / floor_ms:.2f}x", "", "", ""))
        common.emit(f"poll with {tracked} tracked deployments", rows, f"{started}, {common.load()}")
        if args.reuse:
            for job_id in foreign_ids + [sensor.configdb.get_state(k)[0].job_id for k in keys]:
                lister.slurm.cancel_job(job_id)
        loop.stop()


if __name__ == "__main__":
    main()
