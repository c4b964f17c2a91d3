"""Parameter resolution: what StackStorm does between a rule match (or ``st2 run``) and the
action runner: render Jinja parameters with the ``trigger``, ``st2kv``, ``config_context`` and
``action_context`` contexts, cast to the declared types, validate against the action's schema
and add every declared parameter (``st2common/util/param.py``: ``render_live_params``,
``render_final_params``; ``st2api``'s ``create_request``).
"""

import logging

from .datastore import current_user
from .errors import ParameterError
from .params import ParamCastError, ParamException, render_final_params, render_live_params
from .schema import PYTHON_RUNNER_PARAMETERS, SchemaConversionError, ValidationFailed, validate_with_defaults
from .templating import build_context, is_template

__all__ = ["ParameterResolver"]

LOG = logging.getLogger("packrunner.runner")


def _masked_cast_error(error, props):
    """The message of a :class:`ParamCastError`, without the value of a secret parameter."""
    prop = props.get(error.name)
    if isinstance(prop, dict) and prop.get("secret"):
        return 'parameter "%s" cannot be cast to %s: <value masked>' % (error.name, error.type)
    return str(error)


class ParameterResolver:
    """Resolve action parameters for one pack.

    Args:
        pack: :class:`packrunner.pack.Pack`.
        store: :class:`packrunner.datastore.Store` (``st2kv``).
        config: the validated pack config (``config_context``).
    """

    def __init__(self, pack, store, config):
        self.pack = pack
        self.datastore = store
        self.config = config

    def _render_context(self, action=None, payload=None):
        """Base nodes of st2's parameter graph (``param._create_graph``):
        ``st2kv``, ``config_context``, ``action_context`` and, for rules,
        ``trigger`` (the enforcer's additional context)."""
        context = build_context(store=self.datastore, payload=payload, config=self.config)
        context["action_context"] = {"user": current_user(), "pack": action.pack if action else self.pack.ref}
        return context

    def render_rule_parameters(self, rule, payload, action=None):
        """Render a rule's ``action.parameters`` for one trigger payload
        (st2's ``RuleEnforcer.get_resolved_parameters`` ->
        ``param.render_live_params``).

        Context: ``trigger`` (the payload), ``st2kv.system``/``st2kv.user``,
        ``config_context`` and ``action_context``. Templates render to
        strings; with ``action`` the values are then cast to the declared
        types (casts.py). Without ``action`` nothing is cast, which is what
        ``st2-rule-tester`` prints (it uses an action with no parameters).

        Returns:
            dict of rendered (live) parameters.

        Raises:
            ParameterError: naming the parameter that failed to render or cast.
        """
        schemas = self._schemas(action) if action is not None else ({}, {})
        return self._render_live(action, rule.action_parameters, payload, *schemas)

    def resolve_parameters(self, action, params, payload=None):
        """Render, cast, validate and complete parameters for ``action``
        (see :meth:`_resolve_parameters`).

        Args:
            action: :class:`packrunner.pack.ActionMeta`.
            params: the given parameters (may be Jinja templates).
            payload: trigger payload for ``{{ trigger.x }}`` (rules only).

        Returns:
            dict of all parameters (runner parameters included; declared
            parameters without value or default are None).

        Raises:
            ParameterError: naming the parameter.
        """
        return self._resolve_parameters(action, params, payload)

    @staticmethod
    def _schemas(action):
        """``(runner_parameters, action_parameters)`` as st2 passes them to param.py."""
        props = action.all_parameters
        return ({k: props[k] for k in PYTHON_RUNNER_PARAMETERS},
                {k: v for k, v in action.parameters.items() if k not in PYTHON_RUNNER_PARAMETERS})

    def _render_live(self, action, params, payload, runner_schemas, action_schemas):
        props = action.all_parameters if action is not None else {}
        try:
            return render_live_params(runner_schemas, action_schemas, params or {},
                                      self._render_context(action, payload))
        except ParamCastError as e:
            raise ParameterError(_masked_cast_error(e, props)) from e
        except ParamException as e:
            raise ParameterError(str(e)) from e

    def _resolve_parameters(self, action, params, payload=None):
        """Render and cast (``render_live_params``), validate against the
        action's schema (``create_request``), then add every declared
        parameter (``render_final_params``), as StackStorm does.

        An immutable parameter given a (non-template) value gets its default
        instead, with a WARNING (``param._process_defaults``).

        Returns:
            dict of all parameters (runner parameters included).

        Raises:
            ParameterError: naming the parameter; values of ``secret: true``
                parameters are never in the message.
        """
        props = action.all_parameters
        params = dict(params or {})
        for name, value in params.items():
            prop = props.get(name)
            if isinstance(prop, dict) and prop.get("immutable") and not is_template(value) \
                    and value != prop.get("default"):
                LOG.warning("parameter '%s' of %s is immutable: the given value is replaced by its default "
                            "(as StackStorm does)", name, action.ref)
        runner_schemas, action_schemas = self._schemas(action)
        live = self._render_live(action, params, payload, runner_schemas, action_schemas)
        try:
            schema = action.parameters_schema()
            validate_with_defaults(live, schema, what="parameters of %s" % action.ref, use_default=True,
                                   secret_properties=props)
        except ValidationFailed as e:
            if e.path and e.path.split(".")[0] not in props:
                raise ParameterError("unknown parameter '%s' for action %s (declared: %s)" % (
                    e.path, action.ref, ", ".join(sorted(action.parameters)) or "none")) from e
            raise ParameterError("parameter '%s' of %s invalid: %s" % (e.path, action.ref, e.message)) from e
        except SchemaConversionError as e:
            raise ParameterError(str(e)) from e
        try:
            runner_final, action_final = render_final_params(runner_schemas, action_schemas, live,
                                                             self._render_context(action, payload))
        except ParamCastError as e:
            raise ParameterError(_masked_cast_error(e, props)) from e
        except ParamException as e:
            raise ParameterError(str(e)) from e
        return dict(action_final, **runner_final)
