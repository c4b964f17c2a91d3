from lib.accounts import AccountsAction


class AccountUserRemove(AccountsAction):
    """Remove a user from a Slurm account (that association) (slurmdeploy.slurm.accounts.AccountAdmin.remove_user)."""

    def run(self, user, account, cluster=None):
        return self.call(lambda: self.accounts.remove_user(user, account, cluster=cluster))
