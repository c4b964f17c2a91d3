"""The account actions (actions/lib/accounts.py) as StackStorm runs them (st2tests
BaseActionTestCase), over slurmdbd answers recorded from Slurm 26.05.5 (REST v0.0.45): a refused
write fails the execution with a named error and no token; the same on real slurmdbd:
tests/integration/test_accounts.py."""

from st2tests.base import BaseActionTestCase

from account_create import AccountCreate
from deployer_test_case import JWT_KEY, TOKEN, DeployerTestMixin, replay_slurm
from slurm_replay import recorded

V = "v0.0.45"


class AccountCreateActionTestCase(DeployerTestMixin, BaseActionTestCase):
    action_cls = AccountCreate

    def test_without_admin_level_the_execution_fails_naming_the_fix_and_nothing_else_is_sent(self):
        self.action_service.set_value(JWT_KEY, TOKEN, local=False, encrypt=True)
        action = self.get_action_instance(config=self.config(slurm_api_version=V))
        replay = replay_slurm(action.accounting.client, *[recorded(V, n) for n in (
            "accounts_clusters", "accounts_account_unknown", "accounts_associations_none",
            "accounts_associations_parent", "accounts_create_denied")])
        ok, result = action.run(account="recacct", parent="labaccount", description="recorded",
                                organization="slurmdeploy")
        assert ok is False
        assert result["error_type"] == "AdminLevelRequired"
        assert "needs AdminLevel=Operator (sacctmgr modify user slurmtest set adminlevel=Operator)" in result["error"]
        assert result["slurm_errors"] == [2002] and result["http_status"] == 422
        writes = [(m, p) for m, p, _h, _b in replay.sent if m != "GET"]
        assert writes == [("POST", f"/slurmdb/{V}/accounts_association/")]
        assert TOKEN not in repr(result)

    def test_an_existing_account_is_exists_without_a_write(self):
        self.action_service.set_value(JWT_KEY, TOKEN, local=False, encrypt=True)
        action = self.get_action_instance(config=self.config(slurm_api_version=V))
        replay = replay_slurm(action.accounting.client, *[recorded(V, n) for n in (
            "accounts_clusters", "accounts_account", "accounts_associations")])
        ok, result = action.run(account="recacct", parent="labaccount")
        assert ok is True, result
        assert (result["result"], result["account"], result["parent"], result["description"]) == \
            ("exists", "recacct", "labaccount", "recorded")
        assert all(m == "GET" for m, _p, _h, _b in replay.sent)
