"""Shim of ``st2reactor/sensor/base.py`` (StackStorm 3.8/3.9).

Same abstract methods as StackStorm's ``BaseSensor``, so a sensor that
works here also satisfies the real base class. One difference: the real
``PollingSensor.run()`` sleeps with eventlet; the packrunner does not call
``run()`` for polling sensors at all (it drives ``poll()`` itself, see
:mod:`packrunner.sensor_container`).
"""

import abc
import time

__all__ = ["Sensor", "PollingSensor"]


class BaseSensor(metaclass=abc.ABCMeta):
    """Base class for all sensors.

    Args:
        sensor_service: the service used to dispatch triggers and access the
            datastore (``dispatch``, ``get_logger``, ``get_value`` ...).
        config: the pack config (dict), ``{}`` when absent.
    """

    def __init__(self, sensor_service, config=None):
        self._sensor_service = sensor_service
        self.sensor_service = sensor_service
        self._config = config or {}
        self.config = self._config

    @abc.abstractmethod
    def setup(self):
        """Run once before the sensor starts."""

    @abc.abstractmethod
    def run(self):
        """Run the sensor (blocking)."""

    @abc.abstractmethod
    def cleanup(self):
        """Run once when the sensor stops."""

    @abc.abstractmethod
    def add_trigger(self, trigger):
        """Called when a trigger of this sensor's types is created."""

    @abc.abstractmethod
    def update_trigger(self, trigger):
        """Called when such a trigger is updated."""

    @abc.abstractmethod
    def remove_trigger(self, trigger):
        """Called when such a trigger is deleted."""


class Sensor(BaseSensor):
    """A sensor that runs its own loop in ``run()``."""

    @abc.abstractmethod
    def run(self):
        """Run the sensor (blocking)."""


class PollingSensor(BaseSensor):
    """A sensor that is polled every ``poll_interval`` seconds.

    Args:
        sensor_service: see :class:`BaseSensor`.
        config: pack config.
        poll_interval: seconds between two ``poll()`` calls (default 5).
    """

    def __init__(self, sensor_service, config=None, poll_interval=5):
        super().__init__(sensor_service=sensor_service, config=config)
        self._poll_interval = poll_interval

    @abc.abstractmethod
    def poll(self):
        """Poll once; dispatch triggers through ``self.sensor_service``."""

    def run(self):
        # Like st2: poll then sleep, no exception handling.
        while True:
            self.poll()
            time.sleep(self._poll_interval)

    def get_poll_interval(self):
        """Return the poll interval in seconds."""
        return self._poll_interval

    def set_poll_interval(self, poll_interval):
        """Set the poll interval in seconds."""
        self._poll_interval = poll_interval
