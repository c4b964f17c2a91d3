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


# --- the jsonschema-free check of valid args (slurmdeploy.jobs.plainly_valid) --------------

def _args_corpus():
    """Args built from good and bad values of every field (each field alone and a few mixes),
    with the type confusions JSON allows (bool for int, 1.0, None, lists, nested objects)."""
    import itertools

    odd = [None, True, False, 0, -1, 1.0, 1.5, "", "x", [], {}, ["#!"], {"a": 1}, float("nan")]
    fields = {
        "script": [SCRIPT, "#!", "echo", " #!/bin/sh", "\n#!/bin/sh", "#!/bin/sh\n"],
        "environment": [{}, {"OK": "v"}, {"_A1": 1, "B": 2.5, "C": True}, {"1BAD": "x"}, {"OK\n": "x"},
                        {"": "x"}, {"OK": None}, {"OK": ["x"]}, {"OK": {"n": 1}}, {"A-B": "x"}],
        "current_working_directory": ["/srv", "/", "rel", "\n/x", "./x"],
        "partition": ["debug"], "account": ["acct"], "qos": ["normal"],
        "time_limit": [1, 10, 2**40], "nodes": [1, 3], "tasks": [2], "cpus_per_task": [4],
        "memory_per_node": [512], "standard_output": ["/tmp/o"], "standard_error": ["e"],
    }
    yield {}
    for name, good in fields.items():
        for value in good + odd:
            yield {"script": SCRIPT, name: value}
            yield {name: value}
    for name in ("scirpt", "job_name", ""):
        yield {"script": SCRIPT, name: 1}
    names = list(fields)
    for a, b in itertools.combinations(names, 2):
        for va, vb in itertools.product(fields[a][:2] + [None, 0], fields[b][:2] + [True, ""]):
            yield {"script": SCRIPT, a: va, b: vb}
    yield {name: values[0] for name, values in fields.items()}
    for value in odd:
        yield value


def test_plainly_valid_never_accepts_what_jsonschema_rejects_and_accepts_usual_args():
    import jsonschema

    from slurmdeploy.jobs import ARGS_SCHEMA, plainly_valid

    validator = jsonschema.Draft7Validator(ARGS_SCHEMA)
    seen = fast = rejected = 0
    for args in _args_corpus():
        seen += 1
        if plainly_valid(ARGS_SCHEMA, args):
            fast += 1
            assert validator.is_valid(args), f"plainly_valid accepted what jsonschema rejects: {args!r}"
        elif not validator.is_valid(args):
            rejected += 1
        else:  # valid but left to jsonschema: only integers written as floats (1.0)
            assert any(type(v) is float for v in args.values()), args
    assert seen > 1000 and rejected > 1000 and fast > 150
    usual = {"script": SCRIPT, "environment": {"SDP_X": "1", "N": 2, "F": False}, "time_limit": 10,
             "partition": "debug", "nodes": 1, "current_working_directory": "/srv"}
    assert plainly_valid(ARGS_SCHEMA, usual)


def test_plainly_valid_answers_false_for_keywords_it_does_not_know():
    from slurmdeploy.jobs import plainly_valid

    assert plainly_valid({"type": "string", "minLength": 1}, "x")
    assert not plainly_valid({"type": "string", "maxLength": 3}, "x")  # unknown keyword: ask jsonschema
    assert not plainly_valid({"type": "array"}, [])                     # unknown type: ask jsonschema
    assert not plainly_valid({"type": "integer"}, 1.0)                  # jsonschema's call (it accepts 1.0)
    assert not plainly_valid({"type": "integer"}, True)                 # bool is no integer


def test_valid_args_are_checked_without_importing_jsonschema():
    """A submit of valid args does not import jsonschema (~50-60 ms in a StackStorm action
    process); invalid args still get jsonschema's wording (test_invalid_args_name_the_field)."""
    import subprocess
    import sys
    from pathlib import Path

    lib = Path(__file__).resolve().parents[2] / "lib"
    code = (
        "import sys\n"
        "from slurmdeploy.jobs import validate_args\n"
        f"validate_args('k', {{'script': {SCRIPT!r}, 'time_limit': 5, 'environment': {{'A': 'b'}}}})\n"
        "print('jsonschema' in sys.modules)\n"
        "try:\n"
        "    validate_args('k', {'script': 'no shebang'})\n"
        "except Exception as exc:\n"
        "    print('jsonschema' in sys.modules, type(exc).__name__)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], env={"PYTHONPATH": str(lib), "PATH": "/usr/bin:/bin"},
                         capture_output=True, text=True, check=True).stdout.split("\n")
    assert out[0] == "False", out
    assert out[1] == "True InvalidDeployment", out
