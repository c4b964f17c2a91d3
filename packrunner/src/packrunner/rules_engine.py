"""The rules engine: a trigger instance is validated against its trigger type's payload
schema, recorded, matched against every enabled rule of its type, and each match enforced
(parameters resolved, action scheduled), as ``st2reactor/rules/engine.py`` and
``st2reactor/rules/enforcer.py`` do.
"""

import json
import logging
import time

from .errors import ParameterError
from .executor import _jsonable, _short_id, abridged
from .schema import SchemaConversionError, ValidationFailed, mask_secrets, validate_with_defaults

__all__ = ["RulesEngine"]

TRIGGER_LOG = logging.getLogger("packrunner.trigger")
RULE_LOG = logging.getLogger("packrunner.rule")


class RulesEngine:
    """Match trigger instances of one pack against its rules.

    Args:
        pack: :class:`packrunner.pack.Pack`.
        store: :class:`packrunner.datastore.Store` (trigger instances, executions, ``st2kv``).
        resolver: :class:`packrunner.resolver.ParameterResolver`.
        executor: :class:`packrunner.executor.ActionExecutor`.
    """

    def __init__(self, pack, store, resolver, executor):
        self.pack = pack
        self.datastore = store
        self.resolver = resolver
        self.executor = executor

    def dispatch(self, trigger, payload=None, trace_tag=None):
        """Process one trigger instance: validate, record, match rules, schedule actions.

        Args:
            trigger: trigger ref (``pack.name``), bare name, or dict with ``type``.
            payload: dict (None means ``{}``).
            trace_tag: the trace this trigger instance starts or joins (StackStorm's
                ``sensor_service.dispatch(trigger, payload, trace_tag)``): logged and recorded with
                the trigger instance and every execution it causes (``trace list --trace-tag``).

        Returns:
            dict ``{"id", "ref", "status": "processed"|"dropped", "reason",
            "payload", "executions": [execution ids]}``.
        """
        ref = self.pack.resolve_trigger_ref(trigger)
        instance_id = _short_id()
        payload = {} if payload is None else payload
        status, reason = "processed", None
        trigger_type = self.pack.triggers.get(ref)
        if trigger_type is None:
            status, reason = "dropped", "unknown trigger type %r (not declared by any sensor of pack %s)" % (
                ref, self.pack.ref)
        elif trigger_type.schema_error:
            status, reason = "dropped", "payload_schema of trigger %s is invalid: %s" % (ref, trigger_type.schema_error)
        elif trigger_type.schema is not None:
            try:
                # Defaults are filled into a copy for validation only; the payload
                # is dispatched as sent (st2common/validators/api/reactor.py).
                validate_with_defaults(payload, trigger_type.schema, what="payload", use_default=True)
            except ValidationFailed as e:
                status = "dropped"
                reason = "payload field '%s' invalid: %s" % (e.path or "<root>", e.message)
            except SchemaConversionError as e:
                status, reason = "dropped", "payload_schema of trigger %s is invalid: %s" % (ref, e)
        record = {"id": instance_id, "ref": ref, "status": status, "reason": reason, "payload": payload,
                  "executions": [], "trace_tag": trace_tag}
        try:
            logged_payload = json.dumps(abridged(payload), default=str, sort_keys=True)
        except Exception:
            logged_payload = repr(abridged(payload))
        if status == "dropped":
            TRIGGER_LOG.warning("TRIGGER DROPPED: trigger %s %s payload=%s%s: %s", instance_id, ref, logged_payload,
                                " trace_tag=%s" % trace_tag if trace_tag else "", reason)
            self.datastore.record_trigger_instance(instance_id, ref, _jsonable(abridged(payload)), status, reason,
                                                   trace_tag=trace_tag)
            return record
        TRIGGER_LOG.info("trigger %s %s payload=%s%s", instance_id, ref, logged_payload,
                         " trace_tag=%s" % trace_tag if trace_tag else "")
        self.datastore.record_trigger_instance(instance_id, ref, _jsonable(abridged(payload)), status,
                                               trace_tag=trace_tag)
        for rule in self.pack.rules:
            if not rule.enabled or rule.trigger_type != ref:
                continue
            if not rule.matches(payload, store=self.datastore, trigger_instance_id=instance_id):
                RULE_LOG.debug("rule %s did not match trigger %s", rule.ref, instance_id)
                continue
            # at DEBUG: the execution's "started" line names the rule (one INFO line less per
            # trigger instance in a burst; StackStorm's enforcer logs the invocation, not the match)
            RULE_LOG.debug("rule %s matched trigger %s", rule.ref, instance_id)
            execution_id = self._enforce(rule, payload, instance_id, trace_tag)
            if execution_id:
                record["executions"].append(execution_id)
        return record

    def _enforce(self, rule, payload, instance_id, trace_tag=None):
        try:
            action = self.pack.resolve_action(rule.action_ref)
        except KeyError as e:
            RULE_LOG.error("rule %s: %s (packrunner only runs actions of pack %s)", rule.ref, e.args[0],
                           self.pack.ref)
            return None
        try:
            params = self.resolver.resolve_parameters(action, rule.action_parameters, payload)
        except ParameterError as e:
            RULE_LOG.error("rule %s: cannot run %s for trigger %s: %s", rule.ref, action.ref, instance_id, e)
            record = self.executor._new_record(action, {}, instance_id, rule.ref, trace_tag)
            record.update(status="failed", error="parameter error: %s" % e, end_time=time.time(),
                          parameters=abridged(mask_secrets(rule.action_parameters, action.all_parameters)))
            self.datastore.save_execution(record)
            return record["id"]
        record = self.executor._schedule(action, params, instance_id, rule.ref, trace_tag)
        return record["id"]
