"""A deployment read with its state: two requests (before issue 18) vs one transaction.

Starts its own etcd (``testbed/etcd.sh`` through ``tests/testbed.py``; no Slurm) on free ports,
writes one deployment with a state, an owner and an attempt trace, then times, R times each in
the same run:

- ``floor``: one raw etcd3gw ``get`` of the deployment key (one HTTP request, no decoding);
- ``before``: ``get_deployment`` then ``get_state`` (what the deployer's confirm, cancel and
  update_state did: two requests);
- ``after``: ``ConfigDB.read`` (the deployment, state, owner and attempt in one etcd
  transaction of two range requests).

Counts the HTTP requests each sends (a wrapper of the session's ``send``) and prints
``{"requests", "p50_ms", "p99_ms"}`` per operation and the ratio of each p50 to the floor's.

Usage: .venv/bin/python bench/configdb_read.py [--quick] [--reuse DIR]
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
import testbed  # noqa: E402

from slurmdeploy.configdb import ConfigDB  # noqa: E402
from slurmdeploy.states import DeploymentState  # noqa: E402


class Counting:
    """Counts the HTTP requests a ``requests.Session`` sends (wraps the real ``send``)."""

    def __init__(self, session):
        self.sent = 0
        self._send = session.send
        session.send = self._record

    def _record(self, request, **kwargs):
        self.sent += 1
        return self._send(request, **kwargs)


def timed(func, repeat):
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        func()
        samples.append((time.perf_counter() - t0) * 1000)
    return common.percentiles(samples)


def measure(etcd, repeat):
    import etcd3gw

    client = etcd3gw.Etcd3Client(host=etcd["host"], port=etcd["port"], api_path="/v3/")
    client.session.trust_env = False
    db = ConfigDB(client, f"/bench-read-{os.getpid()}")
    counter = Counting(client.session)
    revision = db.create_deployment("r-1", "slurm", {"script": "#!/bin/bash\ntrue\n"})
    db.claim("r-1", 300, attempt_revision=revision)
    db.write_state("r-1", DeploymentState("r-1", 4711, "RUNNING"), 0, revision)
    path = db.deployment_path("r-1")

    def before():
        dep = db.get_deployment("r-1")
        return dep, db.get_state("r-1", dep.revision)

    ops = {"floor": lambda: client.get(path), "before": before, "after": lambda: db.read("r-1")}
    results = {}
    for _ in range(2):  # warm-up round, then the measured one (interleaved: same conditions)
        for name, func in ops.items():
            counter.sent = 0
            func()
            requests = counter.sent
            results[name] = dict(requests=requests, **timed(func, repeat))
    floor = results["floor"]["p50"]
    for name in ("before", "after"):
        results[name]["p50_vs_floor"] = round(results[name]["p50"] / floor, 2)
    db.delete_deployment("r-1")
    return results


def main():
    args = common.parser(__doc__.splitlines()[0]).parse_args()
    repeat = 200 if args.quick else 2000
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    if args.reuse:
        etcd = testbed.etcd_status(os.path.join(args.reuse, "etcd"))
        results = measure(etcd, repeat)
    else:
        path = tempfile.mkdtemp(prefix="slurmdeploy-bench-", dir="/tmp")
        try:
            ports = testbed.free_ports(2)
            etcd = testbed.start_etcd(os.path.join(path, "etcd"), port=ports[0], peer_port=ports[1])
            try:
                results = measure(etcd, repeat)
            finally:
                testbed.stop_etcd(os.path.join(path, "etcd"))
        finally:
            shutil.rmtree(path, ignore_errors=True)
    rounded = {name: {k: round(v, 3) if isinstance(v, float) else v for k, v in r.items()}
               for name, r in results.items()}
    print(json.dumps({"started": started, "repeat": repeat, "load": common.load(), "results": rounded}, indent=1))


if __name__ == "__main__":
    main()
