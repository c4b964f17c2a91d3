"""Runner history under faults: executions of a killed runner end as ``abandoned`` at the
next start; long values are cut in log lines and history, never in what actions get."""

import logging
import os
import signal
import subprocess
import sys
import textwrap

from packrunner import Runner
from packrunner.executor import SHOWN_VALUE_LIMIT, abridged

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.join(os.path.dirname(HERE), "src")
DEMO = os.path.join(HERE, "fixtures", "packs", "demo")
DEMO_CONFIG = {"api_token": "s3cret-token", "fast_poll": True}  # as conftest.py's

CHILD = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, {root!r})
    from packrunner import Runner
    runner = Runner({demo!r}, config={config!r}, state_dir=sys.argv[1])
    record = runner.run_action("result_modes", {{"mode": "sleep", "seconds": 60}}, wait=False)
    while runner.datastore.get_execution(record["id"])["status"] != "running":
        time.sleep(0.05)
    print(record["id"], flush=True)
    time.sleep(120)
""")


def _child(state_dir):
    code = CHILD.format(root=SRC, demo=DEMO, config=DEMO_CONFIG)
    proc = subprocess.Popen([sys.executable, "-c", code, str(state_dir)], stdout=subprocess.PIPE, text=True)
    return proc, proc.stdout.readline().strip()


def test_executions_of_a_killed_runner_are_abandoned_at_the_next_start(tmp_path, caplog):
    state_dir = tmp_path / "state"
    proc, execution_id = _child(state_dir)
    try:
        # while that runner lives, a second runner on the same state dir leaves it alone
        with Runner(DEMO, config=dict(DEMO_CONFIG), state_dir=str(state_dir)) as other:
            assert other.datastore.get_execution(execution_id)["status"] == "running"
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    caplog.set_level(logging.WARNING, logger="packrunner")
    with Runner(DEMO, config=dict(DEMO_CONFIG), state_dir=str(state_dir)) as runner:
        record = runner.datastore.get_execution(execution_id)
    assert record["status"] == "abandoned" and record["end_time"]
    assert "is gone" in record["error"] and str(proc.pid) in record["error"]
    assert any(execution_id in r.getMessage() and "abandoned" in r.getMessage() for r in caplog.records)


def test_a_long_payload_is_cut_in_log_lines_and_history_but_not_for_the_action(make_runner, caplog):
    caplog.set_level(logging.DEBUG, logger="packrunner")
    big = "#!/bin/bash\n" + "x" * (1 << 20)
    runner = make_runner()
    sent = runner.dispatch("demo.event", {"kind": "echo", "message": big, "count": 1, "data": {}, "tags": []})
    assert runner.wait_idle(10)
    execution = runner.datastore.get_execution(sent["executions"][0])
    assert execution["result"]["message"] == big  # the action got it in full (and echoed it)
    stored = runner.datastore.get_trigger_instance(sent["id"])["payload"]["message"]
    shown = execution["parameters"]["message"]
    for value in (stored, shown):
        assert value.startswith(big[:SHOWN_VALUE_LIMIT]) and len(value) < SHOWN_VALUE_LIMIT + 100
        assert value.endswith("[%d characters, truncated]" % len(big))
    assert caplog.records and max(len(r.getMessage()) for r in caplog.records) < 4 * SHOWN_VALUE_LIMIT


def test_abridged_walks_containers_and_keeps_short_values():
    assert abridged({"a": ["xyz", 1, {"b": "x" * 10}]}, limit=5) == {"a": ["xyz", 1, {"b": "xxxxx...[10 characters, truncated]"}]}
