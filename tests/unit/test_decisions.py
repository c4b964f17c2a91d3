"""The deployer's decisions (lib/slurmdeploy/decisions.py), row by row over plain data: no root,
no services, no Slurm or etcd (the integration tests are the end-to-end proof of the I/O shell).

Each table row is plain input -> the expected outcome, events or state. The README's
"Action reference" table is checked against :class:`Outcome` here too.
"""

import json
import re
from pathlib import Path

import pytest
import yaml

from slurmdeploy import decisions
from slurmdeploy.configdb import Deployment
from slurmdeploy.decisions import ACTION_OUTCOMES, FAILED_OUTCOMES, Outcome
from slurmdeploy.deployer import result
from slurmdeploy.jobs import deployment_marker
from slurmdeploy.layout import Layout
from slurmdeploy.slurm.models import JobRequest, SlurmJob
from slurmdeploy.states import DeploymentState

README = Path(__file__).resolve().parents[2] / "README.md"

KEY = "proc-pb-1"
REV = 40  # the deployment's create_revision
LABEL = "sdp_slurm_deployer_test_ns"
USER = "sdpdeployer"  # the Slurm user the pack submits as
MALLORY = "mallory"  # another cluster user: may copy label, name and marker, never user_name
ARGS = {"script": "#!/bin/bash\ntrue\n"}
PATH = Layout().deployment(KEY)


def dep(kind="slurm", revision=REV, valid=True):
    """A deployment as the Configuration DB holds it (``valid`` False: an unreadable value)."""
    return Deployment(KEY, kind, ARGS if valid else {}, revision, valid, None if valid else "not JSON")


def job(job_id=101, job_state="RUNNING", marker=REV, label=LABEL, name=f"sdp-{KEY}", user=USER, **fields):
    """A Slurm job of ``user`` (default the pack's); ``marker``: the revision in its comment's
    deployment marker (None: no marker, a lookalike), or a full comment string."""
    comment = marker if isinstance(marker, str) else (deployment_marker(KEY, marker) if marker is not None else None)
    return SlurmJob(job_id=job_id, name=name, job_state=job_state, mcs_label=label, comment=comment, user_name=user,
                    **fields)


def state(job_id=None, status="UNSET", reason=None, description=None):
    return DeploymentState(KEY, job_id, status, reason, description)


UNSET = state()
RUNNING_101 = state(101, "RUNNING", "None")
SUBMIT_FAILED_101 = state(101, "FAILED", "SubmitFailed")


def check_ok(action, decision):
    """Every decision's ``ok`` agrees with the action's failed outcomes."""
    assert decision.outcome in ACTION_OUTCOMES[action]
    assert decision.ok == (decision.outcome not in FAILED_OUTCOMES[action])


# ----------------------------------------------------------------------------- Outcome
def test_outcome_is_a_str_enum_whose_results_stay_plain_json_and_yaml():
    res = result(Outcome.SUBMITTED, KEY, job_id=7, state_written=None)
    assert res == {"outcome": "submitted", "key": KEY, "job_id": 7}
    assert type(res["outcome"]) is str  # not the enum: YAML (packrunner's history) and st2 see a plain string
    assert json.dumps(res) == '{"outcome": "submitted", "key": "proc-pb-1", "job_id": 7}'
    assert yaml.safe_load(yaml.safe_dump(res)) == res
    assert Outcome.KEPT == "kept" and str(Outcome.KEPT) == f"{Outcome.KEPT}" == "kept"
    assert result("kept", KEY)["outcome"] == "kept"
    with pytest.raises(ValueError):
        result("kepp", KEY)  # a typo is an error, not a new outcome


def test_every_outcome_belongs_to_an_action():
    assert set(Outcome) == {o for outcomes in ACTION_OUTCOMES.values() for o in outcomes}
    for action, failed in FAILED_OUTCOMES.items():
        assert set(failed) <= set(ACTION_OUTCOMES[action]), action


def readme_outcomes():
    """``{action: (ok outcomes, failed outcomes)}`` from README.md's "Action reference" table
    (``cancel.jobs``: the per-job outcomes after "per job in `jobs`:")."""
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## Action reference"):]
    section = section[:section.index("\n## ", 1)]
    found = {}
    for row in re.findall(r"^\| `slurmdeploy\.(\w+)` \|.*\| (.*) \|$", section, re.M):
        action, cell = row
        cell = re.sub(r"\([^()]*\)", "", cell)  # explanations
        scope = action
        for segment in cell.split(";"):
            segment = segment.strip()
            if segment.startswith("raises"):
                continue
            label, _, names = segment.rpartition(":")
            if label.startswith("per job"):
                scope, label = f"{action}.jobs", ""
            ok, failed = found.setdefault(scope, ([], []))
            (failed if label == "failed" else ok).extend(re.findall(r"`([a-z_]+)`", names))
    return found


def test_readme_action_reference_lists_exactly_the_outcomes_of_each_action():
    documented = readme_outcomes()
    assert set(documented) == set(ACTION_OUTCOMES)
    for action, outcomes in ACTION_OUTCOMES.items():
        ok, failed = documented[action]
        assert len(ok) == len(set(ok)) and len(failed) == len(set(failed)), (action, ok, failed)
        expected_failed = {o.value for o in FAILED_OUTCOMES[action]}
        assert set(failed) == expected_failed, action
        assert set(ok) == {o.value for o in outcomes} - expected_failed, action


# ----------------------------------------------------------------------- whose job is it
@pytest.mark.parametrize("the_job, slurm_user, expected", [
    (job(), USER, True),
    (job(user=MALLORY), USER, False),                              # label, name and marker copied
    (job(user=None), USER, False),                                 # a record without user: not proven
    (job(), None, False),                                          # the pack's user unknown: fail closed
    (job(), "", False),
    (job(user=None), None, False),
    (job(user=USER.upper()), USER, False),                         # exact match only
])
def test_own_job(the_job, slurm_user, expected):
    assert decisions.own_job(the_job, slurm_user) is expected


@pytest.mark.parametrize("the_job, the_dep, expected", [
    (job(), dep(), True),
    (job(user=MALLORY), dep(), False),                             # another user's exact copy
    (job(user=None), dep(), False),
    (job(marker=None), dep(), False),                              # label and name only: a lookalike
    (job(marker=REV - 1), dep(), False),                           # an earlier deployment with this key
    (job(marker=deployment_marker("other", 40)), dep(), False),
    (job(), dep(kind="helm"), False),                              # another kind has no job
    (job(), Deployment(KEY, None, {}, REV, False, "not JSON"), True),  # unreadable: may be ours, kept
])
def test_belongs(the_job, the_dep, expected):
    assert decisions.belongs(the_job, the_dep, USER) is expected
    assert decisions.belongs(the_job, the_dep, None) is False  # the pack's user unknown: nothing is ours


@pytest.mark.parametrize("the_job, the_dep, the_state, expected", [
    (job(), dep(), None, True),
    (job(), dep(), UNSET, True),
    (job(), dep(), RUNNING_101, True),
    (job(job_id=102), dep(), RUNNING_101, False),                  # a duplicate: the state records 101
    (job(), dep(), SUBMIT_FAILED_101, False),                      # created while Slurm said no: cancel it
    (job(marker=REV - 1), dep(), UNSET, False),
    (job(user=MALLORY), dep(), UNSET, False),                      # never kept (nor cancelled: see cancel)
])
def test_wanted_job(the_job, the_dep, the_state, expected):
    assert decisions.wanted_job(the_job, the_dep, the_state, USER) is expected
    assert decisions.unwanted(the_job, the_dep, the_state, USER) is not expected
    assert decisions.unwanted(the_job, None, None, USER) is True  # no deployment wants any job


@pytest.mark.parametrize("the_job, marked, named", [
    (job(), True, True),
    (job(marker=REV - 5), True, True),                             # any incarnation of the key
    (job(marker=None), False, True),
    (job(marker=deployment_marker("other", 40)), False, True),
    (job(label="someone_else"), True, False),
    (job(name="sdp-other"), True, False),
])
def test_marker_and_name(the_job, marked, named):
    assert decisions.has_marker(the_job, KEY) is marked
    assert decisions.names_deployment(the_job, KEY, LABEL) is named


@pytest.mark.parametrize("ids_states, picked", [
    ([(101, "RUNNING")], 101),
    ([(100, "COMPLETED"), (102, "PENDING"), (103, "RUNNING")], 102),  # the oldest unfinished
    ([(100, "COMPLETED"), (104, "FAILED")], 104),                     # else the newest
])
def test_pick_job(ids_states, picked):
    assert decisions.pick_job([job(i, s) for i, s in ids_states]).job_id == picked


# ----------------------------------------------------------------------------- observe
def events(found):
    return [(e.trigger, e.payload.get("job_id"), e.payload.get("status")) for e in found]


@pytest.mark.parametrize("the_state, owner, recorded, named, expected", [
    # a recorded job: an event only when its status changed or it is gone
    (RUNNING_101, None, job(), [], []),
    (RUNNING_101, None, job(job_state="COMPLETED"), [], [("job_state_changed", 101, "FINISHED")]),
    (RUNNING_101, None, None, [], [("job_state_changed", 101, "FAILED")]),
    (RUNNING_101, None, job(label="someone_else", marker=None), [], [("job_state_changed", 101, "FAILED")]),  # reused
    (RUNNING_101, None, job(label="someone_else", marker=REV - 1), [], [("job_state_changed", 101, "FAILED")]),
    (RUNNING_101, None, job(user=MALLORY, job_state="COMPLETED"), [], []),  # another user's: never touched
    # our job with this incarnation's marker under another label: release_name/namespace changed
    (RUNNING_101, None, job(label="sdp_slurm_deployer_old_ns"), [], []),
    (RUNNING_101, None, job(label="sdp_slurm_deployer_old_ns", job_state="COMPLETED"), [], []),
    # ... but another user's copy of it under that other label is not ours: the recorded job is gone
    (RUNNING_101, None, job(label="sdp_slurm_deployer_old_ns", user=MALLORY), [], [("job_state_changed", 101, "FAILED")]),
    (state(101, "PENDING", "Submitted"), None, job(job_state="PENDING"), [], []),
    # no job recorded
    (UNSET, {"pid": 1, "hostname": "h"}, None, [job()], []),       # a submit is in progress
    (UNSET, None, None, [job()], [("job_state_changed", 101, "RUNNING")]),  # adopt
    (UNSET, None, None, [job(100, "COMPLETED"), job(102, "PENDING")], [("job_state_changed", 102, "PENDING")]),
    (UNSET, None, None, [job(marker=None)], [("deployment_new", None, None)]),  # a lookalike is not ours
    (UNSET, None, None, [job(marker=REV - 1)], [("deployment_new", None, None)]),  # an earlier incarnation's
    (UNSET, None, None, [job(user=MALLORY)], [("deployment_new", None, None)]),  # planted before: not adopted
    (UNSET, None, None, [job(100, user=MALLORY), job(102)], [("job_state_changed", 102, "RUNNING")]),
    (UNSET, None, None, [], [("deployment_new", None, None)]),
])
def test_observe_deployment(the_state, owner, recorded, named, expected):
    found = decisions.observe_deployment(dep(), the_state, owner, recorded, named, LABEL, USER)
    assert events(found) == expected


def test_observe_events_carry_what_the_rules_pass_on():
    new, = decisions.observe_deployment(dep(), UNSET, None, None, [], LABEL, USER)
    assert new.payload == {"key": KEY, "kind": "slurm", "args": ARGS}
    gone, = decisions.observe_deployment(dep(), RUNNING_101, None, None, [], LABEL, USER)
    assert gone.payload == {"key": KEY, "job_id": 101, "job_state": "UNKNOWN", "previous_status": "RUNNING",
                            "status": "FAILED", "state_reason": "JobVanished",
                            "state_description": "Slurm job 101 is no longer known to slurmctld; its end was not "
                                                 "observed"}
    removed = decisions.removed_event(KEY, job(job_state="PENDING"))
    assert (removed.trigger, removed.payload) == ("deployment_removed", {"key": KEY, "job_id": 101,
                                                                         "job_state": "PENDING"})


def test_observe_an_unknown_job_state_skips_the_deployment():
    with pytest.raises(ValueError, match="REVOKED"):
        decisions.observe_deployment(dep(), RUNNING_101, None, job(job_state="REVOKED"), [], LABEL, USER)


# ------------------------------------------------------------------------------ submit
@pytest.mark.parametrize("the_dep, the_state, outcome", [
    (None, UNSET, "not_found"),
    (dep(kind="helm"), UNSET, "not_ours"),
    (dep(), RUNNING_101, "already_submitted"),
    (dep(), state(None, "FAILED", "InvalidDeployment"), "already_submitted"),  # terminal without a job
    (dep(), UNSET, None),                                                      # claim it and submit
])
def test_submit_precheck(the_dep, the_state, outcome):
    decision = decisions.submit_precheck(KEY, the_dep, the_state, PATH)
    if outcome is None:
        assert decision is None
        return
    assert decision.outcome == outcome and decision.state is None  # nothing is written
    check_ok("submit", decision)
    if outcome == "not_found":
        assert PATH in decision.fields["error"]


@pytest.mark.parametrize("named, adopted", [
    ([], None),
    ([job(marker=None)], None),
    ([job(marker=REV - 1)], None),
    ([job(job_state="PENDING", user=MALLORY)], None),              # planted before the submit: not adopted
    ([job(100, user=MALLORY), job(102, "PENDING")], 102),
    ([job(job_state="PENDING")], 101),
    ([job(100, "COMPLETED"), job(102, "RUNNING")], 102),
])
def test_adoption(named, adopted):
    decision = decisions.adoption(dep(), named, USER)
    if adopted is None:
        assert decision is None
        return
    check_ok("submit", decision)
    assert decision.outcome == "adopted" and decision.job.job_id == adopted
    assert decision.state.job_id == adopted and decision.fields == {"job_id": adopted,
                                                                     "status": decision.state.status}


def test_submit_states_written():
    request = JobRequest(name=f"sdp-{KEY}", script="#!/bin/bash\n", environment={}, mcs_label=LABEL,
                         current_working_directory="/tmp")
    submitted = decisions.submitted_decision(KEY, 7, request)
    invalid = decisions.invalid_decision(KEY, "args: 'script' is a required property")
    rejected = decisions.rejection_decision(KEY, 8, "Slurm rejected the job; job 8 cancelled")
    for decision in (submitted, invalid, rejected):
        check_ok("submit", decision)
    assert (submitted.outcome, submitted.state.to_dict()["jobs"][KEY]) == (
        "submitted", {"slurm_job_id": 7, "status": "PENDING", "state_reason": "Submitted",
                      "state_description": "submitted as Slurm job 7"})
    assert submitted.fields == {"job_id": 7, "job_name": f"sdp-{KEY}", "status": "PENDING", "mcs_label": LABEL}
    assert (invalid.outcome, invalid.state.job_id, invalid.state.state_reason) == ("rejected", None,
                                                                                   "InvalidDeployment")
    assert invalid.state.to_dict()["error_state"] == "args: 'script' is a required property"
    assert (rejected.state.job_id, rejected.state.state_reason) == (8, "SubmitFailed")  # the job stays tracked
    assert rejected.fields["job_id"] == 8 and rejected.state.to_dict()["error_state"].endswith("job 8 cancelled")


# ------------------------------------------------------------------------------ cancel
@pytest.mark.parametrize("the_job, the_dep, the_state, force, outcome", [
    (job(label="someone_else"), None, None, False, "refused"),
    (job(name="sdp-other"), None, None, False, "refused"),
    (job(marker=None), None, None, True, "refused"),               # a lookalike, even with force
    (job(user=MALLORY), None, None, False, "refused"),             # another user's: no cancel request, ever
    (job(user=MALLORY), None, None, True, "refused"),
    (job(102, user=MALLORY), dep(), RUNNING_101, False, "refused"),  # planted beside our live job
    (job(user=MALLORY, job_state="COMPLETED"), None, None, False, "refused"),
    (job(job_state="COMPLETED"), None, None, False, "already_finished"),
    (job(), dep(), RUNNING_101, False, "kept"),                    # the deployment still wants it
    (job(), dep(), RUNNING_101, True, "cancelled"),
    (job(), None, None, False, "cancelled"),                       # deployment gone
    (job(marker=REV - 1), dep(), UNSET, False, "cancelled"),       # an earlier incarnation's job
    (job(), dep(), SUBMIT_FAILED_101, False, "cancelled"),         # created while Slurm said no
    (job(102), dep(), RUNNING_101, False, "cancelled"),            # a duplicate
])
def test_cancel_job_decision(the_job, the_dep, the_state, force, outcome):
    decided = decisions.cancel_job_decision(KEY, the_job, the_dep, the_state, force, LABEL, USER)
    assert decided is Outcome(outcome) and decided in ACTION_OUTCOMES["cancel.jobs"]


@pytest.mark.parametrize("job_outcomes, ok, outcome", [
    ([], True, "nothing_to_cancel"),
    (["kept", "already_finished", "not_found"], True, "nothing_to_cancel"),
    (["kept", "cancelled"], True, "cancelled"),
    (["cancelled", "refused"], False, "refused"),
])
def test_cancel_summary(job_outcomes, ok, outcome):
    assert decisions.cancel_summary(job_outcomes) == (ok, outcome)
    assert (outcome in FAILED_OUTCOMES["cancel"]) is not ok


# ------------------------------------------------------------------------ update_state
@pytest.mark.parametrize("the_dep, the_state, job_id, outcome, wanted", [
    (None, None, 101, "deployment_gone", None),
    (dep(), state(101, "FINISHED", "None"), None, "terminal", None),
    (dep(), RUNNING_101, 102, "other_job", None),
    (dep(), RUNNING_101, None, None, 101),
    (dep(), RUNNING_101, 101, None, 101),
    (dep(), UNSET, 103, None, 103),
    (dep(), UNSET, None, None, None),                              # find it by name, label and marker
])
def test_update_target(the_dep, the_state, job_id, outcome, wanted):
    decision, target = decisions.update_target(the_dep, the_state, job_id)
    assert target == wanted
    if outcome is None:
        assert decision is None
    else:
        assert decision.outcome == outcome and decision.state is None
        check_ok("update_state", decision)


@pytest.mark.parametrize("the_state, wanted, the_job, outcome, written", [
    (UNSET, None, None, "no_job", None),
    (UNSET, 103, None, "no_job", None),
    (RUNNING_101, 101, None, "updated", (101, "FAILED", "JobVanished")),
    (RUNNING_101, 101, job(label="someone_else", marker=None), "updated", (101, "FAILED", "JobVanished")),  # reused
    (RUNNING_101, 101, job(label="sdp_slurm_deployer_old_ns"), "label_changed", None),  # our config changed
    (RUNNING_101, 101, job(label="sdp_slurm_deployer_old_ns", job_state="FAILED"), "label_changed", None),
    (UNSET, 555, job(555, name="someone-elses"), "refused", None),
    (UNSET, 555, job(555, label="someone_else"), "refused", None),
    (UNSET, 101, job(marker=None), "no_job", None),                # a lookalike is never adopted
    (UNSET, 101, job(user=MALLORY), "refused", None),              # nor another user's exact copy
    (UNSET, None, job(user=MALLORY), "refused", None),
    (RUNNING_101, 101, job(user=MALLORY, job_state="COMPLETED"), "refused", None),  # under our id: not written
    (UNSET, 101, job(marker=REV - 1), "no_job", None),
    (UNSET, None, job(), "updated", (101, "RUNNING", None)),       # adopted
    (RUNNING_101, 101, job(state_reason="None"), "unchanged", None),
    (state(101, "PENDING", "Submitted"), 101, job(job_state="PENDING", state_reason="Priority"), "updated",
     (101, "PENDING", "Priority")),                                # same status, new reason
    (RUNNING_101, 101, job(job_state="COMPLETED", state_reason="None"), "updated", (101, "FINISHED", "None")),
])
def test_update_decision(the_state, wanted, the_job, outcome, written):
    decision = decisions.update_decision(KEY, dep(), the_state, wanted, the_job, LABEL, USER)
    assert decision.outcome == outcome
    check_ok("update_state", decision)
    if written is None:
        assert decision.state is None
    else:
        assert (decision.state.job_id, decision.state.status, decision.state.state_reason) == written
        assert decision.fields["previous_status"] == the_state.status


def test_update_a_failed_job_says_why_in_error_state():
    failed = job(job_state="FAILED", state_reason="NonZeroExitCode", exit_code=3, exit_signal=9)
    decision = decisions.update_decision(KEY, dep(), RUNNING_101, 101, failed, LABEL, USER)
    assert decision.state.to_dict()["error_state"] == (
        "Slurm job 101 ended FAILED (state_reason NonZeroExitCode, exit code 3, signal 9)")
    reused = decisions.update_decision(KEY, dep(), RUNNING_101, 101, job(label="x", marker=None), LABEL, USER)
    assert "its id now belongs to a job without our mcs_label" in reused.state.state_description


def test_another_users_job_is_refused_with_whose_it_is():
    decision = decisions.update_decision(KEY, dep(), RUNNING_101, 101, job(user=MALLORY), LABEL, USER)
    assert decision.outcome == "refused" and not decision.ok and decision.state is None
    assert decision.fields["error"] == (f"Slurm job 101 of deployment {KEY!r} is not the pack's: its user is "
                                        f"'mallory', the pack submits as {USER!r}; never updated")


def test_an_unknown_pack_user_adopts_updates_and_cancels_nothing():
    """Fail closed: without the pack's Slurm user no job is proven ours."""
    assert decisions.adoption(dep(), [job()], None) is None
    assert decisions.update_decision(KEY, dep(), UNSET, None, job(), LABEL, None).outcome == "refused"
    assert decisions.cancel_job_decision(KEY, job(), None, None, True, LABEL, None) == "refused"
    assert events(decisions.observe_deployment(dep(), UNSET, None, None, [job()], LABEL, None)) == [
        ("deployment_new", None, None)]  # a fresh submit is still allowed


def test_a_changed_label_names_both_labels_and_the_fix():
    moved = decisions.update_decision(KEY, dep(), RUNNING_101, 101, job(label="sdp_slurm_deployer_old_ns"), LABEL,
                                      USER)
    assert (moved.ok, moved.state) == (False, None)
    assert moved.fields["mcs_label"] == "sdp_slurm_deployer_old_ns" and moved.fields["expected_mcs_label"] == LABEL
    error = moved.fields["error"]
    assert all(text in error for text in (repr(KEY), "job 101", "'sdp_slurm_deployer_old_ns'", repr(LABEL),
                                          "release_name", "namespace", "left alone", "scancel 101"))
# ------------------------------------------------------------------------------ trace tags
def test_every_event_of_a_deployment_carries_its_incarnations_trace_tag():
    from slurmdeploy.decisions import trace_tag

    assert trace_tag("demo-1", 17) == "demo-1@17" and trace_tag("demo-1", 0) is None
    dep = _trace_dep()
    new, = decisions.observe_deployment(dep, DeploymentState.from_dict("t-1", None), None, None, [], LABEL_FOR_TRACE,
                                       USER)
    assert (new.trigger, new.trace_tag) == ("deployment_new", "t-1@41")
    running = DeploymentState("t-1", 9, "PENDING")
    changed, = decisions.observe_deployment(dep, running, None, None, [], LABEL_FOR_TRACE, USER)  # job 9 vanished
    assert (changed.trigger, changed.trace_tag) == ("job_state_changed", "t-1@41")
    assert changed == decisions.Event(changed.trigger, changed.payload)  # the tag is not part of equality


def test_a_removed_job_is_traced_as_the_incarnation_its_marker_names():
    from slurmdeploy.jobs import deployment_marker
    from slurmdeploy.slurm.models import SlurmJob

    job = SlurmJob(job_id=5, name="sdp-t-1", job_state="RUNNING", comment=deployment_marker("t-1", 12))
    assert decisions.removed_event("t-1", job).trace_tag == "t-1@12"
    job = SlurmJob(job_id=6, name="sdp-t-1", job_state="RUNNING", comment=deployment_marker("other", 12))
    assert decisions.removed_event("t-1", job).trace_tag is None


LABEL_FOR_TRACE = "sdp_slurm_deployer_slurm-deployer_sdp"


def _trace_dep():
    from slurmdeploy.configdb import Deployment

    return Deployment("t-1", "slurm", {"script": "#!/bin/bash\n"}, 41)
