from lib.accounting import AccountingAction


class UsageReport(AccountingAction):
    """Usage per account and/or user in TRES-minutes (slurmdeploy.slurm.accounting.Accounting.usage_report)."""

    def run(self, start_time=None, end_time=None, period=None, group_by="account", accounts=None, users=None,
            partitions=None, clusters=None, output="json"):
        return self.call(lambda: self.accounting.usage_report(
            start_time, end_time, group_by=group_by, accounts=accounts, users=users, partitions=partitions,
            clusters=clusters, output=output, period=period))
