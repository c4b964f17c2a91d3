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


# --- search conditions (st2common/operators.py, st2 >= 3.7) ----------------------------------

_ITEMS = [{"name": "Status", "to": "Approved"}, {"name": "Other", "to": "Approved"}, {"name": "Other", "to": "x"}]


def _search(condition, items, pattern=None):
    crit = {"trigger.fields": {"type": "search", "condition": condition, "pattern": pattern or {
        "item.name": {"type": "equals", "pattern": "Status"},
        "item.to": {"type": "equals", "pattern": "Approved"},
    }}}
    return _rule(crit).matches({"fields": items})


@pytest.mark.parametrize("condition,items,expected", [
    ("any", _ITEMS, True),             # item 0 matches both criteria
    ("any", _ITEMS[1:], False),        # no item matches both
    ("all", _ITEMS[:1], True),
    ("all", _ITEMS[:2], False),        # item 1 fails item.name
    ("any2any", _ITEMS[1:], True),     # item 1 matches item.to
    ("any2any", _ITEMS[2:], False),    # item 2 matches neither
    ("all2any", _ITEMS[:2], True),     # every item matches at least one criterion
    ("all2any", _ITEMS, False),        # item 2 matches none
    ("all", [], True),                 # all([]) is True in st2 too
    ("any", [], False),
])
def test_search_conditions(condition, items, expected):
    assert _search(condition, items) is expected


def test_search_single_mapping_is_searched_as_one_item():
    assert _search("any", {"name": "Status", "to": "Approved"})
    assert not _search("any", {"name": "Status", "to": "Rejected"})


def test_search_unknown_condition_raises_in_operator_and_never_matches():
    with pytest.raises(ops.UnrecognizedConditionError, match="'any', 'all', 'any2any' and 'all2any'"):
        ops.get_operator("search")([], {}, "some", lambda *a: True)
    assert not _search("some", _ITEMS)


def test_search_missing_value_never_matches():
    assert not _rule({"trigger.nope": {"type": "search", "condition": "all", "pattern": {}}}).matches({"x": 1})


def test_search_child_keys_accept_hash_suffix():
    assert _search("any", _ITEMS, {"item.to#1": {"type": "startswith", "pattern": "App"},
                                   "item.to#2": {"type": "endswith", "pattern": "ved"}})
    assert not _search("any", _ITEMS, {"item.to#1": {"type": "startswith", "pattern": "App"},
                                       "item.to#2": {"type": "endswith", "pattern": "nope"}})


def test_search_type_is_case_sensitive_like_st2():
    """RuleFilter passes the condition only when type == 'search'; 'SEARCH' fails with a TypeError."""
    crit = {"trigger.fields": {"type": "SEARCH", "condition": "any", "pattern": {
        "item.name": {"type": "equals", "pattern": "Status"}}}}
    assert not _rule(crit).matches({"fields": _ITEMS})


# --- operator by operator, against st2common/operators.py -------------------------------------

@pytest.mark.parametrize("name,value,pattern,expected", [
    ("nequals", "a", None, True),            # nequals has no None guard in st2
    ("iequals", "A", None, False),
    ("contains", ["a", "b"], "a", True),     # 'in' works on lists too
    ("ncontains", ["a", "b"], "c", True),
    ("icontains", "abc", None, False),
    ("incontains", "ABC", "x", True),
    ("istartswith", "Node1", None, False),
    ("iendswith", "x.LOG", ".log", True),
    ("matchwildcard", "abc", "a?c", True),
    ("matchwildcard", "abc", "[!a]*", False),
    ("matchregex", "xhello", "hello", False),  # re.match: anchored at the start
    ("regex", "xhello", "^hello", False),
    ("iregex", "xHeLLo", "hello$", True),
    ("regex", "a", None, False),
    ("lt", "a", "b", True),                   # strings compare lexicographically, no casting
    ("gt", 2.5, 2, True),
    ("inside", "a", None, False),
    ("ninside", "z", "xyz", False),
    ("nexists", 0, None, False),
    ("equals", b"abc", "abc", True),          # bytes are decoded (ensure_operators_are_strings)
    ("contains", b"abc", "b", True),
])
def test_operator_semantics(name, value, pattern, expected):
    assert ops.get_operator(name)(value, pattern) is expected


@pytest.mark.parametrize("name,value,pattern", [
    ("startswith", None, "x"),     # value None (missing field): AttributeError -> no match in a rule
    ("contains", 5, "5"),          # TypeError: no casting
    ("iequals", 5, "5"),
    ("gt", None, 1),
])
def test_operator_errors_are_raised(name, value, pattern):
    with pytest.raises((TypeError, AttributeError)):
        ops.get_operator(name)(value, pattern)


def test_timediff_accepts_naive_as_utc_and_none_pattern():
    naive = (datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=5)).replace(
        tzinfo=None).isoformat()
    assert ops.get_operator("td_lt")(naive, 60)
    assert ops.get_operator("td_gt")(naive, None) is False


def test_all_stackstorm_operator_names_exist():
    names = {"equals", "eq", "nequals", "neq", "iequals", "ieq", "contains", "icontains", "ncontains",
             "incontains", "startswith", "istartswith", "endswith", "iendswith", "lessthan", "lt", "greaterthan",
             "gt", "timediff_lt", "td_lt", "timediff_gt", "td_gt", "exists", "nexists", "inside", "in", "ninside",
             "nin", "regex", "iregex", "matchregex", "matchwildcard", "search"}
    assert set(ops.OPERATORS) == names


def test_pattern_jinja_sees_trigger_in_rule():
    rule = _rule({"trigger.a": {"type": "equals", "pattern": "{{ trigger.b | upper }}"}})
    assert rule.matches({"a": "X", "b": "x"})
    assert not rule.matches({"a": "x", "b": "x"})


def test_evaluate_reports_first_failing_criterion():
    rule = _rule({"trigger.a": {"type": "equals", "pattern": "x"}, "trigger.b": {"type": "gt", "pattern": 1}})
    matched, failed = rule.evaluate({"a": "x", "b": 0})
    assert not matched
    assert failed == {"key": "trigger.b", "type": "gt", "pattern": 1, "value": 0,
                      "reason": "criterion does not match"}
