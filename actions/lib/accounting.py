"""Shared base of the pack's accounting actions (job_history, job_steps, usage_report,
deployment_usage): Slurm accounting (slurmdbd) read through slurmrestd's ``/slurmdb/`` API.

Each action calls one function of :mod:`slurmdeploy.slurm.accounting` (or
:func:`slurmdeploy.accounted.deployment_usage`) and returns StackStorm's ``(ok, result)``:
``(True, <result>)``, or for any error of the library (bad input, unknown account/user/cluster,
slurmdbd unreachable) ``(False, slurmdeploy.errors.action_error(exc))``, the failure every action
of the pack reports (``ReportsErrors``, README "Errors"). Messages never carry a token.
"""

from st2common.runners.base_action import Action

from lib.libpath import library_import_error

try:
    from slurmdeploy.errors import ReportsErrors
    from slurmdeploy.logs import apply_log_level
    from slurmdeploy.settings import Settings
except ImportError as exc:  # pragma: no cover - depends on the StackStorm setting
    raise library_import_error(exc) from exc


class AccountingAction(ReportsErrors, Action):
    """An action with :attr:`accounting` (a :class:`slurmdeploy.slurm.accounting.Accounting` built
    from ``self.config``; secrets named by datastore key are read at run time, as elsewhere)."""

    def __init__(self, config=None, action_service=None):
        super().__init__(config=config, action_service=action_service)
        self._accounting = None
        self.settings = None

    def _get_secret(self, name):
        return self.action_service.get_value(name, local=False, decrypt=True)

    def _settings(self):
        if self.settings is None:
            get_secret = self._get_secret if self.action_service is not None else None
            self.settings = Settings.from_config(self.config, get_secret=get_secret)
            apply_log_level(self.settings.log_level)
        return self.settings

    @property
    def accounting(self):
        if self._accounting is None:
            from slurmdeploy.slurm.accounting import Accounting

            self._accounting = Accounting.from_settings(self._settings())
        return self._accounting

    def call(self, function, *args, **kwargs):
        """Run ``function(*args, **kwargs)`` as ``(True, result)``; an error of the library fails
        the execution through :class:`ReportsErrors`."""
        return True, function(*args, **kwargs)
