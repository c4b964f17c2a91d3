"""What packrunner's history pruning (packrunner.retention) costs, and how long a writer waits.

Fills a packrunner state directory with N ended executions and N trigger instances older than
the TTL, then prunes them twice from identical copies while a writer thread saves a new
execution every 5 ms (as the runner's executor does) and times each save:

- floor: the whole delete as one transaction per table (``Retention(batch=N)``): the least
  total work, the longest lock;
- packrunner's default: ``Retention()`` batches (500 rows per transaction).

Prints the total prune time and the writer's p50/p99/max wait for both, and their ratios.

Usage: .venv/bin/python bench/prune.py [--rows N] [--quick]
"""

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "packrunner" / "src"))
from packrunner.datastore import Store  # noqa: E402
from packrunner.retention import Retention, prune_history  # noqa: E402

DAY = 86400


#: bytes of parameters / payload per row: ~425 B a row is what the runner's history held at 50
#: deployments/s (170 MiB an hour, issue 18)
ROW_TEXT = "x" * 400


def fill(state_dir, n):
    """N ended executions and N trigger instances 30 days old (ROW_TEXT each), one transaction."""
    store = Store(state_dir)
    start = time.time() - 30 * DAY
    conn = store._conn()  # one transaction for the fill: the benchmark measures pruning, not filling
    with store._lock, conn:
        conn.executemany("INSERT INTO executions (id, action, parameters, status, start_time, end_time) "
                         "VALUES (?, 'p.a', ?, 'succeeded', ?, ?)",
                         (("old%d" % i, ROW_TEXT, start + i, start + i + 1) for i in range(n)))
        conn.executemany("INSERT INTO trigger_instances (id, ref, payload, status, occurrence_time) "
                         "VALUES (?, 'p.t', ?, 'processed', ?)", (("old%d" % i, ROW_TEXT, start + i) for i in range(n)))
    store.close()


def run(state_dir, retention):
    """Prune ``state_dir`` with ``retention`` while a writer saves an execution every 5 ms.
    Returns (prune seconds, rows deleted, list of writer waits in ms)."""
    store = Store(state_dir)
    waits, stop = [], threading.Event()

    def writer():
        i = 0
        while not stop.is_set():
            t0 = time.perf_counter()
            store.save_execution({"id": "new%d" % i, "action": "p.a", "status": "succeeded",
                                  "start_time": time.time(), "end_time": time.time()})
            waits.append((time.perf_counter() - t0) * 1000)
            i += 1
            time.sleep(0.005)

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    time.sleep(0.2)  # the writer's own baseline before the prune starts
    t0 = time.perf_counter()
    deleted = prune_history(store, retention)
    took = time.perf_counter() - t0
    time.sleep(0.2)
    stop.set()
    thread.join()
    store.close()
    return took, sum(deleted.values()), waits


def pct(values, q):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=200_000, help="executions (and trigger instances) to prune")
    ap.add_argument("--quick", action="store_true", help="20,000 rows")
    args = ap.parse_args()
    n = 20_000 if args.quick else args.rows
    work = tempfile.mkdtemp(prefix="packrunner-prune-bench-")
    try:
        base = os.path.join(work, "base")
        t0 = time.perf_counter()
        fill(base, n)
        size = os.path.getsize(os.path.join(base, "packrunner.sqlite")) / 2**20
        print("filled %d executions + %d trigger instances (%.0f MiB) in %.1f s; load %.2f on %d CPUs"
              % (n, n, size, time.perf_counter() - t0, os.getloadavg()[0], os.cpu_count()))
        rows = []
        for label, retention in (("floor: one transaction per table", Retention(batch=n)),
                                 ("packrunner default: 500-row batches", Retention())):
            copy = os.path.join(work, label.split(":")[0].replace(" ", "-"))
            shutil.copytree(base, copy)
            took, deleted, waits = run(copy, retention)
            rows.append((label, took, deleted, waits))
        print("%-38s %9s %8s %10s %10s %10s" % ("", "prune s", "rows", "wait p50", "wait p99", "wait max"))
        for label, took, deleted, waits in rows:
            print("%-38s %9.2f %8d %8.2fms %8.2fms %8.2fms" % (label, took, deleted, statistics.median(waits),
                                                                pct(waits, 0.99), max(waits)))
        (_, f_took, _, f_waits), (_, d_took, _, d_waits) = rows
        print("ratio default/floor: prune time %.2fx, longest writer wait %.2fx"
              % (d_took / f_took, max(d_waits) / max(f_waits)))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
