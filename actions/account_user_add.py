from lib.accounts import AccountsAction


class AccountUserAdd(AccountsAction):
    """Add a user to a Slurm account (a user association) (slurmdeploy.slurm.accounts.AccountAdmin.add_user)."""

    def run(self, user, account, cluster=None, default_account=False):
        return self.call(lambda: self.accounts.add_user(user, account, cluster=cluster, default_account=default_account))
