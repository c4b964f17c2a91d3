from lib.base import ConfigDBAction
from slurmdeploy import configdb


class DeploymentDelete(ConfigDBAction):
    """Delete an SDP deployment and its state (see slurmdeploy.configdb.delete_deployment)."""

    def run(self, key):
        return configdb.delete_deployment(self.configdb, key)
