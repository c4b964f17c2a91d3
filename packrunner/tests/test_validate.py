"""``validate``: StackStorm's registration checks, one deliberately broken pack per problem family.

Each fixture under tests/fixtures/packs/broken_* breaks one family of rules (pack.yaml, action
metadata, parameter positions, config.schema.yaml, sensors and trigger types, rules); the test
asserts the exact ``(file, key, message)`` list and the CLI exit code. The clean fixture
packs must pass.
"""

import os
import subprocess
import sys

import pytest

from packrunner.validate import validate_pack

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.join(os.path.dirname(HERE), "src")
PACKS = os.path.join(HERE, "fixtures", "packs")

EXPECTED = {
    "broken_action_meta": [
        ('actions/missing.yaml', 'name',
         'required key missing'),
        ('actions/missing.yaml', 'runner_type',
         'required key missing'),
        ('actions/noop.yaml', 'runner',
         'unknown key (StackStorm rejects additional keys)'),
        ('actions/noop.yaml', 'parameters.message',
         "unknown key 'help' (StackStorm's action-parameter schema rejects it)"),
        ('actions/noop.yaml', 'parameters.message.type',
         "must be a single type, not a list ['string', 'null'] (StackStorm rejects type lists here)"),
        ('actions/noop.yaml', 'parameters.count.required',
         "must be a boolean inside each property (StackStorm draft-3 style), got 'yes'"),
        ('actions/noop.yaml', 'parameters.mode.immutable',
         'immutable parameter without a default value'),
        ('actions/noop.yaml', 'parameters.colour.type',
         "unknown type 'colour' (use one of array, boolean, integer, null, number, object, string)"),
        ('actions/noop.yaml', 'parameters.timeout.type',
         'the attribute "type" of the runner parameter "timeout" cannot be overridden (only default, description, enum, immutable, required)'),
        ('actions/noop.yaml', 'parameters.bad-name',
         'parameter names must match ^\\w+$'),
    ],
    "broken_config_schema": [
        ('config.schema.yaml', 'api-url',
         'top-level keys must match ^\\w+$'),
        ('config.schema.yaml', 'token.type',
         "must be a single type, not a list ['string', 'null'] (StackStorm rejects type lists here)"),
        ('config.schema.yaml', 'retries',
         "unknown key 'example' (StackStorm's action-parameter schema rejects it)"),
        ('config.schema.yaml', 'mode.default',
         "default 'c' is not in enum"),
    ],
    "broken_pack_meta": [
        ('pack.yaml', 'author',
         'required key missing'),
        ('pack.yaml', 'version',
         'must be a quoted string: YAML reads 1.0 as a number; write "1.0.0"'),
        ('pack.yaml', 'ref',
         '"Broken-Meta" must match ^[a-z0-9_]+$ (lowercase letters, digits, _)'),
        ('pack.yaml', 'python_versions[0]',
         'must be "2" or "3" (a quoted string), not 3'),
        ('pack.yaml', 'python_versions[1]',
         'must be "2" or "3" (a quoted string), not \'3.11\''),
        ('pack.yaml', 'stackstorm_version',
         '"3.8" is not a version constraint such as ">=3.8.0"'),
        ('pack.yaml', 'keywords',
         'must be a list of strings'),
    ],
    "broken_positions": [
        ('actions/noop.yaml', 'parameters.second.position',
         'position 1 is also used by parameter first; positions must be unique'),
        ('actions/noop.yaml', 'parameters',
         'positions must be contiguous (found 1, 3)'),
        ('actions/noop.yaml', 'parameters',
         'positions must start at 0 (found 1, 3)'),
        ('actions/noop.yaml', 'parameters.extra.position',
         "position on an optional parameter (st2client <= 3.9.0 crashes on 'st2 run ACTION -h'; put position on all required parameters or on none)"),
        ('actions/noop.yaml', 'parameters',
         "position is set on required parameter(s) first, second but not on third (st2client <= 3.9.0 crashes on 'st2 run ACTION -h'; all required or none)"),
    ],
    "broken_rules": [
        ('rules/bad_refs.yaml', 'priority',
         'unknown key (StackStorm rejects additional keys)'),
        ('rules/bad_refs.yaml', 'pack',
         'is "other" but the file is in pack "broken_rules" (StackStorm refuses to register it)'),
        ('rules/bad_refs.yaml', 'enabled',
         'must be a boolean'),
        ('rules/bad_refs.yaml', 'trigger.type',
         'trigger broken_rules.deleted is not declared by any sensor of the pack'),
        ('rules/bad_refs.yaml', 'action.parameters.name',
         'not a parameter of broken_rules.noop (StackStorm rejects unknown parameters)'),
        ('rules/bad_refs.yaml', 'action.parameters',
         'required parameter key of broken_rules.noop is not set'),
        ('rules/missing_action.yaml', 'action.ref',
         'action broken_rules.nothing not found in the pack'),
        ('rules/no_enabled.yaml', 'enabled',
         'not set (StackStorm defaults it to False: the rule never fires)'),
        ('rules/no_enabled.yaml', 'criteria.trigger.key.pattern',
         'missing (StackStorm needs it, also for exists/nexists)'),
        ('rules/no_enabled.yaml', 'criteria.trigger.key#2.type',
         "unknown operator 'like'"),
        ('rules/no_enabled.yaml', 'criteria.trigger.items.condition',
         "must be one of any, all, any2any, all2any for the search operator, not 'some'"),
        ('rules/no_enabled.yaml', 'criteria.payload.key',
         "criteria keys must start with 'trigger.'"),
        ('rules/no_enabled.yaml', 'criteria.payload.key.pattern',
         "Jinja syntax error: unexpected end of template, expected 'end of print statement'."),
    ],
    "broken_sensor": [
        ('sensors/watcher.yaml', 'interval',
         'unknown key (StackStorm rejects additional keys)'),
        ('sensors/watcher.yaml', 'poll_interval',
         'must be a number >= 4 (StackStorm minimum)'),
        ('sensors/watcher.yaml', 'trigger_types[0].payload',
         'unknown key (StackStorm rejects additional keys)'),
        ('sensors/watcher.yaml', 'trigger_types[0].payload_schema.required',
         "must be a boolean inside each property (StackStorm draft-3 style), got ['key']; the draft-4 list form is invalid for StackStorm (StackStorm drops every trigger of this type)"),
        ('sensors/watcher.yaml', 'trigger_types[1].payload_schema.properties.count.type',
         "unknown type 'int' (use one of array, boolean, integer, null, number, object, string) (StackStorm drops every trigger of this type)"),
        ('sensors/watcher.yaml', 'trigger_types[1].payload_schema.properties.state.required',
         "must be a boolean inside each property (StackStorm draft-3 style), got 'yes' (StackStorm drops every trigger of this type)"),
        ('sensors/watcher.yaml', 'trigger_types[2].name',
         'required key missing'),
    ],
}


def _cli_validate(pack):
    return subprocess.run([sys.executable, "-m", "packrunner", "--pack", pack, "validate"], capture_output=True,
                          text=True, timeout=60, env=dict(os.environ, PYTHONPATH=SRC))


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_broken_pack_reports_exact_problems(name):
    assert validate_pack(os.path.join(PACKS, name)) == EXPECTED[name]


@pytest.mark.parametrize("name", ["broken_pack_meta", "broken_rules"])
def test_validate_cli_prints_file_key_problem_and_exits_2(name):
    p = _cli_validate(os.path.join(PACKS, name))
    assert p.returncode == 2
    lines = p.stdout.splitlines()
    assert lines == ["%s: %s: %s" % (f, k or "-", m) for f, k, m in EXPECTED[name]]
    assert "%d problem(s)" % len(EXPECTED[name]) in p.stderr


@pytest.mark.parametrize("name", ["streamer"])
def test_clean_fixture_packs_pass(name):
    assert validate_pack(os.path.join(PACKS, name)) == []


def test_unquoted_semver_string_and_valid_positions_pass(tmp_path):
    """Counter-checks: what StackStorm accepts must not be reported."""
    (tmp_path / "actions").mkdir()
    (tmp_path / "pack.yaml").write_text(
        'ref: ok_pack\nname: ok pack\ndescription: d\nversion: 1.2.3-rc.1\nauthor: a\npython_versions: ["3"]\n'
        'stackstorm_version: ">=3.8.0, <4.0.0"\n')
    (tmp_path / "actions" / "a.py").write_text("")
    (tmp_path / "actions" / "a.yaml").write_text(
        "name: a\nrunner_type: python-script\nentry_point: a.py\nparameters:\n"
        "  x: {type: string, required: true, position: 0}\n"
        "  y: {type: integer, required: true, position: 1}\n"
        "  z: {type: string, enum: [p, q], default: p}\n"
        "  timeout: {default: 30, description: shorter}\n"
        "  debug: {type: boolean, immutable: true}\n")
    (tmp_path / "config.schema.yaml").write_text(
        "token: {type: string, secret: true, required: true}\n"
        "nested: {type: object, properties: {a: {type: integer, default: 1}}}\n")
    assert validate_pack(str(tmp_path)) == []


def test_runner_parameter_with_same_type_is_not_an_override(tmp_path):
    (tmp_path / "actions").mkdir()
    (tmp_path / "pack.yaml").write_text("name: p\ndescription: d\nversion: '0.1.0'\nauthor: a\n")
    (tmp_path / "actions" / "a.py").write_text("")
    (tmp_path / "actions" / "a.yaml").write_text(
        "name: a\nrunner_type: python-script\nentry_point: a.py\nparameters:\n"
        "  timeout: {type: integer, default: 5}\n  log_level: {type: string, position: 0}\n")
    assert validate_pack(str(tmp_path)) == [
        ("actions/a.yaml", "parameters.log_level.position",
         'the attribute "position" of the runner parameter "log_level" cannot be overridden '
         "(only default, description, enum, immutable, required)"),
        ("actions/a.yaml", "parameters.log_level.position",
         "position on an optional parameter (st2client <= 3.9.0 crashes on 'st2 run ACTION -h'; put position "
         "on all required parameters or on none)"),
    ]
