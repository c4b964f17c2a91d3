"""Tests every action of the pack shares (mixed into tests/test_action_*.py): parameters, pack
config and secret handling, missing credentials, the datastore route for the JWT."""

import inspect
import os

import yaml

from deployer_test_case import JWT_KEY, PACK_DIR, TOKEN, python_runner_argv, replay_slurm
from slurm_replay import recorded
from slurmdeploy.errors import ConfigDBError, ConfigurationError, MissingAuthEnvVar


def fails_with(kind, outcome):
    """The failure result of an action's ``run`` that must have failed with a ``kind`` error: every
    action reports a library error as ``(False, slurmdeploy.errors.action_error(exc))`` (README
    "Errors"), never by raising."""
    ok, result = outcome
    assert ok is False and kind.__name__ in result["error_types"], result
    return result


class CommonActionTests:
    """Needs ``action_cls``, ``metadata_file`` (actions/<name>.yaml) and ``run_kwargs`` (valid
    parameters)."""

    metadata_file = None
    run_kwargs = None

    def metadata(self):
        with open(os.path.join(PACK_DIR, "actions", self.metadata_file)) as f:
            return yaml.safe_load(f)

    def test_metadata_parameters_are_run_arguments(self):
        meta = self.metadata()
        run = inspect.signature(self.action_cls.run).parameters
        assert set(meta["parameters"]) == set(run) - {"self"}
        for name, spec in meta["parameters"].items():
            # required parameters have no default in run(); optional ones have one
            assert (run[name].default is inspect.Parameter.empty) == bool(spec.get("required")), name
        assert meta["entry_point"] == self.metadata_file.replace(".yaml", ".py")

    def test_missing_credentials_fail_naming_the_settings(self):
        self.action_service.set_value(JWT_KEY, TOKEN, local=False, encrypt=True)
        action = self.get_action_instance(config=self.config(slurm_jwt_key=None))
        error = fails_with(MissingAuthEnvVar, action.run(**self.run_kwargs))["error"]
        for name in ("slurm_jwt_key", "slurm_jwt", "client_secret_key", "SDP_SLURMDEPLOY_SLURM_JWT"):
            assert name in error, name

    def test_jwt_is_read_from_the_datastore_and_sent_only_as_slurms_header(self):
        self.action_service.set_value(JWT_KEY, TOKEN, local=False, encrypt=True)
        action = self.get_action_instance(config=self.config())
        slurm = action.deployer.slurm
        replay = replay_slurm(slurm, recorded("v0.0.41", "ping"))
        slurm.ping()
        (_method, path, headers, _body), = replay.sent
        assert path == "/slurm/v0.0.41/ping"
        assert headers["X-SLURM-USER-TOKEN"] == TOKEN and headers["X-SLURM-USER-NAME"] == "slurmtest"
        assert TOKEN not in repr(action.deployer.settings) + repr(action.deployer.settings.public_dict())

    def test_missing_datastore_key_says_which_key_and_how_to_store_it(self):
        action = self.get_action_instance(config=self.config())
        error = fails_with(ConfigurationError, action.run(**self.run_kwargs))["error"]
        assert "slurm_jwt_key names datastore key 'slurm_jwt'" in error
        assert "st2 key set slurm_jwt <value> --encrypt" in error

    def test_jwt_both_in_config_and_by_datastore_key_is_refused(self):
        self.action_service.set_value(JWT_KEY, TOKEN, local=False, encrypt=True)
        action = self.get_action_instance(config=self.config(slurm_jwt="another." + TOKEN))
        error = fails_with(ConfigurationError, action.run(**self.run_kwargs))["error"]
        assert "either slurm_jwt or slurm_jwt_key" in error and TOKEN not in error

    def test_datastore_route_keeps_the_jwt_off_the_python_runner_command_line(self):
        # the route the README recommends: only the key's name is in the config StackStorm
        # serialises onto the wrapper's argv; the action reads the value at run time
        self.action_service.set_value(JWT_KEY, TOKEN, local=False, encrypt=True)
        config = self.config()
        argv = python_runner_argv(config, self.run_kwargs, self.metadata()["entry_point"])
        assert not any(TOKEN in arg for arg in argv)
        assert self.get_action_instance(config=config).deployer.settings.slurm_jwt == TOKEN
        # the config route puts it there, which is why the README does not recommend it
        legacy = python_runner_argv(self.config(slurm_jwt_key=None, slurm_jwt=TOKEN), self.run_kwargs,
                                    self.metadata()["entry_point"])
        assert any(TOKEN in arg for arg in legacy)

    def test_unreachable_configuration_db_fails_naming_the_endpoint_without_secrets(self):
        self.action_service.set_value(JWT_KEY, TOKEN, local=False, encrypt=True)
        action = self.get_action_instance(config=self.config())
        error = fails_with(ConfigDBError, action.run(**self.run_kwargs))["error"]
        assert f"etcd at http://127.0.0.1:{self.etcd.port}" in error
        assert TOKEN not in error
