"""Shared base of the pack's StackStorm action and sensor tests (st2tests' ``BaseActionTestCase``
/ ``BaseSensorTestCase``, or packrunner's shims of them; see tests/conftest.py).

No service is needed: the Configuration DB endpoint is a loopback port bound but never listening
(so every etcd request is refused at once, a real connection failure), and Slurm's answers are
replayed from recordings of real slurmrestd (tests/fixtures/slurm/).
"""

import json
import os
import socket
import sys
from unittest import mock

import requests

from slurm_replay import TOKEN, Replay

#: the pack root (tests/..)
PACK_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
#: the datastore key the tests store the JWT under (system scope, like `st2 key set slurm_jwt ... --encrypt`)
JWT_KEY = "slurm_jwt"


class RefusedPort:
    """A loopback TCP port that refuses connections for as long as this object lives
    (bound, never listening)."""

    def __init__(self):
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind(("127.0.0.1", 0))
        self.port = self._sock.getsockname()[1]

    def close(self):
        self._sock.close()


class DeployerTestMixin:
    """setUp/tearDown shared by the action and sensor tests: an environment without the
    deployer's ``SDP_*`` variables, a refused Configuration DB port, and :meth:`config`."""

    def setUp(self):
        super().setUp()
        clean = {k: v for k, v in os.environ.items() if not k.startswith("SDP_")}
        patcher = mock.patch.dict(os.environ, clean, clear=True)
        patcher.start()
        self.addCleanup(patcher.stop)
        self.etcd = RefusedPort()
        self.addCleanup(self.etcd.close)

    def config(self, **overrides):
        """A pack config as StackStorm passes it (no secret in it: the JWT is read from the
        datastore key ``slurm_jwt_key`` names), with ``overrides`` applied (None removes a key)."""
        config = {
            "slurm_url": "http://slurm.test:6820",
            "slurm_api_version": "v0.0.41",
            "client_id": "slurmtest",
            "slurm_jwt_key": JWT_KEY,
            "config_host": "127.0.0.1",
            "config_port": self.etcd.port,
            "connect_timeout": 1,
            "read_timeout": 2,
            "loop_interval": 5,
        }
        config.update(overrides)
        return {k: v for k, v in config.items() if v is not None}


def replay_slurm(client, *recordings):
    """Serve ``client``'s (a :class:`slurmdeploy.slurm.SlurmClient`) requests from ``recordings``;
    returns the :class:`slurm_replay.Replay` (its ``sent`` lists what was sent)."""
    replay = Replay(recordings)
    session = requests.Session()
    session.mount("http://", replay)
    client.session = session
    return replay


def python_runner_argv(config, parameters, entry_point, pack="slurmdeploy", user="stanley"):
    """The command line StackStorm's python runner starts an action with
    (``contrib/runners/python_runner/python_runner/python_runner.py``, ``PythonRunner.run``,
    StackStorm 3.8/3.9): the pack config goes on argv as ``--config=<JSON>``, so it is visible in
    ``ps`` to every local user for the action's lifetime (and logged at DEBUG)."""
    args = [sys.executable, "-u", "python_action_wrapper.py", "--pack=%s" % pack,
            "--file-path=%s" % entry_point, "--user=%s" % user, "--parent-args=%s" % json.dumps([]),
            "--parameters=%s" % json.dumps(parameters)]
    if config:
        args.append("--config=%s" % json.dumps(config))
    return args


__all__ = ["DeployerTestMixin", "JWT_KEY", "PACK_DIR", "RefusedPort", "TOKEN", "python_runner_argv", "replay_slurm"]
