from lib.ops import OperationsAction


class NodeDrain(OperationsAction):
    """Drain a Slurm node with a reason: no new jobs, running ones finish (REST v0.0.39+, Slurm 23.02+; needs an operator) (slurmdeploy.slurm.operations)."""

    def run(self, node, reason):
        return self.call("drain_node", node, reason)
