"""Parameter rendering and casting like StackStorm.

The cases mirror st2common/tests/unit/test_param_utils.py (StackStorm 3.8/3.9) against
packrunner.params, which follows st2common/util/param.py and st2common/util/casts.py.
"""

import pytest

from packrunner.params import (
    NONE_MAGIC_VALUE,
    ParamCastError,
    ParamException,
    cast_parameter,
    render_final_params,
    render_live_params,
)


def finalized(runner_info, action_info, params, action_context=None, extra=None):
    """st2's get_finalized_params: render_live_params then render_final_params."""
    base = {"st2kv": {}, "config_context": {}, "action_context": action_context or {}}
    base.update(extra or {})
    live = render_live_params(runner_info, action_info, params, base)
    return render_final_params(runner_info, action_info, live, base)


def test_with_cast():
    params = {"r1": "{{r2}}", "r2": 1, "a1": True, "a2": "{{a1}}", "a3": "{{action_context.api_user}}"}
    runner, action = finalized({"r1": {"type": "integer"}, "r2": {"type": "integer"}},
                               {"a1": {"type": "boolean"}, "a2": {"type": "boolean"}, "a3": {}},
                               params, {"api_user": "noob"})
    assert runner == {"r1": 1, "r2": 1}
    assert action == {"a1": True, "a2": True, "a3": "noob"}


def test_with_cast_overriden():
    params = {"r1": "{{r2}}", "r2": 1, "a1": "{{r1}}", "a2": "{{r1}}", "a3": "{{r1}}"}
    runner, action = finalized({"r1": {"type": "integer"}, "r2": {"type": "integer"}},
                               {"a1": {"type": "boolean"}, "a2": {"type": "string"}, "a3": {"type": "integer"},
                                "r1": {"type": "string"}}, params, {"api_user": "noob"})
    assert runner == {"r1": 1, "r2": 1}
    assert action == {"a1": 1, "a2": "1", "a3": 1}


def test_cross_talk_no_cast():
    params = {"r1": "{{a1}}", "r2": 1, "a1": True, "a2": "{{r1}} {{a1}}", "a3": "{{action_context.api_user}}"}
    runner, action = finalized({"r1": {}, "r2": {}}, {"a1": {}, "a2": {}, "a3": {}}, params, {"api_user": "noob"})
    assert runner == {"r1": "True", "r2": 1}
    assert action == {"a1": True, "a2": "True True", "a3": "noob"}


def test_cross_talk_with_cast():
    params = {"r1": "{{a1}}", "r2": 1, "r3": 1, "a1": True, "a2": "{{r1}},{{a1}},{{a3}},{{r3}}", "a3": "{{a1}}"}
    runner, action = finalized({"r1": {"type": "boolean"}, "r2": {"type": "integer"}, "r3": {}},
                               {"a1": {"type": "boolean"}, "a2": {"type": "array"}, "a3": {}}, params)
    assert runner == {"r1": True, "r2": 1, "r3": 1}
    assert action == {"a1": True, "a2": (True, True, True, 1), "a3": "True"}


def test_order_and_every_declared_parameter_present():
    runner_info = {"r1": {}, "r2": {"default": "r2"}, "r3": {"default": "r3"}}
    action_info = {"a1": {}, "a2": {"default": "a2"}, "r3": {"default": "a3"}}
    params = {"r1": "p1", "r2": "p2", "r3": "p3", "a1": "p4", "a2": "p5"}
    assert finalized(runner_info, action_info, params) == ({"r1": "p1", "r2": "p2", "r3": "p3"},
                                                            {"a1": "p4", "a2": "p5"})
    assert finalized(runner_info, action_info, {}) == ({"r1": None, "r2": "r2", "r3": "a3"},
                                                       {"a1": None, "a2": "a2"})


def test_immutable_takes_the_default():
    """test_get_finalized_params: an immutable parameter is replaced by its default."""
    action_info = {"a1": {"default": "a1", "immutable": True}, "a2": {}}
    assert finalized({}, action_info, {"a1": "given", "a2": "x"})[1] == {"a1": "a1", "a2": "x"}


def test_dict_and_list_templates_use_to_complex_for_bare_names():
    params = {"r1": "{{r2}}", "r2": {"r2.1": 1}, "a1": True, "a2": "{{a1}}",
              "a3": {"test": "{{a1}}", "test1": "{{a4}}", "test2": "{{a5}}"}, "a4": 3, "a5": ["1", "{{a1}}"]}
    runner, action = finalized({"r1": {"type": "object"}, "r2": {"type": "object"}},
                               {"a1": {"type": "boolean"}, "a2": {"type": "boolean"}, "a3": {"type": "object"},
                                "a4": {"type": "integer"}, "a5": {"type": "array"}}, params)
    assert runner == {"r1": {"r2.1": 1}, "r2": {"r2.1": 1}}
    assert action == {"a1": True, "a2": True, "a3": {"test": True, "test1": 3, "test2": ["1", True]},
                      "a4": 3, "a5": ["1", True]}


def test_dotted_or_spaced_expressions_in_a_dict_render_to_strings():
    """Only "{{name}}" gets | to_complex; "{{ trigger.n }}" inside a dict stays a string."""
    _, action = finalized({}, {"obj": {"type": "object"}},
                          {"obj": {"k": "{{ trigger.n }}", "j": "{{trigger.n}}"}}, extra={"trigger": {"n": 5}})
    assert action == {"obj": {"k": "5", "j": "5"}}


@pytest.mark.parametrize("ptype,expected", [
    ("string", "5"), ("integer", 5), ("number", 5.0), ("array", 5), ("object", 5), (None, "5")])
def test_one_expression_renders_to_a_string_then_is_cast(ptype, expected):
    info = {"p": {"type": ptype} if ptype else {}}
    _, action = finalized({}, info, {"p": "{{ trigger.n }}"}, extra={"trigger": {"n": 5}})
    assert action["p"] == expected and type(action["p"]) is type(expected)


def test_object_parameter_gets_dict_from_python_repr():
    payload = {"args": {"command": ["sleep", "60"], "nodes": 2, "x": None, "y": True}}
    _, action = finalized({}, {"args": {"type": "object"}}, {"args": "{{ trigger.args }}"},
                          extra={"trigger": payload})
    assert action["args"] == payload["args"]


def test_cyclic_and_missing_dependencies():
    with pytest.raises(ParamException, match="^Cyclic"):
        finalized({"r1": {}, "r2": {}}, {}, {"r1": "{{r2}}", "r2": "{{r1}}"})
    with pytest.raises(ParamException, match="^Dependency"):
        finalized({"r1": {}, "r2": {}}, {}, {"r1": "{{r3}}", "r2": "{{r3}}"})
    with pytest.raises(ParamException, match="^Dependency"):
        finalized({"r1": {"default": "{{r3}}"}, "r2": {"default": "{{r3}}"}}, {}, {})


def test_render_failure_message_and_no_double_rendering():
    with pytest.raises(ParamException, match='Failed to render parameter "a2": \'dict object\' has no '
                                             'attribute \'lorem_ipsum\''):
        finalized({}, {"a2": {"type": "string"}}, {"a2": "{{action_context.lorem_ipsum}}"}, {"api_user": "n"})
    runner, _ = finalized({"r1": {}}, {}, {"r1": "{{ action_context.h1 }}{{ action_context.h2 }}"},
                          {"h1": "{", "h2": "{ missing }}"})
    assert runner == {"r1": "{{ missing }}"}


def test_object_default_with_template_notation():
    info = {"params": {"type": "object", "default": {"host": "{{host}}", "port": "{{port}}", "path": "/bar"}}}
    _, action = finalized({"r1": {}}, info, {"host": "lolcathost", "port": 5555})
    assert action["params"] == {"host": "lolcathost", "port": 5555, "path": "/bar"}


def test_live_params_with_additional_context():
    live = render_live_params({"r1": {"default": "some"}}, {"r2": {"default": "{{ r1 }}"}},
                              {"r3": "lolcathost", "r1": "{{ additional.stuff }}"},
                              {"action_context": {}, "additional": {"stuff": "generic"}})
    assert live == {"r1": "generic", "r2": "generic", "r3": "lolcathost"}


@pytest.mark.parametrize("ptype", ["string", "boolean", "object", "array"])
def test_use_none_magic_value_casts_to_none(ptype):
    assert cast_parameter(NONE_MAGIC_VALUE, {"type": ptype}) is None
    _, action = finalized({}, {"p": {"type": ptype}}, {"p": "{{ trigger.v | use_none }}"},
                          extra={"trigger": {"v": None}})
    assert action["p"] is None


@pytest.mark.parametrize("ptype", ["integer", "number"])
def test_use_none_into_integer_or_number_fails_as_in_st2(ptype):
    """casts.py: _cast_integer/_cast_number do int()/float() of _cast_none(x), i.e. of None."""
    with pytest.raises(ParamCastError, match="TypeError"):
        finalized({}, {"p": {"type": ptype}}, {"p": "{{ trigger.v | use_none }}"}, extra={"trigger": {"v": None}})


def test_casts_like_st2():
    assert cast_parameter(None, {"type": "integer"}) is None
    assert cast_parameter("true", {"type": "boolean"}) is True
    assert cast_parameter("[1, 2]", {"type": "array"}) == [1, 2]
    assert cast_parameter("{'a': None}", {"type": "object"}) == {"a": None}
    for value, ptype in [("yes", "boolean"), ("1.5", "integer"), (5, "string"), ("abc", "number")]:
        with pytest.raises((ValueError, SyntaxError)):
            cast_parameter(value, {"type": ptype})
    with pytest.raises(ParamCastError, match='"n" cannot be cast to integer'):
        finalized({}, {"n": {"type": "integer"}}, {"n": "many"})


def test_templates_compiled_once_and_rendered_per_call():
    """A rule's parameter templates are the same strings for every trigger: the second
    render reuses the compiled template and its parsed dependencies, yet renders the new
    values, and a syntax error is still reported as before (not cached)."""
    from packrunner import params as params_module
    from packrunner.templating import compiled_template

    params = {"key": "{{ trigger.key }}-x", "args": {"k": "{{trigger}}"}}
    first = render_live_params({}, {}, params, {"trigger": {"key": "a"}})
    before = compiled_template.cache_info().hits, params_module._dependencies.cache_info().hits
    second = render_live_params({}, {}, params, {"trigger": {"key": "b"}})
    after = compiled_template.cache_info().hits, params_module._dependencies.cache_info().hits
    assert first["key"] == "a-x" and second["key"] == "b-x"
    assert second["args"] == {"k": {"key": "b"}}
    assert after[0] >= before[0] + 2 and after[1] >= before[1] + 2
    assert render_live_params({}, {}, {"bad": "{{ x"}, {})["bad"] == "{{ x"  # not Jinja after all, as in st2
