"""One observation pass (decisions.plan_observation, pure) row by row over plain data, and the
sensor's job view (jobview.JobView) over answers recorded from real slurmrestd.

Each row of TABLE: a Configuration DB snapshot, our jobs as read, the observed keys and the
jobs read by id -> the events, the jobs still to read, the jobs to confirm as removed and the
notices. No service: the integration tests (test_watch.py, test_trust.py,
test_label_change.py) are the end-to-end proof of the shell.
"""

import logging

import pytest
from test_decisions import KEY, LABEL, MALLORY, REV, USER, dep, job, state
from test_slurm_recorded import replay_client

from slurm_replay import recorded
from slurmdeploy import decisions
from slurmdeploy.configdb import Deployment, Snapshot
from slurmdeploy.decisions import DEPLOYMENT_NEW, JOB_STATE_CHANGED
from slurmdeploy.jobview import JobView, ViewMode
from slurmdeploy.states import DeploymentState

OTHER = "proc-pb-2"


def snap(deployments=(), states=None, owners=None):
    """A snapshot of ``deployments`` (Deployment list), ``states`` (key -> DeploymentState)."""
    return Snapshot({d.key: d for d in deployments}, {k: (s, 7) for k, s in (states or {}).items()},
                    dict(owners or {}), 100)


def other_dep(kind="slurm"):
    return Deployment(OTHER, kind, {"script": "#!/bin/bash\ntrue\n"}, 60)


def summary(plan):
    return ([(e.trigger, e.payload["key"], e.payload.get("job_id"), e.payload.get("status")) for e in plan.events],
            sorted(plan.read_jobs), [(k, j.job_id) for k, j in plan.confirm],
            sorted((n.level, n.identity[0] if n.identity else None) for n in plan.notices))


W, E, D = logging.WARNING, logging.ERROR, logging.DEBUG

TABLE = {
    "a fresh deployment is new": (
        snap([dep()]), [], None, None,
        ([(DEPLOYMENT_NEW, KEY, None, None)], [], [], [])),
    "a fresh deployment being submitted (owner) waits": (
        snap([dep()], owners={KEY: {"pid": 1, "hostname": "h"}}), [], None, None,
        ([], [], [], [(D, None)])),
    "a recorded job the jobs read lack is read by id first": (
        snap([dep()], {KEY: state(101, "RUNNING", "None")}), [], None, None,
        ([], [101], [], [])),
    "... and when Slurm no longer knows it, it vanished": (
        snap([dep()], {KEY: state(101, "RUNNING", "None")}), [], None, {101: None},
        ([(JOB_STATE_CHANGED, KEY, 101, "FAILED")], [], [], [])),
    "a recorded job whose status changed": (
        snap([dep()], {KEY: state(101, "PENDING", "Priority")}), [job()], None, None,
        ([(JOB_STATE_CHANGED, KEY, 101, "RUNNING")], [], [], [])),
    "a terminal state is left alone": (
        snap([dep()], {KEY: state(101, "FINISHED")}), [job(job_state="COMPLETED")], None, None,
        ([], [], [], [])),
    "a job of this incarnation not recorded yet is adopted": (
        snap([dep()]), [job()], None, None,
        ([(JOB_STATE_CHANGED, KEY, 101, "RUNNING")], [], [], [])),
    "a deleted deployment's job is confirmed before it is reported": (
        snap(), [job()], None, None,
        ([], [], [(KEY, 101)], [])),
    "a lookalike (no marker) is logged, never reported": (
        snap(), [job(marker=None)], None, None,
        ([], [], [], [(W, "lookalike")])),
    "another user's copy with the marker is logged, never reported": (
        snap(), [job(user=MALLORY)], None, None,
        ([], [], [], [(W, "foreign")])),
    "a recorded job under another mcs_label: our label changed, no event": (
        snap([dep()], {KEY: state(101, "RUNNING", "None")}), [], None, {101: job(label="sdp_slurm_deployer_old_ns")},
        ([], [], [], [(E, "label")])),
    "a helm deployment's state is not tracked": (
        snap([dep(kind="helm")], {KEY: state(101, "RUNNING", "None")}), [], None, None,
        ([], [], [], [])),
    "a watch wake observes only its keys": (
        snap([dep(), other_dep()], {KEY: state(101, "PENDING", "Priority")}), [job()], {OTHER}, None,
        ([(DEPLOYMENT_NEW, OTHER, None, None)], [], [], [])),
    "a watch wake of a deleted key confirms its job": (
        snap([other_dep()]), [job()], {KEY}, None,
        ([], [], [(KEY, 101)], [])),
}


@pytest.mark.parametrize("snapshot, jobs, keys, read, expected", TABLE.values(), ids=TABLE.keys())
def test_plan_observation(snapshot, jobs, keys, read, expected):
    assert summary(decisions.plan_observation(snapshot, jobs, keys, LABEL, USER, read)) == expected


def test_events_carry_the_incarnation_trace_tag():
    plan = decisions.plan_observation(snap([dep()]), [], None, LABEL, USER)
    assert [e.trace_tag for e in plan.events] == [f"{KEY}@{REV}"]


def test_a_job_the_state_vouches_for_belongs_to_that_incarnation_only():
    """The job view's record of a job seen only through jobs/state (ids and states) is the one
    definition observe's belongs() accepts: the pack user's, this incarnation's marker."""
    vouched = decisions.vouched_job(KEY, REV, 101, "RUNNING", LABEL, USER)
    assert decisions.belongs(vouched, dep(), USER)
    assert decisions.wanted_job(vouched, dep(), state(101, "RUNNING"), USER)
    assert not decisions.belongs(vouched, dep(revision=REV + 1), USER)  # a re-created deployment
    assert not decisions.belongs(vouched, dep(), MALLORY)


def test_recorded_jobs_are_those_of_tracked_slurm_deployments():
    s = snap([dep(kind="helm"), other_dep()], {KEY: state(101, "RUNNING"), OTHER: state(102, "PENDING")})
    assert decisions.recorded_jobs(s) == {102: (OTHER, "PENDING", 60)}
    assert decisions.recorded_jobs(s, [KEY]) == {}
    done = snap([other_dep()], {OTHER: state(102, "FINISHED")})
    assert decisions.recorded_jobs(done) == {}


# ------------------------------------------------------------------- the job view's shell
def _view():
    """A JobView over replayed v0.0.42 answers: the listing (jobs.json: no job of our label),
    then jobs/state (3659 COMPLETED, 3660 FAILED), then job/3659 unknown (error 2017) and
    job/3660 a job of another mcs_label."""
    # slurmrestd's answer for a job it no longer knows, served for job 3659
    unknown = recorded("v0.0.42", "job_unknown")
    unknown = dict(unknown, request=dict(unknown["request"], path="/slurm/v0.0.42/job/3659"))
    # and a real record of a job with another mcs_label (recorded as job 10), renumbered 3660
    failed = recorded("v0.0.42", "job_failed")
    body = dict(failed["body"], jobs=[dict(failed["body"]["jobs"][0], job_id=3660)])
    failed = dict(failed, request=dict(failed["request"], path="/slurm/v0.0.42/job/3660"), body=body)
    client, replay = replay_client([recorded("v0.0.42", "jobs"), recorded("v0.0.42", "jobs_state"), unknown, failed])
    view = JobView(client, LABEL, resync_interval=3600, clock=lambda: 0.0)
    return view, replay


def _requests(replay, since):
    return [u.split("/slurm/v0.0.42/")[1] for u in replay.urls[since:]]


def test_a_watch_wake_asks_slurm_only_about_the_changed_keys_unknown_jobs():
    view, replay = _view()
    a = Deployment("a", "slurm", {}, 10)
    helm = Deployment("h", "helm", {}, 11)
    fresh = Deployment("b", "slurm", {}, 12)
    s = snap([a, helm, fresh])
    assert view.our_jobs(s) == [] and view.last_mode is ViewMode.FULL
    # then (the watch applied it) a's and h's states record jobs
    s.states.update({"a": (DeploymentState("a", 3659, "RUNNING"), 8), "h": (DeploymentState("h", 3660, "RUNNING"), 9)})
    n = len(replay.urls)
    assert view.our_jobs(s, refresh=False, keys={"b"}) == []  # a fresh deployment: no request
    assert view.last_mode is ViewMode.CACHED and _requests(replay, n) == []
    view.our_jobs(s, refresh=False, keys={"a"})
    sent = _requests(replay, n)
    # a's recorded job (COMPLETED now, RUNNING recorded): its state, then its full record;
    # the helm deployment's recorded job is never asked about
    assert [u.split("?")[0] for u in sent] == ["jobs/state/", "job/3659"]
    assert "3659" in sent[0] and "3660" not in sent[0]


def test_a_poll_asks_about_every_tracked_job_of_slurm_deployments_only():
    view, replay = _view()
    a = Deployment("a", "slurm", {}, 10)
    helm = Deployment("h", "helm", {}, 11)
    s = snap([a, helm, Deployment("x", "slurm", {}, 13)])
    view.our_jobs(s)
    s.states.update({"a": (DeploymentState("a", 3659, "FINISHED"), 8), "h": (DeploymentState("h", 3660, "RUNNING"), 9),
                     "x": (DeploymentState("x", 3661, "RUNNING"), 10)})
    n = len(replay.urls)
    view.our_jobs(s, refresh=True)
    assert view.last_mode is ViewMode.INCREMENTAL
    sent = _requests(replay, n)
    # the tracked job (x's; a's state is terminal), not the helm deployment's
    assert sent[0].startswith("jobs/state/") and "3661" in sent[0] and "3660" not in sent[0] and "3659" not in sent[0]


def test_a_resync_asks_ids_and_states_only_and_reads_only_jobs_never_seen():
    """Issue 18: the resync (every resync_interval, or for a submit attempt's trace) must not
    list the cluster (a full GET .../jobs grows slurmrestd 24.11 by ~680 MiB per listing at
    5,000 jobs): after the start-up listing it asks jobs/state without ids and reads in full
    only the ids it has never seen; the next resync reads none."""
    view, replay = _view()
    s = snap([Deployment("a", "slurm", {}, 10)])
    view.our_jobs(s)
    assert (view.full_listings, view.state_resyncs) == (1, 0)
    view.request_resync()
    n = len(replay.urls)
    view.our_jobs(s)
    assert view.last_mode is ViewMode.FULL and (view.full_listings, view.state_resyncs) == (1, 1)
    # jobs/state lists 3659 and 3660, which the start-up listing (ids 1-11) did not have
    assert _requests(replay, n) == ["jobs/state/", "job/3660", "job/3659"]  # newest first
    view.request_resync()
    n = len(replay.urls)
    view.our_jobs(s)
    # 3659 is gone (unknown: nothing to remember), 3660 is foreign: neither is read again...
    # except 3659, which jobs/state (replayed) still lists: read again, as it would be
    assert _requests(replay, n) == ["jobs/state/", "job/3659"] and view.state_resyncs == 2


def test_a_resync_reads_at_most_resync_reads_new_jobs_newest_first():
    view, replay = _view()
    view.resync_reads = 1
    s = snap([Deployment("a", "slurm", {}, 10)])
    view.our_jobs(s)
    view.request_resync()
    n = len(replay.urls)
    view.our_jobs(s)
    assert _requests(replay, n) == ["jobs/state/", "job/3660"]
    view.request_resync()
    n = len(replay.urls)
    view.our_jobs(s)
    assert _requests(replay, n) == ["jobs/state/", "job/3659"]
