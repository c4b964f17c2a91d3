"""slurmdeploy.deployment_create / deployment_list / deployment_delete as StackStorm runs them
(st2tests BaseActionTestCase), without services: the Configuration DB port refuses connections,
so an action that returns an answer proves it sent nothing to etcd. The same actions against a
real etcd: tests/integration/test_deployment_actions.py."""

import inspect
import os

import yaml
from st2tests.base import BaseActionTestCase

from action_tests import fails_with
from deployer_test_case import JWT_KEY, PACK_DIR, TOKEN, DeployerTestMixin
from deployment_create import DeploymentCreate
from deployment_delete import DeploymentDelete
from deployment_list import DeploymentList
from slurmdeploy.errors import ConfigDBError

GOOD_ARGS = {"script": "#!/bin/bash\necho hi\n"}


def _metadata(name):
    with open(os.path.join(PACK_DIR, "actions", f"{name}.yaml")) as f:
        return yaml.safe_load(f)


class DeploymentActionsTestCase(DeployerTestMixin, BaseActionTestCase):
    action_cls = DeploymentCreate

    def setUp(self):
        super().setUp()
        self.action_service.set_value(JWT_KEY, TOKEN, local=False, encrypt=True)

    def instance(self, cls):
        self.action_cls = cls
        return self.get_action_instance(config=self.config())

    def test_metadata_parameters_are_run_arguments(self):
        for name, cls in (("deployment_create", DeploymentCreate), ("deployment_list", DeploymentList),
                          ("deployment_delete", DeploymentDelete)):
            meta = _metadata(name)
            run = inspect.signature(cls.run).parameters
            assert set(meta["parameters"]) == set(run) - {"self"}, name
            for pname, spec in meta["parameters"].items():
                assert (run[pname].default is inspect.Parameter.empty) == bool(spec.get("required")), pname
                if "default" in spec:
                    assert run[pname].default == spec["default"], pname

    def test_a_key_ska_sdp_config_rejects_is_refused_before_etcd_is_asked(self):
        for key in ("has space", "a/b", "x" * 97, "", "ünï"):
            ok, result = self.instance(DeploymentCreate).run(key=key, args=GOOD_ARGS)
            assert not ok and result["outcome"] == "invalid", key
            assert "^[A-Za-z0-9\\-]{1,96}$" in result["error"]

    def test_bad_args_are_refused_as_submit_would_naming_the_field(self):
        ok, result = self.instance(DeploymentCreate).run(key="demo-1", args={"scirpt": "#!/bin/bash\n"})
        assert not ok and result["outcome"] == "invalid"
        assert "args.script is required" in result["error"] and "unknown field(s) args.scirpt" in result["error"]
        assert "'demo-1'" in result["error"]
        ok, result = self.instance(DeploymentCreate).run(key="demo-1", args={**GOOD_ARGS, "mcs_label": "x"})
        assert not ok and "args.mcs_label is not allowed" in result["error"]

    def test_an_unknown_kind_is_refused(self):
        ok, result = self.instance(DeploymentCreate).run(key="demo-1", args=GOOD_ARGS, kind="batch")
        assert not ok and result["outcome"] == "invalid" and "slurm, helm" in result["error"]

    def test_a_valid_deployment_goes_to_etcd(self):
        # the refused port: it tried to write
        result = fails_with(ConfigDBError, self.instance(DeploymentCreate).run(key="demo-1", args=GOOD_ARGS))
        assert f"127.0.0.1:{self.etcd.port}" in result["error"] and result["error_type"] == "ConfigDBError"

    def test_list_and_delete_read_etcd_and_delete_refuses_a_bad_key_first(self):
        fails_with(ConfigDBError, self.instance(DeploymentList).run())
        fails_with(ConfigDBError, self.instance(DeploymentDelete).run(key="demo-1"))
        ok, result = self.instance(DeploymentDelete).run(key="a/b")
        assert not ok and result["outcome"] == "invalid"

    def test_no_slurm_client_is_built(self):
        action = self.instance(DeploymentCreate)
        action.run(key="demo-1", args={})  # invalid: no request at all
        assert action.settings.slurm_url == "http://slurm.test:6820"
        assert not hasattr(action, "deployer")
