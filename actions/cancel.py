from lib.base import DeployerAction


class Cancel(DeployerAction):
    """Cancel the Slurm job of a removed deployment; only jobs with our mcs_label
    (see slurmdeploy.deployer.Deployer.cancel)."""

    def run(self, key, job_id=None, force=False):
        return self.deployer.cancel(key, job_id, force)
