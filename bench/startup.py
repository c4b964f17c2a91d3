"""What one action execution costs in a new Python process (as StackStorm runs every action).

Runs R times each, in fresh processes: a bare ``python -c pass`` (the floor), importing the
library (``slurmdeploy.deployer``), and a complete ``update_state`` of an absent deployment
(imports, settings, clients, one etcd read). Prints median wall time and peak RSS.
StackStorm's own python runner wrapper adds its start-up on top (about 0.6 s measured on a
real StackStorm; not reproduced here).

Usage: .venv/bin/python bench/startup.py [--quick] [--reuse DIR]
"""

import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

CODE_RUN = """
import json, sys
from slurmdeploy.deployer import Deployer
d = Deployer.from_config(json.load(sys.stdin))  # stdin: the token never on a command line
print(d.update_state("absent-deployment"))
"""


def run(argv, env, repeat, stdin=""):
    times, rss = [], []
    for _ in range(repeat):
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        t0 = time.perf_counter()
        subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL, input=stdin, text=True)
        times.append((time.perf_counter() - t0) * 1000)
        rss.append(max(before, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024)
    return statistics.median(times), max(rss)


def main():
    args = common.parser(__doc__.splitlines()[0]).parse_args()
    repeat = 5 if args.quick else 15
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    env = dict(os.environ, PYTHONPATH=str(common.REPO / "lib"))
    with common.bench_testbed(args.reuse) as (etcd, slurm):
        config = common.pack_config(etcd, slurm)
        py = sys.executable
        rows = [("", "median ms", "peak RSS MiB")]
        for label, argv, stdin in (("python -c pass (floor)", [py, "-c", "pass"], ""),
                                   ("import slurmdeploy.deployer", [py, "-c", "import slurmdeploy.deployer"], ""),
                                   ("update_state in a new process", [py, "-c", CODE_RUN], json.dumps(config))):
            ms, rss = run(argv, env, repeat, stdin)
            rows.append((label, f"{ms:.0f}", f"{rss:.0f}"))
        common.emit("one action execution in a new process", rows, f"{started}, {common.load()}")


if __name__ == "__main__":
    main()
