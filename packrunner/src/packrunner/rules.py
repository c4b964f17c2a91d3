"""Rule loading and criteria matching.

Semantics follow ``st2reactor/st2reactor/rules/filter.py`` (st2 3.8/3.9):

* a rule applies only if ``enabled`` is true (``enabled`` defaults to False);
* rules with criteria never match an empty payload;
* the criterion key is a path into the context ``{"trigger": payload}``
  (``trigger.a.b``, ``trigger.list[0]``, ``trigger.headers['X-Y']``); a
  ``#suffix`` is stripped so one field can be tested twice;
* a string pattern is rendered with Jinja (``trigger``, ``st2kv``); when it
  contains ``{{ }}`` st2 first renders with ``| to_complex`` and JSON-decodes,
  so ``{{ trigger.count }}`` stays an int; otherwise the plain rendering is used;
* any exception while rendering, looking up or comparing means "no match" and
  is logged.
"""

import json
import logging
import re

from .errors import PackrunnerError
from . import operators
from .templating import TemplateRenderError, build_context, get_environment

__all__ = ["Rule", "RuleError", "lookup_path", "MISSING"]

LOG = logging.getLogger("packrunner.rules")

_ENV = get_environment(strict=True)
_EXPR = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)


class RuleError(PackrunnerError, ValueError):
    """Invalid rule definition."""


class _Missing:
    def __repr__(self):
        return "MISSING"


MISSING = _Missing()

_TOKEN = re.compile(r"""\[\s*(?:'([^']*)'|"([^"]*)"|(-?\d+)|\*)\s*\]|([^.\[\]]+)""")


def lookup_path(context, path):
    """Resolve ``path`` (``trigger.a.b``, ``trigger.l[0]``, ``trigger.h['x-y']``) in ``context``.

    Returns:
        the value, or ``MISSING`` when any step does not exist.
    """
    cur = context
    for m in _TOKEN.finditer(path):
        sq, dq, idx, name = m.groups()
        key = sq if sq is not None else dq if dq is not None else name
        if idx is not None:
            if isinstance(cur, list):
                try:
                    cur = cur[int(idx)]
                    continue
                except IndexError:
                    return MISSING
            key = idx
        if key is None:
            return MISSING
        if isinstance(cur, dict) and key in cur:
            cur = cur[key]
        elif isinstance(cur, list) and key.lstrip("-").isdigit():
            try:
                cur = cur[int(key)]
            except IndexError:
                return MISSING
        else:
            return MISSING
    return cur


class Rule:
    """A rule loaded from ``rules/*.yaml``.

    Args:
        data: the parsed YAML mapping.
        pack: pack ref (used when the rule has no ``pack`` key).
        path: source file (for messages).

    Raises:
        RuleError: when ``name``, ``trigger.type`` or ``action.ref`` is missing.
    """

    def __init__(self, data, pack, path=None):
        if not isinstance(data, dict):
            raise RuleError("%s: rule must be a mapping" % path)
        self.data = data
        self.path = path
        self.name = data.get("name")
        if not self.name:
            raise RuleError("%s: rule has no 'name'" % path)
        self.pack = data.get("pack") or pack
        self.ref = "%s.%s" % (self.pack, self.name)
        self.enabled = bool(data.get("enabled", False))
        trigger = data.get("trigger") or {}
        self.trigger_type = trigger.get("type")
        if not self.trigger_type:
            raise RuleError("%s: rule %s has no 'trigger.type'" % (path, self.ref))
        self.criteria = data.get("criteria") or {}
        action = data.get("action") or {}
        self.action_ref = action.get("ref")
        if not self.action_ref:
            raise RuleError("%s: rule %s has no 'action.ref'" % (path, self.ref))
        self.action_parameters = action.get("parameters") or {}

    def __repr__(self):
        return "Rule(%s)" % self.ref

    def matches(self, payload, store=None, trigger_instance_id=None):
        """Return True if all criteria match ``payload``.

        Args:
            payload: the trigger payload (dict).
            store: datastore for ``st2kv`` in patterns.
            trigger_instance_id: only for log messages.
        """
        matched, failed = self.evaluate(payload, store)
        if not matched and failed:
            LOG.debug("rule %s did not match trigger %s on criterion %r", self.ref, trigger_instance_id,
                      failed["key"])
        return matched

    def evaluate(self, payload, store=None, enabled=None):
        """Evaluate the criteria like st2's ``RuleFilter.filter``.

        Criteria are checked in order and evaluation stops at the first one
        that fails (``st2reactor/st2reactor/rules/filter.py``).

        Args:
            payload: the trigger payload (dict).
            store: datastore for ``st2kv`` in patterns.
            enabled: override the rule's ``enabled`` (st2-rule-tester treats a
                rule read from a file as enabled).

        Returns:
            ``(matched, failed)``: ``failed`` is None on a match, else a dict
            ``{"key", "type", "pattern", "value", "reason"}`` describing why
            (``key`` None when the rule is disabled or the payload empty).
        """
        if not (self.enabled if enabled is None else enabled):
            return False, {"key": None, "type": None, "pattern": None, "value": None,
                           "reason": "rule is disabled (enabled is not true)"}
        if self.criteria and not payload:
            return False, {"key": None, "type": None, "pattern": None, "value": None,
                           "reason": "the rule has criteria and the payload is empty"}
        context = build_context(store=store, payload=payload)
        for key, criterion in self.criteria.items():
            result, value, pattern, reason = self._check(key, criterion, context, payload, store, "trigger")
            if not result:
                return False, {"key": key, "type": criterion.get("type") if isinstance(criterion, dict) else None,
                               "pattern": pattern, "value": value,
                               "reason": reason or "criterion does not match"}
        return True, None

    def _check(self, key, criterion, context, root, store, prefix):
        """Check one criterion; returns ``(result, payload value, rendered pattern, error or None)``
        like st2's ``RuleFilter._check_criterion``."""
        if not isinstance(criterion, dict) or "type" not in criterion:
            LOG.warning("rule %s: criterion %r has no 'type'; not matching", self.ref, key)
            return False, None, None, "criterion has no 'type'"
        op_name = criterion["type"]
        try:
            op = operators.get_operator(op_name)
        except operators.UnknownOperatorError as e:
            LOG.error("rule %s: criterion %r: %s", self.ref, key, e)
            return False, None, None, str(e)
        pattern = criterion.get("pattern")
        # st2 compares the type case-sensitively here: "SEARCH" gets no condition and fails.
        is_search = op_name == operators.SEARCH
        if not is_search:
            try:
                pattern = render_pattern(pattern, context)
            except TemplateRenderError as e:
                LOG.error("rule %s: failed to render pattern for %r: %s", self.ref, key, e)
                return False, None, pattern, "failed to render pattern: %s" % e
        path = key.split("#", 1)[0]
        if path == prefix:
            value = root
        elif path.startswith(prefix + ".") or path.startswith(prefix + "["):
            value = lookup_path(root, path[len(prefix):].lstrip("."))
        else:
            value = lookup_path(context, path)
        if value is MISSING:
            value = None
        try:
            if is_search:

                def check(child_key, child_criterion, item):
                    item_ctx = dict(context)
                    item_ctx["item"] = item
                    return self._check(child_key, child_criterion, item_ctx, item, store, "item")[0]

                return bool(op(value, pattern, criterion.get("condition"), check)), value, pattern, None
            return bool(op(value, pattern)), value, pattern, None
        except Exception as e:  # noqa: BLE001 - st2 logs and treats as no match
            LOG.warning(
                "rule %s: criterion %r (%s) raised %s: %s; not matching",
                self.ref, key, op_name, type(e).__name__, e,
            )
            return False, value, pattern, "%s raised %s: %s" % (op_name, type(e).__name__, e)


def render_pattern(pattern, context):
    """Render a criterion pattern like st2's ``RuleFilter._render_criteria_pattern``.

    Non-strings are returned unchanged. Strings with ``{{ }}`` are rendered
    with ``| to_complex`` and JSON-decoded (keeps types); if that is not
    valid JSON the plain rendering is returned.

    Raises:
        TemplateRenderError: on render errors.
    """
    if pattern is None or not isinstance(pattern, str):
        return pattern
    if "{{" not in pattern and "{%" not in pattern:
        return pattern
    try:
        if _EXPR.search(pattern):
            complex_pattern = _EXPR.sub(lambda m: "{{ (%s) | to_complex }}" % m.group(1).strip(), pattern)
            try:
                rendered = _ENV.from_string(complex_pattern).render(**context)
                return json.loads(rendered)
            except ValueError:
                pass
        return _ENV.from_string(pattern).render(**context)
    except TemplateRenderError:
        raise
    except Exception as e:
        raise TemplateRenderError("failed to render pattern %r: %s" % (pattern, e)) from e
