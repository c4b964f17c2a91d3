"""slurmdeploy.cancel as StackStorm runs it (st2tests BaseActionTestCase), without services."""

import inspect

from st2tests.base import BaseActionTestCase

from action_tests import CommonActionTests
from cancel import Cancel
from deployer_test_case import DeployerTestMixin


class CancelActionTestCase(DeployerTestMixin, CommonActionTests, BaseActionTestCase):
    action_cls = Cancel
    metadata_file = "cancel.yaml"
    run_kwargs = {"key": "proc-pb-test-20250101-00000-test", "job_id": 4242}

    def test_force_defaults_to_false_in_metadata_and_run(self):
        assert self.metadata()["parameters"]["force"]["default"] is False
        assert inspect.signature(Cancel.run).parameters["force"].default is False
