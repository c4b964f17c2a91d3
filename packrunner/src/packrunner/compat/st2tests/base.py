"""Shim of ``st2tests/base.py``: ``BaseActionTestCase`` and ``BaseSensorTestCase``."""

from st2tests.mocks.action import MockActionService, MockActionWrapper
from st2tests.mocks.sensor import MockSensorService, MockSensorWrapper
from st2tests.pack_resource import BasePackResourceTestCase

__all__ = ["BaseActionTestCase", "BaseSensorTestCase"]


def get_action_class_instance(action_cls, config=None, action_service=None):
    """``st2common/runners/utils.py``: instantiate with ``config`` and ``action_service``, or,
    for an action whose ``__init__`` takes no ``action_service``, set it afterwards."""
    try:
        return action_cls(config=config, action_service=action_service)
    except TypeError as e:
        if "unexpected keyword argument 'action_service'" not in str(e):
            raise
        instance = action_cls(config=config)
        instance.action_service = action_service
        return instance


class BaseActionTestCase(BasePackResourceTestCase):
    """Base class of python-runner action tests: set ``action_cls``; ``self.action_service`` is a
    :class:`~st2tests.mocks.action.MockActionService` (in-memory datastore)."""

    action_cls = None

    def setUp(self):
        super(BaseActionTestCase, self).setUp()
        class_name = self.action_cls.__name__
        self.action_service = MockActionService(action_wrapper=MockActionWrapper(pack="tests", class_name=class_name))

    def get_action_instance(self, config=None):
        """An instance of ``action_cls`` with ``config`` and ``self.action_service``."""
        return get_action_class_instance(action_cls=self.action_cls, config=config,
                                         action_service=self.action_service)


class BaseSensorTestCase(BasePackResourceTestCase):
    """Base class of sensor tests: set ``sensor_cls``; ``self.sensor_service`` is a
    :class:`~st2tests.mocks.sensor.MockSensorService` recording dispatched triggers."""

    sensor_cls = None

    def setUp(self):
        super(BaseSensorTestCase, self).setUp()
        class_name = self.sensor_cls.__name__
        self.sensor_service = MockSensorService(sensor_wrapper=MockSensorWrapper(pack="tests", class_name=class_name))

    def get_sensor_instance(self, config=None, poll_interval=None):
        """An instance of ``sensor_cls`` with ``self.sensor_service`` (and ``config``,
        ``poll_interval`` when given)."""
        kwargs = {"sensor_service": self.sensor_service}
        if config:
            kwargs["config"] = config
        if poll_interval is not None:
            kwargs["poll_interval"] = poll_interval
        return self.sensor_cls(**kwargs)

    def get_dispatched_triggers(self):
        return self.sensor_service.dispatched_triggers

    def get_last_dispatched_trigger(self):
        return self.sensor_service.dispatched_triggers[-1]

    def assertTriggerDispatched(self, trigger, payload=None, trace_context=None):
        """Assert that ``trigger`` was dispatched (with ``payload`` and ``trace_context`` when given).

        Raises:
            AssertionError: no dispatched trigger matches.
        """
        for item in self.get_dispatched_triggers():
            if item["trigger"] != trigger:
                continue
            if payload and item["payload"] != payload:
                continue
            if trace_context and item["trace_context"] != trace_context:
                continue
            return True
        raise AssertionError('Trigger "%s" hasn\'t been dispatched' % (trigger,))
