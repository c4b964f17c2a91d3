from lib.ops import OperationsAction


class JobUpdate(OperationsAction):
    """Update a Slurm job (POST /job/{job_id}): time limit, priority, nice, comment, or any job field Slurm accepts in fields; the job is read back and each field reported applied or not (slurmdeploy.slurm.operations)."""

    def run(self, job_id, time_limit=None, priority=None, nice=None, comment=None, fields=None):
        given = {"time_limit": time_limit, "priority": priority, "nice": nice, "comment": comment}
        fields = dict(fields or {}, **{k: v for k, v in given.items() if v is not None})
        return self.call("update_job", job_id, fields)
