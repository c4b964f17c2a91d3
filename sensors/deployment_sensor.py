"""The deployment sensor: a thin PollingSensor over slurmdeploy.deployer.Observer."""

from st2reactor.sensor.base import PollingSensor

try:
    from slurmdeploy.deployer import Deployer, Observer
    from slurmdeploy.logs import apply_log_level
    from slurmdeploy.settings import Settings
except ImportError as exc:  # pragma: no cover - depends on the StackStorm setting
    raise ImportError(
        "the slurmdeploy pack cannot import its library (lib/slurmdeploy): set "
        "`[packs] enable_common_libs = True` in /etc/st2/st2.conf, run `st2ctl restart`, "
        f"and check that the pack's requirements.txt is installed ({exc})"
    ) from exc

PACK = "slurmdeploy"


class DeploymentSensor(PollingSensor):
    """Emits deployment_new, deployment_removed and job_state_changed.

    poll() never raises (StackStorm's PollingSensor.run has no exception handling and
    a sensor that dies is respawned twice at most): every failure is logged and the
    next poll tries again. Secrets named by datastore key (``slurm_jwt_key``...) are read
    with ``sensor_service.get_value(name, local=False, decrypt=True)`` when the deployer is
    built (at the first successful poll; restart the sensor after rotating one).
    """

    def __init__(self, sensor_service, config=None, poll_interval=60):
        super().__init__(sensor_service=sensor_service, config=config, poll_interval=poll_interval)
        self._logger = sensor_service.get_logger(name=self.__class__.__name__)
        self._observer = None

    def setup(self):
        try:
            settings = Settings.from_config(self.config, get_secret=self._get_secret)
            apply_log_level(settings.log_level)
            self.set_poll_interval(settings.loop_interval)
        except Exception as exc:  # noqa: BLE001 - logged; poll() reports it again
            self._logger.error("slurmdeploy configuration: %s", exc)

    def poll(self):
        try:
            if self._observer is None:
                deployer = Deployer.from_config(self.config, get_secret=self._get_secret)
                self._observer = Observer(deployer, quiet_period=max(2 * self.get_poll_interval(), 30))
                self._logger.info("watching %s and slurmrestd %s (mcs_label %s)", deployer.configdb.endpoint,
                                  deployer.settings.slurm_url, deployer.mcs_label)
            for event in self._observer.poll():
                self._logger.info("dispatching %s.%s for deployment %r", PACK, event.trigger, event.payload["key"])
                self.sensor_service.dispatch(trigger=f"{PACK}.{event.trigger}", payload=event.payload)
        except Exception as exc:  # noqa: BLE001 - poll() must never raise
            self._logger.error("poll failed, retrying in %ss: %s: %s", self.get_poll_interval(),
                               type(exc).__name__, exc)

    def _get_secret(self, name):
        return self.sensor_service.get_value(name, local=False, decrypt=True)

    def cleanup(self):
        self._observer = None

    def add_trigger(self, trigger):
        pass

    def update_trigger(self, trigger):
        pass

    def remove_trigger(self, trigger):
        pass
