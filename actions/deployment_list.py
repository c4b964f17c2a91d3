from lib.base import ConfigDBAction
from slurmdeploy import configdb


class DeploymentList(ConfigDBAction):
    """List the SDP deployments with their states (see slurmdeploy.configdb.list_deployments)."""

    def run(self):
        return configdb.list_deployments(self.configdb)
