"""``submit`` as read -> decide -> write: decisions.submit_next (pure) row by row.

Each row: what submit has read so far (:class:`decisions.SubmitFacts`) -> the next step and,
when it is done or writes, the outcome. The integration tests (test_deployer.py,
test_faults.py, test_trust.py) are the end-to-end proof of the shell that does each step.
"""

import dataclasses

import pytest
from test_decisions import KEY, MALLORY, PATH, REV, UNSET, USER, check_ok, dep, job, state

from slurmdeploy.decisions import SubmitFacts, SubmitStep, submit_next

REQUEST = object()  # stands for the JobRequest build_job made (submit_next only checks it is there)
FRESH = SubmitFacts(KEY, PATH, dep(), UNSET, None, REQUEST)
CLAIMED = dataclasses.replace(FRESH, claimed=True, claim_state=UNSET)
RETRIED = dataclasses.replace(CLAIMED, attempt=REV)  # a previous attempt of this incarnation left /attempt


def facts(base, **changes):
    return dataclasses.replace(base, **changes)


TABLE = {
    "no deployment": (facts(FRESH, dep=None, request=None), SubmitStep.DONE, "not_found"),
    "another kind": (facts(FRESH, dep=dep(kind="helm"), request=None), SubmitStep.DONE, "not_ours"),
    "a job already recorded": (facts(FRESH, state=state(101, "RUNNING")), SubmitStep.DONE, "already_submitted"),
    "a terminal state without a job": (facts(FRESH, state=state(None, "FAILED")), SubmitStep.DONE,
                                       "already_submitted"),
    "a fresh deployment is claimed first": (FRESH, SubmitStep.CLAIM, None),
    "invalid args are claimed first too (the FAILED state is written under the claim)": (
        facts(FRESH, request=None, invalid="args.script is required"), SubmitStep.CLAIM, None),
    "claimed by another submit": (facts(FRESH, claimed=False), SubmitStep.DONE, "claimed_elsewhere"),
    "the claim read a job another submit recorded": (facts(CLAIMED, claim_state=state(102, "PENDING")),
                                                     SubmitStep.DONE, "already_submitted"),
    "claimed, no trace: submitted without listing the cluster": (CLAIMED, SubmitStep.SUBMIT, None),
    "a trace of an earlier incarnation: no listing": (facts(CLAIMED, attempt=REV - 5), SubmitStep.SUBMIT, None),
    "a trace of this incarnation: list the jobs named sdp-<key>": (RETRIED, SubmitStep.FIND_JOB, None),
    "the listed job of this incarnation is adopted": (facts(RETRIED, named=(job(),)), SubmitStep.WRITE, "adopted"),
    "another user's copy is never adopted": (facts(RETRIED, named=(job(user=MALLORY),)), SubmitStep.SUBMIT, None),
    "nothing listed: submit": (facts(RETRIED, named=()), SubmitStep.SUBMIT, None),
    "invalid args under the claim: rejected": (facts(CLAIMED, request=None, invalid="args.script is required"),
                                               SubmitStep.WRITE, "rejected"),
}


@pytest.mark.parametrize("read, step, outcome", TABLE.values(), ids=TABLE.keys())
def test_submit_next(read, step, outcome):
    got, decision = submit_next(read, USER)
    assert got is step
    assert (decision.outcome.value if decision is not None else None) == outcome
    if decision is not None:
        check_ok("submit", decision)


def test_the_adopted_state_records_the_listed_job_and_the_rejected_one_the_reason():
    _, adopted = submit_next(facts(RETRIED, named=(job(job_state="PENDING"),)), USER)
    assert (adopted.state.job_id, adopted.state.status) == (101, "PENDING")
    _, rejected = submit_next(facts(CLAIMED, request=None, invalid="args.script is required"), USER)
    assert (rejected.state.status, rejected.state.state_reason, rejected.state.error_state) == (
        "FAILED", "InvalidDeployment", "args.script is required")
