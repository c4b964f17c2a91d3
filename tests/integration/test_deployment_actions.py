"""deployment_create / deployment_list / deployment_delete against the real etcd (testbed):
ska-sdp-config's layout and value format, create by compare-and-swap, recursive delete, and
the commands a newcomer types (packrunner run, as in the README and scripts/demo.sh)."""

import json
import os
import subprocess
import sys
import threading

import yaml

from slurmdeploy import configdb
from slurmdeploy.configdb import ConfigDB, dumps
from slurmdeploy.layout import Layout
from slurmdeploy.settings import Settings
from slurmdeploy.states import DeploymentState

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ARGS = {"script": "#!/bin/bash\necho 'héllo'\n", "time_limit": 5, "environment": {"GREETING": "SDP"}}


def _config(etcd_server, prefix, tmp_path):
    return {"slurm_url": "http://127.0.0.1:9", "client_id": "nobody", "slurm_jwt": "not-used-by-these-actions",
            "config_host": etcd_server["host"], "config_port": etcd_server["port"], "config_prefix": prefix,
            "liveness_file": str(tmp_path / "alive")}


def _db(etcd_server, prefix, tmp_path):
    return ConfigDB.from_settings(Settings.from_config(_config(etcd_server, prefix, tmp_path), {}))


def test_create_writes_ska_sdp_configs_format_once(etcd_server, etcd_client, configdb_prefix, tmp_path):
    db = _db(etcd_server, configdb_prefix, tmp_path)
    ok, result = configdb.deployment_create(db, "new-1", ARGS)
    assert ok and result["outcome"] == "created"
    (value, meta), = etcd_client.get(Layout(configdb_prefix).deployment("new-1"), metadata=True)
    # byte for byte what ska-sdp-config's json.dumps(..., ensure_ascii=False, indent=2, sort_keys=True) writes
    assert value == dumps({"key": "new-1", "kind": "slurm", "args": ARGS})
    assert "héllo".encode("utf-8") in value and b'\n  "args": {' in value
    assert result["revision"] == int(meta["create_revision"])

    ok, again = configdb.deployment_create(db, "new-1", {"script": "#!/bin/sh\n"})
    assert not ok and again["outcome"] == "exists" and again["revision"] == result["revision"]
    assert "replace=true" in again["error"]
    assert etcd_client.get(Layout(configdb_prefix).deployment("new-1")) == [value]  # untouched

    ok, bad = configdb.deployment_create(db, "new-2", {"script": "no shebang"})
    assert not ok and bad["outcome"] == "invalid" and "args.script must start with #!" in bad["error"]
    assert etcd_client.get(Layout(configdb_prefix).deployment("new-2")) == []  # nothing written


def test_of_concurrent_creators_exactly_one_wins(etcd_server, etcd_client, configdb_prefix, tmp_path):
    results = []
    barrier = threading.Barrier(8)

    def create(i):
        db = _db(etcd_server, configdb_prefix, tmp_path)
        barrier.wait()
        results.append((i, configdb.deployment_create(db, "race-1", {"script": f"#!/bin/bash\necho {i}\n"})))

    threads = [threading.Thread(target=create, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    winners = [(i, r) for i, (ok, r) in results if ok]
    assert len(results) == 8 and len(winners) == 1, results
    assert all(r["outcome"] == "exists" for _, (ok, r) in results if not ok)
    stored = json.loads(etcd_client.get(Layout(configdb_prefix).deployment("race-1"))[0])
    assert stored["args"]["script"] == f"#!/bin/bash\necho {winners[0][0]}\n"


def test_list_shows_each_deployment_with_its_state(etcd_server, configdb_prefix, tmp_path):
    db = _db(etcd_server, configdb_prefix, tmp_path)
    configdb.deployment_create(db, "list-a", ARGS)
    configdb.deployment_create(db, "list-b", ARGS)
    dep = db.get_deployment("list-b")
    assert db.write_state("list-b", DeploymentState("list-b", 4711, "RUNNING", "None"), 0, dep.revision)
    db.client.put(db.layout.deployment("bad key"), dumps({"key": "bad key", "kind": "slurm", "args": {}}))
    listing = configdb.deployment_list(db)
    assert listing["count"] == 2
    a, b = listing["deployments"]
    assert (a["key"], a["status"], a["job_id"]) == ("list-a", "UNSET", None)
    assert (b["key"], b["status"], b["job_id"], b["state_reason"]) == ("list-b", "RUNNING", 4711, "None")
    assert b["kind"] == "slurm" and b["revision"] == dep.revision
    assert listing["ignored"] == [db.layout.deployment("bad key")]


def test_delete_removes_the_deployment_and_its_children_only(etcd_server, etcd_client, configdb_prefix, tmp_path):
    db = _db(etcd_server, configdb_prefix, tmp_path)
    configdb.deployment_create(db, "del-1", ARGS)
    configdb.deployment_create(db, "del-1x", ARGS)  # a sibling whose key starts the same
    dep = db.get_deployment("del-1")
    db.write_state("del-1", DeploymentState("del-1", 42, "RUNNING"), 0, dep.revision)
    claim = db.claim("del-1", 30, dep.revision)  # owner and attempt trace
    assert claim is not None
    ok, result = configdb.deployment_delete(db, "del-1")
    assert ok and result["outcome"] == "deleted" and result["job_id"] == 42 and result["revision"] == dep.revision
    assert "Slurm job 42 is cancelled by the deployment sensor" in result["note"]
    left = sorted(m["key"].decode() for _, m in etcd_client.get_prefix(db.deploy_prefix))
    assert left == [db.deployment_path("del-1x")]
    ok, again = configdb.deployment_delete(db, "del-1")
    assert not ok and again["outcome"] == "not_found"


def test_replace_makes_a_new_incarnation_without_the_old_state(etcd_server, configdb_prefix, tmp_path):
    db = _db(etcd_server, configdb_prefix, tmp_path)
    _, first = configdb.deployment_create(db, "rep-1", ARGS)
    db.write_state("rep-1", DeploymentState("rep-1", 7, "FAILED", "NonZeroExitCode"), 0, first["revision"])
    ok, second = configdb.deployment_create(db, "rep-1", {"script": "#!/bin/bash\ntrue\n"}, replace=True)
    assert ok and second["revision"] > first["revision"] and second["replaced_revision"] == first["revision"]
    state, mod = db.get_state("rep-1")
    assert (state.status, mod) == ("UNSET", 0)  # the old incarnation's state went with it
    assert db.get_deployment("rep-1").args == {"script": "#!/bin/bash\ntrue\n"}


def test_a_newcomer_creates_lists_and_deletes_with_packrunner_run(etcd_server, configdb_prefix, tmp_path):
    """The commands of README "Create a deployment" (also what scripts/demo.sh runs)."""
    config_file = tmp_path / "config.yaml"
    config_file.write_text(yaml.safe_dump(_config(etcd_server, configdb_prefix, tmp_path)))

    def packrunner(*argv):
        p = subprocess.run([sys.executable, "-m", "packrunner", "--pack", REPO, "--config", str(config_file),
                            "--state-dir", str(tmp_path / "state"), "--log-level", "WARNING", "run", *argv],
                           capture_output=True, text=True, timeout=120)
        return p.returncode, json.loads(p.stdout) if p.stdout.strip() else None, p.stderr

    code, execution, err = packrunner("slurmdeploy.deployment_create", "key=cli-1",
                                      'args={"script": "#!/bin/bash\\necho hi\\n"}')
    assert code == 0, err
    assert execution["result"]["outcome"] == "created"
    code, execution, _ = packrunner("slurmdeploy.deployment_create", "key=cli-1", 'args={"script": "#!/bin/bash\\n"}')
    assert code == 1 and execution["result"]["outcome"] == "exists"
    code, execution, _ = packrunner("slurmdeploy.deployment_list")
    assert code == 0 and [d["key"] for d in execution["result"]["deployments"]] == ["cli-1"]
    code, execution, _ = packrunner("slurmdeploy.deployment_delete", "key=cli-1")
    assert code == 0 and execution["result"]["outcome"] == "deleted"
    code, execution, _ = packrunner("slurmdeploy.deployment_list")
    assert execution["result"]["count"] == 0
