from lib.base import DeployerAction


class UpdateState(DeployerAction):
    """Write a deployment's Slurm job state to the Configuration DB; never overwrites
    FINISHED, CANCELLED or FAILED (see slurmdeploy.deployer.Deployer.update_state)."""

    def run(self, key, job_id=None):
        return self.deployer.update_state(key, job_id)
