"""Shared base of the pack's actions: builds the deployer from the pack config.

Every action fails the same way: ``(False, {"error": message, "error_type": ..., ...})`` for
any error of the library (``slurmdeploy.errors.ReportsErrors``, README "Errors").

The logic lives in the pack's ``lib/slurmdeploy`` library; StackStorm puts the pack's
``lib/`` on the import path only with ``[packs] enable_common_libs = True`` in st2.conf.
"""

from st2common.runners.base_action import Action

from lib.libpath import library_import_error

try:
    from slurmdeploy.configdb import ConfigDB
    from slurmdeploy.errors import ReportsErrors
    from slurmdeploy.deployer import Deployer
    from slurmdeploy.logs import apply_log_level
    from slurmdeploy.settings import Settings
except ImportError as exc:  # pragma: no cover - depends on the StackStorm setting
    raise library_import_error(exc) from exc


class DeployerAction(ReportsErrors, Action):
    """An action with a :class:`slurmdeploy.deployer.Deployer` built from ``self.config``.

    Secrets named by datastore key (``slurm_jwt_key``, ``client_secret_key``,
    ``config_password_key``) are read at run time with
    ``action_service.get_value(name, local=False, decrypt=True)``, so they never pass through
    the pack config StackStorm puts on the action's command line.
    """

    def __init__(self, config=None, action_service=None):
        super().__init__(config=config, action_service=action_service)
        self._deployer = None

    def _get_secret(self, name):
        return self.action_service.get_value(name, local=False, decrypt=True)

    @property
    def deployer(self):
        """The deployer (built on first use, so configuration errors fail the execution)."""
        if self._deployer is None:
            get_secret = self._get_secret if self.action_service is not None else None
            # one set of HTTP clients per settings and process: see slurmdeploy.deployer.shared_clients
            self._deployer = Deployer.from_config(self.config, get_secret=get_secret, share_clients=True)
            apply_log_level(self._deployer.settings.log_level)
        return self._deployer


class ConfigDBAction(ReportsErrors, Action):
    """An action that needs only the Configuration Database (``self.configdb``, built from the
    ``config_*`` settings on first use): the ``deployment_*`` actions. The Slurm settings are
    resolved but no Slurm client is built, so these run while Slurm is unreachable."""

    def __init__(self, config=None, action_service=None):
        super().__init__(config=config, action_service=action_service)
        self._configdb = None
        self.settings = None

    @property
    def configdb(self):
        """The :class:`slurmdeploy.configdb.ConfigDB` (built on first use)."""
        if self._configdb is None:
            get_secret = None
            if self.action_service is not None:
                def get_secret(name):
                    return self.action_service.get_value(name, local=False, decrypt=True)
            self.settings = Settings.from_config(self.config, get_secret=get_secret)
            apply_log_level(self.settings.log_level)
            self._configdb = ConfigDB.from_settings(self.settings)
        return self._configdb
