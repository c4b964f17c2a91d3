from lib.ops import OperationsAction


class PartitionList(OperationsAction):
    """Every Slurm partition record (GET /partitions) (slurmdeploy.slurm.operations)."""

    def run(self):
        return self.call("list_partitions")
