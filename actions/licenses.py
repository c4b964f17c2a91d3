from lib.ops import OperationsAction


class Licenses(OperationsAction):
    """Licenses slurmctld tracks (GET /licenses) (slurmdeploy.slurm.operations)."""

    def run(self):
        return self.call("licenses")
