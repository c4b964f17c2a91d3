"""Services handed to sensors and actions (``st2common/services/datastore.py``,
``st2reactor/container/sensor_wrapper.py::SensorService``).

Local keys (``local=True``) are stored as ``<pack>.<ClassName>:<name>``;
``local=False`` uses the plain name. As in StackStorm 3.x
(``BaseDatastoreService``), ``scope`` must be ``system``: any other scope
raises ``ValueError("Scope <scope> is unsupported.")``. Values are stored as
strings (``str(value)``) like StackStorm; ``encrypt=True`` stores the value
encrypted (:mod:`packrunner.crypto`) and ``get_value(decrypt=True)`` returns its
plaintext; without ``decrypt`` a secret key reads as its ciphertext, as in StackStorm.
"""

import logging

SYSTEM_SCOPE = "system"


def _check_scope(scope):
    """st2common/services/datastore.py: ``if scope != SYSTEM_SCOPE: raise ValueError``."""
    if scope != SYSTEM_SCOPE:
        raise ValueError("Scope %s is unsupported." % scope)

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

    def get_value(self, name, local=True, scope=SYSTEM_SCOPE, decrypt=False):
        """Return the stored string or None (also None on error, as st2, e.g. a secret that
        cannot be decrypted with the key file: logged with the reason, never the value).

        ``decrypt``: a secret key's plaintext; without it, its ciphertext (StackStorm's
        ``DatastoreService.get_value``: the API returns ciphertext unless ``decrypt=true``).

        Raises:
            ValueError: ``scope`` is not ``system`` (st2 3.x datastore service).
        """
        _check_scope(scope)
        try:
            return self._store.get(self._name(name, local), scope=scope, decrypt=decrypt)
        except Exception:
            self._logger.exception("get_value(%r) failed", name)
            return None

    def set_value(self, name, value, ttl=None, local=True, scope=SYSTEM_SCOPE, encrypt=False):
        """Store ``str(value)``; return True on success.

        ``ttl`` None or 0 means no expiry (st2 sets a TTL only ``if ttl:``).

        Raises:
            ValueError: a negative ttl, an empty name, or a scope other than
                ``system`` (st2 3.x datastore service).
        """
        _check_scope(scope)
        return self._store.set(self._name(name, local), value, ttl=ttl or None, scope=scope, secret=encrypt)

    def delete_value(self, name, local=True, scope=SYSTEM_SCOPE):
        """Delete the key; return True if it existed, False otherwise.

        Raises:
            ValueError: ``scope`` is not ``system`` (st2 3.x datastore service).
        """
        _check_scope(scope)
        try:
            return self._store.delete(self._name(name, local), scope=scope)
        except Exception:
            self._logger.exception("delete_value(%r) failed", name)
            return False

    def list_values(self, local=True, prefix=None, limit=None, offset=0):
        """Return system-scope :class:`packrunner.datastore.KeyValuePair` items
        (full names), with st2 3.x's signature
        (``st2common/services/datastore.py``, ``sensor_wrapper.py``).

        Args:
            local: restrict to this class's keys.
            prefix: additional name prefix (after the local prefix).
            limit: at most this many items (st2 defaults to
                ``api.max_page_size``; here None means all).
            offset: skip this many items first.
        """
        key_prefix = self._prefix() if local else ""
        if prefix:
            key_prefix += prefix
        return self._store.list(prefix=key_prefix or None, scope=SYSTEM_SCOPE, limit=limit, offset=offset)


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
