from lib.ops import OperationsAction


class NodeUpdate(OperationsAction):
    """Update any node field slurmrestd accepts (POST /node/{node_name}: state, reason, weight, comment, features, gres...; REST v0.0.39+, Slurm 23.02+; needs an operator) (slurmdeploy.slurm.operations)."""

    def run(self, node, fields):
        return self.call("update_node", node, fields)
