from lib.base import ConfigDBAction
from slurmdeploy import configdb


class DeploymentCreate(ConfigDBAction):
    """Create an SDP deployment in the Configuration DB (see slurmdeploy.configdb.deployment_create)."""

    def run(self, key, args, kind="slurm", replace=False):
        db = self.configdb
        return configdb.deployment_create(db, key, args, kind=kind, replace=replace,
                                          mcs_label=self.settings.mcs_label)
