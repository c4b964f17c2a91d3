"""Schema validation (StackStorm's CustomValidator), config validation, masking, Jinja rendering."""

import pytest

from packrunner import ConfigError, Pack, load_config
from packrunner.datastore import Store
from packrunner.schema import (MASK, CustomValidator, SchemaConversionError, ValidationFailed, allow_default_none, cast_value,
                               check_schema, mask_secrets, properties_schema, st2_schema_problems,
                               validate_with_defaults)
from packrunner.templating import TemplateRenderError, build_context, render_value


def test_required_true_inside_each_property_is_enforced_at_every_depth():
    """st2's CustomValidator: draft-3 ``properties`` (required: true per property), draft-4 otherwise;
    the st2-only keywords (secret, immutable, position) are accepted and ignored."""
    schema = {"type": "object", "properties": {
        "a": {"type": "string", "required": True, "secret": True},
        "b": {"type": "object", "required": False, "properties": {"c": {"type": "integer", "required": True}}},
    }}
    check_schema(schema)
    assert validate_with_defaults({"a": "x"}, schema, use_default=False) == {"a": "x"}
    with pytest.raises(ValidationFailed) as exc:
        validate_with_defaults({"b": {"c": 1}}, schema)
    assert exc.value.path == "a" and exc.value.message == "'a' is a required property"
    with pytest.raises(ValidationFailed) as exc:
        validate_with_defaults({"a": "x", "b": {}}, schema)
    assert exc.value.path == "b.c"


def test_list_required_is_ignored_by_the_validator_and_rejected_by_the_meta_schema():
    """Like StackStorm: CustomValidator has no draft-4 ``required``, and custom.json wants a boolean
    (jsonschema.validate checks the schema first, so st2 drops every payload of such a trigger type)."""
    schema = {"type": "object", "required": ["a"], "properties": {"a": {"type": "string"}}}
    assert CustomValidator(schema).is_valid({})
    with pytest.raises(SchemaConversionError, match="^payload_schema is not a valid schema"):
        check_schema(schema, "payload_schema")
    with pytest.raises(SchemaConversionError, match="'a'. is not of type 'boolean'"):
        validate_with_defaults({"a": "x"}, schema)
    assert st2_schema_problems(schema, "payload")[0][0] == "required"


def test_validate_fills_defaults_and_names_field():
    schema = properties_schema({"a": {"type": "integer", "required": True}, "b": {"type": "string", "default": "x"}})
    assert validate_with_defaults({"a": 1}, schema) == {"a": 1, "b": "x"}
    with pytest.raises(ValidationFailed) as exc:
        validate_with_defaults({"a": "one"}, schema)
    assert exc.value.path == "a"
    with pytest.raises(ValidationFailed) as exc:
        validate_with_defaults({}, schema)
    assert exc.value.path == "a"


def test_type_lists_allowed_in_payload_schema():
    schema = {"type": "object", "properties": {"w": {"type": ["string", "null"]}}}
    validate_with_defaults({"w": None}, schema)
    with pytest.raises(ValidationFailed):
        validate_with_defaults({"w": 3}, schema)


def test_config_validation(demo_pack):
    pack = Pack(demo_pack)
    cfg = load_config(pack, {"api_token": "t"})
    assert cfg == {"api_token": "t", "greeting": "hello", "threshold": 3, "fast_poll": False}
    with pytest.raises(ConfigError, match="api_token"):
        load_config(pack, {"greeting": "hi"})
    with pytest.raises(ConfigError, match="threshold"):
        load_config(pack, {"api_token": "t", "threshold": "three"})
    # No config at all: defaults only, missing required keys just logged (like st2)
    assert load_config(pack, None)["greeting"] == "hello"


def test_config_file_and_kv_template(demo_pack, tmp_path):
    store = Store(str(tmp_path / "s"))
    store.set("tok", "from-kv", secret=True)  # api_token is `secret: true`: decrypted, as StackStorm does
    store.set("thr", "7")
    path = tmp_path / "c.yaml"
    path.write_text("api_token: '{{ st2kv.system.tok }}'\nthreshold: '{{ st2kv.system.thr }}'\n")
    cfg = load_config(Pack(demo_pack), str(path), store=store)
    assert cfg["api_token"] == "from-kv"
    assert cfg["threshold"] == 7


def test_mask_secrets():
    props = {"token": {"type": "string", "secret": True}, "nested": {"type": "object", "properties": {
        "pw": {"type": "string", "secret": True}}}, "plain": {"type": "string"}}
    masked = mask_secrets({"token": "x", "nested": {"pw": "y", "u": "z"}, "plain": "p"}, props)
    assert masked == {"token": MASK, "nested": {"pw": MASK, "u": "z"}, "plain": "p"}


def test_cast_value():
    assert cast_value("5", "integer") == 5
    assert cast_value("2.5", "number") == 2.5
    assert cast_value("true", "boolean") is True
    assert cast_value("no", "boolean") is False
    assert cast_value('{"a": 1}', "object") == {"a": 1}
    assert cast_value("[1, 2]", "array") == [1, 2]
    assert cast_value("5", "string") == "5"
    assert cast_value("abc", "integer") == "abc"  # left for validation to reject


def test_render_value_type_preserving(tmp_path):
    store = Store(str(tmp_path))
    store.set("k", "kv-value")
    store.set("a.b", "dotted")
    ctx = build_context(store=store, payload={"n": 3, "d": {"x": [1]}, "s": "str"}, config={"c": 9})
    assert render_value("{{ trigger.n }}", ctx) == 3
    assert render_value("{{ trigger.d }}", ctx) == {"x": [1]}
    assert render_value("{{trigger.n + 1}}", ctx) == 4
    assert render_value("n={{ trigger.n }}", ctx) == "n=3"
    assert render_value("{{ st2kv.system.k }}", ctx) == "kv-value"
    assert render_value("{{ st2kv.system.a.b }}", ctx) == "dotted"
    assert render_value("{{ st2kv.system.missing }}", ctx) == ""
    assert render_value("{{ config_context.c }}", ctx) == 9
    assert render_value({"l": ["{{ trigger.n }}"]}, ctx) == {"l": [3]}
    with pytest.raises(TemplateRenderError):
        render_value("{{ trigger.nope }}", ctx)
    with pytest.raises(TemplateRenderError):
        render_value("{{ trigger.nope.deeper }}", ctx)


def test_filters():
    ctx = build_context(payload={"d": {"a": 1}, "s": 'say "hi"', "j": '{"b": 2}'})
    assert render_value("{{ trigger.d | to_json_string }}", ctx) == '{"a": 1}'
    assert render_value("{{ trigger.d | to_yaml_string }}", ctx).strip() == "a: 1"
    assert render_value("{{ trigger.j | from_json_string }}", ctx) == {"b": 2}
    assert render_value("{{ trigger.j | to_complex }}", ctx) == '"{\\"b\\": 2}"'
    # st2: json.dumps(value).strip('"') -- a trailing escaped quote loses its '"' there too
    assert render_value("{{ trigger.s | json_escape }}", ctx) == 'say \\"hi\\'
    assert render_value("{{ 'node-12' | regex_match('node-\\\\d+') }}", ctx) is True
    assert render_value("{{ 'a node-12' | regex_search('node') }}", ctx) is True
    assert render_value("{{ 'a node-12' | regex_match('node') }}", ctx) is False
    assert render_value("{{ 'node-12' | regex_replace('\\\\d+', 'N') }}", ctx) == "node-N"


def test_payload_validation_like_st2_custom_validator():
    """st2common/util/schema: optional properties (and default None) accept null; a default satisfies
    required (defaults are assigned before validation)."""
    st2 = {"type": "object", "properties": {
        "key": {"type": "string", "required": True},
        "note": {"type": "string"},
        "level": {"type": "integer", "required": True, "default": 3},
    }}
    schema = allow_default_none(st2)
    validate_with_defaults({"key": "k", "note": None}, schema)
    with pytest.raises(ValidationFailed) as exc:
        validate_with_defaults({"key": None}, schema)  # required: null not allowed
    assert exc.value.path == "key"
    with pytest.raises(ValidationFailed):
        validate_with_defaults({"key": "k"}, schema, use_default=False)  # level missing without defaults
    assert validate_with_defaults({"key": "k"}, schema)["level"] == 3


def test_filters_added_from_st2_get_filters():
    """st2common/util/jinja.py get_filters(): path.basename/dirname, time.to_human_time_from_seconds,
    data.json_escape (json.dumps(value).strip('"')) and data.use_none (NONE_MAGIC_VALUE)."""
    from packrunner.templating import NONE_MAGIC_VALUE

    ctx = build_context(payload={"p": "/a/b/c.txt", "n": None, "d": {"k": 1}})
    assert render_value("{{ trigger.p | basename }}", ctx) == "c.txt"
    assert render_value("{{ trigger.p | dirname }}", ctx) == "/a/b"
    assert render_value("{{ 3725 | to_human_time_from_seconds }}", ctx) == "1h2m5s"
    assert render_value("{{ 0 | to_human_time_from_seconds }}", ctx) == "0s"
    assert render_value("{{ 90061 | to_human_time_from_seconds }}", ctx) == "1d1h1m1s"
    assert render_value("{{ 59.6 | to_human_time_from_seconds }}", ctx) == "1m0s"
    assert render_value("{{ trigger.d | json_escape }}", ctx) == '{"k": 1}'
    assert render_value("{{ 5 | json_escape }}", ctx) == "5"
    assert render_value("{{ trigger.n | use_none }}", ctx) == NONE_MAGIC_VALUE == "%*****__%NONE%__*****%"
