"""Trigger-instance fixtures replayed through the slurmdeploy pack's rules (like st2-rule-tester).

tests/fixtures/trigger_instances/ holds trigger instances in st2-rule-tester's format
(``trigger`` + ``payload``) for the pack's three triggers. Each one is evaluated against every
rule of the pack; the table says which rule must match and with which rendered parameters.
Nothing is executed, so no etcd or Slurm is needed.
"""

import json
import os
import subprocess
import sys

import pytest

# packrunner: installed, or its source put on sys.path by tests/conftest.py (never skipped)

from packrunner import Runner  # noqa: E402
from packrunner.tester import RuleTestError, evaluate_rule, load_rule, load_trigger_instance  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
INSTANCES = os.path.join(ROOT, "tests", "fixtures", "trigger_instances")
KEY = "proc-pb-test-20250101-00000-test"

SUBMIT = "slurmdeploy.submit_new_deployment"
CANCEL = "slurmdeploy.cancel_removed_deployment"
RECORD = "slurmdeploy.record_job_state"
# example rules ship disabled: tested from their files, as `st2-rule-tester --rule FILE` does
RESUME = os.path.join(ROOT, "rules", "example_resume_auto_drained_node.yaml")
LOG_DOWN = os.path.join(ROOT, "rules", "example_log_node_down.yaml")
SEND_ACCOUNTED = os.path.join(ROOT, "rules", "example_send_job_accounted.yaml")
MONTHLY_USAGE = os.path.join(ROOT, "rules", "example_monthly_usage_report.yaml")
ACCOUNTED_BODY = ('{"deployment": "proc-pb-test-20250101-00000-test", "job_id": 4242, "job_state": "COMPLETED", '
                  '"exit_code": 0, "elapsed": 7, "cpu_time": 0.089815, "max_rss": 60899328}')
DOWN_MESSAGE = "Slurm node n017 went DOWN+NOT_RESPONDING (was ALLOCATED) at 2026-12-01T10:00:00Z: Not responding"

# fixture -> (matching rule or None, its rendered action parameters, resolved parameters)
# Rendered parameters are strings, as st2-rule-tester prints them (Jinja renders to a string and
# its mock action has no parameter schema to cast with); resolved parameters are cast to the
# declared types and hold every declared parameter (None when unset), as st2's
# render_final_params passes them to run().
CASES = {
    "deployment_new_slurm.yaml": (SUBMIT, {"key": KEY}, {"key": KEY, "args": None}),
    "deployment_new_helm.yaml": (None, None, None),
    "deployment_removed.json": (CANCEL, {"key": KEY, "job_id": "4242"},
                                {"key": KEY, "job_id": 4242, "force": False}),
    "deployment_removed_string_job_id.yaml": (CANCEL, {"key": KEY, "job_id": "4242"},
                                              {"key": KEY, "job_id": 4242, "force": False}),
    "job_state_changed_running.yaml": (RECORD, {"key": KEY, "job_id": "4242"}, {"key": KEY, "job_id": 4242}),
    "job_state_changed_vanished.yaml": (RECORD, {"key": KEY, "job_id": "4242"}, {"key": KEY, "job_id": 4242}),
    "job_state_changed_unset.yaml": (None, None, None),
    "node_state_changed_auto_resume.yaml": (RESUME, {"node": "n017"}, {"node": "n017"}),
    "node_state_changed_drain.yaml": (None, None, None),
    # core.echo is StackStorm's, not the pack's: nothing to resolve its parameters against
    "node_state_changed_down.yaml": (LOG_DOWN, {"message": DOWN_MESSAGE}, None),
    # core.http is StackStorm's: rendered only
    "job_accounted.yaml": (SEND_ACCOUNTED, {"url": "https://reports.example.org/api/slurm-jobs", "method": "POST",
                                            "headers": {"Content-Type": "application/json"},
                                            "body": ACCOUNTED_BODY}, None),
    "cron_timer_monthly.yaml": (MONTHLY_USAGE, {"period": "last_month", "group_by": "account", "output": "csv"},
                                {"start_time": None, "end_time": None, "period": "last_month", "group_by": "account",
                                 "accounts": None, "users": None, "partitions": None, "clusters": None,
                                 "output": "csv"}),
}


@pytest.fixture(scope="module")
def runner(tmp_path_factory):
    r = Runner(ROOT, config=None, state_dir=str(tmp_path_factory.mktemp("state")), workers=1)
    yield r
    r.close()


def _rule_from_file(runner, tmp_path, text):
    """Write ``text`` as a rule file and load it like st2-rule-tester (``(rule, True)``)."""
    rule_file = tmp_path / "rule.yaml"
    rule_file.write_text(text)
    return load_rule(runner.pack, str(rule_file))


def test_every_fixture_is_covered():
    assert sorted(os.listdir(INSTANCES)) == sorted(CASES)


def test_example_rules_ship_disabled(runner):
    examples = (RESUME, LOG_DOWN, SEND_ACCOUNTED, MONTHLY_USAGE)
    assert [load_rule(runner.pack, os.path.basename(f)[:-5])[0].enabled for f in examples] == [False] * 4


@pytest.mark.parametrize("fixture", sorted(CASES))
@pytest.mark.parametrize("rule_ref", [SUBMIT, CANCEL, RECORD, RESUME, LOG_DOWN, SEND_ACCOUNTED, MONTHLY_USAGE])
def test_replay_fixture_through_each_rule(runner, fixture, rule_ref):
    expected_rule, expected_params, expected_resolved = CASES[fixture]
    rule, enabled = load_rule(runner.pack, rule_ref)
    trigger, payload = load_trigger_instance(os.path.join(INSTANCES, fixture))
    report = evaluate_rule(runner, rule, enabled, trigger, payload)
    if rule_ref == expected_rule:
        assert report["matches"] is True, report
        assert report["action_parameters"] == expected_params
        assert report["resolved_parameters"] == expected_resolved
        assert report["reason"] is None
    else:
        assert report["matches"] is False
        assert report["action_parameters"] is None
        assert report["reason"]


def test_single_expression_renders_to_string_then_casts_to_declared_type(runner):
    """st2common/util/param.py: ENV.from_string(...).render() gives "4242"; the integer job_id
    parameter of slurmdeploy.cancel casts it back to 4242 (casts.py _cast_integer)."""
    rule, enabled = load_rule(runner.pack, CANCEL)
    report = evaluate_rule(runner, rule, enabled, *load_trigger_instance(os.path.join(INSTANCES,
                                                                                      "deployment_removed.json")))
    assert type(report["action_parameters"]["job_id"]) is str
    assert type(report["resolved_parameters"]["job_id"]) is int


def test_object_parameter_fed_a_template_gets_the_dict_back(runner, tmp_path):
    """A dict renders to its Python repr; _cast_object json.loads it, fails, and ast.literal_evals it."""
    rule, enabled = _rule_from_file(runner, tmp_path, "name: with_args\nenabled: true\n"
                                    "trigger: {type: slurmdeploy.deployment_new}\n"
                                    "action: {ref: slurmdeploy.submit, parameters: {key: '{{ trigger.key }}', "
                                    "args: '{{ trigger.args }}'}}\n")
    report = evaluate_rule(runner, rule, enabled,
                           *load_trigger_instance(os.path.join(INSTANCES, "deployment_new_slurm.yaml")))
    assert report["action_parameters"]["args"] == "{'command': ['sleep', '60'], 'nodes': 2}"
    assert report["resolved_parameters"]["args"] == {"command": ["sleep", "60"], "nodes": 2}


def test_non_matching_reports_the_failing_criterion(runner):
    rule, enabled = load_rule(runner.pack, SUBMIT)
    report = evaluate_rule(runner, rule, enabled,
                           *load_trigger_instance(os.path.join(INSTANCES, "deployment_new_helm.yaml")))
    assert report["failed_criterion"] == {"key": "trigger.kind", "type": "equals", "pattern": "slurm",
                                          "value": "helm"}
    rule, enabled = load_rule(runner.pack, RECORD)
    report = evaluate_rule(runner, rule, enabled,
                           *load_trigger_instance(os.path.join(INSTANCES, "job_state_changed_unset.yaml")))
    assert report["failed_criterion"]["key"] == "trigger.status"
    assert report["failed_criterion"]["value"] == "RUNNING_SOON"


def test_wrong_trigger_does_not_match(runner):
    rule, enabled = load_rule(runner.pack, CANCEL)
    report = evaluate_rule(runner, rule, enabled,
                           *load_trigger_instance(os.path.join(INSTANCES, "deployment_new_slurm.yaml")))
    assert report["matches"] is False
    assert report["reason"] == ('rule trigger "slurmdeploy.deployment_removed" and trigger instance ref '
                                '"slurmdeploy.deployment_new" do not match')


def test_invalid_payload_is_a_warning_in_the_tester_and_dropped_by_the_runner(runner):
    trigger, payload = load_trigger_instance(os.path.join(INSTANCES, "deployment_removed_string_job_id.yaml"))
    rule, enabled = load_rule(runner.pack, CANCEL)
    report = evaluate_rule(runner, rule, enabled, trigger, payload)
    assert report["warnings"] == ["payload field 'job_id' invalid: '4242' is not of type 'integer' (the trigger "
                                  "would be dropped before any rule sees it)"]
    record = runner.dispatch(trigger, payload)
    assert record["status"] == "dropped" and record["executions"] == []
    assert "job_id" in record["reason"]


def test_rule_file_is_enabled_but_ref_keeps_its_flag(runner, tmp_path):
    """st2-rule-tester builds a rule read from a file with enabled=True."""
    rule, enabled = _rule_from_file(runner, tmp_path, "name: disabled_copy\nenabled: false\n"
                                    "trigger: {type: slurmdeploy.deployment_new}\n"
                                    "criteria: {trigger.kind: {type: equals, pattern: slurm}}\n"
                                    "action: {ref: slurmdeploy.submit, parameters: {key: '{{ trigger.key }}'}}\n")
    assert enabled is True and rule.enabled is False
    instance = load_trigger_instance(os.path.join(INSTANCES, "deployment_new_slurm.yaml"))
    assert evaluate_rule(runner, rule, enabled, *instance)["matches"] is True
    assert evaluate_rule(runner, rule, None, *instance)["reason"] == "rule is disabled (enabled is not true)"


def test_parameter_render_failure_is_no_match(runner, tmp_path):
    rule, enabled = _rule_from_file(runner, tmp_path, "name: bad\nenabled: true\n"
                                    "trigger: {type: slurmdeploy.deployment_new}\n"
                                    "action: {ref: slurmdeploy.submit, parameters: {key: '{{ trigger.nokey }}'}}\n")
    report = evaluate_rule(runner, rule, enabled,
                           *load_trigger_instance(os.path.join(INSTANCES, "deployment_new_slurm.yaml")))
    assert report["matches"] is False
    assert report["reason"].startswith('failed to render action parameters: Failed to render parameter "key"')


def test_bad_inputs_raise_rule_test_error(runner, tmp_path):
    with pytest.raises(RuleTestError, match="neither a file nor a rule"):
        load_rule(runner.pack, "slurmdeploy.nope")
    bad = tmp_path / "ti.yaml"
    bad.write_text("trigger: slurmdeploy.deployment_new\npayload: {}\nextra: 1\n")
    with pytest.raises(RuleTestError, match="unknown key"):
        load_trigger_instance(str(bad))
    bad.write_text("payload: {key: x}\n")
    with pytest.raises(RuleTestError, match="'trigger'"):
        load_trigger_instance(str(bad))


def _cli(tmp_path, *args):
    return subprocess.run([sys.executable, "-m", "packrunner", "--pack", ROOT, "--state-dir", str(tmp_path / "s"),
                           "rule", "test", *args], capture_output=True, text=True, timeout=60)


def test_cli_rule_test_exit_codes(tmp_path):
    p = _cli(tmp_path, "--rule", "submit_new_deployment", "--trigger-instance",
             os.path.join(INSTANCES, "deployment_new_slurm.yaml"))
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["action_parameters"] == {"key": KEY}
    assert "=== RULE MATCHES ===" in p.stderr
    p = _cli(tmp_path, "--rule", os.path.join(ROOT, "rules", "submit_new_deployment.yaml"), "--trigger-instance",
             os.path.join(INSTANCES, "deployment_new_helm.yaml"))
    assert p.returncode == 1
    assert json.loads(p.stdout)["matches"] is False
    assert "=== RULE DOES NOT MATCH ===" in p.stderr
    p = _cli(tmp_path, "--rule", "nope", "--trigger-instance", os.path.join(INSTANCES, "deployment_new_helm.yaml"))
    assert p.returncode == 2 and "neither a file nor a rule" in p.stderr
    assert _cli(tmp_path, "--rule", "submit_new_deployment").returncode == 2  # no trigger instance


def test_cli_rule_test_with_recorded_trigger_instance(tmp_path):
    from packrunner.datastore import Store

    store = Store(str(tmp_path / "s"))
    store.record_trigger_instance("abc123", "slurmdeploy.deployment_new",
                                  {"key": "k1", "kind": "slurm", "args": {}}, "processed")
    store.close()
    p = _cli(tmp_path, "--rule", "submit_new_deployment", "--trigger-instance-id", "abc")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["action_parameters"] == {"key": "k1"}
