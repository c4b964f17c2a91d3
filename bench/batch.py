"""The Configuration DB work of a burst of submits, with and without group commit.

N deployments are submitted by T threads of one process (as packrunner runs actions), each
doing what ``Deployer.submit`` does in etcd for a fresh deployment: read the deployment
(``read_deployment``), claim it (``claim``, with the attempt trace) and write its state with the
claim's end (``write_state(done=True)``); no Slurm. Once through
:class:`slurmdeploy.configdb.ConfigDB` (a lease, a claim and a write per deployment), once through
:class:`slurmdeploy.batch.BatchingConfigDB` (group commit, shared lease). Printed: deployments
per second, etcd requests and process CPU per deployment, the mean batch sizes.

Starts its own etcd (testbed/etcd.sh) on free ports unless ``--etcd HOST:PORT`` is given.

Usage: .venv/bin/python bench/batch.py [--deployments N] [--threads T] [--etcd HOST:PORT]
"""

import argparse
import os
import shutil
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402  (paths, testbed, emit)

import etcd3gw  # noqa: E402
import requests  # noqa: E402

import testbed  # noqa: E402
from slurmdeploy.batch import BatchingConfigDB  # noqa: E402
from slurmdeploy.configdb import ConfigDB  # noqa: E402
from slurmdeploy.states import DeploymentState  # noqa: E402

TTL = 60
MARGIN = 25.0  # connect_timeout + read_timeout at their defaults


def client(host, port):
    session = requests.Session()
    session.trust_env = False
    return etcd3gw.Etcd3Client(host=host, port=port, protocol="http", timeout=30, api_path="/v3/", session=session)


class Counting:
    """Counts the HTTP requests of an etcd3gw client (wraps its session's ``post``)."""

    def __init__(self, etcd):
        self.count = 0
        self._lock = threading.Lock()
        real = etcd.session.post

        def post(*args, **kwargs):
            with self._lock:
                self.count += 1
            return real(*args, **kwargs)

        etcd.session.post = post


def submit_etcd_work(db, key):
    dep, _state, _mod, _attempt = db.read_deployment(key)
    claim = db.claim(key, TTL, attempt_revision=dep.revision)
    assert claim is not None, key
    assert db.write_state(key, DeploymentState(key, 1, "PENDING", "Submitted"), claim.state_mod_revision,
                          dep.revision, done=True), key


def run(db, keys, threads):
    todo = list(keys)
    lock = threading.Lock()

    def worker():
        while True:
            with lock:
                if not todo:
                    return
                key = todo.pop()
            submit_etcd_work(db, key)

    workers = [threading.Thread(target=worker) for _ in range(threads)]
    t0, c0 = time.perf_counter(), time.process_time()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return time.perf_counter() - t0, time.process_time() - c0


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--deployments", type=int, default=1000)
    p.add_argument("--threads", type=int, default=16, help="concurrent submits (packrunner's workers, default 16)")
    p.add_argument("--etcd", metavar="HOST:PORT", help="use this etcd instead of starting one")
    args = p.parse_args()
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    state_dir = None
    if args.etcd:
        host, port = args.etcd.rsplit(":", 1)
    else:
        state_dir = tempfile.mkdtemp(prefix="slurmdeploy-bench-batch-", dir="/tmp")
        ports = testbed.free_ports(2)
        info = testbed.start_etcd(os.path.join(state_dir, "etcd"), port=ports[0], peer_port=ports[1])
        host, port = info["host"], info["port"]
    try:
        rows = [("", "deployments/s", "etcd requests each", "CPU ms each", "mean batch (read/claim/write)")]
        for name, cls in (("ConfigDB (one request per step)", ConfigDB),
                          ("BatchingConfigDB (group commit)", BatchingConfigDB)):
            prefix = f"/bench-batch-{uuid.uuid4().hex[:8]}"
            db = cls(client(host, int(port)), prefix)
            if isinstance(db, BatchingConfigDB):
                db.claim_margin = MARGIN
            keys = [f"d-{i}" for i in range(args.deployments)]
            for key in keys:
                db.create_deployment(key, "slurm", {"script": "#!/bin/bash\ntrue\n"})
            counter = Counting(db.client)
            wall, cpu = run(db, keys, args.threads)
            sizes = "-"
            if isinstance(db, BatchingConfigDB):
                sizes = "/".join(f"{g.items / max(g.batches, 1):.1f}" for g in (db.reads, db.claims, db.writes))
            rows.append((name, f"{len(keys) / wall:.0f}", f"{counter.count / len(keys):.2f}",
                         f"{cpu / len(keys) * 1000:.2f}", sizes))
            db.client.delete_prefix(prefix + "/")
        common.emit(f"etcd work of {args.deployments} submits, {args.threads} threads", rows,
                    f"{started}, {common.load()}")
    finally:
        if state_dir:
            testbed.stop_etcd(os.path.join(state_dir, "etcd"))
            shutil.rmtree(state_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
