from lib.accounting import AccountingAction


class JobSteps(AccountingAction):
    """The steps of one or more jobs from Slurm accounting (slurmdeploy.slurm.accounting.Accounting.job_steps)."""

    def run(self, job_ids):
        return self.call(lambda: self.accounting.job_steps(job_ids))
