from lib.accounts import AccountsAction


class AccountDelete(AccountsAction):
    """Delete a Slurm account (slurmdeploy.slurm.accounts.AccountAdmin.delete_account)."""

    def run(self, account, cluster=None):
        return self.call(lambda: self.accounts.delete_account(account, cluster=cluster))
