from lib.ops import OperationsAction


class JobHold(OperationsAction):
    """Hold a pending Slurm job (POST /job/{job_id} with hold: true; priority 0) (slurmdeploy.slurm.operations)."""

    def run(self, job_id):
        return self.call("hold_job", job_id)
