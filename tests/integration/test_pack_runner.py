"""The whole pack - sensor, triggers, rules, actions - run by the local runner on the real
etcd and Slurm: what `python -m packrunner start` does for a user."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from integration.conftest import wait_for
from slurmdeploy.configdb import ConfigDB
from slurmdeploy.settings import Settings
from slurmdeploy.slurm import SlurmClient

# packrunner is its own package (scripts/setup.sh installs it); st2-run-pack-tests does not
Runner = pytest.importorskip("packrunner.runner", reason="needs packrunner (pip install -e ./packrunner)").Runner
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def services(pack_config):
    settings = Settings.from_config(pack_config, {})
    return ConfigDB.from_settings(settings), SlurmClient.from_settings(settings), settings


def statuses(db, keys):
    return {k: db.get_state(k)[0].status for k in keys}


def test_runner_drives_the_whole_lifecycle(pack_config, services, tmp_path):
    db, slurm, settings = services
    db.create_deployment("ok-1", "slurm", {"script": "#!/bin/bash\nsleep 4\n"})
    db.create_deployment("fail-1", "slurm", {"script": "#!/bin/bash\nexit 3\n"})
    db.create_deployment("rm-1", "slurm", {"script": "#!/bin/bash\nsleep 300\n"})
    db.create_deployment("helm-1", "helm", {"chart": "x"})
    history = {k: [] for k in ("ok-1", "fail-1", "rm-1")}
    with Runner(str(REPO), config=pack_config, state_dir=str(tmp_path / "state")) as runner:
        runner.start()

        def observe():
            for key, status in statuses(db, history).items():
                if not history[key] or history[key][-1] != status:
                    history[key].append(status)
            return history

        wait_for(lambda: observe()["rm-1"][-1] in ("PENDING", "RUNNING"), what="rm-1 submitted")
        db.delete_deployment("rm-1")
        wait_for(lambda: all(observe()[k][-1] in ("FINISHED", "FAILED") for k in ("ok-1", "fail-1")),
                 what="ok-1 and fail-1 settled")
        rm_jobs = slurm.find_jobs(settings.mcs_label, "sdp-rm-1")
        wait_for(lambda: slurm.get_job(rm_jobs[0].job_id).job_state == "CANCELLED", what="rm-1 cancelled")
        runner.wait_idle(30)
        executions = runner.datastore.list_executions(limit=200)
        triggers = runner.datastore.list_trigger_instances(limit=200)
    assert history["ok-1"] == ["PENDING", "RUNNING", "FINISHED"] or history["ok-1"][-2:] == ["RUNNING", "FINISHED"]
    assert "RUNNING" in history["ok-1"]
    assert history["fail-1"][-1] == "FAILED"
    assert "exit code 3" in db.get_state("fail-1")[0].to_dict()["error_state"]
    assert len(rm_jobs) == 1
    assert db.get_deployment("helm-1") is not None and db.get_state("helm-1")[0].status == "UNSET"
    actions = {e["action"] for e in executions}
    assert {"slurmdeploy.submit", "slurmdeploy.update_state", "slurmdeploy.cancel"} <= actions
    assert all(e["status"] == "succeeded" for e in executions), [(e["action"], e["status"]) for e in executions]
    assert triggers and all(t["status"] != "dropped" for t in triggers)
    for key in ("ok-1", "fail-1"):
        assert len(slurm.find_jobs(settings.mcs_label, f"sdp-{key}")) == 1


def test_duplicate_deployment_new_triggers_give_one_job(pack_config, services, tmp_path):
    db, slurm, settings = services
    db.create_deployment("dup-2", "slurm", {"script": "#!/bin/bash\nsleep 1\n"})
    payload = {"key": "dup-2", "kind": "slurm", "args": {"script": "#!/bin/bash\nsleep 1\n"}}
    with Runner(str(REPO), config=pack_config, state_dir=str(tmp_path / "state"), workers=4) as runner:
        for _ in range(8):
            runner.dispatch("slurmdeploy.deployment_new", payload)
        runner.wait_idle(60)
        submits = [e for e in runner.datastore.list_executions(limit=50) if e["action"] == "slurmdeploy.submit"]
    assert len(submits) == 8 and all(e["status"] == "succeeded" for e in submits)
    outcomes = sorted(e["result"]["outcome"] for e in submits)
    assert outcomes.count("submitted") == 1, outcomes
    assert len(slurm.find_jobs(settings.mcs_label, "sdp-dup-2")) == 1


def test_invalid_trigger_payload_is_dropped_not_run(pack_config, tmp_path):
    with Runner(str(REPO), config=pack_config, state_dir=str(tmp_path / "state")) as runner:
        runner.dispatch("slurmdeploy.deployment_removed", {"key": "x", "job_id": "not-a-number", "job_state": "RUNNING"})
        runner.wait_idle(10)
        assert runner.datastore.list_executions(limit=10) == []
        assert [t["status"] for t in runner.datastore.list_trigger_instances(limit=10)] == ["dropped"]


def test_killing_and_restarting_the_runner_mid_submission_gives_one_job_each(pack_config, services, tmp_path):
    db, slurm, settings = services
    keys = [f"kill-{i}" for i in range(12)]
    for key in keys:
        db.create_deployment(key, "slurm", {"script": "#!/bin/bash\nsleep 1\n"})
    config_file = tmp_path / "config.yaml"
    config_file.write_text(yaml.safe_dump(pack_config))
    config_file.chmod(0o600)
    argv = [sys.executable, "-m", "packrunner", "--pack", str(REPO), "--config", str(config_file),
            "--state-dir", str(tmp_path / "state"), "start"]
    env = dict(os.environ)
    log1 = tmp_path / "run1.log"
    with open(log1, "w") as out:
        first = subprocess.Popen(argv, cwd=str(tmp_path), env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            # kill -9 as soon as the first job was submitted, with others in flight
            wait_for(lambda: "submitted Slurm job" in log1.read_text() or first.poll() is not None,
                     interval=0.05, what="a first submission")
            assert first.poll() is None, log1.read_text()[-3000:]
        finally:
            first.send_signal(signal.SIGKILL)
            first.wait(10)
    done_before = sum(1 for k in keys if db.get_state(k)[0].job_id is not None)
    log2 = tmp_path / "run2.log"
    with open(log2, "w") as out:
        second = subprocess.Popen(argv, cwd=str(tmp_path), env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            wait_for(lambda: all(s == "FINISHED" for s in statuses(db, keys).values()), timeout=120,
                     what="every deployment FINISHED after the restart")
        finally:
            second.send_signal(signal.SIGTERM)
            assert second.wait(30) == 0
    assert done_before < len(keys), "the runner was killed too late to test anything"
    for key in keys:
        jobs = slurm.find_jobs(settings.mcs_label, f"sdp-{key}")
        assert len(jobs) == 1, (key, [j.job_id for j in jobs])
        assert db.get_state(key)[0].job_id == jobs[0].job_id
    text = log1.read_text() + log2.read_text()
    assert str(pack_config["slurm_jwt"]) not in text


def test_one_deployment_is_followed_by_its_trace_tag_through_triggers_and_actions(pack_config, services, tmp_path):
    """`st2 trace list --trace-tag <key>@<create_revision>`: every trigger the sensor dispatches
    for one deployment incarnation, and every execution its rules run, carry that tag."""
    db, slurm, settings = services
    revision = db.create_deployment("trace-1", "slurm", {"script": "#!/bin/bash\nsleep 2\n"})
    db.create_deployment("trace-2", "slurm", {"script": "#!/bin/bash\ntrue\n"})
    tag = f"trace-1@{revision}"
    with Runner(str(REPO), config=pack_config, state_dir=str(tmp_path / "state")) as runner:
        runner.start()
        wait_for(lambda: db.get_state("trace-1")[0].status == "FINISHED", what="trace-1 finished")
        wait_for(lambda: db.get_state("trace-2")[0].status == "FINISHED", what="trace-2 finished")
        runner.wait_idle(30)
        store = runner.datastore
        instances = store.list_trigger_instances(limit=100, trace_tag=tag)
        executions = store.list_executions(limit=100, trace_tag=tag)
        every_instance = store.list_trigger_instances(limit=500)
    assert {i["ref"] for i in instances} == {"slurmdeploy.deployment_new", "slurmdeploy.job_state_changed"}
    assert all(i["payload"]["key"] == "trace-1" for i in instances)
    assert {e["action"] for e in executions} == {"slurmdeploy.submit", "slurmdeploy.update_state"}
    assert all(e["trigger_instance_id"] in {i["id"] for i in instances} for e in executions)
    # and nothing of trace-1 is left out of its trace
    assert {i["id"] for i in every_instance if i["payload"].get("key") == "trace-1"} == {i["id"] for i in instances}
    p = subprocess.run([sys.executable, "-m", "packrunner", "--pack", str(REPO), "--state-dir", str(tmp_path / "state"),
                        "trace", "get", tag], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert yaml.safe_load(p.stdout)["trace_tag"] == tag
