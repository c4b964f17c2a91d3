#!/usr/bin/env python3
"""Chaos run: N deployments through the pack (packrunner) on the real testbed, with seeded
random faults, then one summary line per metric.

Starts its own etcd and Slurm cluster (``tests/testbed.py``: 22.05 = Debian 12's Slurm,
24.11 = the trixie chroot, 26.05 = the forky chroot) on free loopback ports, runs
``python -m packrunner start`` on the pack, creates N deployments (default 200) and injects, at
random times drawn from ``--seed``:

- ``kill -9`` of the runner (restarted 0-3 s later), and a second runner at the same time;
- slurmrestd and etcd outages: a loopback TCP proxy in front of each real daemon (the
  runners talk to the proxies) resets every connection and refuses new ones, or accepts and
  never answers (the client's read timeout: a submit whose outcome is unknown);
- the runner restarted with an expired or an invalid-signature JWT for a while;
- deletes of running deployments, recursive and non-recursive (``/deploy/<key>`` alone),
  and re-creations of the same key;
- planted lookalike jobs (our mcs_label and a deployment's job name, no or another
  deployment's marker; held, so they never run) and a job of another label;
- the copied-marker attack: ``mallory``, another cluster user (testbed/slurm.sh creates her),
  plants held exact copies of a deployment's job - our mcs_label, its name and its exact
  marker ``sdp-deployment:<key>@<create_revision>`` - right after the deployment is created
  (before the runner submits, usually) or beside its live job, at random. The pack must never
  adopt, update or cancel them (on Slurm 24.11.5 a refused REST cancel of her job would stall
  slurmctld for every user; README.md, "What the pack trusts");
- bad inputs: non-JSON value, JSON array, no ``kind``, keys with unicode, a space, a slash,
  300 characters, and ``slurm`` deployments with invalid args or more CPUs than the node has.

Then it stops the faults, lets one healthy runner settle everything (bounded by
``--settle-timeout``), restarts that runner with a 600 s poll interval and watches it idle
for ``--idle-check`` seconds (its etcd watch must not be declared dead, and it must send no
request to slurmrestd, counted at the proxy: issue 15), stops the runners, the daemons and the proxies it started (and
nothing else), and prints::

    deployments: 212
    jobs: 190
    duplicates: 0
    lost: 0
    wrong final states: 0
    orphan states: 0
    untracked jobs: 0
    foreign jobs touched: 0
    secrets found: 0
    idle watch restarts: 0
    idle Slurm requests: 0

"foreign jobs touched" counts planted jobs (ours as lookalikes, and mallory's copies) that are
no longer PENDING, plus mallory's jobs a runner log shows a cancel of (a ``DELETE`` of her job
id in an error, or "cancelled Slurm job <id>").

Exit status 1 when any metric after ``jobs`` is not 0 or the run did not settle in time.

Usage (as root, after ``scripts/setup.sh``)::

    SLURM_LAB_AUTH=munge .venv/bin/python scripts/chaos.py --slurm 22.05 --seed 1 -n 200
"""

import argparse
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
for _path in (REPO / "tests", REPO / "lib", REPO):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

import testbed  # noqa: E402  (tests/testbed.py)
from slurmdeploy.auth import StaticJWT  # noqa: E402
from slurmdeploy.configdb import ConfigDB, loads  # noqa: E402
from slurmdeploy.errors import SlurmDeployError  # noqa: E402
from slurmdeploy.layout import MARKER_PREFIX, OWNER, STATE, deployment_marker, parse_marker, prefix_end  # noqa: E402
from slurmdeploy.settings import Settings  # noqa: E402
from slurmdeploy.slurm import SlurmClient  # noqa: E402
from slurmdeploy.states import DeploymentState  # noqa: E402

FLAVOURS = {"22.05": "bookworm", "24.11": "trixie", "26.05": "forky"}
#: the other cluster user who plants exact copies of our jobs (testbed/slurm.sh creates her)
MALLORY = "mallory"
#: metrics that must be 0
ZERO_METRICS = ("duplicates", "lost", "wrong final states", "orphan states", "untracked jobs",
                "foreign jobs touched", "secrets found", "idle watch restarts", "idle Slurm requests")
#: HTTP request lines a client sends (FaultProxy counts them)
HTTP_METHODS = (b"GET ", b"POST ", b"PUT ", b"DELETE ", b"PATCH ", b"HEAD ")
#: raw bad inputs: path below /deploy/ -> value (logged and ignored, no state)
BAD_RAW = {
    "bad-json": b"{not json",
    "bad-array": b'["slurm"]',
    "bad-nokind": b'{"key": "bad-nokind", "args": {"script": "#!/bin/sh"}}',
    "d\u00e9ploiement": b'{"kind": "slurm", "args": {"script": "#!/bin/sh\\ntrue"}}',
    "with space": b'{"kind": "slurm", "args": {"script": "#!/bin/sh\\ntrue"}}',
    "with/slash": b'{"kind": "slurm", "args": {"script": "#!/bin/sh\\ntrue"}}',
    "k" * 300: b'{"kind": "slurm", "args": {"script": "#!/bin/sh\\ntrue"}}',
}
#: invalid args of slurm deployments -> the state they must end in
BAD_ARGS = [
    ({"script": "echo no shebang"}, ("FAILED", "InvalidDeployment")),
    ({"script": "#!/bin/sh\ntrue\n", "mcs_label": "steal"}, ("FAILED", "InvalidDeployment")),
    ({"script": "#!/bin/sh\ntrue\n", "nodes": 0}, ("FAILED", "InvalidDeployment")),
    ({"script": "#!/bin/sh\ntrue\n", "cpus_per_task": 999}, ("FAILED", "SubmitFailed")),
]


def say(message):
    print(f"[chaos {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


class FaultProxy:
    """A loopback TCP proxy in front of a real daemon, to cut it off from the runners.

    Modes: ``up`` (forward), ``down`` (reset every connection, accept-and-reset new ones),
    ``stall`` (accept, never answer: the client hits its read timeout).
    """

    def __init__(self, name, target_port):
        self.name = name
        self.target = ("127.0.0.1", int(target_port))
        self.listener = socket.create_server(("127.0.0.1", 0), backlog=128)
        self.listener.settimeout(0.2)
        self.port = self.listener.getsockname()[1]
        self.mode = "up"
        self.requests = 0  # HTTP requests forwarded (request lines seen from clients)
        self._lock = threading.Lock()
        self._open = set()
        self._closed = False
        threading.Thread(target=self._accept_loop, name=f"proxy-{name}", daemon=True).start()

    def set_mode(self, mode):
        with self._lock:
            self.mode = mode
            victims = list(self._open)  # a change of mode cuts every open connection
            self._open.clear()
        for sock in victims:
            _reset(sock)

    def close(self):
        self._closed = True
        self.set_mode("down")
        self.listener.close()

    def _accept_loop(self):
        while not self._closed:
            try:
                conn, _ = self.listener.accept()
            except (socket.timeout, OSError):
                continue
            mode = self.mode
            if mode == "down":
                _reset(conn)
                continue
            if mode == "stall":
                with self._lock:
                    self._open.add(conn)
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=2)
            except OSError:
                _reset(conn)
                continue
            with self._lock:
                self._open.update((conn, upstream))
            for src, dst in ((conn, upstream), (upstream, conn)):
                threading.Thread(target=self._pump, args=(src, dst, src is conn), daemon=True).start()

    def _pump(self, src, dst, from_client=False):
        try:
            src.settimeout(None)
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if from_client and data.startswith(HTTP_METHODS):
                    with self._lock:
                        self.requests += 1
                dst.sendall(data)
        except OSError:
            pass
        for sock in (src, dst):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            with self._lock:
                self._open.discard(sock)


def _reset(sock):
    try:  # SO_LINGER 0: close with a TCP reset, as a crashed daemon's kernel would
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        sock.close()
    except OSError:
        pass


class PackRunner:
    """One ``python -m packrunner start`` process on the pack (its own state dir and log)."""

    def __init__(self, name, workdir):
        self.name = name
        self.state_dir = workdir / f"runner-{name}"
        self.log_path = workdir / f"runner-{name}.log"
        self.proc = None

    @property
    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def start(self, config_path):
        if self.running:
            return
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "packrunner", "--pack", str(REPO), "--config", str(config_path),
                 "--state-dir", str(self.state_dir), "start", "--stop-timeout", "5"],
                cwd=str(REPO), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def kill9(self):
        if self.running:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def stop(self):
        if self.running:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.kill9()


class JobWatcher(threading.Thread):
    """Lists Slurm's jobs every second and keeps the last record of every job seen (jobs are
    listed until MinJobAge after their end, so none is missed)."""

    def __init__(self, client):
        super().__init__(name="job-watcher", daemon=True)
        self.client = client
        self.jobs = {}
        self.stopped = threading.Event()

    def refresh(self):
        try:
            for job in self.client.list_jobs():
                self.jobs[job.job_id] = job
        except SlurmDeployError as exc:
            say(f"job listing failed (retrying): {exc}")

    def run(self):
        while not self.stopped.wait(1.0):
            self.refresh()


def write_config(path, cluster, etcd_port, slurm_port, token, namespace, workdir, **overrides):
    config = {
        "slurm_url": f"http://127.0.0.1:{slurm_port}",
        "client_id": cluster["user"],
        "slurm_jwt": str(token),
        "config_host": "127.0.0.1",
        "config_port": etcd_port,
        "namespace": namespace,
        "loop_interval": 1,
        "claim_ttl": 8,
        "connect_timeout": 2,
        "read_timeout": 4,
        "liveness_file": str(workdir / "alive"),
        "job_working_directory": "/tmp",
        **overrides,
    }
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(config, f)  # JSON is YAML
    return config


def invalid_signature(token):
    head, body, signature = str(token).split(".")
    return f"{head}.{body}.{'A' * len(signature)}"


class Chaos:
    def __init__(self, args):
        self.args = args
        self.rng = random.Random(args.seed)
        self.workdir = Path(tempfile.mkdtemp(prefix="slurmdeploy-chaos-", dir="/tmp"))
        os.chmod(self.workdir, 0o755)
        self.expected = {}  # (key, create_revision) -> (status, state_reason or None) | None (deleted)
        self.planted = []  # job ids of jobs that are not ours
        self.copies = []  # job ids of mallory's exact copies (also in planted)
        self.tokens = []  # every token handed to a runner (for the secrets scan)
        self.faults = {}
        self.started = []  # (kind, state_dir) of daemons to stop

    # ------------------------------------------------------------- set-up
    def setup(self):
        flavour = FLAVOURS[self.args.slurm]
        say(f"work dir {self.workdir}; starting etcd and Slurm {self.args.slurm} ({flavour})")
        etcd_dir = self.workdir / "etcd"
        self.started.append(("etcd", etcd_dir))
        self.etcd = testbed.start_etcd(etcd_dir, *testbed.free_ports(2))
        slurm_dir = self.workdir / "slurm"
        self.started.append(("slurm", slurm_dir))
        self.cluster = testbed.start_slurm(slurm_dir, flavour=flavour, ports=testbed.free_ports(3))
        rest_port = int(self.cluster["url"].rsplit(":", 1)[1])
        self.slurm_proxy = FaultProxy("slurmrestd", rest_port)
        self.etcd_proxy = FaultProxy("etcd", self.etcd["port"])
        self.namespace = f"chaos{self.args.seed}"
        self.good_token = self.cluster["jwt"]
        self.tokens.append(str(self.good_token))
        self.config_path = self.workdir / "config.yaml"
        config = write_config(self.config_path, self.cluster, self.etcd_proxy.port, self.slurm_proxy.port,
                              self.good_token, self.namespace, self.workdir)
        direct = dict(config, config_port=self.etcd["port"], slurm_url=self.cluster["url"])
        settings = Settings.from_config(direct, {})
        self.label = settings.mcs_label
        self.db = ConfigDB.from_settings(settings)
        self.slurm = SlurmClient(self.cluster["url"], StaticJWT(str(self.good_token), self.cluster["user"]),
                                 read_timeout=30)
        mallory_token = testbed.mint_token(self.cluster["state_dir"], MALLORY, lifespan=86400)
        self.tokens.append(str(mallory_token))
        self.mallory_cluster = dict(self.cluster, user=MALLORY, jwt=mallory_token)
        self.mallory = SlurmClient(self.cluster["url"], StaticJWT(str(mallory_token), MALLORY), read_timeout=30)
        self.watcher = JobWatcher(self.slurm)
        self.watcher.start()
        self.runner_a = PackRunner("a", self.workdir)
        self.runner_b = PackRunner("b", self.workdir)
        self.runner_a.start(self.config_path)

    def teardown(self):
        for runner in (getattr(self, "runner_a", None), getattr(self, "runner_b", None)):
            if runner is not None:
                runner.stop()
        if getattr(self, "watcher", None):
            self.watcher.stopped.set()
        for proxy in (getattr(self, "slurm_proxy", None), getattr(self, "etcd_proxy", None)):
            if proxy is not None:
                proxy.close()
        for job_id in self.planted:
            try:
                # hers with her own token: a refused REST cancel stalls 24.11.5's slurmctld
                (self.mallory if job_id in self.copies else self.slurm).cancel_job(job_id)
            except Exception:  # noqa: BLE001 - best effort; the cluster is stopped next
                pass
        for kind, state_dir in reversed(self.started):
            try:
                (testbed.stop_slurm if kind == "slurm" else testbed.stop_etcd)(state_dir)
            except testbed.TestbedError as exc:
                say(f"stopping {kind}: {exc}")

    # ------------------------------------------------------- deployments
    def create(self, key, args, expected):
        """Create deployment ``key``; returns its create_revision (None: it existed)."""
        if not self.db.create_deployment(key, "slurm", args):
            return None
        revision = self.db.get_deployment(key).revision
        self.expected[(key, revision)] = expected
        return revision

    def new_deployment(self, index):
        key = f"c{index:03d}"
        roll = self.rng.random()
        if index in (1, 2):  # every run has both kinds of delete (see delete)
            roll = 0.99
        if roll < 0.68:
            args = {"script": f"#!/bin/bash\nsleep {self.rng.choice((0.2, 0.5, 1, 2))}\n"}
            expected = ("FINISHED", None)
        elif roll < 0.78:
            args, expected = {"script": "#!/bin/bash\nexit 3\n"}, ("FAILED", "NonZeroExitCode")
        elif roll < 0.86:
            args, expected = self.rng.choice(BAD_ARGS)
        else:  # a long job, deleted while it runs (and maybe created again)
            args, expected = {"script": "#!/bin/bash\nsleep 300\n"}, None
            self.faults.setdefault("pending deletes", []).append((time.monotonic() + self.rng.uniform(2, 10), key))
        revision = self.create(key, args, expected)
        if index in (0, 3) or self.rng.random() < 0.05:
            self.plant(key)
        if revision is not None and (index == 4 or self.rng.random() < 0.06):
            self.plant_copy(key, revision, "before")
        if revision is not None and (index == 5 or args["script"].endswith("sleep 300\n") or self.rng.random() < 0.06):
            # beside the live job, a little later (a long job's lives until it is deleted)
            self.faults.setdefault("pending copies", []).append(
                (time.monotonic() + self.rng.uniform(0.5, 2.5), key, revision))

    def delete(self, key):
        deletes = [k for k in self.faults if k.startswith("#deletes")]
        recursive = self.rng.random() < 0.5 if len(deletes) >= 2 else not deletes
        if recursive:
            self.db.delete_deployment(key)
        else:
            self.db.client.delete(self.db.deployment_path(key).encode())
        for ident in [i for i in self.expected if i[0] == key]:
            self.expected[ident] = None  # gone: no state, its job ended
        self.count(f"deletes ({'recursive' if recursive else 'non-recursive'})")
        if self.rng.random() < 0.5:
            self.create(key, {"script": "#!/bin/bash\nsleep 0.5\n"}, ("FINISHED", None))
            self.count("re-creations")

    def plant(self, key):
        comment = self.rng.choice((None, deployment_marker(f"other-{key}", 1), MARKER_PREFIX))
        label = self.label if self.rng.random() < 0.8 else "someone_else"
        try:
            self.planted.append(testbed.plant_job(self.cluster, f"sdp-{key}", label, comment))
            self.count("planted lookalike jobs")
        except (SlurmDeployError, testbed.TestbedError) as exc:
            say(f"planting a job failed: {exc}")

    def plant_copy(self, key, revision, when):
        """Mallory plants a held exact copy of the job of deployment ``key`` (this incarnation)."""
        try:
            job_id = testbed.plant_job(self.mallory_cluster, f"sdp-{key}", self.label,
                                       deployment_marker(key, revision))
        except (SlurmDeployError, testbed.TestbedError) as exc:
            say(f"planting a copy failed: {exc}")
            return
        self.planted.append(job_id)
        self.copies.append(job_id)
        self.count(f"copied-marker jobs ({when})")

    def bad_inputs(self):
        for path, value in BAD_RAW.items():
            self.db.client.put(f"{self.db.deploy_prefix}{path}".encode(), value)
            self.count("bad inputs")

    def count(self, what):
        self.faults[f"#{what}"] = self.faults.get(f"#{what}", 0) + 1

    # ------------------------------------------------------------ faults
    #: fault -> probability per 0.5 s tick (times --fault-rate); each also happens at least
    #: once, at a seeded random time of the creation phase
    FAULTS = {"slurm outage": 0.012, "etcd outage": 0.012, "expired token": 0.003, "invalid token": 0.003,
              "kill -9": 0.01, "second runner": 0.01}

    def plan(self, phase):
        """Schedule one of each fault within the first ``phase`` seconds."""
        start = time.monotonic()
        self.forced = {name: start + self.rng.uniform(0.05, 0.85) * phase for name in self.FAULTS}

    def due(self, name, now):
        """Should fault ``name`` start now? (forced time reached, or the dice say so)"""
        if name in self.forced and now >= self.forced[name]:
            del self.forced[name]
            return True
        return self.rng.random() < self.FAULTS[name] * self.args.fault_rate

    def tick(self, now):
        """Start or end faults (called about every 0.5 s)."""
        rng, f = self.rng, self.faults
        due = [(t, k) for t, k in f.get("pending deletes", []) if t <= now]
        f["pending deletes"] = [(t, k) for t, k in f.get("pending deletes", []) if t > now]
        for _, key in due:
            self.delete(key)
        copies = [c for c in f.get("pending copies", []) if c[0] <= now]
        f["pending copies"] = [c for c in f.get("pending copies", []) if c[0] > now]
        for _, key, revision in copies:
            current = self.db.get_deployment(key)  # etcd itself, not through the proxy
            if current is not None and current.revision == revision:
                self.plant_copy(key, revision, "beside")
        for name, proxy in (("slurm", self.slurm_proxy), ("etcd", self.etcd_proxy)):
            until = f.get(f"{name} outage")
            if until and now >= until:
                proxy.set_mode("up")
                f[f"{name} outage"] = None
            elif not until and self.due(f"{name} outage", now):
                mode = rng.choice(("down", "down", "stall"))
                proxy.set_mode(mode)
                f[f"{name} outage"] = now + rng.uniform(1.5, 6)
                self.count(f"{name} outages ({mode})")
        if f.get("token until") and now >= f["token until"]:
            self.runner_a.kill9()
            self.runner_a.start(self.config_path)
            f["token until"] = None
        elif not f.get("token until") and not f.get("restart a"):
            kind = next((k for k in self.rng.sample(["expired token", "invalid token"], 2) if self.due(k, now)), None)
            if kind:
                self.bad_token(kind, now)
        if not f.get("token until") and not f.get("restart a") and self.due("kill -9", now):
            self.runner_a.kill9()
            self.count("kill -9 of the runner")
            f["restart a"] = now + rng.uniform(0, 3)
        if f.get("restart a") and now >= f["restart a"]:
            self.runner_a.start(self.config_path)
            f["restart a"] = None
        if self.due("second runner", now):
            if self.runner_b.running:
                (self.runner_b.kill9 if rng.random() < 0.5 else self.runner_b.stop)()
            else:
                self.runner_b.start(self.config_path)
                self.count("second runner started")

    def bad_token(self, kind, now):
        """Restart the runner with an expired or an invalid-signature JWT for a while."""
        if kind == "expired token":
            token = testbed.mint_token(self.cluster["state_dir"], self.cluster["user"], lifespan=1)
        else:
            token = invalid_signature(self.good_token)
        self.tokens.append(str(token))
        bad = self.workdir / "config-bad-token.yaml"
        write_config(bad, self.cluster, self.etcd_proxy.port, self.slurm_proxy.port, token, self.namespace,
                     self.workdir)
        self.runner_a.kill9()
        self.runner_a.start(bad)
        self.faults["token until"] = now + self.rng.uniform(4, 10)
        self.count(f"runs with an {kind}")

    def calm(self):
        """End every fault: daemons reachable, one healthy runner."""
        self.slurm_proxy.set_mode("up")
        self.etcd_proxy.set_mode("up")
        self.runner_b.stop()
        if self.faults.get("token until") or not self.runner_a.running:
            self.runner_a.kill9()
            self.runner_a.start(self.config_path)
        self.faults["token until"] = None
        for _, key in self.faults.get("pending deletes", []):
            self.delete(key)
        self.faults["pending deletes"] = []
        self.faults["pending copies"] = []

    # -------------------------------------------------------------- run
    def run(self):
        deadline = time.monotonic() + self.args.time_limit
        self.bad_inputs()
        interval = self.args.create_interval
        self.plan(self.args.deployments * interval)
        next_create, index = time.monotonic(), 0
        # go on until every fault happened at least once (a fault may delay another)
        while (index < self.args.deployments or self.forced) and time.monotonic() < deadline:
            now = time.monotonic()
            if now >= next_create and index < self.args.deployments:
                self.new_deployment(index)
                index += 1
                next_create = now + self.rng.uniform(0.3 * interval, 1.7 * interval)
            self.tick(now)
            time.sleep(0.5)
        say(f"created {index} deployments; ending the faults and letting them settle")
        self.calm()
        settle_by = min(deadline, time.monotonic() + self.args.settle_timeout)
        settled = False
        while time.monotonic() < settle_by:
            if self.settled():
                settled = True
                break
            time.sleep(2)
        self.idle = self.idle_check() if settled and self.args.idle_check else {}
        self.runner_a.stop()
        self.watcher.stopped.set()
        self.watcher.refresh()
        return settled

    def idle_check(self):
        """Issue 15, item 4: restart the runner with a poll interval far beyond the idle window
        (and the node-state sensor off) and watch it idle for ``--idle-check`` seconds: its
        etcd watch must not be declared dead and it must send no request to slurmrestd.

        Returns:
            ``{"idle watch restarts": n, "idle Slurm requests": n}``.
        """
        idle_config = self.workdir / "config-idle.yaml"
        write_config(idle_config, self.cluster, self.etcd_proxy.port, self.slurm_proxy.port, self.good_token,
                     self.namespace, self.workdir, loop_interval=600, node_poll_interval=0)
        self.runner_a.stop()
        alive = self.workdir / "alive"
        before = alive.stat().st_mtime if alive.exists() else 0
        self.runner_a.start(idle_config)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and (not alive.exists() or alive.stat().st_mtime == before):
            time.sleep(0.5)  # the start-up poll touches the liveness file
        time.sleep(3)  # its last actions (none expected) and their writes
        log_from = self.runner_a.log_path.stat().st_size
        requests = self.slurm_proxy.requests
        say(f"runner idle for {self.args.idle_check:.0f} s (loop_interval 600)")
        time.sleep(self.args.idle_check)
        requests = self.slurm_proxy.requests - requests
        with open(self.runner_a.log_path, "rb") as log:
            log.seek(log_from)
            dead = log.read().count(b" is dead (")
        return {"idle watch restarts": dead, "idle Slurm requests": requests}

    def settled(self):
        """Every live deployment has a terminal state, no orphan is left, no job of ours runs."""
        try:
            deployments, states = self.raw_view()
        except SlurmDeployError:
            return False
        for key, revision in self.expected:
            if deployments.get(key) == revision:
                state = states.get(key)
                if state is None or not state.terminal:
                    return False
        if self.orphans():
            return False
        self.watcher.refresh()
        return not [j for j in self.our_jobs() if not j.finished]

    def raw_view(self):
        """``({key: create_revision}, {key: DeploymentState})`` read from etcd directly, not
        through the library under test (only the SKA state format is parsed with it)."""
        deployments, states = {}, {}
        for kv in self.db.store.range("read the deployments", *self.db.layout.deploy_range()).kvs:
            where = self.db.layout.split(kv.key)
            if where.key is not None and where.child is None:
                deployments[where.key] = kv.create_revision
            elif where.key is not None and where.child == STATE:
                states[where.key] = DeploymentState.from_dict(where.key, loads(kv.value))
        return deployments, states

    def orphans(self):
        """Paths of states and owners under ``/deploy/`` whose deployment key is absent
        (read here from etcd directly, not through the library under test)."""
        layout = self.db.layout
        paths = {kv.key for kv in self.db.store.range("look for orphan states", *layout.deploy_range()).kvs}
        return sorted(p for p in paths if layout.split(p).child in (STATE, OWNER)
                      and layout.deployment(layout.split(p).key) not in paths)

    def our_jobs(self):
        """Jobs the deployer submitted: our label and a marker naming the job's own key (a
        planted job may copy both, so planted ids are left out)."""
        planted = set(self.planted)
        return [j for j in self.watcher.jobs.values()
                if j.mcs_label == self.label and j.job_id not in planted and j.user_name == self.cluster["user"]
                and parse_marker(j.comment)
                and parse_marker(j.comment)[0] == j.name[4:]]

    # ---------------------------------------------------------- metrics
    def metrics(self):
        deployments, states = self.raw_view()
        jobs = self.watcher.jobs
        ours = self.our_jobs()
        by_incarnation = {}
        for job in ours:
            by_incarnation.setdefault(parse_marker(job.comment), []).append(job)
        live = set(deployments.items())
        m = {"deployments": len(self.expected), "jobs": len(ours), "duplicates": 0, "lost": 0,
             "wrong final states": 0, "orphan states": len(self.orphans()), "untracked jobs": 0,
             "foreign jobs touched": 0, "secrets found": 0, "idle watch restarts": 0, "idle Slurm requests": 0}
        m.update(getattr(self, "idle", {}))
        problems = []
        for ident, found in by_incarnation.items():
            if len(found) > 1:
                m["duplicates"] += len(found) - 1
                problems.append(f"duplicate jobs {[j.job_id for j in found]} for {ident}")
        for ident, expected in sorted(self.expected.items()):
            if ident not in live:
                continue
            state = states.get(ident[0])
            if state is None or not state.terminal:
                m["lost"] += 1
                problems.append(f"lost: {ident} state {state}")
                continue
            got = (state.status, state.state_reason if expected and expected[1] else None)
            job_ok = state.job_id is None or state.job_id in {j.job_id for j in by_incarnation.get(ident, [])}
            if expected is None or got != expected or not job_ok:
                m["wrong final states"] += 1
                problems.append(f"wrong final state of {ident}: {state} (expected {expected})")
        recorded = {(k, st.job_id) for k, st in states.items()}
        for job in ours:
            if not job.finished and (job.name[4:], job.job_id) not in recorded:
                m["untracked jobs"] += 1
                problems.append(f"untracked job {job.job_id} ({job.job_state}, {job.comment})")
        cancels = self.cancels_in_logs()
        for job_id in self.planted:
            job = jobs.get(job_id)
            if job is None or job.job_state != "PENDING":
                m["foreign jobs touched"] += 1
                problems.append(f"planted job {job_id} touched: {job}")
            elif job_id in self.copies and cancels.get(job_id):
                m["foreign jobs touched"] += 1
                problems.append(f"mallory's job {job_id}: a runner tried to cancel it: {cancels[job_id][:200]}")
        m["secrets found"] = self.scan_secrets(problems)
        return m, problems

    def cancels_in_logs(self):
        """``{job_id: log line}`` of mallory's jobs the runners' logs show a cancel request of."""
        found = {}
        pattern = re.compile(r"DELETE \S*/job/(\d+)\b|cancelled Slurm job (\d+)\b")
        copies = set(self.copies)
        for path in self.workdir.glob("runner-*.log"):
            for line in path.read_text(errors="replace").splitlines():
                for match in pattern.finditer(line):
                    job_id = int(match.group(1) or match.group(2))
                    if job_id in copies:
                        found.setdefault(job_id, line)
        return found

    def scan_secrets(self, problems):
        secrets = {t.encode() for t in self.tokens} | {t.rsplit(".", 1)[1].encode() for t in self.tokens}
        found = 0
        places = [p for p in self.workdir.glob("runner-*.log")] + list(self.workdir.glob("runner-*/*"))
        for path in places:
            if path.is_file():
                data = path.read_bytes()
                hits = sum(data.count(s) for s in secrets)
                if hits:
                    problems.append(f"secret found {hits}x in {path}")
                found += hits
        for kv in self.db.store.range("scan for secrets", "/", prefix_end("/")).kvs:  # all of etcd
            hits = sum(kv.value.count(s) for s in secrets)
            if hits:
                problems.append(f"secret found {hits}x in etcd {kv.key}")
            found += hits
        return found


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--slurm", choices=sorted(FLAVOURS), default="22.05", help="Slurm version (default 22.05)")
    parser.add_argument("-n", "--deployments", type=int, default=200, help="deployments to create (default 200)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the fault schedule (default 1)")
    parser.add_argument("--create-interval", type=float, default=1.0,
                        help="mean seconds between two deployments (default 1.0)")
    parser.add_argument("--time-limit", type=float, default=1800,
                        help="seconds after which the run stops whatever happens (default 1800)")
    parser.add_argument("--settle-timeout", type=float, default=300,
                        help="seconds the deployments get to settle after the faults end (default 300)")
    parser.add_argument("--fault-rate", type=float, default=1.0,
                        help="multiplies every fault's probability per 0.5 s tick (default 1.0; the "
                             "integration test's short run uses 6)")
    parser.add_argument("--idle-check", type=float, default=20,
                        help="seconds a settled runner is watched idle (no watch restart, no Slurm request; "
                             "default 20, 0 = skip)")
    parser.add_argument("--keep", action="store_true", help="keep the work dir (logs) after a clean run")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    os.environ.setdefault("SLURM_LAB_AUTH", "munge")  # see README: a second auth/slurm cluster breaks others
    if os.geteuid() != 0:
        print("chaos.py starts etcd and Slurm: run it as root (after scripts/setup.sh)", file=sys.stderr)
        return 2
    chaos = Chaos(args)
    started = time.monotonic()
    try:
        chaos.setup()
        settled = chaos.run()
        metrics, problems = chaos.metrics()
    finally:
        chaos.teardown()
    for problem in problems:
        say(problem)
    faults = ", ".join(f"{k[1:]} {v}" for k, v in sorted(chaos.faults.items()) if k.startswith("#"))
    say(f"Slurm {args.slurm}, seed {args.seed}, {time.monotonic() - started:.0f} s; faults: {faults}")
    for name, value in metrics.items():
        print(f"{name}: {value}")
    print(f"settled: {'yes' if settled else 'no'}")
    bad = not settled or any(metrics[name] for name in ZERO_METRICS)
    if bad or args.keep:
        say(f"logs kept in {chaos.workdir}")
    else:
        shutil.rmtree(chaos.workdir, ignore_errors=True)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
