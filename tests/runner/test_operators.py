"""Operator and criteria semantics (st2common/operators.py, st2reactor/rules/filter.py)."""

import datetime

import pytest

from packrunner import operators as ops
from packrunner.rules import Rule, lookup_path, render_pattern, MISSING
from packrunner.templating import build_context


def test_regex_is_search_matchregex_is_anchored():
    assert ops.get_operator("regex")("say hello world", "hello")
    assert not ops.get_operator("matchregex")("say hello world", "hello")
    assert ops.get_operator("matchregex")("hello\nworld", "hello.world")  # DOTALL
    assert not ops.get_operator("regex")("hello\nworld", "hello.world")
    assert ops.get_operator("iregex")("HELLO", "hel+o")
    assert not ops.get_operator("regex")("HELLO", "hel+o")


@pytest.mark.parametrize("name,value,pattern,expected", [
    ("equals", "a", "a", True),
    ("eq", 5, "5", False),  # no casting, like st2
    ("eq", 5, 5, True),
    ("equals", "a", None, False),
    ("nequals", "a", "b", True),
    ("neq", None, None, False),
    ("iequals", "AbC", "abc", True),
    ("ieq", "AbC", "abd", False),
    ("contains", "foobar", "oba", True),
    ("icontains", "FOOBAR", "oba", True),
    ("ncontains", "foobar", "xyz", True),
    ("ncontains", "foobar", "oba", False),
    ("incontains", "FOOBAR", "oba", False),
    ("startswith", "foobar", "foo", True),
    ("istartswith", "FOObar", "foo", True),
    ("endswith", "foobar", "bar", True),
    ("iendswith", "fooBAR", "bar", True),
    ("endswith", "foobar", "foo", False),
    ("lt", 1, 2, True),
    ("lessthan", 3, 2, False),
    ("gt", 3, 2, True),
    ("greaterthan", 1, 2, False),
    ("gt", 3, None, False),
    ("matchwildcard", "node-17.cluster", "node-*.cluster", True),
    ("matchwildcard", "login1", "node-*", False),
    ("exists", 0, None, True),
    ("exists", None, None, False),
    ("nexists", None, None, True),
    ("inside", "b", ["a", "b"], True),
    ("in", "ab", "xaby", True),
    ("ninside", "c", ["a", "b"], True),
    ("nin", "a", ["a", "b"], False),
    ("EQUALS", "x", "x", True),  # operator names are case-insensitive
])
def test_operator_table(name, value, pattern, expected):
    assert ops.get_operator(name)(value, pattern) is expected


def test_lessthan_int_vs_str_raises_like_st2():
    with pytest.raises(TypeError):
        ops.get_operator("lt")(1, "2")


def test_timediff():
    now = datetime.datetime.now(datetime.timezone.utc)
    recent = (now - datetime.timedelta(seconds=10)).isoformat()
    old = (now - datetime.timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert ops.get_operator("td_lt")(recent, 60)
    assert not ops.get_operator("timediff_lt")(old, 60)
    assert ops.get_operator("timediff_gt")(old, 60)
    assert not ops.get_operator("td_gt")(recent, 60)


def test_unknown_operator_clear_error():
    with pytest.raises(ops.UnknownOperatorError, match="operator 'frobnicate' not supported"):
        ops.get_operator("frobnicate")


def test_lookup_path():
    ctx = {"a": {"b": [10, {"c": "x"}], "h": {"X-Y": 1}}}
    assert lookup_path(ctx, "a.b[0]") == 10
    assert lookup_path(ctx, "a.b[1].c") == "x"
    assert lookup_path(ctx, "a.h['X-Y']") == 1
    assert lookup_path(ctx, "a.nope") is MISSING
    assert lookup_path(ctx, "a.b[5]") is MISSING


def _rule(criteria, enabled=True):
    data = {"name": "r", "trigger": {"type": "p.t"}, "action": {"ref": "p.a"}, "criteria": criteria}
    if enabled is not None:
        data["enabled"] = enabled
    return Rule(data, "p")


def test_rule_enabled_defaults_false():
    assert not _rule({}, enabled=None).matches({"x": 1})
    assert _rule({}, enabled=True).matches({"x": 1})


def test_rule_hash_suffix_tests_same_field_twice():
    rule = _rule({
        "trigger.n#1": {"type": "gt", "pattern": 2},
        "trigger.n#2": {"type": "lt", "pattern": 10},
    })
    assert rule.matches({"n": 5})
    assert not rule.matches({"n": 1})
    assert not rule.matches({"n": 11})


def test_rule_nested_path_and_missing_field():
    rule = _rule({"trigger.args.script": {"type": "startswith", "pattern": "#!/bin"}})
    assert rule.matches({"args": {"script": "#!/bin/bash\necho"}})
    assert not rule.matches({"args": {}})  # value None -> startswith raises -> no match
    assert not rule.matches({})  # empty payload with criteria never matches


def test_rule_exists_nexists():
    assert _rule({"trigger.x": {"type": "exists", "pattern": ""}}).matches({"x": 0})
    assert not _rule({"trigger.x": {"type": "exists", "pattern": ""}}).matches({"y": 1})
    assert _rule({"trigger.x": {"type": "nexists", "pattern": ""}}).matches({"y": 1})


def test_pattern_rendering_keeps_types(tmp_path):
    from packrunner.datastore import Store

    store = Store(str(tmp_path))
    store.set("limit", "abc")
    ctx = build_context(store=store, payload={"n": 5, "l": [1, 2], "s": "x"})
    assert render_pattern("{{ trigger.n }}", ctx) == 5
    assert render_pattern("{{ trigger.l }}", ctx) == [1, 2]
    assert render_pattern("pre-{{ trigger.s }}", ctx) == "pre-x"
    assert render_pattern("{{ st2kv.system.limit }}", ctx) == "abc"
    assert render_pattern(7, ctx) == 7
    assert render_pattern("plain", ctx) == "plain"


def test_rule_pattern_uses_trigger_and_kv(tmp_path):
    from packrunner.datastore import Store

    store = Store(str(tmp_path))
    store.set("wanted", "gpu")
    rule = _rule({
        "trigger.partition": {"type": "equals", "pattern": "{{ st2kv.system.wanted }}"},
        "trigger.used": {"type": "lt", "pattern": "{{ trigger.total }}"},
    })
    assert rule.matches({"partition": "gpu", "used": 3, "total": 4}, store=store)
    assert not rule.matches({"partition": "cpu", "used": 3, "total": 4}, store=store)
    assert not rule.matches({"partition": "gpu", "used": 5, "total": 4}, store=store)


def test_unknown_operator_in_rule_never_matches():
    assert not _rule({"trigger.x": {"type": "bogus", "pattern": 1}}).matches({"x": 1})


def test_search_operator_any_all():
    crit = {"trigger.fields": {"type": "search", "condition": "any", "pattern": {
        "item.name": {"type": "equals", "pattern": "Status"},
        "item.to": {"type": "equals", "pattern": "Approved"},
    }}}
    payload = {"fields": [{"name": "Status", "to": "Approved"}, {"name": "Other", "to": "x"}]}
    assert _rule(crit).matches(payload)
    crit["trigger.fields"]["condition"] = "all"
    assert not _rule(crit).matches(payload)
    crit["trigger.fields"]["condition"] = "bogus"
    assert not _rule(crit).matches(payload)
