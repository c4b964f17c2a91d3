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

With ``--scale`` (issue 18) it measures instead, with T tracked deployments whose jobs are
live (T = 10,000; 1,000 with ``--quick``):

- a poll (``SensorLoop`` poll: fresh etcd read, ``jobs/state`` for the tracked ids, the
  observation) beside its floor, the same raw reads (one etcd range read of the prefix and
  the same ``jobs/state`` requests, JSON decoded, no observation);
- a watch wake (one new deployment) at T tracked beside the same wake at 0 tracked: O(events)
  means the ratio stays about 1;
- the sensor thread's CPU (``time.thread_time``) while 50 deployments a second are created for
  ``--window`` seconds (one poll included) and submitted by a pool of action threads, as a
  fraction of one core (target 0.3);
- slurmrestd's RSS over repeated resyncs of the job view at 5,000 foreign jobs (state-only:
  ``jobs/state`` without ids) beside full listings (``GET .../jobs``) in the same run.

Usage: .venv/bin/python bench/poll.py [--quick] [--scale [--window SECONDS]] [--reuse DIR]
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
    p = common.parser(__doc__.splitlines()[0])
    p.add_argument("--scale", action="store_true", help="tracked-deployment scale figures (issue 18)")
    p.add_argument("--window", type=float, default=None, help="seconds of 50 new deployments/s (default 60; 15 quick)")
    args = p.parse_args()
    if args.scale:
        return scale(args)
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


def make_tracked(deployer, keys, threads=8):
    """Create ``keys`` with live jobs as fast as the testbed takes them: a deployment, a job
    submitted with the pack's own request (build_job: label, name, marker), its state written
    by the pack's compare-and-swap (what a submit leaves, without the claim round trips)."""
    from slurmdeploy.jobs import build_job
    from slurmdeploy.states import DeploymentState

    db, slurm, settings = deployer.configdb, deployer.slurm, deployer.settings
    env = {"PATH": "/usr/bin:/bin"}
    ids, lock = {}, threading.Lock()

    def work(part):
        for key in part:
            db.create_deployment(key, "slurm", {"script": "#!/bin/bash\nsleep 3600\n"})
            dep = db.get_deployment(key)
            job_id = slurm.submit_job(build_job(settings, dep, env))
            db.write_state(key, DeploymentState(key, job_id, "PENDING", "Submitted"), 0, dep.revision)
            with lock:
                ids[key] = job_id

    workers = [threading.Thread(target=work, args=(keys[i::threads],)) for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return ids


def raw_reads(etcd, configdb, slurm, job_ids):
    """The reads of a poll without the pack around them: one etcd range read of the
    deployment prefix and ``jobs/state`` for ``job_ids`` in the client's chunks, JSON decoded."""
    import base64

    import requests

    from slurmdeploy.slurm.client import JOB_STATE_CHUNK

    prefix = configdb.deploy_prefix.encode()
    end = prefix[:-1] + bytes([prefix[-1] + 1])
    body = {"key": base64.b64encode(prefix).decode(), "range_end": base64.b64encode(end).decode()}
    requests.post(f"http://{etcd['host']}:{etcd['port']}/v3/kv/range", json=body, timeout=60).json()
    ids = sorted(job_ids)
    for start in range(0, len(ids), JOB_STATE_CHUNK):
        slurm.call("job_state_list", params=[("job_id", str(i)) for i in ids[start:start + JOB_STATE_CHUNK]])


def timed(fn, repeat):
    """Median wall ms and median thread CPU ms of ``fn`` over ``repeat`` calls."""
    wall, cpu = [], []
    for _ in range(repeat):
        c0, t0 = time.thread_time(), time.perf_counter()
        fn()
        wall.append((time.perf_counter() - t0) * 1000)
        cpu.append((time.thread_time() - c0) * 1000)
    return statistics.median(wall), statistics.median(cpu)


def wake_once(loop, key):
    """Create ``key`` and time the watch wake that observes it (wall ms, CPU ms)."""
    loop.deployer.configdb.create_deployment(key, "kind-none", {})  # a deployment the sensor ignores
    if not loop.watch.wake.wait(10):
        raise SystemExit("no watch event within 10 s")
    time.sleep(max(0.0, loop._busy) + 0.05)  # past the burst spacing of the step before
    c0, t0 = time.thread_time(), time.perf_counter()
    loop.step(timeout=5)
    return (time.perf_counter() - t0) * 1000, (time.thread_time() - c0) * 1000


def wake_median(loop, tag, repeat):
    samples = [wake_once(loop, f"wake-{tag}-{i}") for i in range(repeat)]
    return statistics.median(s[0] for s in samples), statistics.median(s[1] for s in samples)


def sensor_cpu(loop, deployer, window, rate=50, action_threads=8):
    """Run the loop in a thread while ``rate`` deployments a second are created for ``window``
    seconds and submitted by ``action_threads`` threads (the actions); returns the sensor
    thread's CPU seconds, the wall seconds, the deployments created and submitted, and the
    loop's polls and wakes in the window."""
    import queue

    work = queue.Queue()
    cpu = [0.0]
    stop = threading.Event()

    def sensor():
        while not stop.is_set():
            c0 = time.thread_time()
            for event in loop.step(timeout=0.5):
                if event.trigger == "deployment_new":
                    work.put(event.payload["key"])
            cpu[0] += time.thread_time() - c0

    submitted = [0]

    def action():
        while True:
            key = work.get()
            if key is None:
                return
            ok, res = deployer.submit(key)
            if res.get("outcome") == "submitted":
                submitted[0] += 1

    polls0, wakes0 = loop.polls, loop.wakeups
    loop.poll_now()  # the window holds one poll
    threads = [threading.Thread(target=sensor)] + [threading.Thread(target=action) for _ in range(action_threads)]
    for t in threads:
        t.start()
    t0 = time.perf_counter()
    created = 0
    while time.perf_counter() - t0 < window:
        due = int((time.perf_counter() - t0) * rate)
        while created < due:
            deployer.configdb.create_deployment(f"new-{created}", "slurm", {"script": "#!/bin/bash\nsleep 3600\n"})
            created += 1
        time.sleep(0.005)
    wall = time.perf_counter() - t0
    stop.set()
    threads[0].join()
    for _ in threads[1:]:
        work.put(None)
    for t in threads[1:]:
        t.join()
    return cpu[0], wall, created, submitted[0], loop.polls - polls0, loop.wakeups - wakes0


def scale(args):
    """The issue-18 figures (see the module docstring)."""
    from slurmdeploy.jobview import ViewMode

    tracked = 1000 if args.quick else 10000
    foreign = 500 if args.quick else 5000
    window = args.window or (15.0 if args.quick else 60.0)
    repeat = 5
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    rows = [("figure", "pack", "floor (same run)", "ratio", "target")]

    def row(*values):
        rows.append(values)
        print("  " + "  ".join(str(v) for v in values), file=sys.stderr, flush=True)

    with common.bench_testbed(args.reuse) as (etcd, slurm_info):
        config = common.pack_config(etcd, slurm_info, loop_interval=3600, resync_interval=3600)
        env = {"PATH": "/usr/bin:/bin"}
        sensor = Deployer.from_config(config, environ=env)
        actions = Deployer.from_config(config, environ=env)
        # full listings are slow: a longer read timeout (and the claim_ttl it requires)
        lister = Deployer.from_config(dict(config, read_timeout=120, claim_ttl=300), environ=env)
        rest = common.slurmrestd_pid(slurm_info)
        loop = SensorLoop(sensor, poll_interval=window, resync_interval=3600, quiet_period=3600)
        loop.step()  # start-up: the one full listing
        # slurmrestd over resyncs at `foreign` foreign jobs: state-only vs full listings
        t0 = time.perf_counter()
        foreign_ids = submit_foreign(lister.slurm, foreign)
        print(f"{foreign} foreign jobs queued ({time.perf_counter() - t0:.1f} s)", file=sys.stderr)
        rss0 = common.rss_mib(rest)
        resync_ms, rss_after = [], []
        for _ in range(repeat):
            loop.view.request_resync()
            t1 = time.perf_counter()
            loop.poll_now()
            loop.step()
            resync_ms.append((time.perf_counter() - t1) * 1000)
            rss_after.append(common.rss_mib(rest))
            assert loop.view.last_mode is ViewMode.FULL
        rss1 = common.rss_mib(rest)
        t1 = time.perf_counter()
        for _ in range(2):
            lister.slurm.list_jobs()
        full_ms = (time.perf_counter() - t1) * 500
        rss2 = common.rss_mib(rest)
        row(f"slurmrestd RSS MiB over {repeat} resyncs at {foreign} foreign jobs",
            f"{rss0:.0f} -> " + " -> ".join(f"{r:.0f}" for r in rss_after) + " (state-only; resync ms: "
            + ", ".join(f"{m:.0f}" for m in resync_ms) + f"; up to {loop.view.resync_reads} new ids read each)",
            f"2 full listings: {rss1:.0f} -> {rss2:.0f} ({full_ms:.0f} ms each)", "", "flat")
        wake0 = wake_median(loop, "0", repeat)
        t0 = time.perf_counter()
        ids = make_tracked(actions, [f"t-{i}" for i in range(tracked)])
        print(f"{tracked} tracked deployments with live jobs ({time.perf_counter() - t0:.1f} s)", file=sys.stderr)
        loop.poll_now()
        loop.step()  # the view learns the tracked jobs (vouched by their states)

        def poll():
            loop.poll_now()
            loop.step()

        poll_ms = timed(poll, repeat)
        raw_ms = timed(lambda: raw_reads(etcd, sensor.configdb, lister.slurm, ids.values()), repeat)
        row(f"poll, {tracked} tracked: wall ms (thread CPU ms)", f"{poll_ms[0]:.1f} ({poll_ms[1]:.1f})",
            f"raw reads {raw_ms[0]:.1f} ({raw_ms[1]:.1f})", f"{poll_ms[0] / raw_ms[0]:.2f}x", "<= 1.5x")
        wake_t = wake_median(loop, "t", repeat)
        row(f"watch wake, {tracked} tracked: wall ms (thread CPU ms)", f"{wake_t[0]:.2f} ({wake_t[1]:.2f})",
            f"0 tracked {wake0[0]:.2f} ({wake0[1]:.2f})", f"{wake_t[0] / wake0[0]:.2f}x", "O(events): ~1x")
        cpu, wall, created, submitted, polls, wakes = sensor_cpu(loop, actions, window)
        row(f"sensor thread CPU, {tracked}+ live, 50 new/s for {wall:.0f} s ({created} created, "
            f"{submitted} submitted, {polls} poll(s), {wakes} wakes, {loop.retries} retries)",
            f"{cpu / wall:.3f} core", "", "", "<= 0.3 core")
        common.emit(f"sensor at scale ({tracked} tracked)", rows, f"{started}, {common.load()}")
        loop.stop()
        if args.reuse:
            for job_id in foreign_ids + list(ids.values()):
                lister.slurm.cancel_job(job_id)


if __name__ == "__main__":
    main()
