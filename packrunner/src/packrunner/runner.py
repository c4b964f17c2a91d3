"""The pack runner: sensors -> triggers -> rules -> actions, in one process.

:class:`Runner` wires together the parts StackStorm runs as services, each in its own module:

- :class:`~packrunner.sensor_container.SensorContainer` (``st2sensorcontainer``): sensors in threads;
- :class:`~packrunner.rules_engine.RulesEngine` (``st2rulesengine``): payload validation, rule
  matching, enforcement;
- :class:`~packrunner.resolver.ParameterResolver` (``st2common/util/param.py``): rendering,
  casting and validating action parameters;
- :class:`~packrunner.executor.ActionExecutor` (``st2actionrunner`` + python runner): actions in
  a bounded thread pool, executions recorded;

plus :func:`~packrunner.config.load_config` and the SQLite :class:`~packrunner.datastore.Store`.
"""

import logging
import os
import socket
import time

from .config import load_config
from .datastore import Store
from .errors import ActionNotFound, ConfigError, ParameterError
from .executor import DEFAULT_ACTION_TIMEOUT, EXEC_LOG, ActionExecutor
from .pack import Pack
from .resolver import ParameterResolver
from .retention import HistoryPruner, Retention
from .rules_engine import RulesEngine
from .schema import mask_secrets
from .sensor_container import SensorContainer

__all__ = ["Runner", "DEFAULT_WORKERS", "ConfigError", "ParameterError", "ActionNotFound", "load_config", "DEFAULT_ACTION_TIMEOUT"]

LOG = logging.getLogger("packrunner.runner")

#: default size of the action thread pool. Actions of a pack like this one wait on the network
#: most of the time, and concurrent executions let an action group its requests (a pack's own
#: group commit); StackStorm's action runner runs up to 60 at once per process
#: (``[actionrunner] actions_pool_size = 60``, st2docs "Tuning action runner dispatcher pool
#: size"). 16 keeps a burst's threads few on a small machine (bench/reaction.py).
DEFAULT_WORKERS = 16


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


class Runner:
    """Run one StackStorm pack locally.

    Args:
        pack_dir: pack root directory.
        config: pack config (dict, YAML path, or None).
        state_dir: directory for ``packrunner.sqlite`` (default ``./.state``; created 0700).
        workers: size of the action thread pool (default :data:`DEFAULT_WORKERS`).
        datastore_key: the datastore key file for secret values (default
            ``$PACKRUNNER_DATASTORE_KEY``, else ``<state_dir>/datastore_key.json``).
        strict_config: see :func:`packrunner.config.load_config`.
        retention: a :class:`packrunner.retention.Retention` (default: its defaults, a 7-day
            TTL and 100,000 rows per history table): applied every ``retention.interval``
            seconds while the runner is started.

    Raises:
        packrunner.pack.PackError: the pack cannot be loaded.
        ConfigError: the config is invalid.

    Attributes:
        pack: :class:`packrunner.pack.Pack`.
        config: validated config dict (secrets in clear; use
            :meth:`masked_config` for printing).
        datastore: :class:`packrunner.datastore.Store`.
        sensors, rules_engine, resolver, executor: the parts (see the module docstring).
    """

    def __init__(self, pack_dir, config=None, state_dir=None, workers=DEFAULT_WORKERS, strict_config=None, datastore_key=None,
                 retention=None):
        self.pack = Pack(pack_dir)
        self.pack.setup_sys_path()
        from st2common.runners.base_action import Action  # after setup_sys_path

        self.state_dir = os.path.abspath(state_dir or os.path.join(os.getcwd(), ".state"))
        self.datastore = Store(self.state_dir, key_path=datastore_key)
        self.runner_id = runner_id()
        for execution_id in self.datastore.abandon_executions(runner_alive):
            EXEC_LOG.warning("execution %s abandoned: the runner that ran it is gone (killed?)", execution_id)
        self.config = load_config(self.pack, config, store=self.datastore, strict=strict_config)
        self.resolver = ParameterResolver(self.pack, self.datastore, self.config)
        self.executor = ActionExecutor(self.pack, self.datastore, self.config, Action, workers=workers,
                                       runner_id=self.runner_id)
        self.rules_engine = RulesEngine(self.pack, self.datastore, self.resolver, self.executor)
        self.sensors = SensorContainer(self)
        self.retention = retention or Retention()
        self.pruner = HistoryPruner(self.datastore, self.retention)
        self.workers = self.executor.workers
        self._started = False
        self._closed = False
        LOG.debug("config for pack %s: %s", self.pack.ref, self.masked_config())

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
        self.pruner.start()
        self.sensors.start()
        LOG.info("pack %s started (%d sensor(s), %d rule(s) enabled)",
                 self.pack.ref, len(self.sensors), sum(1 for r in self.pack.rules if r.enabled))

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

        def left():
            return max(0.0, deadline - time.monotonic())

        self.sensors.stop_polling(left)
        idle = self.wait_idle(left())
        if not idle:
            LOG.warning("stop: actions still running after %s s; abandoning them", timeout)
        self.sensors.cleanup(left)
        self.executor.shutdown()
        self.pruner.stop(left())
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
        """Process one trigger instance: see :meth:`packrunner.rules_engine.RulesEngine.dispatch`."""
        return self.rules_engine.dispatch(trigger, payload, trace_tag=trace_tag)

    def render_rule_parameters(self, rule, payload, action=None):
        """See :meth:`packrunner.resolver.ParameterResolver.render_rule_parameters`."""
        return self.resolver.render_rule_parameters(rule, payload, action)

    def resolve_parameters(self, action, params, payload=None):
        """See :meth:`packrunner.resolver.ParameterResolver.resolve_parameters`."""
        return self.resolver.resolve_parameters(action, params, payload)

    def _enforce(self, rule, payload, instance_id, trace_tag=None):
        return self.rules_engine._enforce(rule, payload, instance_id, trace_tag)

    # ----------------------------------------------------------------- actions
    def run_action(self, ref_or_name, params=None, wait=True, timeout=None, trace_tag=None):
        """Run one action (like ``st2 run``).

        Args:
            ref_or_name: ``pack.name`` or bare action name.
            params: parameter dict (strings are cast to declared types).
            wait: block until finished.
            timeout: max seconds to wait when ``wait`` (None = action timeout + 5 s).
            trace_tag: recorded with the execution, like ``st2 run --trace-tag``.

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
        resolved = self.resolver.resolve_parameters(action, params or {})  # rendered like st2's API
        return self.executor.run(action, resolved, wait=wait, timeout=timeout, trace_tag=trace_tag)

    def wait_idle(self, timeout=None):
        """Wait until no execution is queued or running.

        Returns:
            True if idle, False on timeout.
        """
        return self.executor.wait_idle(timeout)
