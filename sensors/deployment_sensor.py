"""The deployment sensor: a thin Sensor over slurmdeploy.watch.SensorLoop.

A plain ``Sensor`` with its own ``run()`` loop rather than a ``PollingSensor``: the loop
blocks on "an etcd watch event or the poll interval", and StackStorm's
``PollingSensor.run()`` (st2reactor/sensor/base.py, 3.8 and 3.9) sleeps a full
``poll_interval`` after every ``poll()``, which would delay every event; packrunner's poll
loop does the same. ``Sensor.run()`` is called once by both (st2's sensor wrapper,
packrunner's sensor thread) and ``cleanup()`` stops it. Under StackStorm's eventlet
monkey-patching the loop's waits and etcd3gw's watch thread are green threads.
"""

import threading

from st2reactor.sensor.base import Sensor

try:
    from slurmdeploy.logs import apply_log_level
    from slurmdeploy.settings import Settings
except ImportError as exc:  # pragma: no cover - depends on the StackStorm setting
    raise ImportError(
        "the slurmdeploy pack cannot import its library (lib/slurmdeploy): set "
        "`[packs] enable_common_libs = True` in /etc/st2/st2.conf, run `st2ctl restart`, "
        f"and check that the pack's requirements.txt is installed ({exc})"
    ) from exc

PACK = "slurmdeploy"
#: seconds to wait after a failed step (etcd or slurmrestd down) before the next try
RETRY_PAUSE = 5.0


class DeploymentSensor(Sensor):
    """Emits deployment_new, deployment_removed and job_state_changed.

    Wakes on an etcd watch of the deployments and polls every ``loop_interval`` seconds
    as a safety net. run() never raises (a sensor that dies is respawned twice at most by
    StackStorm): every failure is logged and the loop tries again. Secrets named by
    datastore key (``slurm_jwt_key``...) are read with
    ``sensor_service.get_value(name, local=False, decrypt=True)`` when the loop is built
    (at the first successful step; restart the sensor after rotating one).
    """

    def __init__(self, sensor_service, config=None, poll_interval=None):
        # poll_interval: accepted and ignored (StackStorm before 3.x passed it to any sensor
        # whose metadata had one); the pace is the pack config's loop_interval
        super().__init__(sensor_service=sensor_service, config=config)
        self._logger = sensor_service.get_logger(name=self.__class__.__name__)
        self._loop = None
        self._accounted = None  # slurmdeploy.accounted.AccountedJobs when accounted_trigger is on
        self._stopped = threading.Event()

    def setup(self):
        try:
            apply_log_level(Settings.from_config(self.config, get_secret=self._get_secret).log_level)
        except Exception as exc:  # noqa: BLE001 - logged; step() reports it again
            self._logger.error("slurmdeploy configuration: %s", exc)

    def _build(self):
        from slurmdeploy.deployer import Deployer
        from slurmdeploy.watch import SensorLoop

        deployer = Deployer.from_config(self.config, get_secret=self._get_secret)
        settings = deployer.settings
        from slurmdeploy.accounted import sensor_hook
        self._accounted = sensor_hook(deployer, self.sensor_service)
        loop = SensorLoop(deployer, poll_interval=settings.loop_interval, resync_interval=settings.resync_interval,
                          quiet_period=max(2 * settings.loop_interval, 30))
        self._logger.info("watching %s and slurmrestd %s (mcs_label %s; poll every %s s, full job listing every %s s)",
                          deployer.configdb.endpoint, settings.slurm_url, deployer.mcs_label, settings.loop_interval,
                          settings.resync_interval)
        return loop

    def _get_secret(self, name):
        return self.sensor_service.get_value(name, local=False, decrypt=True)

    def run(self):
        while not self._stopped.is_set():
            if not self.step():
                self._stopped.wait(RETRY_PAUSE)

    def step(self, timeout=None):
        """One wake-up: build the loop on first use, wait for a watch event or the poll
        timer (at most ``timeout`` seconds), observe, dispatch what changed.

        Returns:
            True, or False when the step failed (logged; never raises).
        """
        try:
            if self._loop is None:
                self._loop = self._build()
            events = list(self._loop.step(timeout))
            if self._accounted is not None:  # job_accounted: slurmdeploy.accounted
                self._accounted.note(events)
                events += self._accounted.check()
            for event in events:
                self._logger.info("dispatching %s.%s for deployment %r (trace_tag %s)", PACK, event.trigger,
                                  event.payload["key"], event.trace_tag)
                # trace_tag <key>@<create_revision>: `st2 trace list --trace-tag` follows one deployment
                self.sensor_service.dispatch(trigger=f"{PACK}.{event.trigger}", payload=event.payload,
                                             trace_tag=event.trace_tag)
            return True
        except Exception as exc:  # noqa: BLE001 - the loop must never die
            self._logger.error("observation failed, retrying in %ss: %s: %s", RETRY_PAUSE, type(exc).__name__, exc)
            return False

    def cleanup(self):
        self._stopped.set()
        if self._loop is not None:
            self._loop.stop()

    def add_trigger(self, trigger):
        pass

    def update_trigger(self, trigger):
        pass

    def remove_trigger(self, trigger):
        pass
