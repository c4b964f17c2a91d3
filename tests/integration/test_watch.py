"""The watch-driven sensor and the incremental job view on the real etcd and Slurm 24.11.

The sensor's poll interval is set far above the tests' waits, so a deployment that gets its
job proves that the etcd watch woke the sensor, not the poll."""

import os
import threading

import pytest

import testbed
from integration.conftest import make_pack_config, run_actions, wait_for
from slurmdeploy.configdb import ConfigDB
from slurmdeploy.deployer import Deployer
from slurmdeploy.jobs import build_job
from slurmdeploy.settings import Settings
from slurmdeploy.watch import SensorLoop

# packrunner is its own package (scripts/setup.sh installs it); st2-run-pack-tests does not
Runner = pytest.importorskip("packrunner.runner", reason="needs packrunner (pip install -e ./packrunner)").Runner
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
POLL = 600  # seconds: no test here waits anywhere near this long


def _sensor_threads():
    return [t for t in threading.enumerate() if t.name == "sensor-DeploymentSensor"]


@pytest.fixture
def own_etcd(testbed_dir, configdb_prefix):
    """An etcd of this test's own (it is stopped and restarted), on fixed free ports."""
    state_dir = os.path.join(testbed_dir, f"etcd-watch{configdb_prefix.replace('/', '-')}")
    ports = testbed.free_ports(2)
    info = testbed.start_etcd(state_dir, port=ports[0], peer_port=ports[1])
    info["peer_port"] = ports[1]
    yield info
    testbed.stop_etcd(state_dir)


def test_an_etcd_put_reaches_slurm_through_the_watch_and_survives_an_etcd_restart(
        own_etcd, slurm_cluster, configdb_prefix, tmp_path):
    config = make_pack_config(own_etcd, configdb_prefix, tmp_path, slurm_url=slurm_cluster["url"],
                              client_id=slurm_cluster["user"], slurm_jwt=str(slurm_cluster["jwt"]))
    config.update(loop_interval=POLL, resync_interval=POLL)
    db = ConfigDB.from_settings(Settings.from_config(config, {}))
    alive = tmp_path / "alive"
    with Runner(REPO, config=config, state_dir=str(tmp_path / "state")) as runner:
        runner.start()
        wait_for(alive.exists, what="the sensor's first poll")  # the poll timer now waits POLL s
        db.create_deployment("w-1", "slurm", {"script": "#!/bin/bash\nsleep 30\n"})
        first = wait_for(lambda: db.get_state("w-1")[0].job_id, timeout=60, what="w-1 submitted")

        testbed.stop_etcd(own_etcd["state_dir"])
        testbed.start_etcd(own_etcd["state_dir"], port=own_etcd["port"], peer_port=own_etcd["peer_port"], wipe=False)
        db2 = ConfigDB.from_settings(Settings.from_config(config, {}))
        db2.create_deployment("w-2", "slurm", {"script": "#!/bin/bash\nsleep 30\n"})
        second = wait_for(lambda: db2.get_state("w-2")[0].job_id, timeout=90, what="w-2 submitted after the restart")
        assert len(_sensor_threads()) == 1 and _sensor_threads()[0].is_alive()
        runner.wait_idle(30)  # the state is written before the execution is recorded as done
        submits = [e for e in runner.datastore.list_executions(limit=50) if e["action"] == "slurmdeploy.submit"]
    assert first != second
    assert all(e["status"] == "succeeded" for e in submits), submits
    assert [e["result"]["outcome"] for e in submits].count("submitted") == 2
    # the watch, not a listing of the cluster, found both: the submit made no lookup by name
    assert db2.get_attempt("w-1") is None and db2.get_attempt("w-2") is None


@pytest.fixture
def loop(pack_config):
    deployer = Deployer.from_config(pack_config, environ={"PATH": "/usr/bin:/bin"})
    loop = SensorLoop(deployer, poll_interval=POLL, resync_interval=POLL, quiet_period=0)
    yield loop
    loop.stop()


def _run(loop, deployer, poll=False):
    """One observation of the loop (a poll when ``poll``), with the actions the rules would run."""
    if poll:
        loop.poll_now()
    return run_actions(deployer, loop.step(timeout=2))


def test_the_incremental_view_sees_state_changes_removals_and_vanished_jobs_without_listing(loop):
    deployer = loop.deployer
    db = deployer.configdb
    _run(loop, deployer)  # start-up: one full listing
    assert loop.view.full_listings == 1
    db.create_deployment("inc-1", "slurm", {"script": "#!/bin/bash\nsleep 300\n"})
    db.create_deployment("inc-2", "slurm", {"script": "#!/bin/bash\ntrue\n"})
    events = []
    wait_for(lambda: events.extend(_run(loop, deployer)) or all(db.get_state(k)[0].job_id for k in ("inc-1", "inc-2")),
             timeout=60, what="both submitted")
    assert {e.trigger for e in events} == {"deployment_new"}
    job_1 = db.get_state("inc-1")[0].job_id
    # polls (forced: the poll timer is far away) ask only about the tracked jobs
    wait_for(lambda: _run(loop, deployer, poll=True) is not None and db.get_state("inc-2")[0].terminal,
             timeout=60, what="inc-2 finished")
    assert db.get_state("inc-2")[0].status == "FINISHED"
    db.delete_deployment("inc-1")
    removed = wait_for(lambda: _run(loop, deployer), timeout=30, what="the removal observed")
    assert [(e.trigger, e.payload["job_id"]) for e in removed] == [("deployment_removed", job_1)]
    wait_for(lambda: deployer.slurm.get_job(job_1).job_state == "CANCELLED", what="inc-1 cancelled")
    from slurmdeploy.states import DeploymentState

    db.create_deployment("inc-3", "slurm", {"script": "#!/bin/bash\ntrue\n"})
    assert db.write_state("inc-3", DeploymentState("inc-3", 99999999, "RUNNING"), 0)
    vanished = [e for e in _run(loop, deployer, poll=True) if e.payload["key"] == "inc-3"]
    assert [(e.trigger, e.payload["state_reason"]) for e in vanished] == [("job_state_changed", "JobVanished")]
    assert loop.view.full_listings == 1
    assert loop.view.last_mode == "incremental"


def test_a_submit_attempt_without_a_recorded_job_is_found_by_one_listing_and_adopted(loop):
    deployer = loop.deployer
    db = deployer.configdb
    _run(loop, deployer)
    db.create_deployment("att-1", "slurm", {"script": "#!/bin/bash\nsleep 5\n"})
    dep = db.get_deployment("att-1")
    # a submitter that died after the submit request: its claim (expiring), its trace and its job, no state
    assert db.claim("att-1", ttl=2, attempt_revision=dep.revision) is not None
    job_id = deployer.slurm.submit_job(build_job(deployer.settings, dep, {"PATH": "/bin"}))
    assert not _run(loop, deployer)  # owned: nobody touches it
    wait_for(lambda: db.get_owner("att-1") is None, timeout=30, what="the dead submitter's claim expired")
    events = wait_for(lambda: _run(loop, deployer), timeout=30, what="the adoption observed")
    assert [(e.trigger, e.payload["job_id"]) for e in events] == [("job_state_changed", job_id)]
    assert loop.view.full_listings == 2
    assert db.get_state("att-1")[0].job_id == job_id
    _run_until_quiet = [_run(loop, deployer) for _ in range(2)]
    assert loop.view.full_listings == 2 and not any(_run_until_quiet)
    # and the submit action, seeing the trace, adopts instead of submitting again
    db.create_deployment("att-2", "slurm", {"script": "#!/bin/bash\nsleep 5\n"})
    dep2 = db.get_deployment("att-2")
    assert db.claim("att-2", ttl=2, attempt_revision=dep2.revision) is not None
    job_2 = deployer.slurm.submit_job(build_job(deployer.settings, dep2, {"PATH": "/bin"}))
    wait_for(lambda: db.get_owner("att-2") is None, timeout=30, what="the dead submitter's claim expired")
    ok, res = deployer.submit("att-2")
    assert ok and res["outcome"] == "adopted" and res["job_id"] == job_2
    assert db.get_attempt("att-2") is None and db.get_owner("att-2") is None


def _pending_paths(loop):
    """Paths of the watch events not applied yet."""
    with loop.watch._lock:
        return {path for _, path, *_ in loop.watch._events}


def test_a_watch_wake_observes_only_the_changed_deployments_with_the_events_of_a_full_observation(loop):
    from slurmdeploy.states import DeploymentState

    deployer = loop.deployer
    db = deployer.configdb
    _run(loop, deployer)
    for key, script in (("eq-a", "sleep 300"), ("eq-b", "true")):
        db.create_deployment(key, "slurm", {"script": f"#!/bin/bash\n{script}\n"})
    wait_for(lambda: _run(loop, deployer) is not None and all(db.get_state(k)[0].job_id for k in ("eq-a", "eq-b")),
             timeout=60, what="eq-a and eq-b submitted")
    job_a = db.get_state("eq-a")[0].job_id
    db.create_deployment("eq-f", "slurm", {"script": "#!/bin/bash\ntrue\n"})  # seen, never submitted
    wait_for(lambda: any(e.payload["key"] == "eq-f" for e in loop.step(timeout=2)), what="eq-f observed")
    loop.view.refresh = False  # both observations below: the jobs as a watch wake sees them
    # three changes the next wake must see: a removal, a new deployment, a vanished job
    db.delete_deployment("eq-a")
    db.create_deployment("eq-d", "slurm", {"script": "#!/bin/bash\ntrue\n"})
    db.create_deployment("eq-c", "slurm", {"script": "#!/bin/bash\ntrue\n"})
    assert db.write_state("eq-c", DeploymentState("eq-c", 99999999, "RUNNING"), 0)
    wanted = {db.deployment_path("eq-a"), db.state_path("eq-c"), db.deployment_path("eq-d")}
    wait_for(lambda: wanted <= _pending_paths(loop), what="the watch events")
    incremental = deployer.observe(incremental=True)
    keys = deployer.observed_keys
    full = deployer.observe()
    assert deployer.observed_keys is None
    assert keys == {"eq-a", "eq-c", "eq-d"}
    assert incremental == [e for e in full if e.payload["key"] in keys]
    # the view read eq-a's job in full when it first saw it: its marker makes the job ours, so
    # the wake right after the delete reports it (not only a status change or a resync later)
    assert {("deployment_removed", "eq-a"), ("deployment_new", "eq-d"), ("job_state_changed", "eq-c")} <= {
        (e.trigger, e.payload["key"]) for e in incremental}
    assert [e.payload["key"] for e in full if e.payload["key"] not in keys] == ["eq-f"]
    deployer.slurm.cancel_job(job_a)
