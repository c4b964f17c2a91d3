"""The node-state sensor: a thin PollingSensor over slurmdeploy.node_events.NodeStateWatcher."""

from st2reactor.sensor.base import PollingSensor

try:
    from slurmdeploy.logs import apply_log_level
    from slurmdeploy.node_events import NodeStateWatcher
    from slurmdeploy.settings import Settings
    from slurmdeploy.slurm.operations import SlurmOperations
except ImportError as exc:  # pragma: no cover - depends on the StackStorm setting
    raise ImportError(
        "the slurmdeploy pack cannot import its library (lib/slurmdeploy): set "
        "`[packs] enable_common_libs = True` in /etc/st2/st2.conf, run `st2ctl restart`, "
        f"and check that the pack's requirements.txt is installed ({exc})"
    ) from exc

PACK = "slurmdeploy"
TRIGGER = f"{PACK}.node_state_changed"
#: poll interval while turned off (node_poll_interval 0): poll() then only returns
OFF_INTERVAL = 3600


class NodeStateSensor(PollingSensor):
    """Emits node_state_changed for every node whose state differs from the last seen one.

    The last seen states live in the datastore (key ``node_states``, local to this
    sensor, one JSON string), so a restart loses nothing. poll() never raises. Secrets named
    by datastore key (``slurm_jwt_key``...) are read with
    ``sensor_service.get_value(name, local=False, decrypt=True)``, as the deployment sensor does.
    """

    def __init__(self, sensor_service, config=None, poll_interval=60):
        super().__init__(sensor_service=sensor_service, config=config, poll_interval=poll_interval)
        self._logger = sensor_service.get_logger(name=self.__class__.__name__)
        self._watcher = None
        self._enabled = True

    def setup(self):
        try:
            settings = Settings.from_config(self.config, get_secret=self._get_secret)
            apply_log_level(settings.log_level)
            interval = settings.node_poll_interval
            self._enabled = interval > 0
            self.set_poll_interval(interval if self._enabled else OFF_INTERVAL)
            if not self._enabled:
                self._logger.info("node_poll_interval is 0: node-state events are off")
        except Exception as exc:  # noqa: BLE001 - logged; poll() reports it again
            self._logger.error("slurmdeploy configuration: %s", exc)

    def poll(self):
        if not self._enabled:
            return
        try:
            if self._watcher is None:
                settings = Settings.from_config(self.config, get_secret=self._get_secret)
                self._watcher = NodeStateWatcher(
                    SlurmOperations.from_settings(settings),
                    lambda name: self.sensor_service.get_value(name, local=True),
                    lambda name, value: self.sensor_service.set_value(name, value, local=True),
                    cluster=settings.require_slurm_url(),
                )
                self._logger.info("watching the node states of slurmrestd %s", settings.slurm_url)
            self._watcher.poll(self._dispatch)
        except Exception as exc:  # noqa: BLE001 - poll() must never raise
            self._logger.error("node poll failed, retrying in %ss: %s: %s", self.get_poll_interval(),
                               type(exc).__name__, exc)

    def _get_secret(self, name):
        return self.sensor_service.get_value(name, local=False, decrypt=True)

    def _dispatch(self, change):
        self._logger.info("dispatching %s: node %s %s -> %s", TRIGGER, change.node, change.previous_state,
                          change.state)
        self.sensor_service.dispatch(trigger=TRIGGER, payload=change.payload())

    def cleanup(self):
        self._watcher = None

    def add_trigger(self, trigger):
        pass

    def update_trigger(self, trigger):
        pass

    def remove_trigger(self, trigger):
        pass
