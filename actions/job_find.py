from lib.ops import OperationsAction
from slurmdeploy.slurm.versions import no_val_number


class JobFind(OperationsAction):
    """Slurm job records matching criteria on any job field (like the slurm pack's job.find): {"name": "x", "job_state": "PENDING", "user_name": "bob"} (slurmdeploy.slurm.operations)."""

    def run(self, criteria=None, ids_only=None):
        ok, jobs = self.call("find_jobs", criteria or {})
        ids = [no_val_number(j.get("job_id")) for j in jobs]
        return True, {"count": len(ids), "job_ids": ids, **({} if ids_only else {"jobs": jobs})}
