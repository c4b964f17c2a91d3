"""Shim of ``st2tests/mocks/action.py``: ``MockActionWrapper``, ``MockActionService``."""

from logging import RootLogger
from unittest.mock import Mock

from st2tests.mocks.datastore import DatastoreMethods, MockDatastoreService

__all__ = ["MockActionWrapper", "MockActionService"]


class MockActionWrapper(object):
    def __init__(self, pack, class_name):
        self._pack = pack
        self._class_name = class_name


class MockActionService(DatastoreMethods):
    """What an action under test gets as ``self.action_service``: datastore access
    (``get_value``, ``set_value``, ``delete_value``, ``list_values``) over an in-memory
    :class:`MockDatastoreService`, as ``st2common/runners/python_action_wrapper.py``'s
    ``ActionService`` delegates to its datastore service."""

    def __init__(self, action_wrapper):
        self._action_wrapper = action_wrapper
        self._logger = Mock(spec=RootLogger)
        self._datastore_service = MockDatastoreService(logger=self._logger, pack_name=action_wrapper._pack,
                                                       class_name=action_wrapper._class_name)
