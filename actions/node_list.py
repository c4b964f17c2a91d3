from lib.ops import OperationsAction


class NodeList(OperationsAction):
    """Slurm node records (GET /nodes), optionally matching criteria on any node field ({"state": "DRAIN"} matches a base state or flag) (slurmdeploy.slurm.operations)."""

    def run(self, criteria=None):
        ok, nodes = self.call("list_nodes", criteria or {})
        return True, {"count": len(nodes), "states": [self.ops.node_state(n) for n in nodes], "nodes": nodes}
