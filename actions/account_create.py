from lib.accounts import AccountsAction


class AccountCreate(AccountsAction):
    """Create a Slurm account with its association (slurmdeploy.slurm.accounts.AccountAdmin.create_account)."""

    def run(self, account, parent="root", description=None, organization=None, cluster=None):
        return self.call(lambda: self.accounts.create_account(account, parent=parent, description=description, organization=organization, cluster=cluster))
