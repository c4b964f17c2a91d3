from lib.accounts import AccountsAction


class AccountModify(AccountsAction):
    """Change a Slurm account's description, organization or parent (slurmdeploy.slurm.accounts.AccountAdmin.modify_account)."""

    def run(self, account, description=None, organization=None, parent=None, cluster=None):
        return self.call(lambda: self.accounts.modify_account(account, description=description, organization=organization, parent=parent, cluster=cluster))
