"""Shared base of the pack's actions: builds the deployer from the pack config.

The logic lives in the pack's ``lib/slurmdeploy`` library; StackStorm puts the pack's
``lib/`` on the import path only with ``[packs] enable_common_libs = True`` in st2.conf.
"""

from st2common.runners.base_action import Action

from lib.libpath import library_import_error

try:
    from slurmdeploy.deployer import Deployer
except ImportError as exc:  # pragma: no cover - depends on the StackStorm setting
    raise library_import_error(exc) from exc


class DeployerAction(Action):
    """An action with a :class:`slurmdeploy.deployer.Deployer` built from ``self.config``."""

    def __init__(self, config=None, action_service=None):
        super().__init__(config=config, action_service=action_service)
        self._deployer = None

    @property
    def deployer(self):
        """The deployer (built on first use, so configuration errors fail the execution)."""
        if self._deployer is None:
            self._deployer = Deployer.from_config(self.config)
        return self._deployer
