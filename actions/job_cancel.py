from lib.ops import OperationsAction


class JobCancel(OperationsAction):
    """Cancel (or signal) a Slurm job by id, or every unfinished job with a name (slurmdeploy.slurm.operations)."""

    def run(self, job_id=None, name=None, signal=None, other_users=False):
        ok, jobs = self.call("cancel_jobs", job_id=job_id, name=name, signal=signal,
                              other_users=bool(other_users))
        return all(j["outcome"] != "refused" for j in jobs), {"jobs": jobs}
