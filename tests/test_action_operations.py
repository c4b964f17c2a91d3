"""The operations actions (actions/lib/ops.py) as StackStorm runs them (st2tests
BaseActionTestCase), without services: the JWT read from the datastore key the config names,
sent only as Slurm's header, and a missing key reported as a failed execution naming it."""

from st2tests.base import BaseActionTestCase

from deployer_test_case import JWT_KEY, TOKEN, DeployerTestMixin, python_runner_argv, replay_slurm
from diag import Diag
from ping import Ping
from reservation_create import ReservationCreate
from slurm_replay import recorded


class PingActionTestCase(DeployerTestMixin, BaseActionTestCase):
    action_cls = Ping

    def test_jwt_from_the_datastore_reaches_slurm_only_as_its_header(self):
        self.action_service.set_value(JWT_KEY, TOKEN, local=False, encrypt=True)
        config = self.config()
        assert not any(TOKEN in arg for arg in python_runner_argv(config, {}, "ping.py"))
        action = self.get_action_instance(config=config)
        replay = replay_slurm(action.ops.client, recorded("v0.0.41", "ping"))
        ok, result = action.run()
        assert ok is True, result
        (_method, path, headers, _body), = replay.sent
        assert path == "/slurm/v0.0.41/ping"
        assert headers["X-SLURM-USER-TOKEN"] == TOKEN and headers["X-SLURM-USER-NAME"] == "slurmtest"
        assert TOKEN not in repr(result)

    def test_missing_datastore_key_fails_the_execution_naming_the_key(self):
        ok, result = self.get_action_instance(config=self.config()).run()
        assert ok is False
        assert result["error_type"] == "ConfigurationError"
        assert "slurm_jwt_key names datastore key 'slurm_jwt'" in result["error"]


class DiagActionTestCase(DeployerTestMixin, BaseActionTestCase):
    action_cls = Diag

    def test_diag_returns_slurms_statistics_without_the_token(self):
        self.action_service.set_value(JWT_KEY, TOKEN, local=False, encrypt=True)
        action = self.get_action_instance(config=self.config())
        replay_slurm(action.ops.client, recorded("v0.0.41", "diag"))
        ok, result = action.run()
        assert ok is True, result
        assert result["api_version"] == "v0.0.41"
        assert result["statistics"]["jobs_submitted"] >= 0  # sdiag counters, as recorded
        assert TOKEN not in repr(result)


class ReservationCreateActionTestCase(DeployerTestMixin, BaseActionTestCase):
    """reservation_create as StackStorm runs it, over Slurm 26.05.5's recorded answers (REST v0.0.45)."""

    action_cls = ReservationCreate

    def test_create_returns_the_record_read_back_and_a_taken_name_fails_without_a_write(self):
        self.action_service.set_value(JWT_KEY, TOKEN, local=False, encrypt=True)
        config = self.config(slurm_api_version="v0.0.45")
        start = recorded("v0.0.45", "reservation_create")["request"]["body"]["start_time"]["number"]
        action = self.get_action_instance(config=config)
        replay = replay_slurm(action.ops.client, *(recorded("v0.0.45", n) for n in (
            "reservations_none", "nodes", "reservation_create", "reservations")))
        ok, result = action.run(name="rec-resv", nodes="localhost", start_time=str(start), duration=10,
                                users=["root"])
        assert ok is True, result
        assert result["created"] is True and result["record"]["node_list"] == "localhost"
        assert [(m, p) for m, p, _, _ in replay.sent][2] == ("POST", "/slurm/v0.0.45/reservation")
        assert TOKEN not in repr(result)

        action = self.get_action_instance(config=config)
        replay = replay_slurm(action.ops.client, recorded("v0.0.45", "reservations"))
        ok, result = action.run(name="rec-resv", nodes="localhost", start_time="now", duration=10, users=["root"])
        assert ok is False and result["error_type"] == "BadRequest" and "already exists" in result["error"]
        assert [m for m, _, _, _ in replay.sent] == ["GET"]
