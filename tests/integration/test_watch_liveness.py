"""The watch's liveness check on the real etcd, and an idle sensor that stays quiet.

issue 15, item 4: the check used ``count_only`` + ``min_mod_revision``, which etcd ignores
when it only counts (etcd-io/etcd#18267), so an idle sensor found "undelivered changes" at
every other check, logged a WARNING and re-read everything (etcd and Slurm) about every
10 s. docs/design.md, "Watch liveness", says how to reproduce it with etcdctl.
"""

import base64
import logging
import os
import signal
import time

import pytest

from integration.conftest import make_pack_config, wait_for
from slurmdeploy.deployer import Deployer
from slurmdeploy.errors import ConfigDBError
from slurmdeploy.configdb import ConfigDB
from slurmdeploy.kvstore import EtcdStore
from slurmdeploy.layout import Layout
from slurmdeploy.watch import SensorLoop

POLL = 600  # seconds: far beyond the idle window, so any Slurm request in it is not a poll
IDLE = 25.0  # seconds the idle sensor is watched
CHECK = 0.5  # seconds between liveness checks while idle (50 checks in IDLE)


def _b64(text):
    return base64.b64encode(text.encode()).decode()


def _range(etcd_client, payload):
    return etcd_client.post(etcd_client.get_url("/kv/range"), json=payload)


def test_etcd_ignores_min_mod_revision_when_it_only_counts(etcd_client, configdb_prefix):
    """Pins the etcd behaviour the liveness check works around: if a future etcd filters
    counts by revision, this fails and the workaround can be reconsidered."""
    db = ConfigDB(etcd_client, configdb_prefix)
    prefix, end = Layout(configdb_prefix).deploy_range()
    for i in range(3):
        etcd_client.put(f"{prefix}k{i}", "v")
    revision = int(_range(etcd_client, {"key": _b64(prefix)})["header"]["revision"])
    # etcd's gateway JSON by hand on purpose: this pins etcd itself, not the pack's code
    counted = _range(etcd_client, {"key": _b64(prefix), "range_end": _b64(end), "count_only": True,
                                   "min_mod_revision": revision + 1})
    assert int(counted.get("count", 0)) == 3  # nothing changed after `revision`, yet 3
    # what the pack asks instead (ConfigDB.changed_since): keys changed after `revision`, at most one
    asked = dict(keys_only=True, limit=1, min_mod_revision=revision + 1)
    raw_idle = _range(etcd_client, {"key": _b64(prefix), "range_end": _b64(end), **asked})
    assert not raw_idle.get("kvs") and int(raw_idle.get("count", 0)) == 3  # "count" is unfiltered: read kvs
    assert db.changed_since(revision)[0] is False
    etcd_client.put(f"{prefix}k1", "changed")
    etcd_client.put(f"{prefix}k2", "changed")
    assert db.changed_since(revision)[0] is True
    changed = EtcdStore(etcd_client).range("check", prefix, end, **asked).kvs
    assert [(kv.key, kv.value) for kv in changed] == [(f"{prefix}k1", b"")]  # keys_only: the check stays small


class _Counting:
    """Counts the HTTP requests a ``requests.Session`` sends (wraps the real ``send``)."""

    def __init__(self, session):
        self.sent = []
        self._send = session.send
        session.send = self._record

    def _record(self, request, **kwargs):
        self.sent.append((request.method, request.url, request.body))
        return self._send(request, **kwargs)


def test_an_idle_sensor_makes_no_configdb_reread_and_no_slurm_request_between_polls(pack_config, caplog):
    deployer = Deployer.from_config(pack_config, environ={"PATH": "/usr/bin:/bin"})
    loop = SensorLoop(deployer, poll_interval=POLL, resync_interval=POLL, quiet_period=0, check_interval=CHECK)
    db = deployer.configdb
    try:
        db.create_deployment("idle-1", "slurm", {"script": "#!/bin/bash\nsleep 120\n"})
        for event in loop.step(timeout=5):  # start-up poll: deployment_new, as the rule runs it
            assert event.trigger == "deployment_new"
            deployer.submit(event.payload["key"])
        job_id = wait_for(lambda: db.get_state("idle-1")[0].job_id, timeout=30, what="idle-1 submitted")
        # the state write woke the watch: let that wake pass (no event: PENDING as recorded)
        wait_for(lambda: loop.step(timeout=1) == [] and not loop.watch.wake.is_set(), timeout=20,
                 what="the sensor idle")
        restarts, polls = loop.watch.restarts, loop.polls
        reads = []
        snapshot = db.snapshot
        db.snapshot = lambda: reads.append(1) or snapshot()
        slurm = _Counting(deployer.slurm.session)
        etcd = _Counting(db.client.session)
        caplog.set_level(logging.INFO, logger="slurmdeploy")
        checks = []
        check = loop.watch.check
        loop.watch.check = lambda: checks.append(check()) or checks[-1]

        assert loop.step(timeout=IDLE) == []

        assert reads == [] and loop.polls == polls and loop.watch.restarts == restarts
        assert slurm.sent == [], slurm.sent
        assert len(checks) >= IDLE / CHECK * 0.6 and all(checks), checks
        # every etcd request was one liveness check: a keys_only range of at most one key
        assert len(etcd.sent) == len(checks)
        assert all(url.endswith("/kv/range") and b'"keys_only": true' in body and b'"limit": 1' in body
                   for _, url, body in etcd.sent), etcd.sent[:3]
        assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.text
        # and the check still sees a change the watch did not deliver: a dead stream
        loop.watch._stop_stream()
        loop.watch._watcher = object()  # looks open; delivers nothing
        db.create_deployment("idle-2", "slurm", {"script": "#!/bin/bash\ntrue\n"})
        assert check() is True  # first sight: may still be in flight
        assert check() is False  # still undelivered at the next check: dead
        assert "was never delivered" in caplog.text
        deployer.slurm.cancel_job(job_id)
    finally:
        loop.stop()


@pytest.fixture
def own_etcd(testbed_dir, configdb_prefix):
    """An etcd of this test's own (it is frozen with SIGSTOP), on free ports."""
    import testbed

    state_dir = os.path.join(testbed_dir, f"etcd-retry{configdb_prefix.replace('/', '-')}")
    ports = testbed.free_ports(2)
    info = testbed.start_etcd(state_dir, port=ports[0], peer_port=ports[1])
    yield info
    os.kill(info["pid"], signal.SIGCONT)  # never leave it frozen
    testbed.stop_etcd(state_dir)


def test_a_submit_that_failed_while_etcd_was_frozen_is_retried_within_seconds(own_etcd, slurm_cluster,
                                                                               configdb_prefix, tmp_path):
    """issue 15, item 5: the retry waited for the quiet period (here 120 s, as with the default
    loop_interval of 60 s) and the next observation; now it comes about 2 s after the first
    dispatch, or as soon as etcd answers again."""
    config = make_pack_config(own_etcd, configdb_prefix, tmp_path, slurm_url=slurm_cluster["url"],
                              client_id=slurm_cluster["user"], slurm_jwt=str(slurm_cluster["jwt"]))
    deployer = Deployer.from_config(config, environ={"PATH": "/usr/bin:/bin"})
    deployer.configdb.client.timeout = 3  # the submit's etcd requests give up while etcd is frozen
    loop = SensorLoop(deployer, poll_interval=POLL, resync_interval=POLL, quiet_period=120, check_interval=CHECK)
    db = deployer.configdb
    try:
        assert loop.step(timeout=5) == []  # start-up poll
        db.create_deployment("frz-1", "slurm", {"script": "#!/bin/bash\ntrue\n"})
        first = loop.step(timeout=10)
        assert [(e.trigger, e.payload["key"]) for e in first] == [("deployment_new", "frz-1")]
        os.kill(own_etcd["pid"], signal.SIGSTOP)
        try:
            with pytest.raises(ConfigDBError):
                deployer.submit("frz-1")  # the rule's action, while etcd is frozen
        finally:
            os.kill(own_etcd["pid"], signal.SIGCONT)
        thawed = time.monotonic()
        again = []
        while not again and time.monotonic() - thawed < 30:
            try:
                again = loop.step(timeout=1)
            except ConfigDBError:
                loop.poll_now()
        retried_after = time.monotonic() - thawed
        assert [(e.trigger, e.payload["key"]) for e in again] == [("deployment_new", "frz-1")]
        assert retried_after < 10, retried_after
        assert loop.polls == 1 or loop.retries >= 1  # not the poll timer (POLL s away)
        ok, res = deployer.submit("frz-1")
        assert ok and res["outcome"] == "submitted"
    finally:
        loop.stop()
