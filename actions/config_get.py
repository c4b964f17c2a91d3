from lib.ops import OperationsAction


class ConfigGet(OperationsAction):
    """The cluster configuration the REST API exposes: Slurm release, cluster name, REST version, controllers and partition settings (slurmdeploy.slurm.operations)."""

    def run(self, item=None):
        return self.call("config", item)
