from lib.ops import OperationsAction


class Diag(OperationsAction):
    """slurmctld's statistics (GET /diag, what sdiag prints) (slurmdeploy.slurm.operations)."""

    def run(self):
        return self.call("diag")
