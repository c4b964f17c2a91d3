from lib.ops import OperationsAction


class NodeGet(OperationsAction):
    """One Slurm node record (GET /node/{node_name}) plus its state summary (slurmdeploy.slurm.operations)."""

    def run(self, node):
        ok, record = self.call("get_node", node)
        return True, {"node": record, "state": self.ops.node_state(record)}
