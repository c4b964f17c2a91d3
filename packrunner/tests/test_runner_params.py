"""Runner-level parameter behaviour like StackStorm: rule and `run` parameters rendered
(st2common/util/param.py render_live_params), cast by declared type (casts.py), every declared
parameter passed to run() (render_final_params), secrets never in error messages."""

import json
import logging
import os
import subprocess
import sys
import textwrap

import pytest

from packrunner import Runner
from packrunner.rules import Rule
from packrunner.runner import ConfigError, ParameterError

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.join(os.path.dirname(HERE), "src")
SECRET = "987654-very-secret"


@pytest.fixture
def pack(tmp_path):
    root = tmp_path / "p"
    (root / "actions").mkdir(parents=True)
    (root / "sensors").mkdir()
    (root / "rules").mkdir()
    (root / "pack.yaml").write_text('ref: rp\nname: rp\ndescription: d\nversion: "0.1.0"\nauthor: me\n')
    (root / "config.schema.yaml").write_text(textwrap.dedent("""\
        api_token: {type: string, secret: true, required: true}
        base: {type: string, default: "http://x"}
    """))
    (root / "actions" / "echo.yaml").write_text(textwrap.dedent("""\
        name: echo
        runner_type: python-script
        entry_point: echo.py
        enabled: true
        parameters:
          msg: {type: string}
          n: {type: integer}
          obj: {type: object}
          token: {type: string, secret: true}
          url: {type: string, default: "{{ config_context.base }}/api"}
          notype: {}
          fixed: {type: string, default: D, immutable: true}
    """))
    (root / "actions" / "echo.py").write_text(textwrap.dedent("""\
        from st2common.runners.base_action import Action
        class Echo(Action):
            def run(self, **kw):
                return {k: [v, type(v).__name__] for k, v in kw.items()}
    """))
    (root / "actions" / "ret.yaml").write_text("name: ret\nrunner_type: python-script\nentry_point: ret.py\n"
                                              "parameters:\n  mode: {type: string}\n")
    (root / "actions" / "ret.py").write_text(textwrap.dedent("""\
        from st2common.runners.base_action import Action
        class Ret(Action):
            def run(self, mode):
                return {"none_tuple": (None, {"a": 1}), "int_status": (1, "x"), "list2": [False, 1],
                        "false_tuple": (False, "why")}[mode]
    """))
    return str(root)


@pytest.fixture
def runner(pack, tmp_path):
    r = Runner(pack, config={"api_token": SECRET}, state_dir=str(tmp_path / "state"), workers=1)
    yield r
    r.close()


def _rule(params):
    return Rule({"name": "x", "enabled": True, "trigger": {"type": "rp.t"},
                 "action": {"ref": "rp.echo", "parameters": params}}, "rp")


def test_rule_template_renders_to_string_and_is_cast_by_declared_type(runner):
    action = runner.pack.resolve_action("echo")
    params = {"msg": "{{ trigger.n }}", "n": "{{ trigger.n }}", "notype": "{{ trigger.n }}",
              "obj": "{{ trigger.d }}"}
    resolved = runner.resolve_parameters(action, params, {"n": 5, "d": {"a": [1, None]}})
    assert resolved["msg"] == "5" and resolved["n"] == 5 and resolved["notype"] == "5"
    assert resolved["obj"] == {"a": [1, None]}
    assert runner.render_rule_parameters(_rule(params), {"n": 5, "d": {}}) == {
        "msg": "5", "n": "5", "notype": "5", "obj": "{}"}


def test_every_declared_parameter_reaches_run(runner):
    rec = runner.run_action("echo", {"msg": "hi"})
    assert rec["status"] == "succeeded", rec
    assert rec["result"] == {"msg": ["hi", "str"], "n": [None, "NoneType"], "obj": [None, "NoneType"],
                             "token": [None, "NoneType"], "url": ["http://x/api", "str"],
                             "notype": [None, "NoneType"], "fixed": ["D", "str"]}


def test_run_renders_jinja_in_given_parameters(runner):
    runner.datastore.set("num", "41")
    rec = runner.run_action("echo", {"msg": "{{ config_context.base }}/{{ st2kv.system.num }}",
                                     "n": "{{ st2kv.system.num }}", "notype": "{{ msg }}!"})
    assert rec["result"]["msg"] == ["http://x/41", "str"]
    assert rec["result"]["n"] == [41, "int"]
    assert rec["result"]["notype"] == ["http://x/41!", "str"]


def test_immutable_rule_override_replaced_by_default_with_warning(runner, caplog):
    with caplog.at_level(logging.WARNING, logger="packrunner"):
        resolved = runner.resolve_parameters(runner.pack.resolve_action("echo"), {"fixed": "X"}, {})
    assert resolved["fixed"] == "D"
    assert any("immutable" in r.getMessage() for r in caplog.records)


def test_secret_parameter_value_never_in_errors_records_or_logs(runner, caplog):
    rule = _rule({"token": 987654, "msg": "{{ trigger.n }}"})  # _cast_string rejects the int
    with caplog.at_level(logging.DEBUG, logger="packrunner"):
        eid = runner._enforce(rule, {"n": 987654}, "ti")
    runner.wait_idle(10)
    ex = runner.datastore.get_execution(eid)
    assert ex["status"] == "failed"
    assert "<value masked>" in ex["error"] and "987654" not in json.dumps(ex)
    assert "987654" not in caplog.text
    with pytest.raises(ParameterError) as exc:
        runner.resolve_parameters(runner.pack.resolve_action("echo"), {"token": ["a", SECRET]})
    assert SECRET not in str(exc.value) and "<value masked>" in str(exc.value)


def test_secret_config_value_never_in_config_error(pack, tmp_path):
    with pytest.raises(ConfigError) as exc:
        Runner(pack, config={"api_token": 123456789}, state_dir=str(tmp_path / "s"))
    assert str(exc.value) == "config key 'api_token' invalid: <value masked> is not of type 'string'"
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("api_token: 123456789\n")
    p = subprocess.run([sys.executable, "-m", "packrunner", "--pack", pack, "--config", str(cfg),
                        "--state-dir", str(tmp_path / "s"), "run", "echo"], capture_output=True, text=True,
                       timeout=60, env=dict(os.environ, PYTHONPATH=SRC))
    assert p.returncode == 2
    assert "<value masked>" in p.stderr and "123456789" not in p.stderr + p.stdout


@pytest.mark.parametrize("mode,status,result", [
    ("none_tuple", "succeeded", {"a": 1}),   # status None = no status (python_action_wrapper.py)
    ("false_tuple", "failed", "why"),
    ("list2", "succeeded", [False, 1]),      # only a tuple carries a status
    ("int_status", "failed", None),          # non-bool, non-None status fails the runner
])
def test_python_runner_status_conventions(runner, mode, status, result):
    rec = runner.run_action("ret", {"mode": mode})
    assert (rec["status"], rec["result"]) == (status, result)


def test_action_parameters_get_a_secret_only_through_decrypt_kv(runner):
    runner.datastore.set("tok", "s3cret-param", secret=True)
    rec = runner.run_action("echo", {"msg": "{{ st2kv.system.tok | decrypt_kv }}", "notype": "{{ st2kv.system.tok }}"})
    assert rec["status"] == "succeeded", rec
    assert rec["result"]["msg"] == ["s3cret-param", "str"]
    assert rec["result"]["notype"][0] == runner.datastore.get("tok") != "s3cret-param"  # the ciphertext
