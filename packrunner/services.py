"""Services handed to sensors and actions (``st2common/services/datastore.py``,
``st2reactor/container/sensor_wrapper.py::SensorService``).

Local keys (``local=True``) are stored as ``<pack>.<ClassName>:<name>``;
``local=False`` uses the plain name. ``scope`` is ``system`` (default) or
``user`` (the keys of :func:`packrunner.datastore.current_user`), as in
StackStorm. Values are stored as strings (``str(value)``) like StackStorm;
``encrypt=True`` marks the key secret (masked in listings), it is not
encrypted in the local SQLite file.
"""

import logging

__all__ = ["DatastoreService", "SensorService", "ActionService"]


class DatastoreService:
    """Datastore access scoped to one pack class.

    Args:
        store: :class:`packrunner.datastore.Store`.
        pack: pack ref.
        class_name: sensor or action class name.
        logger: logger used for errors.
    """

    def __init__(self, store, pack, class_name, logger=None):
        self._store = store
        self._pack = pack
        self._class_name = class_name
        self._logger = logger or logging.getLogger("packrunner.datastore")

    def _prefix(self):
        return "%s.%s:" % (self._pack, self._class_name)

    def _name(self, name, local):
        return self._prefix() + name if local else name

    def get_value(self, name, local=True, scope="system", decrypt=False):
        """Return the stored string or None (also None on error, as st2)."""
        try:
            return self._store.get(self._name(name, local), scope=scope)
        except Exception:
            self._logger.exception("get_value(%r) failed", name)
            return None

    def set_value(self, name, value, ttl=None, local=True, scope="system", encrypt=False):
        """Store ``str(value)``; return True on success.

        Raises:
            ValueError: on a non-positive ttl or an empty name.
        """
        return self._store.set(self._name(name, local), value, ttl=ttl, scope=scope, secret=encrypt)

    def delete_value(self, name, local=True, scope="system"):
        """Delete the key; return True if it existed, False otherwise."""
        try:
            return self._store.delete(self._name(name, local), scope=scope)
        except Exception:
            self._logger.exception("delete_value(%r) failed", name)
            return False

    def list_values(self, local=True, prefix=None, scope="system", decrypt=False):
        """Return :class:`packrunner.datastore.KeyValuePair` items (full names).

        Args:
            local: restrict to this class's keys.
            prefix: additional name prefix (after the local prefix).
            scope: ``system``, ``user`` or ``all``.
        """
        key_prefix = self._prefix() if local else ""
        if prefix:
            key_prefix += prefix
        return self._store.list(prefix=key_prefix or None, scope=scope)


class SensorService(DatastoreService):
    """What a sensor gets as ``sensor_service``.

    Args:
        runner: the :class:`packrunner.runner.Runner` (``dispatch`` target).
        pack: pack ref.
        class_name: sensor class name.
    """

    def __init__(self, runner, pack, class_name):
        self._runner = runner
        self._sensor_logger = logging.getLogger("packrunner.sensor.%s" % class_name)
        super().__init__(runner.datastore, pack, class_name, self._sensor_logger)

    def get_logger(self, name):
        """Return a logger ``packrunner.sensor.<ClassName>.<name>``."""
        return logging.getLogger("packrunner.sensor.%s.%s" % (self._class_name, name))

    def dispatch(self, trigger, payload=None, trace_tag=None):
        """Dispatch a trigger (ref ``pack.name`` or bare name) with ``payload``.

        Returns:
            the trigger instance id (st2 returns None; the extra return value is
            harmless). Invalid payloads are dropped with a WARNING.
        """
        record = self._runner.dispatch(trigger, payload, trace_tag=trace_tag)
        return record["id"]

    def dispatch_with_context(self, trigger, payload=None, trace_context=None):
        """Same as :meth:`dispatch` (trace context is ignored)."""
        return self.dispatch(trigger, payload)


class ActionService(DatastoreService):
    """What an action gets as ``action_service`` (datastore access only)."""
