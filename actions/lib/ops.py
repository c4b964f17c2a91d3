"""Shared base of the pack's Slurm operations actions (job_*, node_*, partition_*,
reservation_*, ping, diag, licenses, config_get).

Each action calls one method of :class:`slurmdeploy.slurm.operations.SlurmOperations`
and returns StackStorm's ``(ok, result)``: ``(True, <Slurm's records>)`` or
``(False, {"error": "...", "error_type": "..."})`` for the library's errors (never a
token: error messages carry no credentials). These actions are for operators: unlike
submit/cancel/update_state they are not limited to the deployer's mcs_label; slurmctld
decides what the configured Slurm user may do.
"""

from st2common.runners.base_action import Action

from lib.libpath import library_import_error

try:
    from slurmdeploy.errors import SlurmDeployError
    from slurmdeploy.settings import Settings
    from slurmdeploy.slurm.operations import SlurmOperations
except ImportError as exc:  # pragma: no cover - depends on the StackStorm setting
    raise library_import_error(exc) from exc


class OperationsAction(Action):
    """An action with :attr:`ops` (a SlurmOperations built from ``self.config``)."""

    def __init__(self, config=None, action_service=None):
        super().__init__(config=config, action_service=action_service)
        self._ops = None

    @property
    def ops(self):
        """The operations (built on first use, so configuration errors fail the execution)."""
        if self._ops is None:
            self._ops = SlurmOperations.from_settings(Settings.from_config(self.config))
        return self._ops

    def call(self, method, *args, **kwargs):
        """Run ``self.ops.<method>(*args, **kwargs)`` as ``(ok, result)``."""
        try:
            return True, getattr(self.ops, method)(*args, **kwargs)
        except SlurmDeployError as exc:
            self.logger.error("%s failed: %s", method, exc)
            return False, {"error": str(exc), "error_type": type(exc).__name__}
