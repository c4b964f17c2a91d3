from lib.ops import OperationsAction


class Ping(OperationsAction):
    """Ping slurmctld through slurmrestd (GET /ping): the controllers, their mode and state, the Slurm release and REST version (slurmdeploy.slurm.operations)."""

    def run(self):
        return self.call("ping")
