"""The sensor container: each enabled sensor of the pack in its own thread.

StackStorm runs every sensor in its own process (``st2reactor/container/sensor_wrapper.py``);
packrunner runs ``setup()`` then a poll loop (``PollingSensor``) or ``run()`` (``Sensor``) in a
daemon thread, and ``cleanup()`` on stop.
"""

import copy
import logging
import threading
import traceback

from .services import SensorService

__all__ = ["SensorContainer"]

LOG = logging.getLogger("packrunner.runner")
SENSOR_LOG = logging.getLogger("packrunner.sensor")


class SensorContainer:
    """Start and stop the sensors of one pack.

    Args:
        runner: the :class:`packrunner.runner.Runner` (its ``pack``, ``config``,
            ``datastore`` and ``dispatch`` serve the sensors, through
            :class:`packrunner.services.SensorService`).
    """

    def __init__(self, runner):
        self._runner = runner
        self._stop_event = threading.Event()
        self._sensors = []  # (meta, instance, thread, polling)

    def __len__(self):
        return len(self._sensors)

    @property
    def class_names(self):
        """The class names of the started sensors, in start order (list of str)."""
        return [meta.class_name for meta, *_ in self._sensors]

    def start(self):
        """Start all enabled sensors in their own threads (setup() then poll loop).

        A sensor whose class cannot be loaded or whose ``setup()`` raises is
        logged at ERROR and skipped; the others keep running.
        """
        self._stop_event.clear()
        for meta in self._runner.pack.sensors:
            if meta.enabled is False:
                LOG.info("sensor %s disabled, not started", meta.class_name)
                continue
            try:
                self._start_sensor(meta)
            except Exception:
                SENSOR_LOG.error("sensor %s failed to start:\n%s", meta.class_name, traceback.format_exc())

    def _start_sensor(self, meta):
        from st2reactor.sensor.base import PollingSensor

        cls = meta.load_class()
        service = SensorService(self._runner, self._runner.pack.ref, meta.class_name)
        config = copy.deepcopy(self._runner.config)
        polling = issubclass(cls, PollingSensor)
        if polling:
            instance = cls(sensor_service=service, config=config, poll_interval=meta.poll_interval or 5)
        else:
            instance = cls(sensor_service=service, config=config)
        instance.setup()
        target = self._poll_loop if polling else self._run_sensor
        thread = threading.Thread(target=target, args=(meta, instance), name="sensor-%s" % meta.class_name,
                                  daemon=True)
        self._sensors.append((meta, instance, thread, polling))
        thread.start()
        SENSOR_LOG.info("sensor %s started (%s)", meta.class_name,
                        "poll_interval=%s s" % instance.get_poll_interval() if polling else "run()")

    def _poll_loop(self, meta, sensor):
        while not self._stop_event.is_set():
            try:
                sensor.poll()
            except Exception:
                # st2 would let the sensor process die here; we keep polling.
                SENSOR_LOG.error(
                    "sensor %s: poll() raised (StackStorm would kill the sensor; packrunner keeps polling):\n%s",
                    meta.class_name, traceback.format_exc(),
                )
            try:
                interval = float(sensor.get_poll_interval())
            except Exception:
                interval = 5.0
            self._stop_event.wait(interval)

    def _run_sensor(self, meta, sensor):
        try:
            sensor.run()
        except Exception:
            SENSOR_LOG.error("sensor %s: run() raised; sensor stopped:\n%s", meta.class_name, traceback.format_exc())

    def stop_polling(self, deadline_wait):
        """Stop the poll loops and wait for their threads (``deadline_wait()`` gives the seconds left)."""
        self._stop_event.set()
        for meta, _instance, thread, polling in self._sensors:
            if polling:
                thread.join(deadline_wait())

    def cleanup(self, deadline_wait):
        """Call each sensor's ``cleanup()``, then wait for ``run()`` sensors' threads."""
        for meta, instance, thread, polling in self._sensors:
            try:
                instance.cleanup()
            except Exception:
                SENSOR_LOG.error("sensor %s: cleanup() raised:\n%s", meta.class_name, traceback.format_exc())
        for meta, _instance, thread, polling in self._sensors:
            if not polling:
                thread.join(max(0.1, deadline_wait()))
        self._sensors = []
