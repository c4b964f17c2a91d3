"""slurmdeploy.update_state as StackStorm runs it (st2tests BaseActionTestCase), without services."""

from st2tests.base import BaseActionTestCase

from action_tests import CommonActionTests
from deployer_test_case import DeployerTestMixin
from update_state import UpdateState


class UpdateStateActionTestCase(DeployerTestMixin, CommonActionTests, BaseActionTestCase):
    action_cls = UpdateState
    metadata_file = "update_state.yaml"
    run_kwargs = {"key": "proc-pb-test-20250101-00000-test"}

    def test_job_id_is_an_optional_integer(self):
        spec = self.metadata()["parameters"]["job_id"]
        assert spec["type"] == "integer" and not spec.get("required")
