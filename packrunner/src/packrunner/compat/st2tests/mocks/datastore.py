"""Shim of ``st2tests/mocks/datastore.py``: an in-memory datastore with st2 3.x's service API.

Local keys are stored as ``<pack>.<ClassName>:<name>`` (``BaseDatastoreService``,
``DATASTORE_KEY_SEPARATOR`` ``:``); ``local=False`` uses the plain name. As in StackStorm's mock,
``decrypt``/``encrypt`` change nothing (values are kept as given) and ``ttl`` is not enforced.
"""

SYSTEM_SCOPE = "system"

__all__ = ["MockDatastoreService", "KeyValuePair", "DatastoreMethods"]


class KeyValuePair(object):
    """Stand-in for ``st2client.models.keyvalue.KeyValuePair`` (``id``, ``name``, ``value``, ``ttl``)."""

    def __init__(self, name=None, value=None, ttl=None):
        self.id = name
        self.name = name
        self.value = value
        self.ttl = ttl

    def __repr__(self):
        return "<KeyValuePair name=%s>" % (self.name,)


class MockDatastoreService(object):
    """In-memory datastore of one pack class.

    Args:
        logger: logger (StackStorm passes a ``Mock(spec=RootLogger)``).
        pack_name: pack ref (StackStorm's test cases use ``"tests"``).
        class_name: action or sensor class name.
        api_username: user reported by :meth:`get_user_info` (default ``admin``).
    """

    def __init__(self, logger, pack_name, class_name, api_username=None):
        self._pack_name = pack_name
        self._class_name = class_name
        self._username = api_username or "admin"
        self._logger = logger
        self._datastore_items = {}

    def get_user_info(self):
        """The user the datastore calls are made as (always an admin here)."""
        return {"username": self._username,
                "rbac": {"is_admin": True, "enabled": True, "roles": ["admin"]},
                "authentication": {"method": "authentication token", "location": "header"}}

    def _get_datastore_key_prefix(self):
        return "%s.%s" % (self._pack_name, self._class_name)

    def _get_full_key_name(self, name, local):
        return "%s:%s" % (self._get_datastore_key_prefix(), name) if local else name

    def _get_full_key_prefix(self, local, prefix=None):
        if local:
            key_prefix = self._get_datastore_key_prefix() + ":"
            return key_prefix + prefix if prefix else key_prefix
        return prefix

    def list_values(self, local=True, limit=None, prefix=None, offset=0):
        """The stored :class:`KeyValuePair` items (of this class when ``local``) under ``prefix``."""
        key_prefix = self._get_full_key_prefix(local=local, prefix=prefix)
        if not key_prefix:
            return list(self._datastore_items.values())
        return [kvp for name, kvp in self._datastore_items.items() if name.startswith(key_prefix)]

    def get_value(self, name, local=True, scope=SYSTEM_SCOPE, decrypt=False):
        """The stored value, or None when the key does not exist."""
        kvp = self._datastore_items.get(self._get_full_key_name(name=name, local=local))
        return None if kvp is None else kvp.value

    def set_value(self, name, value, ttl=None, local=True, scope=SYSTEM_SCOPE, encrypt=False):
        """Store ``value``; returns True. A ``ttl`` is recorded with a warning, never enforced."""
        full = self._get_full_key_name(name=name, local=local)
        if ttl:
            self._logger.warning("MockDatastoreService is not able to expire keys based on ttl.")
        self._datastore_items[full] = KeyValuePair(name=full, value=value, ttl=ttl or None)
        return True

    def delete_value(self, name, local=True, scope=SYSTEM_SCOPE):
        """Delete the key; True if it existed."""
        return self._datastore_items.pop(self._get_full_key_name(name=name, local=local), None) is not None


class DatastoreMethods(object):
    """The datastore methods StackStorm's ``ActionService`` and ``SensorService`` offer, each
    delegating to ``self._datastore_service`` (a :class:`MockDatastoreService`), as theirs
    delegate to the real datastore service."""

    @property
    def datastore_service(self):
        return self._datastore_service

    def get_user_info(self):
        return self._datastore_service.get_user_info()

    def list_values(self, local=True, prefix=None):
        return self._datastore_service.list_values(local=local, prefix=prefix)

    def get_value(self, name, local=True, scope=SYSTEM_SCOPE, decrypt=False):
        return self._datastore_service.get_value(name=name, local=local, scope=scope, decrypt=decrypt)

    def set_value(self, name, value, ttl=None, local=True, scope=SYSTEM_SCOPE, encrypt=False):
        return self._datastore_service.set_value(name=name, value=value, ttl=ttl, local=local, scope=scope,
                                                 encrypt=encrypt)

    def delete_value(self, name, local=True, scope=SYSTEM_SCOPE):
        return self._datastore_service.delete_value(name=name, local=local, scope=scope)
