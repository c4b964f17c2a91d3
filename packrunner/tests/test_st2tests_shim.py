"""The st2tests shim (compat/st2tests) behaves like StackStorm's pack-test API."""

import pytest

from packrunner.pack import ensure_st2_base_classes

ensure_st2_base_classes()  # puts compat/ on sys.path when StackStorm is absent

from st2common.runners.base_action import Action  # noqa: E402
from st2reactor.sensor.base import PollingSensor  # noqa: E402
from st2tests.base import BaseActionTestCase, BaseSensorTestCase, get_action_class_instance  # noqa: E402


class Remember(Action):
    def run(self, value):
        self.action_service.set_value("last", value)
        return self.action_service.get_value("shared", local=False, decrypt=True)


class Ticker(PollingSensor):
    def setup(self):
        pass

    def poll(self):
        self.sensor_service.dispatch(trigger="p.tick", payload={"n": 1}, trace_tag="t1")

    def cleanup(self):
        pass

    def add_trigger(self, trigger):
        pass

    def update_trigger(self, trigger):
        pass

    def remove_trigger(self, trigger):
        pass


class RememberTest(BaseActionTestCase):
    action_cls = Remember

    def test_local_and_system_keys(self):
        self.action_service.set_value("shared", "s3cret", local=False, encrypt=True)
        action = self.get_action_instance(config={"a": 1})
        assert action.config == {"a": 1} and action.run(value=5) == "s3cret"
        names = sorted(kv.name for kv in self.action_service.list_values(local=False))
        assert names == ["shared", "tests.Remember:last"]  # <pack>.<ClassName>:<name>, pack "tests"
        assert self.action_service.get_value("last") == 5 and self.action_service.delete_value("last")
        assert not self.action_service.delete_value("last")


class TickerTest(BaseSensorTestCase):
    sensor_cls = Ticker

    def test_dispatch_is_recorded(self):
        sensor = self.get_sensor_instance(config={"x": 1}, poll_interval=7)
        assert sensor.get_poll_interval() == 7 and sensor.config == {"x": 1}
        sensor.poll()
        assert self.get_dispatched_triggers() == [
            {"trigger": "p.tick", "payload": {"n": 1}, "trace_context": {"trace_tag": "t1"}}]
        assert self.assertTriggerDispatched("p.tick", payload={"n": 1})
        with pytest.raises(AssertionError, match='Trigger "p.tick" hasn\'t been dispatched'):
            self.assertTriggerDispatched("p.tick", payload={"n": 2})
        sensor.sensor_service.get_logger("x").info("hello")
        self.sensor_service.get_logger("y").info.assert_called_once_with("hello")


def test_action_without_action_service_argument_gets_it_set():
    class Old(Action):
        def __init__(self, config):
            super().__init__(config=config)

        def run(self):
            return None

    service = object()
    assert get_action_class_instance(Old, config={}, action_service=service).action_service is service
