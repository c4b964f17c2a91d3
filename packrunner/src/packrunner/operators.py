"""Rule criteria operators with StackStorm's semantics.

A re-implementation of ``st2common/st2common/operators.py`` (st2 3.8/3.9):

* string operators compare as given (bytes are decoded to str; no other
  casting), and return False when the pattern is None;
* ``regex`` and ``iregex`` use ``re.search`` (match anywhere);
  ``matchregex`` uses ``re.match`` with ``re.DOTALL`` (anchored at the start);
* ``matchwildcard`` uses ``fnmatch.fnmatch``;
* ``lessthan``/``greaterthan`` compare the raw values (``value < pattern``), so
  comparing an int to a str raises ``TypeError``, which the rule filter
  treats as "no match" (logged);
* ``timediff_lt``/``timediff_gt`` compare ``now_utc - parse(value)`` in seconds
  with the pattern;
* ``exists``/``nexists`` test the payload value against None;
* ``inside``/``ninside`` test ``value in pattern``;
* ``search`` applies child criteria to each item of a list (conditions
  ``any``, ``all``, ``any2any``, ``all2any``); it only gets its condition when
  the criterion type is exactly ``search`` (lower case), as in st2's
  ``RuleFilter._check_criterion``.
"""

import datetime
import fnmatch
import re

from .errors import PackrunnerError

__all__ = ["get_operator", "OPERATORS", "SEARCH", "SEARCH_CONDITIONS", "UnknownOperatorError", "UnrecognizedConditionError"]

SEARCH = "search"
#: Conditions of the ``search`` operator (st2common/operators.py).
SEARCH_CONDITIONS = ("any", "all", "any2any", "all2any")


class UnknownOperatorError(PackrunnerError, ValueError):
    """The criterion names an operator StackStorm does not have."""


class UnrecognizedConditionError(PackrunnerError, ValueError):
    """``search`` with a condition other than those in :data:`SEARCH_CONDITIONS`."""


def _strs(value, pattern):
    if isinstance(value, bytes):
        value = value.decode("utf-8")
    if isinstance(pattern, bytes):
        pattern = pattern.decode("utf-8")
    return value, pattern


def equals(value, criteria_pattern):
    if criteria_pattern is None:
        return False
    value, criteria_pattern = _strs(value, criteria_pattern)
    return value == criteria_pattern


def nequals(value, criteria_pattern):
    value, criteria_pattern = _strs(value, criteria_pattern)
    return value != criteria_pattern


def iequals(value, criteria_pattern):
    if criteria_pattern is None:
        return False
    value, criteria_pattern = _strs(value, criteria_pattern)
    return value.lower() == criteria_pattern.lower()


def contains(value, criteria_pattern):
    if criteria_pattern is None:
        return False
    value, criteria_pattern = _strs(value, criteria_pattern)
    return criteria_pattern in value


def icontains(value, criteria_pattern):
    if criteria_pattern is None:
        return False
    value, criteria_pattern = _strs(value, criteria_pattern)
    return criteria_pattern.lower() in value.lower()


def ncontains(value, criteria_pattern):
    if criteria_pattern is None:
        return False
    value, criteria_pattern = _strs(value, criteria_pattern)
    return criteria_pattern not in value


def incontains(value, criteria_pattern):
    if criteria_pattern is None:
        return False
    value, criteria_pattern = _strs(value, criteria_pattern)
    return criteria_pattern.lower() not in value.lower()


def startswith(value, criteria_pattern):
    if criteria_pattern is None:
        return False
    value, criteria_pattern = _strs(value, criteria_pattern)
    return value.startswith(criteria_pattern)


def istartswith(value, criteria_pattern):
    if criteria_pattern is None:
        return False
    value, criteria_pattern = _strs(value, criteria_pattern)
    return value.lower().startswith(criteria_pattern.lower())


def endswith(value, criteria_pattern):
    if criteria_pattern is None:
        return False
    value, criteria_pattern = _strs(value, criteria_pattern)
    return value.endswith(criteria_pattern)


def iendswith(value, criteria_pattern):
    if criteria_pattern is None:
        return False
    value, criteria_pattern = _strs(value, criteria_pattern)
    return value.lower().endswith(criteria_pattern.lower())


def less_than(value, criteria_pattern):
    if criteria_pattern is None:
        return False
    return value < criteria_pattern


def greater_than(value, criteria_pattern):
    if criteria_pattern is None:
        return False
    return value > criteria_pattern


def match_wildcard(value, criteria_pattern):
    if criteria_pattern is None:
        return False
    value, criteria_pattern = _strs(value, criteria_pattern)
    return fnmatch.fnmatch(value, criteria_pattern)


def match_regex(value, criteria_pattern):
    if criteria_pattern is None:
        return False
    value, criteria_pattern = _strs(value, criteria_pattern)
    return re.compile(criteria_pattern, re.DOTALL).match(value) is not None


def regex(value, criteria_pattern):
    if criteria_pattern is None:
        return False
    value, criteria_pattern = _strs(value, criteria_pattern)
    return re.compile(criteria_pattern).search(value) is not None


def iregex(value, criteria_pattern):
    if criteria_pattern is None:
        return False
    value, criteria_pattern = _strs(value, criteria_pattern)
    return re.compile(criteria_pattern, re.IGNORECASE).search(value) is not None


def _parse_utc(value):
    """Parse an ISO-8601 date; naive dates are taken as UTC (st2 uses dateutil)."""
    if isinstance(value, datetime.datetime):
        dt = value
    else:
        text = str(value).strip()
        if text.endswith("Z"):
            text = text[:-1] + "+00:00"
        dt = datetime.datetime.fromisoformat(text)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=datetime.timezone.utc)
    return dt


def _timediff(diff_target, period_seconds, op):
    now = datetime.datetime.now(datetime.timezone.utc)
    return op((now - _parse_utc(diff_target)).total_seconds(), period_seconds)


def timediff_lt(value, criteria_pattern):
    if criteria_pattern is None:
        return False
    return _timediff(value, criteria_pattern, less_than)


def timediff_gt(value, criteria_pattern):
    if criteria_pattern is None:
        return False
    return _timediff(value, criteria_pattern, greater_than)


def exists(value, criteria_pattern):
    return value is not None


def nexists(value, criteria_pattern):
    return value is None


def inside(value, criteria_pattern):
    if criteria_pattern is None:
        return False
    value, criteria_pattern = _strs(value, criteria_pattern)
    return value in criteria_pattern


def ninside(value, criteria_pattern):
    if criteria_pattern is None:
        return False
    value, criteria_pattern = _strs(value, criteria_pattern)
    return value not in criteria_pattern


def search(value, criteria_pattern, criteria_condition, check_function):
    """Match child criteria against each item of the list ``value``.

    Same semantics as ``search`` in ``st2common/st2common/operators.py``
    (st2 >= 3.7): a single mapping is searched as a one-item list; the
    condition picks how items and child criteria combine:

    * ``any``: some item matches all child criteria;
    * ``all``: every item matches all child criteria (True for an empty list);
    * ``any2any``: some item matches some child criterion;
    * ``all2any``: every item matches some child criterion.

    Args:
        value: the payload list (or one mapping).
        criteria_pattern: mapping ``item.<path>`` -> child criterion.
        criteria_condition: one of :data:`SEARCH_CONDITIONS`.
        check_function: ``f(key, criterion, item) -> bool``.

    Returns:
        bool.

    Raises:
        UnrecognizedConditionError: for other conditions.
        TypeError: when ``value`` is not iterable (StackStorm: no match).
    """
    if isinstance(value, dict):
        value = [value]
    if criteria_condition not in SEARCH_CONDITIONS:
        raise UnrecognizedConditionError(
            "The '%s' condition is not recognized for type search, 'any', 'all', 'any2any' and 'all2any' "
            "are allowed" % criteria_condition
        )
    item_match = any if criteria_condition in ("any", "any2any") else all
    pattern_match = any if criteria_condition in ("any2any", "all2any") else all
    if value is None:
        raise TypeError("'NoneType' object is not iterable")
    return item_match(
        [pattern_match([check_function(k, v, item) for k, v in (criteria_pattern or {}).items()])
         for item in value]
    )


OPERATORS = {
    "matchwildcard": match_wildcard,
    "matchregex": match_regex,
    "regex": regex,
    "iregex": iregex,
    "eq": equals,
    "equals": equals,
    "neq": nequals,
    "nequals": nequals,
    "ieq": iequals,
    "iequals": iequals,
    "contains": contains,
    "icontains": icontains,
    "ncontains": ncontains,
    "incontains": incontains,
    "startswith": startswith,
    "istartswith": istartswith,
    "endswith": endswith,
    "iendswith": iendswith,
    "lt": less_than,
    "lessthan": less_than,
    "gt": greater_than,
    "greaterthan": greater_than,
    "td_lt": timediff_lt,
    "timediff_lt": timediff_lt,
    "td_gt": timediff_gt,
    "timediff_gt": timediff_gt,
    "exists": exists,
    "nexists": nexists,
    "inside": inside,
    "in": inside,
    "ninside": ninside,
    "nin": ninside,
    SEARCH: search,
}


def get_operator(name):
    """Return the operator function for ``name`` (case-insensitive).

    Raises:
        UnknownOperatorError: "operator X not supported".
    """
    op = str(name).lower()
    if op not in OPERATORS:
        raise UnknownOperatorError("operator %r not supported" % name)
    return OPERATORS[op]
