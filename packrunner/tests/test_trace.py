"""Trace tags (StackStorm's ``sensor_service.dispatch(trigger, payload, trace_tag)``, ``st2 trace``):
recorded with each trigger instance and every execution it causes, logged, listed by tag."""

import json
import logging
import os
import sqlite3
import subprocess
import sys

from packrunner.datastore import Store

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.join(os.path.dirname(HERE), "src")
DEMO = os.path.join(HERE, "fixtures", "packs", "demo")
EVENT = {"kind": "echo", "message": "m", "count": 1, "data": {}, "tags": []}


def test_a_trigger_instance_and_its_executions_carry_its_trace_tag(make_runner, caplog):
    runner = make_runner()
    with caplog.at_level(logging.INFO):
        traced = runner.dispatch("demo.event", EVENT, trace_tag="dep-1@17")
        untraced = runner.dispatch("demo.event", EVENT)
        assert runner.wait_idle(10)
    assert traced["trace_tag"] == "dep-1@17" and len(traced["executions"]) == 1
    store = runner.datastore
    instances = store.list_trigger_instances(trace_tag="dep-1@17")
    assert [i["id"] for i in instances] == [traced["id"]]
    executions = store.list_executions(trace_tag="dep-1@17")
    assert [e["id"] for e in executions] == traced["executions"]
    assert executions[0]["trace_tag"] == "dep-1@17" and executions[0]["trigger_instance_id"] == traced["id"]
    assert store.get_execution(untraced["executions"][0])["trace_tag"] is None
    logged = [r.getMessage() for r in caplog.records]
    assert any(traced["id"] in m and "trace_tag=dep-1@17" in m for m in logged if m.startswith("trigger "))
    assert any(traced["executions"][0] in m and "started" in m and "trace_tag=dep-1@17" in m for m in logged)
    tags = store.list_trace_tags()
    assert [(t["trace_tag"], t["trigger_instances"], t["executions"]) for t in tags] == [("dep-1@17", 1, 1)]


def test_a_dropped_trigger_instance_keeps_its_trace_tag(make_runner):
    runner = make_runner()
    rec = runner.dispatch("demo.event", {"message": "no kind"}, trace_tag="dep-2@3")
    assert rec["status"] == "dropped"
    (instance,) = runner.datastore.list_trigger_instances(trace_tag="dep-2@3")
    assert instance["status"] == "dropped"


def test_an_older_state_dir_gets_the_trace_tag_columns(tmp_path):
    path = tmp_path / "packrunner.sqlite"
    conn = sqlite3.connect(str(path))
    conn.executescript("""
        CREATE TABLE trigger_instances (id TEXT PRIMARY KEY, ref TEXT NOT NULL, payload TEXT,
            occurrence_time REAL NOT NULL, status TEXT NOT NULL, reason TEXT);
        CREATE TABLE executions (id TEXT PRIMARY KEY, action TEXT NOT NULL, parameters TEXT,
            status TEXT NOT NULL, result TEXT, error TEXT, start_time REAL, end_time REAL,
            trigger_instance_id TEXT, rule TEXT);
        INSERT INTO executions(id, action, status, start_time) VALUES ('old', 'p.a', 'succeeded', 1.0);
    """)
    conn.commit()
    conn.close()
    store = Store(str(tmp_path))
    assert store.get_execution("old")["trace_tag"] is None
    store.record_trigger_instance("t1", "p.t", {}, "processed", trace_tag="k@1")
    assert store.list_trigger_instances(trace_tag="k@1")[0]["id"] == "t1"
    store.close()


def _cli(tmp_path, *args):
    cfg = tmp_path / "config.yaml"
    cfg.write_text("api_token: very-secret\nfast_poll: true\n")
    cmd = [sys.executable, "-m", "packrunner", "--pack", DEMO, "--state-dir", str(tmp_path / "state"),
           "--config", str(cfg), "--log-level", "WARNING"]
    return subprocess.run(cmd + list(args), capture_output=True, text=True, timeout=60,
                          env=dict(os.environ, PYTHONPATH=SRC))


def test_cli_lists_executions_and_traces_by_trace_tag_like_st2_trace(tmp_path):
    ran = _cli(tmp_path, "run", "demo.echo", "message=hi", "--trace-tag", "dep-3@9")
    assert ran.returncode == 0, ran.stderr
    execution_id = json.loads(ran.stdout)["id"]
    assert _cli(tmp_path, "run", "demo.echo", "message=other").returncode == 0
    listed = json.loads(_cli(tmp_path, "execution", "list", "--trace-tag", "dep-3@9").stdout)
    assert [(e["id"], e["trace_tag"]) for e in listed] == [(execution_id, "dep-3@9")]
    traces = json.loads(_cli(tmp_path, "trace", "list").stdout)
    assert [(t["trace_tag"], t["executions"]) for t in traces] == [("dep-3@9", 1)]
    trace = json.loads(_cli(tmp_path, "trace", "get", "dep-3@9").stdout)
    assert trace["trace_tag"] == "dep-3@9" and [e["id"] for e in trace["executions"]] == [execution_id]
    assert _cli(tmp_path, "trace", "get", "nope@1").returncode == 1
