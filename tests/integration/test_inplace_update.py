"""An in-place update of ``/deploy/<key>`` and a value whose ``key`` is not its etcd key, on the
real etcd and Slurm 24.11 (issue 15, item 7).

Both are accepted as before (the original SKA deployer ignores updates; the etcd key is what
names the job and the state) but no longer silently: one WARNING with the key per stored value
(mod_revision), from the full observation and from the sensor's watch wake alike.
"""

import logging

from integration.conftest import wait_for
from slurmdeploy.configdb import dumps
from slurmdeploy.watch import SensorLoop


def _put(db, key, value):
    db.client.put(db.deployment_path(key), dumps(value).decode("utf-8"))


def _warnings(caplog, key):
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and repr(key) in r.getMessage()]


def test_an_in_place_update_is_ignored_and_logged_once_per_value(deployer, caplog):
    db = deployer.configdb
    caplog.set_level(logging.INFO, logger="slurmdeploy")
    db.create_deployment("upd-1", "slurm", {"script": "#!/bin/bash\nsleep 120\n"})
    ok, res = deployer.submit("upd-1")
    assert ok and res["outcome"] == "submitted"
    job_id = res["job_id"]
    try:
        deployer.observe()
        assert _warnings(caplog, "upd-1") == []
        _put(db, "upd-1", {"key": "upd-1", "kind": "slurm", "args": {"script": "#!/bin/bash\nsleep 1\n"}})
        for _ in range(3):
            assert not [e for e in deployer.observe() if e.trigger == "deployment_new"]
        updated = _warnings(caplog, "upd-1")
        assert len(updated) == 1 and "updated in place" in updated[0] and "ignored" in updated[0], updated
        assert db.get_state("upd-1")[0].job_id == job_id  # the job stays the deployment's
        assert deployer.slurm.get_job(job_id).job_state in ("PENDING", "RUNNING")
        _put(db, "upd-1", {"key": "upd-1", "kind": "slurm", "args": {"script": "#!/bin/bash\nsleep 2\n"}})
        deployer.observe()
        deployer.observe()
        assert len(_warnings(caplog, "upd-1")) == 2  # a new value: logged again, once
    finally:
        deployer.slurm.cancel_job(job_id)


def test_a_value_whose_key_is_not_its_etcd_key_is_run_under_the_etcd_key_and_logged_once(deployer, caplog):
    db = deployer.configdb
    caplog.set_level(logging.INFO, logger="slurmdeploy")
    path = db.deployment_path("mis-1")
    value = {"key": "other-key", "kind": "slurm", "args": {"script": "#!/bin/bash\ntrue\n"}}
    assert db.transaction("create").require(path, create_revision=0).put(path, dumps(value)).commit()
    loop = SensorLoop(deployer, poll_interval=600, resync_interval=600, quiet_period=0)
    try:
        events = loop.step(timeout=5)
        assert [(e.trigger, e.payload["key"]) for e in events] == [("deployment_new", "mis-1")]
        loop.poll_now()
        loop.step(timeout=5)
        logged = _warnings(caplog, "mis-1")
        assert len(logged) == 1 and "'other-key'" in logged[0] and "etcd key" in logged[0], logged
        # an in-place update seen by the watch wake (incremental observation) is logged too
        _put(db, "mis-1", {"key": "mis-1", "kind": "slurm", "args": {"script": "#!/bin/bash\ntrue\n"}})
        wait_for(lambda: loop.step(timeout=2) is not None and len(_warnings(caplog, "mis-1")) == 2, timeout=20,
                 what="the update logged from the watch wake")
        assert loop.polls == 2  # the start-up poll and the forced one: the watch wake logged it
        assert "updated in place" in _warnings(caplog, "mis-1")[1]
    finally:
        loop.stop()
