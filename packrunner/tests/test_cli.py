"""CLI (python -m packrunner) via subprocesses: exit codes, output, signals."""

import json
import os
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.join(os.path.dirname(HERE), "src")
DEMO = os.path.join(HERE, "fixtures", "packs", "demo")


def _cli(tmp_path, *args, config=True, timeout=60):
    cmd = [sys.executable, "-m", "packrunner", "--pack", DEMO, "--state-dir", str(tmp_path / "state")]
    if config:
        cfg = tmp_path / "config.yaml"
        cfg.write_text("api_token: very-secret\nfast_poll: true\n")
        cmd += ["--config", str(cfg)]
    env = dict(os.environ, PYTHONPATH=SRC)
    return subprocess.run(cmd + list(args), capture_output=True, text=True, timeout=timeout, cwd=str(tmp_path),
                          env=env)


def test_run_success_prints_json_exit_0(tmp_path):
    p = _cli(tmp_path, "run", "demo.echo", "message=hi", "count=3", 'data={"a": 1}', "tags=x,y", "flag=true",
             "token=hunter2")
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert out["status"] == "succeeded"
    assert out["result"]["count"] == 3 and out["result"]["data"] == {"a": 1}
    assert out["result"]["tags"] == ["x", "y"] and out["result"]["flag"] is True
    assert "hunter2" not in p.stdout + p.stderr
    assert "very-secret" not in p.stdout + p.stderr
    assert out["parameters"]["token"] == "********"


def test_run_failure_exit_1(tmp_path):
    p = _cli(tmp_path, "run", "result_modes", "mode=tuple_false")
    assert p.returncode == 1
    assert json.loads(p.stdout)["status"] == "failed"
    p = _cli(tmp_path, "run", "result_modes", "mode=raise")
    assert p.returncode == 1
    assert "boom from action" in p.stdout


def test_run_usage_errors_exit_2(tmp_path):
    assert _cli(tmp_path, "run", "echo", "message=x", "bogus=1").returncode == 2
    assert _cli(tmp_path, "run", "nosuchaction").returncode == 2
    assert _cli(tmp_path, "run", "echo", "novalue").returncode == 2
    assert _cli(tmp_path, "frobnicate").returncode == 2
    p = _cli(tmp_path, "run", "echo", "message=x")
    assert p.returncode == 0
    (tmp_path / "bad.yaml").write_text("greeting: 5\n")
    p = subprocess.run([sys.executable, "-m", "packrunner", "--pack", DEMO, "--state-dir", str(tmp_path / "s"),
                        "--config", str(tmp_path / "bad.yaml"), "run", "echo", "message=x"],
                       capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=SRC))
    assert p.returncode == 2 and "api_token" in p.stderr


def test_key_and_execution_commands(tmp_path):
    assert _cli(tmp_path, "key", "set", "a.b", "1").returncode == 0
    p = _cli(tmp_path, "key", "get", "a.b")
    assert p.returncode == 0 and p.stdout.strip() == "1"
    assert [kv["name"] for kv in json.loads(_cli(tmp_path, "key", "list", "--prefix", "a.").stdout)] == ["a.b"]
    assert _cli(tmp_path, "key", "delete", "a.b").returncode == 0
    assert _cli(tmp_path, "key", "get", "a.b").returncode == 1
    run = json.loads(_cli(tmp_path, "run", "echo", "message=listed").stdout)
    listed = json.loads(_cli(tmp_path, "execution", "list", "--limit", "5").stdout)
    assert listed[0]["id"] == run["id"]
    got = json.loads(_cli(tmp_path, "execution", "get", run["id"][:12]).stdout)
    assert got["result"]["message"] == "listed"
    assert _cli(tmp_path, "execution", "get", "doesnotexist").returncode == 1


def test_trigger_list_and_validate(tmp_path):
    triggers = json.loads(_cli(tmp_path, "trigger", "list").stdout)
    refs = {t["ref"]: t for t in triggers}
    assert refs["demo.event"]["payload_properties"]["kind"]["required"] is True
    assert refs["demo.broken"]["schema_error"]
    p = _cli(tmp_path, "validate")
    assert p.returncode == 2
    assert "rules/disabled_by_default.yaml: enabled" in p.stdout
    assert "sensors/queue_sensor.yaml: trigger_types[1].payload_schema" in p.stdout


def test_help_everywhere(tmp_path):
    for args in (["--help"], ["run", "--help"], ["key", "set", "--help"], ["execution", "list", "--help"],
                 ["trigger", "list", "--help"], ["validate", "--help"], ["start", "--help"],
                 ["rule", "test", "--help"], ["rule", "list", "--help"], ["key", "list", "--help"]):
        p = _cli(tmp_path, *args, config=False)
        assert p.returncode == 0 and "usage:" in p.stdout


def test_start_and_sigterm_exit_0(tmp_path):
    cfg = tmp_path / "config.yaml"
    cfg.write_text("api_token: very-secret\nfast_poll: true\n")
    state = tmp_path / "state"
    cmd = [sys.executable, "-m", "packrunner", "--pack", DEMO, "--state-dir", str(state), "--config", str(cfg),
           "start", "--workers", "2"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ, PYTHONPATH=SRC), cwd=str(tmp_path))
    try:
        from packrunner.datastore import Store

        deadline = time.monotonic() + 30
        store = None
        while time.monotonic() < deadline:
            if (state / "packrunner.sqlite").exists():
                store = store or Store(str(state))
                if store.get("demo.QueueSensor:setup_done"):
                    break
            time.sleep(0.1)
        assert store is not None and store.get("demo.QueueSensor:setup_done") == "yes"
        store.set("demo.queue", json.dumps([{"kind": "echo", "message": "m", "count": 1, "data": {}, "tags": []}]))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not any(
                e["status"] == "succeeded" for e in store.list_executions()):
            time.sleep(0.1)
        assert any(e["status"] == "succeeded" for e in store.list_executions())
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert "stopped" in err
    assert "very-secret" not in err
    assert Store(str(state)).get("demo.QueueSensor:cleanup_done") == "yes"


def test_run_action_help_lists_its_parameters_like_st2_run_h(tmp_path):
    p = _cli(tmp_path, "run", "demo.echo", "-h", config=False)
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert lines[:3] == ["demo.echo", "", "Echo parameters back with their Python types"]
    required, optional = lines.index("Required Parameters:"), lines.index("Optional Parameters:")
    assert lines[required + 1:required + 3] == ["    message", "        Type: string"]
    listed = [line.strip() for line in lines[optional + 1:] if line.startswith("    ") and not line.startswith("     ")]
    assert listed == sorted(listed) and {"count", "flag", "token (secret)", "timeout", "version"} <= set(listed)
    count = lines.index("    count", optional)
    assert lines[count + 1:count + 3] == ["        Type: integer", "        Default: 1"]
    assert _cli(tmp_path, "run", "demo.nope", "-h", config=False).returncode == 2


def test_run_without_action_prints_usage(tmp_path):
    assert _cli(tmp_path, "run", config=False).returncode == 2
    p = _cli(tmp_path, "run", "-h", config=False)
    assert p.returncode == 0 and "usage:" in p.stdout and "'run ACTION -h'" in p.stdout


def test_action_list(tmp_path):
    p = _cli(tmp_path, "action", "list", config=False)
    assert p.returncode == 0, p.stderr
    actions = json.loads(p.stdout)
    assert [a["ref"] for a in actions] == ["demo.echo", "demo.result_modes"]
    assert actions[0] == {"ref": "demo.echo", "enabled": True, "runner_type": "python-script",
                          "description": "Echo parameters back with their Python types"}


def test_run_action_help_says_which_runner_parameters_packrunner_honours(tmp_path):
    from packrunner.schema import PYTHON_RUNNER_PARAMETERS

    lines = _cli(tmp_path, "run", "demo.echo", "-h", config=False).stdout.splitlines()
    for name in PYTHON_RUNNER_PARAMETERS:
        block = lines[lines.index("    %s" % name) + 1:]
        block = block[:next(i for i, line in enumerate(block + ["    end"]) if not line.startswith("        "))]
        support = [line for line in block if "Runner parameter, " in line]
        assert len(support) == 1, (name, block)
        assert ("honoured" in support[0]) == (name == "timeout"), support
        assert ("ignored by packrunner" in support[0]) == (name != "timeout"), support
    assert "    message" in lines and not any("Runner parameter" in l for l in lines[lines.index("    message"):][:3])


def test_an_ignored_runner_parameter_given_a_value_is_logged(tmp_path):
    p = _cli(tmp_path, "run", "demo.echo", "message=hi", 'env={"A": "1"}')
    assert p.returncode == 0, p.stderr
    assert "runner parameter env=" in p.stderr and "ignored by packrunner" in p.stderr
    assert "runner parameter" not in _cli(tmp_path, "run", "demo.echo", "message=hi").stderr
