from lib.base import ConfigDBAction
from slurmdeploy import configdb


class DeploymentList(ConfigDBAction):
    """List the SDP deployments with their states (see slurmdeploy.configdb.deployment_list)."""

    def run(self):
        return configdb.deployment_list(self.configdb)
