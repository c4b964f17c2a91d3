"""Shared pieces of the benchmarks: the testbed they run on, timing helpers, RSS readers.

Each benchmark starts its own etcd and Slurm 24.11 cluster with the project's testbed scripts
(``testbed/etcd.sh``, ``testbed/slurm.sh`` through ``tests/testbed.py``) in a fresh state
directory, on free ports, with munge as Slurm's internal auth (other clusters may share the
chroot), and stops exactly those daemons at the end. ``--reuse DIR`` runs on daemons already
started in ``DIR/etcd`` and ``DIR/slurm`` instead (not stopped).
"""

import argparse
import contextlib
import json
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
for _p in (REPO / "tests", REPO, REPO / "lib"):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

import testbed  # noqa: E402  (tests/testbed.py)

#: MaxJobCount of the benchmark cluster: 10,000 foreign jobs plus our own
MAX_JOB_COUNT = 25000


def parser(description):
    """An argument parser with the options every benchmark has (``--quick``, ``--reuse``)."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--quick", action="store_true", help="small sizes (a smoke run of a minute or two)")
    p.add_argument("--reuse", metavar="DIR", help="use running daemons in DIR/etcd and DIR/slurm (not stopped)")
    return p


@contextlib.contextmanager
def bench_testbed(reuse=None):
    """Yield ``(etcd_info, slurm_info)``; stop what was started here (only that) afterwards."""
    os.environ.setdefault("SLURM_LAB_AUTH", "munge")
    if reuse:
        etcd = testbed.etcd_status(os.path.join(reuse, "etcd"))
        slurm = testbed.slurm_status(os.path.join(reuse, "slurm"))
        if etcd is None or slurm is None:
            raise SystemExit(f"--reuse {reuse}: no running etcd/slurm there")
        yield etcd, slurm
        return
    path = tempfile.mkdtemp(prefix="slurmdeploy-bench-", dir="/tmp")
    os.chmod(path, 0o755)
    etcd_dir, slurm_dir = os.path.join(path, "etcd"), os.path.join(path, "slurm")
    started = []
    try:
        print(f"starting etcd and Slurm 24.11 in {path} ...", file=sys.stderr, flush=True)
        ports = testbed.free_ports(5)
        etcd = testbed.start_etcd(etcd_dir, port=ports[0], peer_port=ports[1])
        started.append(lambda: testbed.stop_etcd(etcd_dir))
        slurm = testbed.start_slurm(slurm_dir, flavour="trixie", ports=ports[2:],
                                    env={"SLURM_LAB_MAX_JOB_COUNT": str(MAX_JOB_COUNT), "SLURM_LAB_MIN_JOB_AGE": "300"})
        started.append(lambda: testbed.stop_slurm(slurm_dir))
        yield etcd, slurm
    finally:
        for stop in reversed(started):
            try:
                stop()
            except Exception as exc:  # noqa: BLE001 - report and go on stopping
                print(f"stopping failed: {exc}", file=sys.stderr)
        mounted = any(line.split()[1].startswith(path) for line in open("/proc/self/mounts"))
        if not mounted:
            shutil.rmtree(path, ignore_errors=True)


def pack_config(etcd, slurm, **extra):
    """A pack config for the bench testbed with its own prefix and namespace (mcs_label)."""
    config = {
        "slurm_url": slurm["url"], "client_id": slurm["user"], "slurm_jwt": str(slurm["jwt"]),
        "config_host": etcd["host"], "config_port": etcd["port"],
        "config_prefix": f"/bench-{uuid.uuid4().hex[:8]}", "namespace": f"b{uuid.uuid4().hex[:8]}",
        "liveness_file": "", "job_working_directory": "/tmp", "claim_ttl": 30,
    }
    config.update(extra)
    return config


def services(config):
    """``(Settings, ConfigDB, SlurmClient)`` for a pack config."""
    from slurmdeploy.configdb import ConfigDB
    from slurmdeploy.settings import Settings
    from slurmdeploy.slurm import SlurmClient

    settings = Settings.from_config(config, {})
    return settings, ConfigDB.from_settings(settings), SlurmClient.from_settings(settings)


def percentiles(samples):
    """``{"p50", "p95", "p99", "max", "n"}`` of a list of numbers (nearest-rank)."""
    s = sorted(samples)
    if not s:
        return {"n": 0}

    def rank(p):
        return s[min(len(s) - 1, max(0, int(round(p / 100 * len(s) + 0.5)) - 1))]

    return {"n": len(s), "p50": rank(50), "p95": rank(95), "p99": rank(99), "max": s[-1],
            "mean": statistics.fmean(s)}


def rss_mib(pid):
    """Resident set size of a process in MiB (``VmRSS`` in /proc)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(pid):
    """User + system CPU time a process has used, in seconds (/proc/PID/stat)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def slurmrestd_pid(slurm):
    """The pid of the cluster's slurmrestd (from its state dir)."""
    return int(Path(slurm["state_dir"], "run", "slurmrestd.pid").read_text().split()[0])


def load():
    """The 1-minute load average and the CPU count, as a string for the results."""
    return f"load {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs"


class StateWatch:
    """Records when each deployment's state first carries a job id (an etcd watch of the
    prefix on its own client: no polling, ~1 ms after the write)."""

    def __init__(self, configdb):
        from etcd3gw.watch import Watcher

        from slurmdeploy.configdb import loads
        from slurmdeploy.layout import STATE

        self.seen = {}
        self.job_ids = {}
        self._cv = threading.Condition()
        prefix = configdb.deploy_prefix
        self._client = configdb.new_client()

        def on_event(event):
            kv = event.get("kv") or {}
            key = kv.get("key", b"").decode()
            where = configdb.layout.split(key)
            if event.get("type") == "DELETE" or where.child != STATE:
                return
            value = loads(kv.get("value", b"")) or {}
            ids = [j.get("slurm_job_id") for j in (value.get("jobs") or {}).values() if j.get("slurm_job_id")]
            if ids:
                dep = where.key
                self.job_ids[dep] = ids[0]
                with self._cv:
                    self.seen.setdefault(dep, time.perf_counter())
                    self._cv.notify_all()

        self._watcher = Watcher(self._client, prefix, on_event, range_end=configdb.layout.deploy_range()[1])

    def wait(self, keys, timeout):
        """Wait until every key in ``keys`` was seen; return True, or False on timeout."""
        deadline = time.monotonic() + timeout
        with self._cv:
            while not all(k in self.seen for k in keys):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cv.wait(left)
        return True

    def close(self):
        self._watcher.stop()
        self._client.session.close()


@contextlib.contextmanager
def runner_process(config, workdir, log_name="runner.log"):
    """Run ``python -m packrunner start`` on the pack (as a user does) in a subprocess;
    yield its ``Popen``; SIGTERM it afterwards."""
    import signal
    import subprocess

    import yaml

    workdir = Path(workdir)
    config_file = workdir / "config.yaml"
    config_file.write_text(yaml.safe_dump(config))
    config_file.chmod(0o600)
    log = open(workdir / log_name, "w")
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.Popen([sys.executable, "-m", "packrunner", "--pack", str(REPO), "--config", str(config_file),
                             "--state-dir", str(workdir / "state"), "start"],
                            cwd=str(workdir), env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        log.close()


def wait_alive(proc, path, timeout=60):
    """Wait until the runner's sensor did its first poll (the liveness file exists)."""
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"the runner did not start (exit {proc.poll()}); see its log")
        time.sleep(0.1)


def emit(name, rows, meta):
    """Print a results table and its JSON (for docs/performance.md)."""
    print(f"\n== {name} ({meta}) ==")
    width = max(len(r[0]) for r in rows)
    for label, *values in rows:
        print(f"  {label:<{width}}  " + "  ".join(str(v) for v in values))
    print("JSON " + json.dumps({"bench": name, "meta": meta, "rows": rows}, default=str))
