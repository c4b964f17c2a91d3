"""Shared base of the pack's account actions (account_create, account_modify, account_delete,
account_user_add, account_user_remove, account_limits_set): slurmdbd's accounts, users and limits
through slurmrestd (:mod:`slurmdeploy.slurm.accounts`). Errors fail the execution with
``slurmdeploy.errors.action_error(exc)`` (``ReportsErrors``, README "Errors"), as every action's.
"""

from lib.accounting import AccountingAction


class AccountsAction(AccountingAction):
    """An action with :attr:`accounts`, a :class:`slurmdeploy.slurm.accounts.AccountAdmin` on the
    same SlurmClient as :attr:`accounting` (the pack's Slurm user needs AdminLevel=Operator)."""

    @property
    def accounts(self):
        from slurmdeploy.slurm.accounts import AccountAdmin

        return AccountAdmin(self.accounting.client)
