"""Runner behaviour: actions, parameters, triggers, rules, sensors, persistence."""

import json
import logging
import time

import os

import pytest

from packrunner import ActionNotFound, ConfigError, ParameterError
from packrunner.schema import MASK

DEMO_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "packs", "demo")


def _wait_for(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    return predicate()


# --- actions -----------------------------------------------------------------

@pytest.mark.parametrize("mode,status,result", [
    ("tuple_true", "succeeded", {"ok": 1}),
    ("tuple_false", "failed", {"why": "told to fail"}),
    ("plain", "succeeded", [1, 2, 3]),
    ("none", "succeeded", None),
    ("unserialisable", "succeeded", "<Helper object>"),
])
def test_result_conventions(make_runner, mode, status, result):
    rec = make_runner().run_action("result_modes", {"mode": mode})
    assert rec["status"] == status
    assert rec["result"] == result


def test_bad_tuple_fails_with_error(make_runner):
    rec = make_runner().run_action("demo.result_modes", {"mode": "bad_tuple"})
    assert rec["status"] == "failed"
    assert "not a bool" in rec["error"]


def test_exception_fails_with_traceback(make_runner):
    rec = make_runner().run_action("result_modes", {"mode": "raise"})
    assert rec["status"] == "failed"
    assert "boom from action" in rec["error"]
    assert "Traceback" in rec["result"]["traceback"]


def test_timeout_status(make_runner):
    rec = make_runner().run_action("result_modes", {"mode": "sleep", "seconds": 3, "timeout": 1})
    assert rec["status"] == "timeout"
    assert "timed out" in rec["error"]


def test_parameters_defaults_casts_and_masking(make_runner):
    runner = make_runner()
    rec = runner.run_action("echo", {"message": "hi", "count": "4", "token": "tok-123"})
    assert rec["status"] == "succeeded", rec
    res = rec["result"]
    assert res["count"] == 4 and res["types"]["count"] == "int"
    assert res["prefix"] == "hello"  # default "{{ config_context.greeting }}"
    assert res["shout"] == "HI"  # pack lib/ importable
    assert res["has_token"] is True
    assert rec["parameters"]["token"] == MASK
    stored = runner.datastore.get_execution(rec["id"])
    assert stored["parameters"]["token"] == MASK
    assert "tok-123" not in json.dumps(stored)
    # action_service local key naming <pack>.<ClassName>:<name>
    assert runner.datastore.get("demo.EchoAction:last_message") == "hi"


@pytest.mark.parametrize("params,match", [
    ({"message": "x", "bogus": 1}, "unknown parameter 'bogus'"),
    ({}, "message"),
    ({"message": "x", "count": "many"}, "count"),
])
def test_parameter_errors(make_runner, params, match):
    with pytest.raises(ParameterError, match=match):
        make_runner().run_action("echo", params)


def test_immutable_override_replaced_by_default_with_warning(make_runner, caplog):
    """st2common/util/param.py _process_defaults: an immutable parameter always takes its default."""
    with caplog.at_level(logging.WARNING, logger="packrunner"):
        rec = make_runner().run_action("echo", {"message": "x", "version": "v2"})
    assert rec["status"] == "succeeded", rec
    assert rec["parameters"]["version"] == "v1"
    assert any("immutable" in r.getMessage() and "version" in r.getMessage() for r in caplog.records)


def test_unknown_action(make_runner):
    with pytest.raises(ActionNotFound, match="nope"):
        make_runner().run_action("nope", {})


def test_invalid_config_rejected(tmp_path, demo_pack):
    from packrunner import Runner

    with pytest.raises(ConfigError, match="api_token"):
        Runner(demo_pack, config={"greeting": "x"}, state_dir=str(tmp_path))


def test_masked_config(make_runner):
    assert make_runner().masked_config()["api_token"] == MASK


# --- triggers and rules ------------------------------------------------------

def test_dispatch_rule_with_typed_params(make_runner):
    runner = make_runner()
    runner.datastore.set("demo_token", "kv-secret")
    rec = runner.dispatch("event", {"kind": "echo", "message": "m", "count": 2, "data": {"a": [1]},
                                    "tags": ["x"]})
    assert rec["status"] == "processed"
    assert len(rec["executions"]) == 1
    assert runner.wait_idle(10)
    ex = runner.datastore.get_execution(rec["executions"][0])
    assert ex["status"] == "succeeded"
    assert ex["rule"] == "demo.echo_on_event"
    assert ex["trigger_instance_id"] == rec["id"]
    types = ex["result"]["types"]
    assert types == {"message": "str", "count": "int", "data": "dict", "tags": "list", "flag": "bool"}
    assert ex["result"]["data"] == {"a": [1]}
    assert ex["parameters"]["token"] == MASK


def test_disabled_rule_never_fires_and_hash_criteria(make_runner):
    runner = make_runner()
    rec = runner.dispatch("demo.event", {"kind": "window", "count": 5})
    assert len(rec["executions"]) == 1  # count_window only (disabled_by_default ignored)
    runner.wait_idle(10)
    ex = runner.datastore.get_execution(rec["executions"][0])
    assert ex["rule"] == "demo.count_window"
    assert ex["result"]["message"] == "count 5 in window"
    assert runner.dispatch("demo.event", {"kind": "window", "count": 12})["executions"] == []
    assert runner.dispatch("demo.event", {"kind": "window", "count": 12, "limit": 20})["executions"] != []
    assert runner.dispatch("demo.event", {"kind": "window", "count": 1})["executions"] == []


def test_invalid_payload_dropped_loudly(make_runner, caplog):
    runner = make_runner()
    with caplog.at_level(logging.WARNING, logger="packrunner"):
        rec = runner.dispatch("event", {"kind": "echo", "message": "m", "count": "two"})
    assert rec["status"] == "dropped"
    assert rec["executions"] == []
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("demo.event" in w and "count" in w for w in warnings), warnings
    # missing required field
    rec = runner.dispatch("event", {"message": "no kind"})
    assert rec["status"] == "dropped" and "kind" in rec["reason"]
    stored = {t["id"]: t for t in runner.datastore.list_trigger_instances()}
    assert stored[rec["id"]]["status"] == "dropped"


def test_invalid_schema_and_unknown_trigger_dropped(make_runner):
    runner = make_runner()
    rec = runner.dispatch("broken", {"kind": "x"})
    assert rec["status"] == "dropped" and "invalid" in rec["reason"]
    assert runner.dispatch("nosuch", {})["status"] == "dropped"


def test_rule_action_failure_recorded(make_runner):
    runner = make_runner()
    rec = runner.dispatch("event", {"kind": "please-fail"})
    runner.wait_idle(10)
    ex = runner.datastore.get_execution(rec["executions"][0])
    assert ex["status"] == "failed" and ex["action"] == "demo.result_modes"


def test_rule_param_render_error_recorded_as_failed(make_runner):
    runner = make_runner()
    # echo_on_event renders {{ trigger.message }}: missing -> render error, recorded as failed
    rec = runner.dispatch("event", {"kind": "echo"})
    ex = runner.datastore.get_execution(rec["executions"][0])
    # st2's message: Failed to render parameter "<name>": <Jinja error> (count is rendered first here)
    assert ex["status"] == "failed" and 'Failed to render parameter "' in ex["error"]
    assert "has no attribute" in ex["error"]


# --- sensors -----------------------------------------------------------------

def test_sensor_polls_dispatches_and_survives_poll_errors(make_runner):
    runner = make_runner()
    runner.start()
    try:
        assert _wait_for(lambda: runner.datastore.get("demo.QueueSensor:setup_done") == "yes")
        runner.datastore.set("demo.queue", json.dumps(["raise"]))
        assert _wait_for(lambda: runner.datastore.get("demo.queue") is None)
        polls = int(runner.datastore.get("demo.QueueSensor:polls"))
        assert _wait_for(lambda: int(runner.datastore.get("demo.QueueSensor:polls")) > polls + 1)
        runner.datastore.set("demo.queue", json.dumps([{"kind": "echo", "message": "via sensor", "count": 1,
                                                          "data": {}, "tags": []}]))
        assert _wait_for(lambda: any(e["rule"] == "demo.echo_on_event" and e["status"] == "succeeded"
                                     for e in runner.datastore.list_executions()))
    finally:
        runner.stop(timeout=10)
    assert runner.datastore.get("demo.QueueSensor:cleanup_done") == "yes"


# --- persistence -------------------------------------------------------------

def test_datastore_and_executions_survive_restart(make_runner, tmp_path):
    state = tmp_path / "persist"
    r1 = make_runner(state_dir=state)
    r1.datastore.set("k", {"a": 1})
    r1.datastore.set("short", "v", ttl=0.2)
    ex = r1.run_action("echo", {"message": "keep"})
    r1.close()
    r2 = make_runner(state_dir=state)
    assert r2.datastore.get("k") == "{'a': 1}"  # stored as str(value), like st2
    assert r2.datastore.get_execution(ex["id"])["status"] == "succeeded"
    assert r2.datastore.get("demo.EchoAction:last_message") == "keep"
    time.sleep(0.3)
    assert r2.datastore.get("short") is None


def test_sensor_service_api(make_runner):
    from packrunner.services import SensorService

    runner = make_runner()
    svc = SensorService(runner, "demo", "QueueSensor")
    assert svc.set_value("n", 5) is True
    assert svc.get_value("n") == "5"
    assert runner.datastore.get("demo.QueueSensor:n") == "5"
    svc.set_value("other", "x", local=False)
    assert [kv.name for kv in svc.list_values()] == ["demo.QueueSensor:n"]
    assert [kv.name for kv in svc.list_values(local=False, prefix="oth")] == ["other"]
    assert svc.delete_value("n") is True
    assert svc.delete_value("n") is False
    assert svc.get_value("n") is None
    iid = svc.dispatch("demo.event", {"kind": "none"})
    assert any(t["id"] == iid and t["status"] == "processed" for t in runner.datastore.list_trigger_instances())


def test_non_polling_sensor_pack_without_ref_or_schema(make_runner):
    pack = os.path.join(os.path.dirname(DEMO_PATH), "streamer")
    runner = make_runner(config=None, pack=pack)
    assert runner.pack.ref == "streamer"
    runner.start()
    try:
        ok = _wait_for(lambda: runner.datastore.get("seen") == "21")
        assert ok
        assert runner.wait_idle(10)
        ex = runner.datastore.list_executions()[0]
        assert ex["status"] == "succeeded" and ex["result"] == 42  # leaf class Record chosen over Base
    finally:
        runner.stop(timeout=10)
    assert runner.datastore.get("streamer.Ticker:run_returned") == "yes"


def test_validate_clean_pack_has_no_problems():
    from packrunner.validate import validate_pack

    assert validate_pack(os.path.join(os.path.dirname(DEMO_PATH), "streamer")) == []


def test_ambiguous_action_module_is_rejected(tmp_path, make_runner):
    pack = tmp_path / "amb"
    (pack / "actions").mkdir(parents=True)
    (pack / "pack.yaml").write_text("name: amb\ndescription: d\nversion: '0.1.0'\nauthor: a\n")
    (pack / "actions" / "two.yaml").write_text("name: two\nrunner_type: python-script\nentry_point: two.py\n")
    (pack / "actions" / "two.py").write_text(
        "from st2common.runners.base_action import Action\n"
        "class A(Action):\n    def run(self):\n        return 1\n"
        "class B(Action):\n    def run(self):\n        return 2\n")
    rec = make_runner(config=None, pack=str(pack), state_dir=tmp_path / "st").run_action("two", {})
    assert rec["status"] == "failed"
    assert "several Action classes" in rec["error"]
