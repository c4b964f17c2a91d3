from lib.base import ConfigDBAction
from slurmdeploy import configdb


class DeploymentDelete(ConfigDBAction):
    """Delete an SDP deployment and its state (see slurmdeploy.configdb.deployment_delete)."""

    def run(self, key):
        return configdb.deployment_delete(self.configdb, key)
