from lib.ops import OperationsAction


class JobGet(OperationsAction):
    """One Slurm job record (GET /job/{job_id}), any user's job (slurmdeploy.slurm.operations)."""

    def run(self, job_id):
        return self.call("get_job", job_id)
