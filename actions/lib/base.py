"""Shared base of the pack's actions: builds the deployer from the pack config.

The logic lives in the pack's ``lib/slurmdeploy`` library; StackStorm puts the pack's
``lib/`` on the import path only with ``[packs] enable_common_libs = True`` in st2.conf.
"""

from st2common.runners.base_action import Action

from lib.libpath import library_import_error

try:
    from slurmdeploy.deployer import Deployer
    from slurmdeploy.logs import apply_log_level
except ImportError as exc:  # pragma: no cover - depends on the StackStorm setting
    raise library_import_error(exc) from exc


class DeployerAction(Action):
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
