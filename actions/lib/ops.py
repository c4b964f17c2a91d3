"""Shared base of the pack's Slurm operations actions (job_*, node_*, partition_*,
reservation_*, ping, diag, licenses, config_get).

Each action calls one method of :class:`slurmdeploy.slurm.operations.SlurmOperations`
and returns StackStorm's ``(ok, result)``: ``(True, <Slurm's records>)``, or for any error
of the library ``(False, slurmdeploy.errors.action_error(exc))``, the failure every action of
the pack reports (``ReportsErrors``, README "Errors"; never a token: error messages carry no
credentials). These actions are for operators: unlike
submit/cancel/update_state they are not limited to the deployer's mcs_label; slurmctld
decides what the configured Slurm user may do.
"""

from st2common.runners.base_action import Action

from lib.libpath import library_import_error

try:
    from slurmdeploy.errors import ReportsErrors
    from slurmdeploy.logs import apply_log_level
    from slurmdeploy.settings import Settings
    from slurmdeploy.slurm.operations import SlurmOperations
except ImportError as exc:  # pragma: no cover - depends on the StackStorm setting
    raise library_import_error(exc) from exc


class OperationsAction(ReportsErrors, Action):
    """An action with :attr:`ops` (a SlurmOperations built from ``self.config``).

    Secrets named by datastore key (``slurm_jwt_key``, ``client_secret_key``) are read at run
    time with ``action_service.get_value(name, local=False, decrypt=True)``, as in the
    deployer's actions (``actions/lib/base.py``), so they stay off the command line.
    """

    def __init__(self, config=None, action_service=None):
        super().__init__(config=config, action_service=action_service)
        self._ops = None

    @property
    def ops(self):
        """The operations (built on first use, so configuration errors fail the execution)."""
        if self._ops is None:
            get_secret = self._get_secret if self.action_service is not None else None
            settings = Settings.from_config(self.config, get_secret=get_secret)
            apply_log_level(settings.log_level)
            self._ops = SlurmOperations.from_settings(settings)
        return self._ops

    def _get_secret(self, name):
        return self.action_service.get_value(name, local=False, decrypt=True)

    def call(self, method, *args, **kwargs):
        """Run ``self.ops.<method>(*args, **kwargs)`` as ``(True, result)``; an error of the
        library fails the execution through :class:`ReportsErrors`."""
        return True, getattr(self.ops, method)(*args, **kwargs)
