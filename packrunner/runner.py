"""The pack runner: sensors -> triggers -> rules -> actions, in one process.

Where StackStorm runs every action in a fresh Python process (python-runner
wrapper) and every sensor in its own process (sensor container), packrunner
runs sensors in threads and actions in a bounded ``ThreadPoolExecutor``.
"""

import copy
import json
import logging
import os
import socket
import threading
import time
import traceback
import uuid
from concurrent.futures import ThreadPoolExecutor

from .datastore import Store
from .pack import Pack, PackError, load_yaml
from .schema import (
    PYTHON_RUNNER_PARAMETERS,
    SchemaConversionError,
    ValidationFailed,
    cast_value,
    fill_defaults,
    mask_secrets,
    properties_schema,
    validate_with_defaults,
)
from .services import ActionService, SensorService
from .datastore import current_user
from .params import ParamCastError, ParamException, render_final_params, render_live_params
from .templating import TemplateRenderError, build_context, is_template, render_value

__all__ = ["Runner", "ConfigError", "ParameterError", "ActionNotFound"]

LOG = logging.getLogger("packrunner.runner")
TRIGGER_LOG = logging.getLogger("packrunner.trigger")
RULE_LOG = logging.getLogger("packrunner.rule")
EXEC_LOG = logging.getLogger("packrunner.execution")
SENSOR_LOG = logging.getLogger("packrunner.sensor")

DEFAULT_ACTION_TIMEOUT = 600
#: string values longer than this (characters) are cut in log lines and in the recorded
#: history (trigger instances, execution parameters); actions get the full values
SHOWN_VALUE_LIMIT = 2048


class ConfigError(ValueError):
    """The pack config is invalid (message names the key)."""


class ParameterError(ValueError):
    """Action parameters are invalid (unknown, missing, wrong type, immutable...)."""


class ActionNotFound(KeyError):
    """No such action in the pack."""

    def __str__(self):
        return self.args[0] if self.args else "action not found"


def _short_id():
    return uuid.uuid4().hex


def _jsonable(value):
    """Return ``value`` if JSON-serialisable, else ``str(value)`` (python-runner convention)."""
    try:
        json.dumps(value)
        return value
    except (TypeError, ValueError):
        return str(value)


def abridged(value, limit=SHOWN_VALUE_LIMIT):
    """``value`` with every string longer than ``limit`` characters cut to ``limit`` and
    marked ``...[<n> characters, truncated]`` (dicts, lists and tuples walked), for log
    lines and history: a 1 MiB script must not be copied into every log line."""
    if isinstance(value, str):
        return value if len(value) <= limit else "%s...[%d characters, truncated]" % (value[:limit], len(value))
    if isinstance(value, dict):
        return {k: abridged(v, limit) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [abridged(v, limit) for v in value]
    return value


def _process_start_ticks(pid):
    """Start time of process ``pid`` in clock ticks since boot (``/proc/<pid>/stat`` field
    22), which tells a process from a later one that got the same pid; None if gone."""
    try:
        with open("/proc/%d/stat" % int(pid)) as f:
            stat = f.read()
    except (OSError, ValueError):
        return None
    return stat.rsplit(")", 1)[-1].split()[19]


def runner_id(pid=None):
    """This runner process's id: ``<hostname>:<pid>:<start ticks>``."""
    pid = os.getpid() if pid is None else pid
    return "%s:%d:%s" % (socket.gethostname(), pid, _process_start_ticks(pid))


def runner_alive(rid):
    """Is the runner ``rid`` (see :func:`runner_id`) still running? None for another host."""
    try:
        host, pid, ticks = rid.rsplit(":", 2)
    except ValueError:
        return False
    if host != socket.gethostname():
        return None
    return _process_start_ticks(int(pid)) == ticks


def _masked_cast_error(error, props):
    """The message of a :class:`ParamCastError`, without the value of a secret parameter."""
    prop = props.get(error.name)
    if isinstance(prop, dict) and prop.get("secret"):
        return 'parameter "%s" cannot be cast to %s: <value masked>' % (error.name, error.type)
    return str(error)


def _shown_params(action, params):
    """Parameters worth recording: drop runner parameters left at their runner default."""
    return {k: v for k, v in params.items()
            if not (k in PYTHON_RUNNER_PARAMETERS and k not in action.parameters
                    and v == PYTHON_RUNNER_PARAMETERS[k].get("default"))}


def load_config(pack, config, store=None, strict=None):
    """Load, render and validate the pack config.

    Args:
        pack: :class:`packrunner.pack.Pack`.
        config: a dict, a path to a YAML file, or None (no config: ``{}``).
        store: datastore for ``{{ st2kv.system.x }}`` values.
        strict: validate required keys; default True when a config was given,
            False for None (StackStorm does not validate a missing config; the
            action just sees the defaults). Missing required keys are then
            only logged.

    Returns:
        the config dict with defaults filled.

    Raises:
        ConfigError: file unreadable, not a mapping, or schema violation
            (message names the key).
    """
    if strict is None:
        strict = config is not None
    if isinstance(config, (str, os.PathLike)):
        try:
            data = load_yaml(config)
        except PackError as e:
            raise ConfigError("config: %s" % e) from e
        config = data or {}
    if config is None:
        config = {}
    if not isinstance(config, dict):
        raise ConfigError("config must be a mapping, got %s" % type(config).__name__)
    props = pack.config_schema or {}
    config = copy.deepcopy(config)
    # Render {{ st2kv.system.x }} string values (st2's ContentPackConfigLoader).
    context = build_context(store=store)
    for key, value in list(config.items()):
        if is_template(value):
            try:
                rendered = render_value(value, context)
            except TemplateRenderError as e:
                raise ConfigError("config key %r: %s" % (key, e)) from e
            prop = props.get(key) or {}
            config[key] = cast_value(rendered, prop.get("type")) if isinstance(prop, dict) else rendered
    try:
        schema = properties_schema(props, additional_properties=True, where="config.schema.yaml")
    except SchemaConversionError as e:
        raise ConfigError(str(e)) from e
    if strict:
        try:
            return validate_with_defaults(config, schema, what="config", secret_properties=props)
        except ValidationFailed as e:
            raise ConfigError("config key '%s' invalid: %s" % (e.path, e.message)) from e
        except SchemaConversionError as e:
            raise ConfigError(str(e)) from e
    fill_defaults(config, schema)
    missing = [k for k in schema.get("required", []) if k not in config]
    if missing:
        LOG.warning("no config given; required config keys missing: %s", ", ".join(missing))
    return config


class Runner:
    """Run one StackStorm pack locally.

    Args:
        pack_dir: pack root directory.
        config: pack config (dict, YAML path, or None).
        state_dir: directory for ``packrunner.sqlite`` (default ``./.state``).
        workers: size of the action thread pool (default 4).
        strict_config: see :func:`load_config`.

    Raises:
        packrunner.pack.PackError: the pack cannot be loaded.
        ConfigError: the config is invalid.

    Attributes:
        pack: :class:`packrunner.pack.Pack`.
        config: validated config dict (secrets in clear; use
            :meth:`masked_config` for printing).
        datastore: :class:`packrunner.datastore.Store`.
    """

    def __init__(self, pack_dir, config=None, state_dir=None, workers=4, strict_config=None):
        self.pack = Pack(pack_dir)
        self.pack.setup_sys_path()
        from st2common.runners.base_action import Action  # after setup_sys_path

        self._action_base = Action
        self.state_dir = os.path.abspath(state_dir or os.path.join(os.getcwd(), ".state"))
        self.datastore = Store(self.state_dir)
        self.runner_id = runner_id()
        for execution_id in self.datastore.abandon_executions(runner_alive):
            EXEC_LOG.warning("execution %s abandoned: the runner that ran it is gone (killed?)", execution_id)
        self.config = load_config(self.pack, config, store=self.datastore, strict=strict_config)
        self.workers = max(1, int(workers))
        self._pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="packrunner-action")
        self._pending = 0
        self._pending_cv = threading.Condition()
        self._stop_event = threading.Event()
        self._sensors = []  # (meta, instance, thread)
        self._started = False
        self._closed = False
        LOG.debug("config for pack %s: %s", self.pack.ref, self.masked_config())

    # ------------------------------------------------------------------ config
    def masked_config(self):
        """Return the config with ``secret: true`` keys replaced by ``********``."""
        return mask_secrets(self.config, self.pack.config_schema)

    # ----------------------------------------------------------------- sensors
    def start(self):
        """Start all enabled sensors in their own threads (setup() then poll loop).

        A sensor whose class cannot be loaded or whose ``setup()`` raises is
        logged at ERROR and skipped; the others keep running.
        """
        if self._started:
            return
        self._started = True
        self._stop_event.clear()
        for meta in self.pack.sensors:
            if meta.enabled is False:
                LOG.info("sensor %s disabled, not started", meta.class_name)
                continue
            try:
                self._start_sensor(meta)
            except Exception:
                SENSOR_LOG.error("sensor %s failed to start:\n%s", meta.class_name, traceback.format_exc())
        LOG.info("pack %s started (%d sensor(s), %d rule(s) enabled)",
                 self.pack.ref, len(self._sensors), sum(1 for r in self.pack.rules if r.enabled))

    def _start_sensor(self, meta):
        from st2reactor.sensor.base import PollingSensor

        cls = meta.load_class()
        service = SensorService(self, self.pack.ref, meta.class_name)
        config = copy.deepcopy(self.config)
        polling = issubclass(cls, PollingSensor)
        if polling:
            instance = cls(sensor_service=service, config=config, poll_interval=meta.poll_interval or 5)
        else:
            instance = cls(sensor_service=service, config=config)
        instance.setup()
        target = self._poll_loop if polling else self._run_sensor
        thread = threading.Thread(target=target, args=(meta, instance), name="sensor-%s" % meta.class_name,
                                  daemon=True)
        self._sensors.append((meta, instance, thread, polling))
        thread.start()
        SENSOR_LOG.info("sensor %s started (%s)", meta.class_name,
                        "poll_interval=%s s" % instance.get_poll_interval() if polling else "run()")

    def _poll_loop(self, meta, sensor):
        while not self._stop_event.is_set():
            try:
                sensor.poll()
            except Exception:
                # st2 would let the sensor process die here; we keep polling.
                SENSOR_LOG.error(
                    "sensor %s: poll() raised (StackStorm would kill the sensor; packrunner keeps polling):\n%s",
                    meta.class_name, traceback.format_exc(),
                )
            try:
                interval = float(sensor.get_poll_interval())
            except Exception:
                interval = 5.0
            self._stop_event.wait(interval)

    def _run_sensor(self, meta, sensor):
        try:
            sensor.run()
        except Exception:
            SENSOR_LOG.error("sensor %s: run() raised; sensor stopped:\n%s", meta.class_name, traceback.format_exc())

    def stop(self, timeout=30):
        """Stop gracefully: stop poll loops, wait (bounded) for queued and
        running actions, call each sensor's ``cleanup()``, shut the pool down.

        Args:
            timeout: seconds to wait for running actions and sensor threads.

        Returns:
            True if everything finished within ``timeout``.
        """
        if self._closed:
            return True
        deadline = time.monotonic() + (timeout or 0)
        self._stop_event.set()
        for meta, _instance, thread, polling in self._sensors:
            if polling:
                thread.join(max(0.0, deadline - time.monotonic()))
        idle = self.wait_idle(max(0.0, deadline - time.monotonic()))
        if not idle:
            LOG.warning("stop: actions still running after %s s; abandoning them", timeout)
        for meta, instance, thread, polling in self._sensors:
            try:
                instance.cleanup()
            except Exception:
                SENSOR_LOG.error("sensor %s: cleanup() raised:\n%s", meta.class_name, traceback.format_exc())
        for meta, _instance, thread, polling in self._sensors:
            if not polling:
                thread.join(max(0.1, deadline - time.monotonic()))
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._sensors = []
        self._started = False
        self._closed = True
        LOG.info("pack %s stopped", self.pack.ref)
        return idle

    def close(self):
        """Stop (if needed) and close the datastore connections."""
        self.stop(timeout=5)
        self.datastore.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ---------------------------------------------------------------- triggers
    def dispatch(self, trigger, payload=None, trace_tag=None):
        """Process one trigger instance: validate, record, match rules, schedule actions.

        Args:
            trigger: trigger ref (``pack.name``), bare name, or dict with ``type``.
            payload: dict (None means ``{}``).
            trace_tag: accepted for st2 compatibility, logged only.

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
                  "executions": []}
        try:
            logged_payload = json.dumps(abridged(payload), default=str, sort_keys=True)
        except Exception:
            logged_payload = repr(abridged(payload))
        if status == "dropped":
            TRIGGER_LOG.warning("TRIGGER DROPPED: trigger %s %s payload=%s: %s", instance_id, ref, logged_payload,
                                reason)
            self.datastore.record_trigger_instance(instance_id, ref, _jsonable(abridged(payload)), status, reason)
            return record
        TRIGGER_LOG.info("trigger %s %s payload=%s%s", instance_id, ref, logged_payload,
                         " trace_tag=%s" % trace_tag if trace_tag else "")
        self.datastore.record_trigger_instance(instance_id, ref, _jsonable(abridged(payload)), status)
        for rule in self.pack.rules:
            if not rule.enabled or rule.trigger_type != ref:
                continue
            if not rule.matches(payload, store=self.datastore, trigger_instance_id=instance_id):
                RULE_LOG.debug("rule %s did not match trigger %s", rule.ref, instance_id)
                continue
            RULE_LOG.info("rule %s matched trigger %s", rule.ref, instance_id)
            execution_id = self._enforce(rule, payload, instance_id)
            if execution_id:
                record["executions"].append(execution_id)
        return record

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

    def _enforce(self, rule, payload, instance_id):
        try:
            action = self.pack.resolve_action(rule.action_ref)
        except KeyError as e:
            RULE_LOG.error("rule %s: %s (packrunner only runs actions of pack %s)", rule.ref, e.args[0],
                           self.pack.ref)
            return None
        try:
            params = self._resolve_parameters(action, rule.action_parameters, payload)
        except ParameterError as e:
            RULE_LOG.error("rule %s: cannot run %s for trigger %s: %s", rule.ref, action.ref, instance_id, e)
            record = self._new_record(action, {}, instance_id, rule.ref)
            record.update(status="failed", error="parameter error: %s" % e, end_time=time.time(),
                          parameters=abridged(mask_secrets(rule.action_parameters, action.all_parameters)))
            self.datastore.save_execution(record)
            return record["id"]
        record = self._schedule(action, params, instance_id, rule.ref)
        return record["id"]

    # ----------------------------------------------------------------- actions
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

    def _new_record(self, action, params, trigger_instance_id=None, rule=None):
        return {
            "id": _short_id(),
            "action": action.ref,
            "parameters": abridged(mask_secrets(_shown_params(action, params), action.all_parameters)),
            "status": "scheduled",
            "result": None,
            "error": None,
            "start_time": time.time(),
            "end_time": None,
            "trigger_instance_id": trigger_instance_id,
            "rule": rule,
            "runner": self.runner_id,
        }

    def _schedule(self, action, params, trigger_instance_id=None, rule=None):
        record = self._new_record(action, params, trigger_instance_id, rule)
        self.datastore.save_execution(record)
        with self._pending_cv:
            self._pending += 1
        try:
            record["future"] = self._pool.submit(self._execute, action, params, record)
        except RuntimeError as e:  # pool shut down
            self._done()
            record.update(status="abandoned", error="runner stopped: %s" % e, end_time=time.time())
            self.datastore.save_execution(record)
        return record

    def _done(self):
        with self._pending_cv:
            self._pending -= 1
            self._pending_cv.notify_all()

    def run_action(self, ref_or_name, params=None, wait=True, timeout=None):
        """Run one action (like ``st2 run``).

        Args:
            ref_or_name: ``pack.name`` or bare action name.
            params: parameter dict (strings are cast to declared types).
            wait: block until finished.
            timeout: max seconds to wait when ``wait`` (None = action timeout + 5 s).

        Returns:
            the execution record dict (``id``, ``action``, ``parameters``
            (masked), ``status`` (succeeded/failed/timeout/scheduled/running),
            ``result``, ``error``, ``start_time``, ``end_time``, ``elapsed``,
            ``trigger_instance_id``, ``rule``).

        Raises:
            ActionNotFound: unknown action.
            ParameterError: invalid parameters.
        """
        try:
            action = self.pack.resolve_action(ref_or_name)
        except KeyError as e:
            raise ActionNotFound(e.args[0]) from e
        resolved = self._resolve_parameters(action, params or {})  # rendered like st2's API
        record = self._schedule(action, resolved)
        future = record.pop("future", None)
        if wait and future is not None:
            wait_for = timeout if timeout is not None else float(resolved.get("timeout") or DEFAULT_ACTION_TIMEOUT) + 5
            try:
                future.result(timeout=wait_for)
            except Exception:
                pass
        return self.datastore.get_execution(record["id"]) or record

    def _execute(self, action, params, record):
        try:
            self._execute_inner(action, params, record)
        except Exception:  # never let a worker die silently
            EXEC_LOG.error("execution %s: internal error:\n%s", record["id"], traceback.format_exc())
        finally:
            self._done()

    def _execute_inner(self, action, params, record):
        timeout = params.get("timeout") or DEFAULT_ACTION_TIMEOUT
        # Runner parameters (timeout, debug, ...) go to the runner, not to run().
        run_params = {k: v for k, v in params.items() if k not in PYTHON_RUNNER_PARAMETERS}
        record["status"] = "running"
        record["start_time"] = time.time()
        self.datastore.save_execution(record)
        EXEC_LOG.info("execution %s %s started params=%s", record["id"], action.ref,
                      json.dumps(record["parameters"], default=str, sort_keys=True))
        outcome = {}

        def target():
            try:
                cls = action.load_class(self._action_base)
                service = ActionService(self.datastore, action.pack, cls.__name__)
                instance = cls(config=copy.deepcopy(self.config), action_service=service)
                outcome["value"] = instance.run(**run_params)
            except BaseException as e:  # noqa: BLE001 - report everything
                outcome["exc"] = e
                outcome["tb"] = traceback.format_exc()

        thread = threading.Thread(target=target, name="action-%s" % record["id"][:8], daemon=True)
        thread.start()
        thread.join(float(timeout))
        if thread.is_alive():
            status, result = "timeout", None
            error = ("action timed out after %s s (its thread cannot be killed and keeps running in the "
                     "background)" % timeout)
        elif "exc" in outcome:
            status, result = "failed", {"error": str(outcome["exc"]), "traceback": outcome["tb"]}
            error = "%s: %s" % (type(outcome["exc"]).__name__, outcome["exc"])
        else:
            value = outcome.get("value")
            error = None
            # python_action_wrapper.py: a 2-tuple is (status, result); status None means
            # "no status" (succeeded), a non-bool status fails the runner.
            if isinstance(value, tuple) and len(value) == 2 and (value[0] is None or isinstance(value[0], bool)):
                status = "failed" if value[0] is False else "succeeded"
                result = value[1]
            elif isinstance(value, tuple) and len(value) == 2:
                status, result = "failed", None
                error = ("The action returned a 2-tuple whose first item is not a bool (%r); "
                         "return (bool, result) or a plain value" % (value[0],))
            else:
                status, result = "succeeded", value
        record.update(status=status, result=_jsonable(result), error=error, end_time=time.time())
        self.datastore.save_execution(record)
        elapsed = record["end_time"] - record["start_time"]
        if status == "succeeded":
            EXEC_LOG.info("execution %s %s succeeded in %.3f s", record["id"], action.ref, elapsed)
        elif status == "timeout":
            EXEC_LOG.error("execution %s %s timeout in %.3f s: %s", record["id"], action.ref, elapsed, error)
        else:
            EXEC_LOG.error("execution %s %s failed in %.3f s: %s%s", record["id"], action.ref, elapsed,
                           error or "action returned failure",
                           "\n" + outcome["tb"] if "tb" in outcome else "")

    def wait_idle(self, timeout=None):
        """Wait until no execution is queued or running.

        Returns:
            True if idle, False on timeout.
        """
        with self._pending_cv:
            return self._pending_cv.wait_for(lambda: self._pending <= 0, timeout=timeout)
