"""Deployment args -> Slurm job request: validation, naming, labels, environment layering."""

import pytest

from slurmdeploy.configdb import Deployment
from slurmdeploy.errors import InvalidDeployment
from slurmdeploy.jobs import build_job, deployment_marker, job_name, key_from_job_name, parse_marker
from slurmdeploy.settings import Settings

SCRIPT = "#!/bin/bash\necho hello\n"


def settings(**config):
    return Settings.from_config(config, {"SDP_SLURM_ENV_SITE": "low", "SDP_SLURM_ENV_SHARED": "from-env"})


def deployment(args, kind="slurm", key="dep-1", revision=12):
    return Deployment(key, kind, args, revision)


def test_job_has_deployment_name_label_marker_and_script():
    job = build_job(settings(), deployment({"script": SCRIPT}), {"PATH": "/usr/bin:/bin"})
    assert job.name == "sdp-dep-1"
    assert job.mcs_label == "sdp_slurm_deployer_slurm-deployer_sdp"
    assert job.comment == deployment_marker("dep-1", 12)
    assert job.script == SCRIPT
    assert job.current_working_directory == "/tmp"


def test_environment_layers_defaults_then_sdp_slurm_env_then_config_then_deployment():
    s = settings(job_environment={"SHARED": "from-config", "CFG": "c"}, config_port=12379)
    job = build_job(s, deployment({"script": SCRIPT, "environment": {"SHARED": "from-dep", "N": 3, "B": True}}),
                    {"PATH": "/opt/bin", "LD_LIBRARY_PATH": "/opt/lib"})
    env = job.environment
    assert env["PATH"] == "/opt/bin" and env["LD_LIBRARY_PATH"] == "/opt/lib"
    assert env["SDP_CONFIG_HOST"] == "127.0.0.1" and env["SDP_CONFIG_PORT"] == "12379"
    assert env["SITE"] == "low" and env["CFG"] == "c"
    assert env["SHARED"] == "from-dep"
    assert env["N"] == "3" and env["B"] == "true"


def test_deployment_can_override_default_variables():
    job = build_job(settings(), deployment({"script": SCRIPT, "environment": {"PATH": "/mine"}}), {"PATH": "/x"})
    assert job.environment["PATH"] == "/mine"


def test_no_ld_library_path_when_the_deployer_has_none():
    job = build_job(settings(), deployment({"script": SCRIPT}), {"PATH": "/x"})
    assert "LD_LIBRARY_PATH" not in job.environment


def test_job_options_pass_through_and_partition_default_applies():
    args = {"script": SCRIPT, "time_limit": 10, "nodes": 1, "memory_per_node": 512, "current_working_directory": "/srv"}
    job = build_job(settings(job_partition="debug"), deployment(args), {})
    assert job.options()["time_limit"] == 10 and job.options()["memory_per_node"] == 512
    assert job.partition == "debug" and job.current_working_directory == "/srv"


@pytest.mark.parametrize(
    "args, message",
    [
        ({}, "args.script is required"),
        ({"script": "echo no shebang"}, "must start with #!"),
        ({"script": SCRIPT, "mcs_label": "mine"}, "args.mcs_label is not allowed"),
        ({"script": SCRIPT, "name": "x"}, "args.name is not allowed"),
        ({"script": SCRIPT, "time_limit": 0}, "args.time_limit"),
        ({"script": SCRIPT, "time_limit": "ten"}, "args.time_limit"),
        ({"script": SCRIPT, "environment": {"1BAD": "x"}}, "environment variable name '1BAD'"),
        ({"script": SCRIPT, "environment": {"OK": {"nested": 1}}}, "args.environment.OK"),
        ({"script": SCRIPT, "scirpt": 1}, "unknown field(s) args.scirpt; accepted fields:"),
        ({"script": SCRIPT, "current_working_directory": "rel"}, "absolute path"),
    ],
)
def test_invalid_args_name_the_field(args, message):
    with pytest.raises(InvalidDeployment) as err:
        build_job(settings(), deployment(args), {})
    assert message in str(err.value)
    assert "'dep-1'" in str(err.value)


def test_other_kinds_are_rejected():
    with pytest.raises(InvalidDeployment, match="only runs 'slurm'"):
        build_job(settings(), deployment({"script": SCRIPT}, kind="helm"), {})


def test_undecodable_deployment_is_rejected_with_its_problem():
    dep = Deployment("k", None, {}, 3, valid=False, problem="the stored value is not a JSON object")
    with pytest.raises(InvalidDeployment, match="not a JSON object"):
        build_job(settings(), dep, {})


def test_names_and_markers_round_trip():
    assert key_from_job_name(job_name("a-1")) == "a-1"
    assert key_from_job_name("other") is None and key_from_job_name("sdp-") is None
    assert parse_marker(deployment_marker("a-1", 99)) == ("a-1", 99)
    assert parse_marker("user comment") is None and parse_marker(None) is None
