"""The deployment sensor as StackStorm runs it (st2tests BaseSensorTestCase), without services:
set-up from the pack config and the datastore, a run() loop whose steps never raise, and the triggers it
dispatches, checked against the payload schemas in sensors/deployment_sensor.yaml with the
draft-3 semantics StackStorm gives them (``required: true`` inside each property)."""

import glob
import json
import os

import jsonschema
import yaml
from st2tests.base import BaseSensorTestCase

from deployment_sensor import DeploymentSensor
from deployer_test_case import JWT_KEY, PACK_DIR, TOKEN, DeployerTestMixin, replay_slurm
from slurm_replay import recorded
from slurmdeploy.deployer import Event, Observer

INSTANCES = os.path.join(PACK_DIR, "tests", "fixtures", "trigger_instances")


def payload_schemas():
    """``{trigger ref: payload_schema}`` of the triggers sensors/deployment_sensor.yaml declares."""
    with open(os.path.join(PACK_DIR, "sensors", "deployment_sensor.yaml")) as f:
        meta = yaml.safe_load(f)
    return {"slurmdeploy." + t["name"]: t["payload_schema"] for t in meta["trigger_types"]}


def trigger_instances():
    """Every trigger-instance fixture of this sensor's triggers whose payload it could dispatch, as
    ``(ref, payload)`` (the ``*_string_job_id`` and ``*_helm`` ones are rule-tester inputs only: the
    sensor never sends a job_id as a string, nor a deployment of another kind; node_state_changed
    belongs to the node-state sensor)."""
    out = []
    refs = set(payload_schemas())
    for path in sorted(glob.glob(os.path.join(INSTANCES, "*"))):
        if "string_job_id" in path or "helm" in path:
            continue
        with open(path) as f:
            data = yaml.safe_load(f)  # YAML is a superset of the JSON fixtures
        if data["trigger"] not in refs:
            continue
        payload = data["payload"]
        if payload.get("state_reason") == "None":  # st2-rule-tester fixtures write Python's None
            payload["state_reason"] = None
        out.append((data["trigger"], payload))
    return out


class RecordedObservations:
    """Stands in for :class:`slurmdeploy.deployer.Deployer` behind the sensor's Observer: each
    observe() returns the same events (those of the trigger-instance fixtures)."""

    def __init__(self, events):
        self.events = events
        self.observations = 0
        self.observed_keys = None  # every observation is a full one

    def observe(self, incremental=False):
        self.observations += 1
        return list(self.events)


class RecordedLoop:
    """Stands in for :class:`slurmdeploy.watch.SensorLoop` (which needs etcd): each step()
    is one observation through a real :class:`Observer`."""

    def __init__(self, observer):
        self.observer = observer
        self.stopped = False

    def step(self, timeout=None):
        return self.observer.poll()

    def stop(self):
        self.stopped = True


class DeploymentSensorTestCase(DeployerTestMixin, BaseSensorTestCase):
    sensor_cls = DeploymentSensor

    def sensor_with_events(self, events):
        sensor = self.get_sensor_instance(config=self.config())
        sensor.setup()
        sensor._loop = RecordedLoop(Observer(RecordedObservations(events), quiet_period=60))
        return sensor

    def error_messages(self):
        logger = self.sensor_service.get_logger("DeploymentSensor")
        return [c.args[0] % tuple(c.args[1:]) for c in logger.error.call_args_list]

    def test_the_loop_takes_its_pace_from_loop_interval_and_resync_interval(self):
        self.sensor_service.set_value(JWT_KEY, TOKEN, local=False, encrypt=True)
        sensor = self.get_sensor_instance(config=self.config(loop_interval=7, resync_interval=70))
        sensor.setup()
        loop = sensor._build()  # builds only: no etcd or Slurm request yet
        try:
            assert loop.poll_interval == 7 and loop.view.resync_interval == 70
            assert loop.observer.quiet_period == 30  # max(2 * loop_interval, 30)
        finally:
            loop.stop()

    def test_dispatched_payloads_match_the_declared_payload_schemas(self):
        instances = trigger_instances()
        assert {ref for ref, _ in instances} == set(payload_schemas())  # every trigger type covered
        sensor = self.sensor_with_events([Event(ref.split(".", 1)[1], payload) for ref, payload in instances])
        assert sensor.step() is True
        assert len(self.get_dispatched_triggers()) == len(instances)
        for ref, payload in instances:
            self.assertTriggerDispatched(trigger=ref, payload=payload)
        for item in self.get_dispatched_triggers():
            # StackStorm's validator is draft-4 with draft-3 "required: true" per property; every
            # property of ours is required, so Draft3Validator checks exactly what it checks
            jsonschema.Draft3Validator(payload_schemas()[item["trigger"]]).validate(item["payload"])
            json.dumps(item["payload"])  # what the dispatcher stores must be JSON

    def test_each_trigger_is_dispatched_with_its_deployments_trace_tag(self):
        events = [Event("deployment_new", {"key": "k-1", "kind": "slurm", "args": {}}, "k-1@17"),
                  Event("deployment_removed", {"key": "k-2", "job_id": 5, "job_state": "RUNNING"}, None)]
        sensor = self.sensor_with_events(events)
        assert sensor.step() is True
        new, removed = self.get_dispatched_triggers()
        # StackStorm's mock wraps the tag in a TraceContext, packrunner's shim in a dict
        context = new["trace_context"]
        tag = context.trace_tag if hasattr(context, "trace_tag") else context["trace_tag"]
        assert tag == "k-1@17"
        assert removed["trace_context"] is None  # no revision known: no tag (StackStorm makes one)

    def test_an_event_is_not_dispatched_again_within_the_quiet_period(self):
        ref, payload = trigger_instances()[0]
        sensor = self.sensor_with_events([Event(ref.split(".", 1)[1], payload)])
        sensor.step()
        sensor.step()
        assert len(self.get_dispatched_triggers()) == 1
        assert sensor._loop.observer.deployer.observations == 2  # level-triggered: every step observes

    def test_cleanup_stops_the_loop(self):
        sensor = self.sensor_with_events([])
        loop = sensor._loop
        sensor.cleanup()
        assert loop.stopped
        sensor.run()  # returns at once: stopped
        assert self.get_dispatched_triggers() == []

    def test_step_never_raises_and_logs_an_unreachable_configuration_db(self):
        self.sensor_service.set_value(JWT_KEY, TOKEN, local=False, encrypt=True)
        sensor = self.get_sensor_instance(config=self.config())
        sensor.setup()
        try:
            assert sensor.step(timeout=1) is False  # must not raise: a dead run() loop is a dead sensor
        finally:
            sensor.cleanup()
        assert self.get_dispatched_triggers() == []
        message, = self.error_messages()
        assert "observation failed" in message and f"etcd at http://127.0.0.1:{self.etcd.port}" in message
        assert TOKEN not in message

    def test_missing_datastore_key_is_logged_with_how_to_store_it(self):
        sensor = self.get_sensor_instance(config=self.config())
        sensor.setup()
        assert sensor.step(timeout=1) is False
        messages = self.error_messages()
        assert messages and all("datastore key 'slurm_jwt'" in m and "st2 key set slurm_jwt" in m for m in messages)
        assert self.get_dispatched_triggers() == []

    def test_jwt_is_read_from_the_sensors_datastore_and_sent_only_as_slurms_header(self):
        self.sensor_service.set_value(JWT_KEY, TOKEN, local=False, encrypt=True)
        sensor = self.get_sensor_instance(config=self.config())
        sensor.setup()
        loop = sensor._build()  # reads the key from the datastore
        try:
            deployer = loop.deployer
            replay = replay_slurm(deployer.slurm, recorded("v0.0.41", "ping"))
            deployer.slurm.ping()
        finally:
            loop.stop()
        (_method, _path, headers, _body), = replay.sent
        assert headers["X-SLURM-USER-TOKEN"] == TOKEN and headers["X-SLURM-USER-NAME"] == "slurmtest"
        logged = " ".join(str(c) for c in self.sensor_service.get_logger("x").method_calls)
        assert "watching" in logged and TOKEN not in logged
        assert self.sensor_service.get_value(JWT_KEY, local=True) is None  # system scope, not the sensor's own

    def test_job_accounted_is_dispatched_after_a_terminal_job_state_changed_when_accounted_trigger_is_on(self):
        """The sensor's hook (slurmdeploy.accounted.sensor_hook): off by default; on, the terminal
        job_state_changed of a job is followed by job_accounted once slurmdbd's record (here
        recorded from Slurm 24.11.5) is complete, and the pending job survives in the datastore."""
        import requests

        from slurm_replay import Replay, recorded
        from slurmdeploy.accounted import DATASTORE_KEY, AccountedJobs
        from slurmdeploy.auth import StaticJWT
        from slurmdeploy.slurm import SlurmClient
        from slurmdeploy.slurm.accounting import Accounting

        self.sensor_service.set_value(JWT_KEY, TOKEN, local=False, encrypt=True)
        sensor = self.get_sensor_instance(config=self.config())
        loop = sensor._build()
        loop.stop()
        assert sensor._accounted is None  # accounted_trigger defaults to false
        answer = recorded("v0.0.42", "accounting_job_steps")
        job_id = answer["body"]["jobs"][0]["job_id"]
        replay = Replay([answer])
        session = requests.Session()
        session.mount("http://", replay)
        client = SlurmClient("http://slurm.test", StaticJWT(TOKEN, user_name="slurmtest"), api_version="v0.0.42",
                             session=session)
        changed = Event("job_state_changed", {"key": "k-1", "job_id": job_id, "job_state": "COMPLETED",
                                              "previous_status": "RUNNING", "status": "FINISHED",
                                              "state_reason": None, "state_description": None}, "k-1@3")
        sensor = self.sensor_with_events([changed])
        sensor._accounted = AccountedJobs(Accounting(client), "slurmtest",
                                          load=lambda: sensor.sensor_service.get_value(DATASTORE_KEY),
                                          save=lambda v: sensor.sensor_service.set_value(DATASTORE_KEY, v))
        assert sensor.step() is True
        refs = [d["trigger"] for d in self.get_dispatched_triggers()]
        assert refs == ["slurmdeploy.job_state_changed", "slurmdeploy.job_accounted"]
        accounted = self.get_dispatched_triggers()[1]["payload"]
        jsonschema.Draft3Validator(payload_schemas()["slurmdeploy.job_accounted"]).validate(accounted)
        assert (accounted["key"], accounted["job_id"], accounted["complete"]) == ("k-1", job_id, True)
        assert json.loads(sensor.sensor_service.get_value(DATASTORE_KEY))["reported"] == [job_id]
