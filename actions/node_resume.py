from lib.ops import OperationsAction


class NodeResume(OperationsAction):
    """Resume a drained or down Slurm node (state RESUME; REST v0.0.39+, Slurm 23.02+; needs an operator) (slurmdeploy.slurm.operations)."""

    def run(self, node):
        return self.call("resume_node", node)
