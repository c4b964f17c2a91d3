from lib.accounting import AccountingAction


class JobHistory(AccountingAction):
    """Finished and running jobs from Slurm accounting (slurmdeploy.slurm.accounting.Accounting.job_history)."""

    def run(self, start_time, end_time=None, users=None, accounts=None, partitions=None, states=None,
            job_names=None, clusters=None, steps=True, limit=1000, next_token=None):
        return self.call(lambda: self.accounting.job_history(
            start_time, end_time, users=users, accounts=accounts, partitions=partitions, states=states,
            job_names=job_names, clusters=clusters, steps=steps, limit=limit, next_token=next_token))
