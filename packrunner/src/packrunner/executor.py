"""The action executor: python-script actions in a bounded thread pool, with StackStorm's
python-runner result conventions (``contrib/runners/python_runner``, ``python_action_wrapper.py``).

Where StackStorm runs every action in a fresh Python process, packrunner runs it in a thread of
a ``ThreadPoolExecutor`` (one more thread per execution enforces its timeout) and records the
execution in the datastore.
"""

import copy
import json
import logging
import threading
import time
import traceback
import uuid
from concurrent.futures import ThreadPoolExecutor

from .schema import PYTHON_RUNNER_PARAMETERS, RUNNER_PARAMETER_SUPPORT, mask_secrets
from .services import ActionService

__all__ = ["ActionExecutor", "DEFAULT_ACTION_TIMEOUT"]

EXEC_LOG = logging.getLogger("packrunner.execution")

DEFAULT_ACTION_TIMEOUT = 600
#: string values longer than this (characters) are cut in log lines and in the recorded
#: history (trigger instances, execution parameters); actions get the full values
SHOWN_VALUE_LIMIT = 2048


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


def _shown_params(action, params):
    """Parameters worth recording: drop runner parameters left at their runner default."""
    return {k: v for k, v in params.items()
            if not (k in PYTHON_RUNNER_PARAMETERS and k not in action.parameters
                    and v == PYTHON_RUNNER_PARAMETERS[k].get("default"))}


class ActionExecutor:
    """Run actions of one pack and record their executions.

    Args:
        pack: :class:`packrunner.pack.Pack`.
        store: :class:`packrunner.datastore.Store` (execution records, ``action_service``).
        config: the validated pack config each action gets (a deep copy per execution).
        action_base: StackStorm's ``Action`` class (or packrunner's shim).
        workers: size of the thread pool.
        runner_id: the id of the runner process recorded with each execution (see
            :func:`packrunner.runner.runner_id`), or None.
    """

    def __init__(self, pack, store, config, action_base, workers=4, runner_id=None):
        self.pack = pack
        self.runner_id = runner_id
        self.datastore = store
        self.config = config
        self._action_base = action_base
        self.workers = max(1, int(workers))
        self._pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="packrunner-action")
        self._pending = 0
        self._pending_cv = threading.Condition()

    def shutdown(self):
        """Stop accepting work; queued executions are cancelled, running ones are abandoned."""
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _new_record(self, action, params, trigger_instance_id=None, rule=None, trace_tag=None):
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
            # the trace of the trigger instance that caused it (st2: the execution joins the
            # trigger instance's trace), or the tag given to `run --trace-tag`
            "trace_tag": trace_tag,
        }

    def _schedule(self, action, params, trigger_instance_id=None, rule=None, trace_tag=None):
        record = self._new_record(action, params, trigger_instance_id, rule, trace_tag)
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

    def run(self, action, resolved, wait=True, timeout=None, trace_tag=None):
        """Schedule ``action`` with already resolved parameters; wait for it when ``wait``.
        ``trace_tag``: recorded with the execution (``st2 run --trace-tag``).

        Returns:
            the execution record (see :meth:`packrunner.runner.Runner.run_action`).
        """
        record = self._schedule(action, resolved, trace_tag=trace_tag)
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
        for name in sorted(set(params) & set(PYTHON_RUNNER_PARAMETERS) - {"timeout"}):
            if params[name] is not None and params[name] != PYTHON_RUNNER_PARAMETERS[name].get("default"):
                EXEC_LOG.warning("execution %s %s: runner parameter %s=%s is %s", record["id"], action.ref, name,
                                 json.dumps(abridged(params[name]), default=str), RUNNER_PARAMETER_SUPPORT[name])
        record["status"] = "running"
        record["start_time"] = time.time()
        self.datastore.save_execution(record)
        EXEC_LOG.info("execution %s %s started params=%s%s%s", record["id"], action.ref,
                      json.dumps(record["parameters"], default=str, sort_keys=True),
                      " rule=%s trigger=%s" % (record["rule"], record["trigger_instance_id"]) if record.get("rule") else "",
                      " trace_tag=%s" % record["trace_tag"] if record.get("trace_tag") else "")
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
