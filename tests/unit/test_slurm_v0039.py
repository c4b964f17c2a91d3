"""The v0.0.39 adapter (Slurm 23.02/23.11) against Slurm's own definitions.

No Slurm 23.x is packaged for Debian, so v0.0.39 cannot run here (see README, "Support
matrix"). It is verified in two layers:

1. Slurm's v0.0.39 OpenAPI template (``tests/fixtures/slurm/v0.0.39/openapi_template.json``,
   a copy of Slurm's ``src/plugins/openapi/v0.0.39/openapi.json``): paths, the submit envelope and the
   response envelopes. slurmrestd fills its ``DATA_PARSER_*`` refs at run time from the
   data_parser's parser tables; here they are filled with :data:`JOB_DESC_MSG`, a
   transcription of ``PARSER_ARRAY(JOB_DESC_MSG)`` in
   ``src/plugins/data_parser/v0.0.39/parsers.c`` restricted to the fields the adapter
   writes, with ``additionalProperties: false`` (v0.0.39 silently ignores unknown keys, so
   a misspelt key would otherwise be lost).
2. Job records and submit answers in the shapes ``parsers.c`` dumps (``JOB_INFO``: the
   23.02.0-.3 form with ``exit_code`` a plain wait status, and the 23.02.4+ form with
   ``UINT32_NO_VAL``), derived from the recorded Slurm 22.05 record of the same job.
"""

import copy
import json
from pathlib import Path

import jsonschema
import pytest

from slurmdeploy.layout import deployment_marker
from slurmdeploy.slurm import JobRequest
from slurmdeploy.slurm.versions import adapter

TEMPLATE = Path(__file__).resolve().parents[1] / "fixtures" / "slurm" / "v0.0.39" / "openapi_template.json"
RECORDED_22_05 = Path(__file__).resolve().parent.parent / "fixtures" / "slurm" / "v0.0.38"
API = adapter("v0.0.39")

#: parsers.c SPEC_FUNC(UINT64_NO_VAL): the schema of v0.0.39_uint32_no_val
NO_VAL = {"type": "object", "properties": {"set": {"type": "boolean"}, "infinite": {"type": "boolean"},
                                            "number": {"type": "integer"}}}
#: PARSER_ARRAY(JOB_DESC_MSG) of data_parser/v0.0.39/parsers.c, for the fields the adapter
#: writes (add_parse(STRING, ...), add_parse(UINT32_NO_VAL, time_limit, ...), the
#: environment's STRING_ARRAY, add_cparse_req(JOB_DESC_MSG_ENV, "environment") from 23.02.4,
#: JOB_MEM_PER_NODE taking an int (MB) in every 23.02 release)
JOB_DESC_MSG = {
    "type": "object",
    "additionalProperties": False,
    "required": ["environment"],
    "properties": {
        **{k: {"type": "string"} for k in (
            "name", "script", "current_working_directory", "mcs_label", "partition", "account", "qos",
            "comment", "standard_output", "standard_error")},
        "environment": {"type": "array", "items": {"type": "string", "pattern": "^[^=]+="}},
        "time_limit": NO_VAL,
        "minimum_nodes": {"type": "integer", "minimum": 0},
        "maximum_nodes": {"type": "integer", "minimum": 0},
        "tasks": {"type": "integer", "minimum": 0},
        "cpus_per_task": {"type": "integer", "minimum": 0, "maximum": 65535},
        "memory_per_node": {"type": "integer", "minimum": 0},
    },
}


@pytest.fixture(scope="module")
def template():
    return json.loads(TEMPLATE.read_text())


def _schema(template, name, fill):
    """``components.schemas[name]`` with its ``DATA_PARSER_*`` refs replaced by ``fill``
    (placeholder -> schema; any other placeholder must not be reached) and local refs
    resolvable."""
    doc = copy.deepcopy(template)

    def walk(node):
        if isinstance(node, dict):
            ref = node.get("$ref", "")
            if ref.startswith("DATA_PARSER_"):
                node.clear()
                node.update(fill.get(ref, {"not": {}}))
                return
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(doc["components"])
    return dict(doc["components"]["schemas"][name], components=doc["components"])


def _full_request():
    return JobRequest(
        name="sdp-demo", script="#!/bin/bash\nsrun hostname\n", environment={"PATH": "/usr/bin:/bin", "A": "1"},
        mcs_label="sdp_slurm_deployer_slurm-deployer_sdp", current_working_directory="/tmp", partition="debug",
        account="acct", qos="normal", comment=deployment_marker("demo", 7), time_limit=30, nodes=2, tasks=4,
        cpus_per_task=2, memory_per_node=2048, standard_output="/tmp/%j.out", standard_error="/tmp/%j.err",
    )


def test_template_serves_every_path_the_adapter_uses(template):
    prefix = template["servers"][0]["url"].rstrip("/")
    assert prefix == "/slurm/v0.0.39"
    paths = {prefix + p.rstrip("/") for p in template["paths"]}
    for path in (API.ping_path(), API.diag_path(), API.jobs_path(), API.submit_path()):
        assert path in paths
    assert "post" in template["paths"]["/job/submit"]
    assert {"get", "delete"} <= set(template["paths"]["/job/{job_id}"])
    signal = [p for p in template["paths"]["/job/{job_id}"]["delete"]["parameters"] if p["name"] == "signal"]
    assert signal and "TERM" in signal[0]["schema"]["enum"]


@pytest.mark.parametrize("request_", [_full_request(), JobRequest(
    name="sdp-min", script="#!/bin/bash\ntrue\n", environment={"PATH": "/bin"}, mcs_label="l",
    current_working_directory="/tmp")], ids=["every-option", "minimal"])
def test_submit_body_is_valid_for_the_v0039_job_submission_schema(template, request_):
    schema = _schema(template, "v0.0.39_job_submission",
                     {"DATA_PARSER_JOB_DESC_MSG": JOB_DESC_MSG, "DATA_PARSER_JOB_DESC_MSG_LIST": {"not": {}}})
    body = API.submit_body(request_)
    jsonschema.validate(body, schema)
    assert set(body) == {"job"} and body["job"]["script"] == request_.script


def test_the_filled_schema_catches_what_slurm_would_drop_or_refuse(template):
    """The check above can fail: a misspelt key (silently dropped by v0.0.39), an
    environment dict of the v0.0.38 shape, a missing environment (23.02.4+)."""
    schema = _schema(template, "v0.0.39_job_submission", {"DATA_PARSER_JOB_DESC_MSG": JOB_DESC_MSG})
    good = API.submit_body(_full_request())
    bad_bodies = [
        {"job": dict(good["job"], time_limt=good["job"]["time_limit"])},
        {"job": dict(good["job"], environment={"PATH": "/bin"})},
        {"job": {k: v for k, v in good["job"].items() if k != "environment"}},
        {"job": dict(good["job"], memory_per_node={"set": True, "infinite": False, "number": 1})},
        {"script": 7, "job": good["job"]},
    ]
    for body in bad_bodies:
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(body, schema)
    assert adapter("v0.0.38").submit_body(_full_request())["job"]["environment"] == {"PATH": "/usr/bin:/bin", "A": "1"}


def test_submit_answer_in_the_template_s_shape_gives_the_job_id(template):
    # jobs.c _job_post_submit: result + the top-level copy "for backwards compatibility"
    answer = {"meta": {"plugin": {"type": "openapi/v0.0.39", "name": "Slurm OpenAPI v0.0.39"},
                       "Slurm": {"version": {"major": 23, "micro": 5, "minor": 2}, "release": "23.02.5"}},
              "errors": [], "warnings": [], "job_id": 42, "step_id": "batch", "job_submit_user_msg": "",
              "result": {"job_id": 42, "step_id": "batch", "error_code": 0, "error": "No error",
                         "job_submit_user_msg": ""}}
    jsonschema.validate(answer, _schema(template, "v0.0.39_job_submission_response", {}))
    assert API.submitted_job_id(answer) == 42
    assert API.submitted_job_id({"result": {"job_id": 43}}) == 43
    assert API.submitted_job_id({"errors": [{"error_number": 2019}]}) is None


def _record(name, **changes):
    """A recorded Slurm 22.05 job record, re-shaped as v0.0.39 dumps it (parsers.c JOB_INFO)."""
    record = json.loads((RECORDED_22_05 / f"{name}.json").read_text())["body"]["jobs"][0]
    record["time_limit"] = ({"set": True, "infinite": False, "number": record["time_limit"]}
                            if record["time_limit"] else {"set": False, "infinite": True, "number": 0})
    record.update(changes)
    return record


@pytest.mark.parametrize("exit_code", [768, {"set": True, "infinite": False, "number": 768}],
                         ids=["23.02.0-3 plain", "23.02.4+ no_val"])
def test_job_records_of_both_23_02_forms_are_normalised(exit_code):
    failed = API.parse_job(_record("job_failed", exit_code=exit_code))
    assert (failed.job_state, failed.exit_code, failed.exit_signal, failed.finished) == ("FAILED", 3, None, True)
    assert failed.state_reason == "NonZeroExitCode" and failed.time_limit is None
    completed = API.parse_job(_record("job_completed"))
    assert (completed.job_state, completed.exit_code, completed.time_limit) == ("COMPLETED", 0, 5)
    assert completed.end_time >= completed.start_time >= completed.submit_time > 1.7e9


@pytest.mark.parametrize("exit_code", [4294967294, 4294967295, {"set": False, "infinite": False, "number": 0}])
def test_pending_job_has_no_exit_code(exit_code):
    job = API.parse_job(_record("job_pending_or_running", exit_code=exit_code, job_state="PENDING"))
    assert (job.job_state, job.exit_code, job.exit_signal, job.finished) == ("PENDING", None, None, False)


def test_a_flag_shown_instead_of_the_base_state_is_kept_as_a_flag():
    job = API.parse_job(_record("job_cancelled", job_state="COMPLETING"))
    assert (job.job_state, job.state_flags, job.base_state_known) == ("COMPLETING", ("COMPLETING",), False)
    killed = API.parse_job(_record("job_cancelled", exit_code={"set": True, "infinite": False, "number": 15}))
    assert (killed.job_state, killed.exit_code, killed.exit_signal) == ("CANCELLED", 0, 15)
