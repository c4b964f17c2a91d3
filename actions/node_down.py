from lib.ops import OperationsAction


class NodeDown(OperationsAction):
    """Set a Slurm node DOWN with a reason; slurmctld kills its jobs (REST v0.0.39+, Slurm 23.02+; needs an operator) (slurmdeploy.slurm.operations)."""

    def run(self, node, reason):
        return self.call("down_node", node, reason)
