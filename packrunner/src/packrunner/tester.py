"""Rule tester: does a rule match a trigger instance, and with which parameters?

The local equivalent of ``st2-rule-tester`` (``st2reactor/st2reactor/rules/
tester.py`` and ``st2reactor/st2reactor/cmd/rule_tester.py``):

* the rule comes from a file (then it is treated as enabled, as st2 does) or
  from its ref in the pack (then a disabled rule does not match);
* the trigger instance comes from a JSON/YAML file with ``trigger`` (ref) and
  ``payload`` (the other ``TriggerInstanceDB`` fields ``id``,
  ``occurrence_time`` and ``status`` are accepted and ignored), or from a
  trigger instance recorded by the runner;
* the rule matches when its trigger type equals the instance's trigger ref,
  its criteria match (``RuleFilter``) and its action parameters render;
  parameter rendering errors make it "not match", as in st2.

Beyond st2-rule-tester it also reports the parameters the runner would pass
(defaults filled, cast, validated against the action's schema) and whether
the runner would drop the payload because it fails the trigger's
``payload_schema``; these are warnings and do not change the verdict.
"""

import os

from .errors import PackrunnerError
from .pack import PackError, load_yaml
from .rules import Rule, RuleError
from .schema import SchemaConversionError, ValidationFailed, mask_secrets, validate_with_defaults

__all__ = ["RuleTestError", "load_rule", "load_trigger_instance", "evaluate_rule"]

_INSTANCE_KEYS = {"id", "trigger", "payload", "occurrence_time", "status"}


class RuleTestError(PackrunnerError, ValueError):
    """The rule or the trigger instance cannot be loaded (a usage error)."""


def load_rule(pack, rule):
    """Return ``(Rule, enabled override)`` for a rule file path or ref.

    Args:
        pack: :class:`packrunner.pack.Pack`.
        rule: a path to a rule YAML file, a rule ref (``pack.name``) or a
            bare rule name of the pack.

    Returns:
        ``(rule, True)`` for a file (st2-rule-tester builds the RuleDB with
        ``enabled=True``), ``(rule, None)`` for a ref (its own ``enabled``).

    Raises:
        RuleTestError: file unreadable / invalid, or no such rule.
    """
    if os.path.isfile(rule):
        data = _load_yaml(rule)
        if not isinstance(data, dict):
            raise RuleTestError("%s: a rule must be a YAML mapping" % rule)
        data = dict(data)
        data.setdefault("name", "unknown")
        try:
            return Rule(data, data.get("pack") or pack.ref, rule), True
        except RuleError as e:
            raise RuleTestError(str(e)) from e
    for candidate in pack.rules:
        if rule in (candidate.ref, candidate.name):
            return candidate, None
    raise RuleTestError("rule %r is neither a file nor a rule of pack %s (rules: %s)"
                        % (rule, pack.ref, ", ".join(sorted(r.ref for r in pack.rules)) or "none"))


def _load_yaml(path):
    """``load_yaml`` with its errors as :class:`RuleTestError`."""
    try:
        return load_yaml(path)
    except PackError as e:
        raise RuleTestError(str(e)) from e


def load_trigger_instance(path=None, store=None, instance_id=None):
    """Load a trigger instance as ``(trigger ref, payload)``.

    Args:
        path: JSON or YAML file with ``trigger`` and ``payload``.
        store: :class:`packrunner.datastore.Store` (for ``instance_id``).
        instance_id: id (or unique prefix) of a recorded trigger instance.

    Raises:
        RuleTestError: unreadable file, unknown keys, missing ``trigger``,
            payload not a mapping, or no such recorded instance.
    """
    if instance_id is not None:
        row = store.get_trigger_instance(instance_id) if store is not None else None
        if row is None:
            raise RuleTestError("trigger instance %s not found (see 'trigger instances')" % instance_id)
        return row["ref"], row["payload"] or {}
    data = _load_yaml(path)
    if not isinstance(data, dict):
        raise RuleTestError("%s: a trigger instance must be a mapping with 'trigger' and 'payload'" % path)
    unknown = sorted(set(data) - _INSTANCE_KEYS)
    if unknown:
        raise RuleTestError("%s: unknown key(s) %s (a trigger instance has %s)"
                            % (path, ", ".join(unknown), ", ".join(sorted(_INSTANCE_KEYS))))
    trigger = data.get("trigger")
    if isinstance(trigger, dict):
        trigger = trigger.get("ref") or trigger.get("type")
    if not trigger:
        raise RuleTestError("%s: 'trigger' (the trigger ref, e.g. pack.name) is missing" % path)
    payload = data.get("payload") or {}
    if not isinstance(payload, dict):
        raise RuleTestError("%s: 'payload' must be a mapping" % path)
    return str(trigger), payload


def evaluate_rule(runner, rule, enabled, trigger_ref, payload):
    """Evaluate ``rule`` against one trigger instance, like ``RuleTester.evaluate``.

    Args:
        runner: a :class:`packrunner.runner.Runner` (datastore, config, pack);
            nothing is executed and no sensor is started.
        rule: :class:`packrunner.rules.Rule`.
        enabled: ``True`` to treat the rule as enabled, None for its own flag.
        trigger_ref: the trigger instance's trigger ref.
        payload: the trigger payload.

    Returns:
        dict with ``rule``, ``trigger``, ``matches`` (bool), ``reason`` (why
        not, or None), ``failed_criterion`` (key/type/pattern/value of the
        first failing criterion, or None), ``action``, ``action_parameters``
        (rendered rule parameters as st2-rule-tester prints them: Jinja
        renders to strings and nothing is cast, because st2-rule-tester uses
        an action without parameter schemas; secrets masked; None when not
        reached), ``resolved_parameters`` (what the runner would pass to
        ``run()``: cast to the declared types, defaults filled, every declared
        parameter present (None when unset), secrets masked; None when
        unknown) and ``warnings`` (list of str).
    """
    from .runner import ParameterError

    out = {"rule": rule.ref, "trigger": trigger_ref, "matches": False, "reason": None, "failed_criterion": None,
           "action": rule.action_ref, "action_parameters": None, "resolved_parameters": None, "warnings": []}
    trigger_type = runner.pack.triggers.get(trigger_ref)
    if trigger_type is not None:
        if trigger_type.schema_error:
            out["warnings"].append("the payload_schema of %s is invalid, so every instance is dropped: %s"
                                   % (trigger_ref, trigger_type.schema_error))
        elif trigger_type.schema is not None:
            try:
                validate_with_defaults(payload, trigger_type.schema, what="payload")
            except ValidationFailed as e:
                out["warnings"].append("payload field '%s' invalid: %s (the trigger would be dropped before "
                                       "any rule sees it)" % (e.path or "<root>", e.message))
            except SchemaConversionError as e:
                out["warnings"].append(str(e))
    if rule.trigger_type != trigger_ref:
        out["reason"] = 'rule trigger "%s" and trigger instance ref "%s" do not match' % (
            rule.trigger_type, trigger_ref)
        return out
    matched, failed = rule.evaluate(payload, store=runner.datastore, enabled=enabled)
    if not matched:
        out["reason"] = failed["reason"]
        if failed["key"] is not None:
            out["failed_criterion"] = {k: failed[k] for k in ("key", "type", "pattern", "value")}
        return out
    try:
        action = runner.pack.resolve_action(rule.action_ref)
    except KeyError:
        action = None
        out["warnings"].append("action %s is not in pack %s: the runner cannot run it" % (
            rule.action_ref, runner.pack.ref))
    props = action.all_parameters if action is not None else {}
    try:
        # st2-rule-tester renders with a mock action without parameters: no casts.
        live = runner.render_rule_parameters(rule, payload)
    except ParameterError as e:
        out["reason"] = "failed to render action parameters: %s" % e
        return out
    out["matches"] = True
    out["action_parameters"] = mask_secrets(live, props)
    if action is not None:
        try:
            resolved = runner.resolve_parameters(action, rule.action_parameters, payload)
            out["resolved_parameters"] = mask_secrets(
                {k: v for k, v in resolved.items() if k in action.parameters or k in live}, props)
        except ParameterError as e:
            out["warnings"].append("the execution would fail: %s" % e)
    return out
