from lib.ops import OperationsAction


class JobRelease(OperationsAction):
    """Release a held Slurm job (POST /job/{job_id} with hold: false) (slurmdeploy.slurm.operations)."""

    def run(self, job_id):
        return self.call("release_job", job_id)
