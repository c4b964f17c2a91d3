"""The flat-schema check of validate_with_defaults only ever accepts what StackStorm's
CustomValidator (jsonschema) accepts, and validators are compiled once per schema."""

import pytest

from packrunner import schema as sch
from packrunner.schema import CustomValidator, ValidationFailed, properties_schema, validate_with_defaults

PARAMS = properties_schema({
    "key": {"type": "string", "required": True},
    "job_id": {"type": "integer", "minimum": 1, "maximum": 4294967293},
    "ratio": {"type": "number"},
    "flag": {"type": "boolean", "default": False},
    "args": {"type": "object"},
    "items": {"type": "array"},
    "level": {"type": "string", "enum": ["INFO", "DEBUG"]},
    "reason": {"type": ["string", "null"], "required": True},
}, additional_properties=False)

CASES = [
    {"key": "a", "reason": None},
    {"key": "a", "reason": "x", "job_id": 5, "ratio": 1.5, "flag": True, "args": {}, "items": [1], "level": "INFO"},
    {"key": "a", "reason": "x", "job_id": True},  # a bool is not an integer
    {"key": "a", "reason": "x", "job_id": 5.0},  # draft 4: a float is not an integer
    {"key": "a", "reason": "x", "job_id": 0},
    {"key": "a", "reason": "x", "job_id": 4294967294},
    {"key": "a", "reason": "x", "job_id": 4294967293},
    {"key": "a", "reason": "x", "job_id": None},
    {"key": "a", "reason": "x", "ratio": False},
    {"key": "a", "reason": "x", "items": (1, 2)},
    {"key": "a", "reason": "x", "level": "TRACE"},
    {"key": "a", "reason": "x", "level": 1},
    {"key": "a", "reason": "x", "unknown": 1},  # additionalProperties: false
    {"reason": "x"},  # required key missing
    {"key": "a"},  # required reason missing (null allowed, absence not)
    {"key": None, "reason": "x"},
    {"key": 3, "reason": "x"},
    {"key": "a", "reason": "x", "args": []},
    "not an object",
]


@pytest.mark.parametrize("instance", CASES, ids=[str(i) for i in range(len(CASES))])
def test_flat_check_agrees_with_jsonschema(instance):
    plan = sch._flat_plan(PARAMS)
    assert plan is not None
    filled = sch.fill_defaults(dict(instance), PARAMS) if isinstance(instance, dict) else instance
    valid = CustomValidator(PARAMS).is_valid(filled)
    assert sch._flat_accepts(plan, filled) == valid
    if valid:
        assert validate_with_defaults(instance, PARAMS, what="parameters") == filled
    else:
        with pytest.raises(ValidationFailed):
            validate_with_defaults(instance, PARAMS, what="parameters")


@pytest.mark.parametrize("schema", [
    {"type": "object", "properties": {"a": {"type": "object", "properties": {"b": {"type": "string"}}}}},
    {"type": "object", "properties": {"a": {"type": "string", "pattern": "^x"}}},
    {"type": "object", "properties": {"a": {"type": "string", "minLength": 2}}},
    {"type": "object", "properties": {"a": {"anyOf": [{"type": "string"}]}}},
    {"type": "object", "properties": {"a": {"type": "integer", "enum": [1, 2]}}},
    {"type": "object", "properties": {"a": {"type": "integer", "exclusiveMinimum": True, "minimum": 1}}},
    {"type": "object", "additionalProperties": {"type": "string"}},
])
def test_schemas_with_other_keywords_are_left_to_jsonschema(schema):
    assert sch._flat_plan(schema) is None


def test_validator_compiled_once_per_schema_object(monkeypatch):
    schema = properties_schema({"key": {"type": "string", "required": True}})
    checks = []
    real = sch.check_schema
    monkeypatch.setattr(sch, "check_schema", lambda s, where="schema": (checks.append(where), real(s, where)))
    for _ in range(5):
        validate_with_defaults({"key": "a"}, schema, what="payload")
    assert len(checks) == 1
    with pytest.raises(ValidationFailed) as err:  # the error still comes from jsonschema
        validate_with_defaults({"key": 1}, schema, what="payload")
    assert err.value.path == "key" and "is not of type" in err.value.message
