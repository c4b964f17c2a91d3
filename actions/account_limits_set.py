from lib.accounts import AccountsAction


class AccountLimitsSet(AccountsAction):
    """Set or clear limits of a Slurm account or of a user in it (slurmdeploy.slurm.accounts.AccountAdmin.set_limits)."""

    def run(self, account, limits, user=None, cluster=None):
        return self.call(lambda: self.accounts.set_limits(account, limits, user=user, cluster=cluster))
