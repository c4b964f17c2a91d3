"""slurmdeploy.submit as StackStorm runs it (st2tests BaseActionTestCase), without services."""

import json
import os
import subprocess
import sys

from st2tests.base import BaseActionTestCase

from action_tests import CommonActionTests
from deployer_test_case import DeployerTestMixin
from submit import Submit


class SubmitActionTestCase(DeployerTestMixin, CommonActionTests, BaseActionTestCase):
    action_cls = Submit
    metadata_file = "submit.yaml"
    run_kwargs = {"key": "proc-pb-test-20250101-00000-test"}

    def test_args_parameter_is_an_object(self):
        assert self.metadata()["parameters"]["args"]["type"] == "object"


# What StackStorm's python-runner wrapper leaves for a library logger: no root handler; the action
# gets a stderr logger of its own. log_level decides whether the library's INFO lines show.
LOG_PROBE = """
import json, logging, sys
from submit import Submit
action = Submit(config=json.loads(sys.argv[1]))
settings = action.deployer.settings
logging.getLogger("slurmdeploy.deployer").info("library INFO line")
logging.getLogger("slurmdeploy.deployer").debug("library DEBUG line")
"""


def _run_probe(config, tmp_path):
    env = dict({k: v for k, v in os.environ.items() if not k.startswith("SDP_")},
               PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    return subprocess.run([sys.executable, "-c", LOG_PROBE, json.dumps(config)], capture_output=True, text=True,
                          timeout=60, env=env, cwd=str(tmp_path))


def test_library_info_lines_reach_stderr_at_log_level_info(tmp_path):
    config = {"slurm_url": "http://slurm.test:6820", "slurm_jwt": "a.b.c", "client_id": "u"}
    p = _run_probe(config, tmp_path)
    assert p.returncode == 0, p.stderr
    assert "INFO slurmdeploy.deployer: library INFO line" in p.stderr
    assert "library DEBUG line" not in p.stderr and p.stdout == ""


def test_log_level_setting_is_applied(tmp_path):
    config = {"slurm_url": "http://slurm.test:6820", "slurm_jwt": "a.b.c", "client_id": "u"}
    quiet = _run_probe(dict(config, log_level="WARNING"), tmp_path)
    assert quiet.returncode == 0, quiet.stderr
    assert "library INFO line" not in quiet.stderr
    loud = _run_probe(dict(config, log_level="DEBUG"), tmp_path)
    assert "DEBUG slurmdeploy.deployer: library DEBUG line" in loud.stderr
