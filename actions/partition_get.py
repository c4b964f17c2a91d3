from lib.ops import OperationsAction


class PartitionGet(OperationsAction):
    """One Slurm partition record (slurmdeploy.slurm.operations)."""

    def run(self, partition):
        return self.call("get_partition", partition)
