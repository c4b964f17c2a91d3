"""Slurm operations and node-state events on the real testbed: Slurm 24.11 (REST v0.0.40-42),
Slurm 26.05 (REST v0.0.42-45) and Slurm 22.05 (REST v0.0.38).

Node operations need a Slurm operator: the tests use a token of root (the testbed's
SlurmUser) minted by ``scontrol token``; the cluster's job user gets Slurm error 2010.
Both clusters have a single node, ``localhost``, shared with every other test of the
session: each test that changes it puts it back to service in a ``finally`` and waits
until it is usable again (no DRAIN, DOWN or NOT_RESPONDING).
"""

import json
import logging
import os
import signal
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests

import testbed
from integration.conftest import wait_for
from slurmdeploy.auth import StaticJWT
from slurmdeploy.errors import (BadRequest, NotFound, SlurmAPIError, SlurmAuthError, SlurmControllerUnavailable,
                                UnsupportedOperation, slurm_error_numbers)
from slurmdeploy.slurm import JobRequest, SlurmClient
from slurmdeploy.slurm.operations import SlurmOperations
from slurmdeploy.slurm.endpoints import ALSO_SERVED_FROM, ENDPOINTS, path_pattern
from slurmdeploy.slurm.versions import ADAPTERS, no_val_number

# packrunner is its own package (scripts/setup.sh installs it); st2-run-pack-tests does not
Runner = pytest.importorskip("packrunner.runner", reason="needs packrunner (pip install -e ./packrunner)").Runner
SensorService = pytest.importorskip("packrunner.services").SensorService
REPO = Path(__file__).resolve().parents[2]
NODE = "localhost"
#: flavour -> REST versions this library speaks there, newest first
FLAVOUR_VERSIONS = {"bookworm": ("v0.0.38",), "trixie": ("v0.0.42", "v0.0.41", "v0.0.40"),
                    "forky": ("v0.0.45", "v0.0.44", "v0.0.43", "v0.0.42")}
CASES = [(f, v) for f, versions in sorted(FLAVOUR_VERSIONS.items()) for v in versions]
RELEASES = {"bookworm": "22.05.", "trixie": "24.11.", "forky": "26.05."}
_ROOT_TOKENS = {}


def root_token(cluster):
    """A token of root (SlurmUser of the testbed: a Slurm administrator), minted once per cluster."""
    if cluster["state_dir"] not in _ROOT_TOKENS:
        _ROOT_TOKENS[cluster["state_dir"]] = testbed.mint_token(cluster["state_dir"], "root", lifespan=3600)
    return _ROOT_TOKENS[cluster["state_dir"]]


def operations(cluster, admin=True, api_version="auto"):
    token, user = (root_token(cluster), "root") if admin else (cluster["jwt"], cluster["user"])
    client = SlurmClient(cluster["url"], StaticJWT(str(token), user), api_version=api_version,
                         connect_timeout=2, read_timeout=20)
    return SlurmOperations(client)


def pack_config(cluster, **extra):
    return {"slurm_url": cluster["url"], "client_id": "root", "slurm_jwt": str(root_token(cluster)),
            "connect_timeout": 2, "read_timeout": 20, **extra}


@pytest.fixture
def cluster(slurm_cluster_of, flavour):
    return slurm_cluster_of(flavour)


def usable(state):
    return not any(flag in state["state"] for flag in ("DRAIN", "DOWN", "NOT_RESPONDING", "FAIL"))


@contextmanager
def node_put_back(cluster):
    """Run the block; then return the node to service (REST on 24.11, scontrol on 22.05) and
    wait until it is usable, whatever the block did."""
    ops = operations(cluster)
    try:
        yield ops
    finally:
        state = ops.node_state(ops.get_node(NODE))
        if any(flag in state["state"] for flag in ("DRAIN", "DOWN", "FAIL")):
            if ops.api.supports("node_update"):
                ops.resume_node(NODE)
            else:
                testbed.slurm_exec(cluster["state_dir"], "scontrol", "update", f"nodename={NODE}", "state=resume",
                                   check=True)
        wait_for(lambda: usable(ops.node_state(ops.get_node(NODE))), timeout=60, what=f"node {NODE} back in service")


class SensorHarness:
    """The pack's NodeStateSensor as StackStorm would run it, in a packrunner Runner whose
    datastore and trigger instances live (SQLite) in ``state_dir``. A new harness on the
    same ``state_dir`` is a restarted sensor: new process objects, same datastore."""

    def __init__(self, config, state_dir):
        self.runner = Runner(str(REPO), config=config, state_dir=str(state_dir))
        meta = next(m for m in self.runner.pack.sensors if m.class_name == "NodeStateSensor")
        service = SensorService(self.runner, self.runner.pack.ref, meta.class_name)
        self.sensor = meta.load_class()(sensor_service=service, config=self.runner.config,
                                        poll_interval=meta.poll_interval)
        self.sensor.setup()
        self.service = service

    def poll(self):
        """One poll; returns the node_state_changed payloads it dispatched, oldest first."""
        seen = {t["id"] for t in self.runner.datastore.list_trigger_instances(limit=1000)}
        self.sensor.poll()
        new = [t for t in self.runner.datastore.list_trigger_instances(limit=1000) if t["id"] not in seen]
        assert all((t["ref"], t["status"]) == ("slurmdeploy.node_state_changed", "processed") for t in new), new
        return sorted((t["payload"] for t in new), key=lambda p: p["time"])

    def stored(self):
        return json.loads(self.service.get_value("node_states"))

    def close(self):
        self.sensor.cleanup()
        self.runner.close()


# ---------------------------------------------------------------------------- endpoint table

def test_endpoint_table_matches_the_servers_openapi(any_slurm_cluster):
    """endpoints.ENDPOINTS says, per version, exactly what GET /openapi/v3 of the real server serves."""
    c = any_slurm_cluster
    answer = requests.get(c["url"] + "/openapi/v3", timeout=20,
                          headers={"X-SLURM-USER-NAME": c["user"], "X-SLURM-USER-TOKEN": str(c["jwt"])})
    served = {(method.upper(), path.rstrip("/")) for path, item in answer.json()["paths"].items()
              for method in item if method in ("get", "post", "delete")}
    for version in FLAVOUR_VERSIONS[c["flavour"]]:
        api = ADAPTERS[version]
        for op, endpoint in ENDPOINTS.items():
            if endpoint.plugin != "slurm":
                continue  # slurmdbd's accounting paths: checked where a slurmdbd runs
            later = ALSO_SERVED_FROM.get((op, version))  # e.g. v0.0.42's DELETE /reservation on 26.05
            expected = api.supports(op) or bool(later and c["slurm_version"] >= later)
            assert ((endpoint.method, path_pattern(op, version).rstrip("/")) in served) is expected, (version, op)


# ------------------------------------------------------------------- cluster, partitions

def test_ping_diag_licenses_config_and_partitions(any_slurm_cluster):
    ops = operations(any_slurm_cluster, admin=False)
    ping = ops.ping()
    assert ping["slurm_release"].startswith(RELEASES[any_slurm_cluster["flavour"]]) and ping["pings"]
    assert ops.diag()["statistics"]["jobs_submitted"] >= 0
    assert ops.licenses() == {"licenses": []}  # the testbed defines no licenses
    config = ops.config()
    assert config["api_version"] == FLAVOUR_VERSIONS[any_slurm_cluster["flavour"]][0]
    assert config["slurm_release"] == ping["slurm_release"] and list(config["partitions"]) == ["debug"]
    assert config["cluster_name"] == (None if any_slurm_cluster["flavour"] == "bookworm" else "labcluster")
    assert [c["hostname"] for c in ops.config("controllers")["controllers"]] == [c["hostname"] for c in config["controllers"]]
    if ops.api.supports("slurm_conf"):  # v0.0.45 (26.05): GET /conf, slurm.conf as scontrol prints it
        shown = testbed.slurm_exec(any_slurm_cluster["state_dir"], "scontrol", "show", "config", check=True).stdout
        min_job_age = next(line.split("=", 1)[1].strip() for line in shown.splitlines()
                           if line.startswith("MinJobAge "))
        assert ops.config("MinJobAge") == {"MinJobAge": int(min_job_age.split()[0])}
        assert config["slurm_conf"]["ClusterName"] == "labcluster" and "not_available" not in config
        with pytest.raises(BadRequest, match="config item 'NoSuchItem' is neither one of .* nor a slurm.conf item"):
            ops.config("NoSuchItem")
    else:
        assert "scontrol show config" in config["not_available"]
        with pytest.raises(BadRequest, match="config item 'MinJobAge' is not available through the REST API.*scontrol"):
            ops.config("MinJobAge")
    assert ops.get_partition("debug")["name"] == "debug"
    with pytest.raises(NotFound, match=r"Slurm partition 'nope' not found \(partitions: debug\)"):
        ops.get_partition("nope")


# ------------------------------------------------------------------------------------ jobs

def submit_held(client, name, script="#!/bin/bash\nsleep 300\n"):
    """Submit a job that stays PENDING (held at submission: ``hold: true``)."""
    api = client.api
    body = api.submit_body(JobRequest(name=name, script=script, environment={"PATH": "/usr/bin:/bin"},
                                      mcs_label="", current_working_directory="/tmp", standard_output="/dev/null"))
    body["job"]["hold"] = True
    # 22.05 answers a held submit with the job id *and* error 2042 "Job is in held state"
    _, data = client.request("POST", api.submit_path(), body=body)
    return api.submitted_job_id(data)


@pytest.mark.parametrize("flavour, version", CASES)
def test_find_hold_release_update_and_cancel_by_name(cluster, flavour, version):
    user = operations(cluster, admin=False, api_version=version)
    name, other = f"ops-{uuid.uuid4().hex[:6]}", f"ops-{uuid.uuid4().hex[:6]}"
    first, second = submit_held(user.client, name), submit_held(user.client, name)
    third = submit_held(user.client, other)

    found = user.find_jobs({"name": name})
    assert [user.api.parse_job(j).job_id for j in found] == [first, second]
    assert len(user.find_jobs({"name": name, "job_state": "PENDING", "state_reason": "JobHeldUser"})) == 2
    assert user.find_jobs({"name": [name, other], "user_name": cluster["user"]})[-1]["name"] == other
    with pytest.raises(BadRequest, match="unknown job field"):
        user.find_jobs({"job_stat": "PENDING"})

    updated = user.update_job(first, {"time_limit": 7, "comment": "ops-test"})
    job = user.api.parse_job(updated["job"])
    assert (job.time_limit, job.comment, job.state_reason) == (7, "ops-test", "JobHeldUser")
    with pytest.raises(SlurmAPIError):  # 22.05: "Unknown key" error; 24.11: only a warning, raised here
        user.update_job(first, {"no_such_field": 1})
    with pytest.raises(NotFound):
        user.update_job(999999, {"time_limit": 1})

    released = user.api.parse_job(user.release_job(second)["job"])
    assert released.state_reason != "JobHeldUser"
    held = user.api.parse_job(user.hold_job(second)["job"])
    assert held.state_reason == "JobHeldUser" and held.job_state == "PENDING"
    admin = operations(cluster, api_version=version)
    admin.release_job(second)
    assert no_val_number(admin.update_job(second, {"priority": 12345})["job"]["priority"]) == 12345
    with pytest.raises(SlurmAPIError, match="slurm error 2002"):  # raising a priority needs an operator
        user.update_job(second, {"priority": 99999})

    outcomes = user.cancel_jobs(name=name)
    assert sorted((o["job_id"], o["outcome"]) for o in outcomes) == [(first, "cancelled"), (second, "cancelled")]
    wait_for(lambda: len(user.find_jobs({"name": name, "job_state": "CANCELLED"})) == 2, timeout=30,
             what="both jobs CANCELLED")
    assert user.cancel_jobs(name=name)[0]["outcome"] == "already_finished"
    # another user's job: not even tried without other_users (24.11.5 hangs on a refused REST cancel)
    theirs = submit_held(admin.client, name)
    refused = [o for o in user.cancel_jobs(name=name) if o["job_id"] == theirs]
    assert refused[0]["outcome"] == "refused" and "belongs to root, not to " + cluster["user"] in refused[0]["error"]
    assert user.get_job(theirs) and user.find_jobs({"name": name})  # slurmctld still answers job requests
    assert admin.cancel_jobs(job_id=theirs, other_users=True)[0]["outcome"] == "cancelled"
    assert user.cancel_jobs(job_id=third) == [{"job_id": third, "name": other, "job_state": "PENDING",
                                               "outcome": "cancelled"}]
    with pytest.raises(NotFound, match="no Slurm job named"):
        user.cancel_jobs(name=f"none-{uuid.uuid4().hex[:6]}")
    with pytest.raises(BadRequest):
        user.cancel_jobs(job_id=first, name=name)


# -------------------------------------------------------------------------------- reservations

def test_reservations_are_read_on_every_version_and_written_on_none(any_slurm_cluster):
    """Reservations are read on every version; no REST version up to v0.0.42 writes them (the
    writes of v0.0.43+ on Slurm 26.05: tests/integration/test_slurm_2605.py). The test creates
    one with the testbed's scontrol (tooling, not the pack), a day ahead so no job is affected."""
    c = any_slurm_cluster
    ops = operations(c)
    name = f"ops-resv-{uuid.uuid4().hex[:6]}"
    testbed.slurm_exec(c["state_dir"], "scontrol", "create", "reservation", f"reservationname={name}",
                       f"nodes={NODE}", "starttime=now+1day", "duration=10", "users=root", check=True)
    try:
        assert name in [r["name"] for r in ops.list_reservations()]
        record = ops.get_reservation(name)
        assert record["node_list"] == NODE and record["users"] == "root"
        with pytest.raises(NotFound, match=f"Slurm reservation 'nope' not found .*{name}"):
            ops.get_reservation("nope")
        for version in FLAVOUR_VERSIONS[c["flavour"]]:
            if ADAPTERS[version].supports("reservation_create"):
                continue
            old = operations(c, api_version=version)
            for call in (lambda: old.create_reservation("x"), lambda: old.update_reservation(name, duration=5),
                         lambda: old.delete_reservation(name)):
                with pytest.raises(UnsupportedOperation, match=r"needs Slurm >= 25\.05 \(REST v0\.0\.43\)"):
                    call()
    finally:
        testbed.slurm_exec(c["state_dir"], "scontrol", "delete", f"reservationname={name}")
    assert name not in [r["name"] for r in ops.list_reservations()]


# ------------------------------------------------------------------------ nodes and events

#: the flavours whose REST versions update nodes (24.11, 26.05): the node-state sensor tests run on each
REST_NODE_UPDATE_FLAVOURS = pytest.mark.parametrize("flavour", ["trixie", "forky"])


@REST_NODE_UPDATE_FLAVOURS
def test_drain_down_resume_and_their_events_through_rest(cluster, tmp_path):
    slurm_cluster = cluster
    sensor = SensorHarness(pack_config(slurm_cluster, node_poll_interval=5), tmp_path / "state")
    with node_put_back(slurm_cluster) as ops:
        assert sensor.poll() == []  # first run: records, emits nothing
        assert sensor.stored()["nodes"][NODE]["state"] == ops.node_state(ops.get_node(NODE))["state"]

        with pytest.raises(SlurmAPIError, match="slurm error 2010"):  # the job user is no operator
            operations(slurm_cluster, admin=False).drain_node(NODE, "not allowed")
        reason = f"ops test {uuid.uuid4().hex[:6]}"
        drained = ops.drain_node(NODE, reason)["state"]
        assert "DRAIN" in drained["state_flags"] and drained["reason"] == reason
        assert drained["reason_set_by_user"] == "root"
        assert ops.list_nodes({"state": "DRAIN"})[0]["name"] == NODE
        events = sensor.poll()
        assert len(events) == 1 and events[0]["node"] == NODE and events[0]["reason"] == reason
        assert "DRAIN" in events[0]["state"] and "DRAIN" not in events[0]["previous_state"]
        assert events[0]["state"] == drained["state"] and events[0]["time"].endswith("Z")
        assert sensor.poll() == []  # nothing changed, nothing emitted

        downed = ops.down_node(NODE, reason + " down")["state"]
        assert downed["state"].startswith("DOWN"), downed
        events = sensor.poll()  # ReturnToService=2 returns it within seconds: poll at once
        assert [(e["previous_state"], e["state"]) for e in events][:1] == [(drained["state"], events[0]["state"])]
        assert events[0]["state"].startswith("DOWN") and events[0]["reason"] == reason + " down"

        ops.resume_node(NODE)
        wait_for(lambda: usable(ops.node_state(ops.get_node(NODE))), timeout=60, what="node resumed")
        events = sensor.poll()
        assert events and usable(events[-1]) and not events[-1]["state"].startswith("DOWN")
    sensor.close()
    with pytest.raises(NotFound):
        ops.get_node("no-such-node")  # slurmrestd answers an unknown name with every node


@REST_NODE_UPDATE_FLAVOURS
def test_node_events_survive_a_sensor_restart(cluster, tmp_path):
    """Two transitions while no sensor runs: each restarted sensor emits each exactly once."""
    slurm_cluster = cluster
    config, state_dir = pack_config(slurm_cluster, node_poll_interval=5), tmp_path / "state"
    with node_put_back(slurm_cluster) as ops:
        first = SensorHarness(config, state_dir)
        assert first.poll() == []
        before = ops.node_state(ops.get_node(NODE))["state"]
        first.close()  # sensor stopped

        ops.drain_node(NODE, "restart test")
        second = SensorHarness(config, state_dir)  # restarted: new objects, same datastore
        events = second.poll()
        assert [(e["node"], e["previous_state"]) for e in events] == [(NODE, before)]
        assert "DRAIN" in events[0]["state"] and events[0]["reason"] == "restart test"
        assert second.poll() == []
        drained = events[0]["state"]
        second.close()

        ops.resume_node(NODE)
        wait_for(lambda: usable(ops.node_state(ops.get_node(NODE))), timeout=60, what="node resumed")
        third = SensorHarness(config, state_dir)
        events = third.poll()
        assert len(events) == 1 and events[0]["previous_state"] == drained and usable(events[0])
        assert third.poll() == []
        assert len(third.runner.datastore.list_trigger_instances(limit=100)) == 2  # over all three sensors
        third.close()


def test_node_events_on_22_05_where_rest_cannot_update_nodes(slurm_cluster_bookworm, tmp_path):
    """REST v0.0.38 has no node update: the actions say so; the sensor still sees a drain
    made with scontrol."""
    c = slurm_cluster_bookworm
    sensor = SensorHarness(pack_config(c, node_poll_interval=5), tmp_path / "state")
    with node_put_back(c) as ops:
        for call in (lambda: ops.drain_node(NODE, "x"), lambda: ops.down_node(NODE, "x"),
                     lambda: ops.resume_node(NODE), lambda: ops.update_node(NODE, {"weight": 2})):
            with pytest.raises(UnsupportedOperation, match=r"node_update \(POST /node/\{node_name\}\) is not supported "
                                                           r"by Slurm REST v0\.0\.38, needs Slurm >= 23\.02 "
                                                           r"\(REST v0\.0\.39\)"):
                call()
        assert sensor.poll() == []
        testbed.slurm_exec(c["state_dir"], "scontrol", "update", f"nodename={NODE}", "state=drain",
                           "reason=scontrol drain", check=True)
        events = sensor.poll()
        assert [(e["node"], e["reason"]) for e in events] == [(NODE, "scontrol drain")]
        assert events[0]["state"].endswith("+DRAIN") and events[0]["state"] == events[0]["state"].upper()
        testbed.slurm_exec(c["state_dir"], "scontrol", "update", f"nodename={NODE}", "state=resume", check=True)
        wait_for(lambda: usable(ops.node_state(ops.get_node(NODE))), timeout=60, what="node resumed")
        assert "DRAIN" not in sensor.poll()[-1]["state"]
    sensor.close()


# ------------------------------------------------------------------- the actions themselves

@REST_NODE_UPDATE_FLAVOURS
def test_operations_actions_run_through_the_runner(cluster, flavour, tmp_path):
    """The action files as StackStorm runs them: (ok, result) with Slurm's records, errors
    as failed executions with the reason, never the token."""
    slurm_cluster = cluster
    token = str(root_token(slurm_cluster))
    with Runner(str(REPO), config=pack_config(slurm_cluster), state_dir=str(tmp_path / "state")) as runner:
        results = {}
        for ref, params in [("ping", {}), ("node_get", {"node": NODE}), ("node_list", {"criteria": {}}),
                            ("partition_list", {}), ("job_find", {"criteria": {"name": "none"}, "ids_only": True}),
                            ("config_get", {"item": "api_version"}), ("diag", {}), ("licenses", {}),
                            ("reservation_list", {}), ("node_drain", {"node": "no-such-node", "reason": "x"}),
                            ("reservation_create", {"name": "x"}), ("job_get", {"job_id": 999999}),
                            ("job_update", {"job_id": 999999, "time_limit": 5})]:
            results[ref] = runner.run_action(f"slurmdeploy.{ref}", params)
    status = {ref: r["status"] for ref, r in results.items()}
    assert status == {**{ref: "succeeded" for ref in ("ping", "node_get", "node_list", "partition_list", "job_find",
                                                      "config_get", "diag", "licenses", "reservation_list")},
                      **{ref: "failed" for ref in ("node_drain", "reservation_create", "job_get", "job_update")}}
    assert results["node_get"]["result"]["node"]["name"] == NODE
    assert results["job_find"]["result"] == {"count": 0, "job_ids": []}
    assert results["config_get"]["result"] == {"api_version": FLAVOUR_VERSIONS[flavour][0]}
    failure = results["node_drain"]["result"]  # every action fails with errors.action_error's result
    assert (failure["error"], failure["error_type"], failure["error_types"][-2:]) == (
        "Slurm node 'no-such-node' not found", "NotFound", ["SlurmAPIError", "SlurmDeployError"])
    assert results["job_update"]["result"]["error_type"] == "NotFound"
    assert results["job_update"]["result"]["job_id"] == 999999
    if ADAPTERS[FLAVOUR_VERSIONS[flavour][0]].supports("reservation_create"):  # 26.05: a name alone is refused
        assert "a new reservation needs nodes" in results["reservation_create"]["result"]["error"]
    else:
        assert "needs Slurm >= 25.05" in results["reservation_create"]["result"]["error"]
    assert token not in json.dumps(results)


def test_packrunner_start_runs_both_sensors(pack_config, slurm_cluster, tmp_path):
    """`packrunner start` runs the deployment sensor and the node-state sensor side by side;
    a drain reaches the datastore as a node_state_changed trigger instance."""
    config = dict(pack_config, client_id="root", slurm_jwt=str(root_token(slurm_cluster)), node_poll_interval=1)
    with node_put_back(slurm_cluster) as ops, Runner(str(REPO), config=config,
                                                     state_dir=str(tmp_path / "state")) as runner:
        runner.start()
        assert sorted(runner.sensors.class_names) == ["DeploymentSensor", "NodeStateSensor"]
        wait_for(lambda: runner.datastore.get("slurmdeploy.NodeStateSensor:node_states"), timeout=30,
                 what="the node sensor's first poll")
        ops.drain_node(NODE, "runner test")

        def drained():
            return [t for t in runner.datastore.list_trigger_instances(limit=50)
                    if t["ref"] == "slurmdeploy.node_state_changed" and "DRAIN" in t["payload"]["state"]]

        event = wait_for(drained, timeout=30, what="node_state_changed for the drain")[0]
        assert (event["status"], event["payload"]["node"], event["payload"]["reason"]) == ("processed", NODE,
                                                                                          "runner test")


# ------------------------------------------------- issue 15 item 8: checks before and after changes
#
# These run on clusters of their own (started here, stopped at the end of the module), because
# they stop slurmctld with SIGSTOP and because their node is named ``node1``, not ``localhost``:
# a cluster whose only node is ``localhost`` answers GET/POST /node/<any unknown name> with that
# node (/work/shared/docs/slurm-rest.md, "Verified"), which hides what a real cluster does.

RENAMED_NODE = "node1"


@pytest.fixture(scope="module")
def renamed_cluster_of(testbed_dir):
    """``flavour -> cluster info`` of a cluster started for this module alone, whose node is
    ``node1`` (testbed/slurm.sh SLURM_LAB_NODE_NAME) and whose slurmctld tests may stop."""
    started = {}

    def get(flavour):
        if flavour not in started:
            state_dir = os.path.join(testbed_dir, f"ops-{flavour}")
            # munge: a second auth/slurm cluster in the shared chroot cannot verify its own credentials
            started[flavour] = testbed.start_slurm(state_dir, flavour=flavour, ports=testbed.free_ports(3),
                                                   env={"SLURM_LAB_AUTH": "munge",
                                                        "SLURM_LAB_NODE_NAME": RENAMED_NODE})
        return started[flavour]

    yield get
    for info in started.values():
        testbed.stop_slurm(info["state_dir"])


@contextmanager
def slurmctld_stopped(cluster):
    """SIGSTOP the slurmctld of ``cluster`` (a cluster this module started: its pid file, checked
    against /proc/PID/cmdline), SIGCONT it afterwards and wait until it answers again."""
    pid = int(Path(cluster["state_dir"], "run", "slurmctld.pid").read_text())
    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    assert "slurmctld" in cmdline and cluster["state_dir"] in cmdline, cmdline
    os.kill(pid, signal.SIGSTOP)
    try:
        yield pid
    finally:
        os.kill(pid, signal.SIGCONT)
        wait_for(lambda: testbed.slurm_exec(cluster["state_dir"], "scontrol", "ping").returncode == 0, timeout=60,
                 what="slurmctld answering again")


def test_hostlist_node_names_are_checked_node_by_node_before_any_change(renamed_cluster_of):
    """Slurm itself, asked to drain ``node[1-2]`` where node2 does not exist, answers error 2018
    "Invalid node name specified" *and drains node1*: the pack checks every name first."""
    c = renamed_cluster_of("trixie")
    ops = operations(c)
    try:
        for expression in ("node[1-2]", "node1,node9", "node9"):
            with pytest.raises(NotFound, match=r"node9|node2"):
                ops.drain_node(expression, "must not happen")
            assert "DRAIN" not in ops.node_state(ops.get_node(RENAMED_NODE))["state"], expression
        with pytest.raises(NotFound, match="Slurm node 'localhost' not found"):
            ops.get_node("localhost")  # not answered with node1
        with pytest.raises(BadRequest, match="not a valid Slurm hostlist"):
            ops.drain_node("node[1-", "x")

        done = ops.drain_node("node[1-1]", "hostlist drain")
        assert done["nodes"] == [RENAMED_NODE] and "DRAIN" in done["states"][RENAMED_NODE]["state_flags"]
        ops.resume_node(RENAMED_NODE)

        # what Slurm does without the check (pinned: the reason for it)
        status, answer = ops.call("node_update", body={"state": ["DRAIN"], "reason": "raw"},
                                  allow_statuses=(500,), node_name="node[1-2]")
        assert status == 500 and 2018 in slurm_error_numbers(answer.get("errors"))
        assert ops.node_state(ops.get_node(RENAMED_NODE))["reason"] == "raw"  # node1 drained all the same
    finally:
        ops.resume_node(RENAMED_NODE)


def test_an_empty_features_list_is_refused_because_slurm_ignores_it(renamed_cluster_of):
    c = renamed_cluster_of("trixie")
    ops = operations(c)
    set_ = ops.update_node(RENAMED_NODE, {"features": ["fa", "fb"], "features_act": ["fa", "fb"]})
    assert sorted(ops.get_node(RENAMED_NODE)["features"]) == ["fa", "fb"] and set_["nodes"] == [RENAMED_NODE]
    with pytest.raises(BadRequest, match="an empty features is ignored by slurmrestd"):
        ops.update_node(RENAMED_NODE, {"features": []})
    # pinned: slurmrestd answers 200 and changes nothing
    status, answer = ops.call("node_update", body={"features": []}, node_name=RENAMED_NODE)
    assert status == 200 and not answer.get("errors")
    assert sorted(ops.get_node(RENAMED_NODE)["features"]) == ["fa", "fb"]
    ops.update_node(RENAMED_NODE, {"features": ["fa"], "features_act": ["fa"]})
    assert ops.get_node(RENAMED_NODE)["features"] == ["fa"]


@pytest.mark.parametrize("flavour", ["bookworm", "trixie"])
def test_a_stalled_slurmctld_is_told_from_a_bad_token(renamed_cluster_of, flavour, tmp_path, caplog):
    """slurmctld stopped (SIGSTOP): slurmrestd answers after slurmctld's MessageTimeout (10 s)
    with what 22.05 also answers a bad token at once; the pack says the controller did not
    answer, not that the token was rejected. A bad token on 22.05 reaches the node-state
    sensor as an auth error (it logged a plain HTTP 500)."""
    c = renamed_cluster_of(flavour)
    ops = operations(c)
    assert ops.list_nodes()[0]["name"] == RENAMED_NODE  # REST version detected before the stall
    with slurmctld_stopped(c):
        started = time.monotonic()
        with pytest.raises(SlurmControllerUnavailable, match="slurmctld did not answer slurmrestd in time") as caught:
            ops.list_nodes()  # 22.05: 500 + {"errno": -1}; 24.11: 504 + 5004; both after 10 s
        assert not isinstance(caught.value, SlurmAuthError) and caught.value.elapsed >= 5
        # sent once: not again "with a fresh token" (22.05), nor retried as a 504 (24.11: 41 s)
        assert time.monotonic() - started < 20
        with pytest.raises(SlurmControllerUnavailable):
            ops.client.cancel_job(999999)  # 22.05: 500 + 5004; 24.11: 500 + error 1 "Operation not permitted"
    assert ops.list_nodes()[0]["name"] == RENAMED_NODE

    bad = str(root_token(c))[:-6] + "AAAAAA"
    sensor = SensorHarness(dict(pack_config(c, node_poll_interval=5), slurm_jwt=bad), tmp_path / "state")
    try:
        with caplog.at_level(logging.ERROR, logger="packrunner.sensor"):
            assert sensor.poll() == []
        failures = [r.getMessage() for r in caplog.records if "node poll failed" in r.getMessage()]
        assert failures and all("SlurmAuthError" in m and "rejected the jwt credentials" in m for m in failures)
        assert bad not in caplog.text
    finally:
        sensor.close()


def test_22_05_job_update_error_2095_is_read_back_and_reported_applied(slurm_cluster_bookworm):
    """22.05: a plain user lowering its job's priority gets HTTP 500 + error 2095 "Changes to job
    priority are not persistent, change nice instead", and Slurm set the priority."""
    c = slurm_cluster_bookworm
    user = operations(c, admin=False)
    job_id = submit_held(user.client, f"ops-{uuid.uuid4().hex[:6]}")
    try:
        user.release_job(job_id)
        result = user.update_job(job_id, {"priority": 10, "comment": "lowered"})
        assert result["applied"] == ["comment", "priority"]
        assert [e["error_number"] for e in result["slurm_errors"]] == [2095]
        assert no_val_number(user.get_job(job_id)["priority"]) == 10
        with pytest.raises(SlurmAPIError, match="read back: not applied: priority.*slurm error 2002"):
            user.update_job(job_id, {"priority": 99999})  # raising it needs an operator
    finally:
        user.cancel_jobs(job_id=job_id)


def test_job_ids_beyond_uint32_never_reach_slurm(slurm_cluster_bookworm):
    """22.05 wraps a job id above 2**32-1 (GET /job/<2**32 + N> returns job N): the library
    refuses such ids (and 0, NO_VAL, INFINITE) before any request."""
    c = slurm_cluster_bookworm
    user = operations(c, admin=False)
    job_id = submit_held(user.client, f"ops-{uuid.uuid4().hex[:6]}")
    try:
        _, answer = user.client.request("GET", user.api.job_path(2**32 + job_id))
        assert [j["job_id"] for j in answer["jobs"]] == [job_id]  # pinned: the wrap
        sent = user.client.stats["requests"]
        for bad in (2**32 + job_id, 2**32 - 2, 2**32 - 1, 0):
            with pytest.raises(BadRequest, match="job_id"):
                user.get_job(bad)
            with pytest.raises(BadRequest, match="job_id"):
                user.cancel_jobs(job_id=bad)
        assert user.client.stats["requests"] == sent
        assert user.get_job(job_id)["job_state"] == "PENDING"
    finally:
        user.cancel_jobs(job_id=job_id)
