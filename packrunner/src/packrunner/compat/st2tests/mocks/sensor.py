"""Shim of ``st2tests/mocks/sensor.py``: ``MockSensorWrapper``, ``MockSensorService``."""

from logging import RootLogger
from unittest.mock import Mock

from st2tests.mocks.datastore import DatastoreMethods, MockDatastoreService

__all__ = ["MockSensorWrapper", "MockSensorService"]


class MockSensorWrapper(object):
    def __init__(self, pack, class_name):
        self._pack = pack
        self._class_name = class_name


class MockSensorService(DatastoreMethods):
    """What a sensor under test gets as ``sensor_service``: records every dispatched trigger in
    :attr:`dispatched_triggers` (``{"trigger", "payload", "trace_context"}``), returns one
    ``Mock(spec=RootLogger)`` from :meth:`get_logger` (assert log calls on it), and keeps the
    datastore in memory."""

    def __init__(self, sensor_wrapper):
        self._sensor_wrapper = sensor_wrapper
        self._logger = Mock(spec=RootLogger)
        self.dispatched_triggers = []
        self._datastore_service = MockDatastoreService(logger=self._logger, pack_name=sensor_wrapper._pack,
                                                       class_name=sensor_wrapper._class_name)

    def get_logger(self, name):
        return self._logger

    def dispatch(self, trigger, payload=None, trace_tag=None):
        # StackStorm wraps trace_tag in a TraceContext; here it is kept as a dict.
        trace_context = {"trace_tag": trace_tag} if trace_tag else None
        return self.dispatch_with_context(trigger=trigger, payload=payload, trace_context=trace_context)

    def dispatch_with_context(self, trigger, payload=None, trace_context=None):
        item = {"trigger": trigger, "payload": payload, "trace_context": trace_context}
        self.dispatched_triggers.append(item)
        return item
