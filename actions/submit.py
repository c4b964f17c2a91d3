from lib.base import DeployerAction


class Submit(DeployerAction):
    """Submit the Slurm job of an SDP deployment, exactly once (see slurmdeploy.deployer.Deployer.submit)."""

    def run(self, key, args=None):
        return self.deployer.submit(key, args)
