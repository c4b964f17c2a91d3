"""The deployer's decisions as pure functions over plain data.

:class:`slurmdeploy.deployer.Deployer` is the I/O shell: it reads the Configuration DB and
Slurm, calls these functions and writes what they decide. Nothing here sends a request,
logs or reads a clock, so every decision is tested row by row in milliseconds
(``tests/unit/test_decisions.py``); the integration tests stay the end-to-end proof.

Plain data in: a deployment (:class:`slurmdeploy.configdb.Deployment`: ``key``, ``kind``,
``args``, ``revision``, ``valid``), its state (:class:`slurmdeploy.states.DeploymentState`),
Slurm jobs (:class:`slurmdeploy.slurm.models.SlurmJob`), our ``mcs_label`` (str). Out: the
:class:`Outcome` of an action (with the state to write, a :class:`Decision`) or the
:class:`Event` list of an observation.

A job is a deployment's when it carries our mcs_label, the name ``sdp-<key>`` and exactly
the marker ``sdp-deployment:<key>@<create_revision>`` in its comment
(:func:`slurmdeploy.jobs.deployment_marker`), AND its ``user_name`` is the Slurm user the pack
submits as (``slurm_user``, :attr:`slurmdeploy.slurm.SlurmClient.user_name`). Label, name and
comment prove nothing on their own: any Slurm user can set all three on a job of their own,
and the marker is readable with ``squeue``. Only ``user_name``/``user_id``, which slurmctld
sets from the authenticated credential, tell whose job it is (:func:`own_job`; README.md,
"What the pack trusts"). When the pack's user is unknown (``slurm_user`` None) no job is
ours: nothing is adopted, updated or cancelled (a fresh submit is still allowed).
"""

import logging
import functools
from dataclasses import dataclass, field
from enum import Enum
from typing import Optional

from slurmdeploy import states
from slurmdeploy.jobs import deployment_marker, job_name, key_from_job_name
from slurmdeploy.jobs import parse_marker as _parse_marker
from slurmdeploy.slurm.models import SlurmJob
from slurmdeploy.states import DeploymentState

#: a poll compares every tracked job's comment with its deployment's marker two or three times;
#: the comments repeat from poll to poll, so the parse is cached (a pure function of a str)
parse_marker = functools.lru_cache(maxsize=1 << 16)(_parse_marker)

DEPLOYMENT_NEW = "deployment_new"
DEPLOYMENT_REMOVED = "deployment_removed"
JOB_STATE_CHANGED = "job_state_changed"


class Outcome(str, Enum):
    """``result["outcome"]`` of the actions ``submit``, ``cancel``, ``update_state`` (and of
    each job in ``cancel``'s ``result["jobs"]``), ``deployment_create`` and
    ``deployment_delete``. A ``str`` subclass, so it compares equal to its value; results
    store the plain value (:func:`slurmdeploy.deployer.result`), so they stay JSON (and YAML)
    exactly as before. README.md, "Action reference", lists them per
    action (kept in sync by ``tests/unit/test_decisions.py``)."""

    SUBMITTED = "submitted"
    ADOPTED = "adopted"
    ALREADY_SUBMITTED = "already_submitted"
    CLAIMED_ELSEWHERE = "claimed_elsewhere"
    CLAIM_LOST = "claim_lost"
    REJECTED = "rejected"
    NOT_FOUND = "not_found"
    NOT_OURS = "not_ours"
    CANCELLED = "cancelled"
    NOTHING_TO_CANCEL = "nothing_to_cancel"
    KEPT = "kept"
    ALREADY_FINISHED = "already_finished"
    REFUSED = "refused"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    TERMINAL = "terminal"
    DEPLOYMENT_GONE = "deployment_gone"
    NO_JOB = "no_job"
    OTHER_JOB = "other_job"
    CONFLICT = "conflict"
    LABEL_CHANGED = "label_changed"
    CREATED = "created"
    EXISTS = "exists"
    INVALID = "invalid"
    DELETED = "deleted"

    def __str__(self):
        return self.value


_O = Outcome  # shorthand for the tables below

#: action -> the outcomes it returns; the ones of :data:`FAILED_OUTCOMES` make the execution fail
#: (``ok`` False). ``cancel.jobs`` is the per-job outcome in ``cancel``'s ``result["jobs"]``.
ACTION_OUTCOMES = {
    "submit": (_O.SUBMITTED, _O.ADOPTED, _O.ALREADY_SUBMITTED, _O.CLAIMED_ELSEWHERE, _O.CLAIM_LOST,
               _O.REJECTED, _O.NOT_FOUND, _O.NOT_OURS),
    "cancel": (_O.CANCELLED, _O.NOTHING_TO_CANCEL, _O.NOT_FOUND, _O.REFUSED),
    "cancel.jobs": (_O.CANCELLED, _O.KEPT, _O.ALREADY_FINISHED, _O.NOT_FOUND, _O.REFUSED),
    "update_state": (_O.UPDATED, _O.UNCHANGED, _O.TERMINAL, _O.DEPLOYMENT_GONE, _O.NO_JOB, _O.OTHER_JOB, _O.CONFLICT,
                     _O.REFUSED, _O.LABEL_CHANGED),
    # slurmdeploy.configdb.deployment_create, deployment_list, deployment_delete
    "deployment_create": (_O.CREATED, _O.EXISTS, _O.INVALID),
    "deployment_list": (),
    "deployment_delete": (_O.DELETED, _O.NOT_FOUND, _O.INVALID),
}
#: action -> its outcomes that fail the execution (``ok`` False)
FAILED_OUTCOMES = {
    "submit": (_O.REJECTED, _O.NOT_FOUND, _O.NOT_OURS),
    "cancel": (_O.REFUSED,),
    "cancel.jobs": (_O.REFUSED,),
    "update_state": (_O.REFUSED, _O.LABEL_CHANGED),
    "deployment_create": (_O.EXISTS, _O.INVALID),
    "deployment_list": (),
    "deployment_delete": (_O.NOT_FOUND, _O.INVALID),
}


def trace_tag(key, revision):
    """The StackStorm trace tag of one deployment incarnation: ``<key>@<create_revision>``
    (the deployment marker without its ``sdp-deployment:`` prefix), or None when the revision
    is unknown. The sensor dispatches every trigger with it (``sensor_service.dispatch(trigger,
    payload, trace_tag)``, st2reactor/container/sensor_wrapper.py), so ``st2 trace list
    --trace-tag <key>@<revision>`` follows one deployment through its rules and actions."""
    return f"{key}@{int(revision)}" if revision else None


@dataclass(frozen=True)
class Event:
    """A trigger instance to dispatch: ``trigger`` is the trigger name, ``payload`` a dict,
    ``trace_tag`` the deployment incarnation's :func:`trace_tag` (None when unknown)."""

    trigger: str
    payload: dict
    trace_tag: Optional[str] = field(default=None, compare=False)

    @property
    def identity(self):
        """What makes two events the same for re-dispatch suppression."""
        p = self.payload
        return (self.trigger, p.get("key"), p.get("job_id"), p.get("status"))


@dataclass(frozen=True)
class Decision:
    """What an action decided.

    Attributes:
        outcome: an :class:`Outcome`.
        ok: False when the execution fails (the outcome is in :data:`FAILED_OUTCOMES`).
        state: the :class:`DeploymentState` to write by compare-and-swap, or None.
        fields: the result's other fields (``job_id``, ``status``, ``error``...).
        job: the :class:`SlurmJob` decided about (``adopted``), or None.
    """

    outcome: Outcome
    ok: bool = True
    state: Optional[DeploymentState] = None
    fields: dict = field(default_factory=dict)
    job: Optional[object] = None


# ------------------------------------------------------------------ which job is whose
def own_job(job, slurm_user):
    """True when ``job`` (a :class:`SlurmJob`) was submitted by the pack's Slurm user.

    Args:
        job: the job as Slurm reports it (``user_name`` from ``GET .../job/{id}`` or
            ``GET .../jobs``; ``GET .../jobs/state`` carries no user on 24.11).
        slurm_user: the user the pack authenticates as
            (:attr:`slurmdeploy.slurm.SlurmClient.user_name`), or None when unknown.

    Returns:
        ``job.user_name == slurm_user``; False when either is unknown (fail closed).
    """
    return bool(slurm_user) and job.user_name == slurm_user


def belongs(job, dep, slurm_user):
    """True when ``job`` is the job of this incarnation of deployment ``dep``: it is the pack
    user's (:func:`own_job`) and its comment is exactly the marker
    ``sdp-deployment:<key>@<create_revision>`` (:func:`slurmdeploy.jobs.deployment_marker`).
    A job without it - even with our mcs_label and the job name ``sdp-<key>``, which any
    Slurm user can set - or of another user (who can copy label, name and marker) is never
    adopted or updated. A deployment of another kind has no job (one whose value is
    unreadable may be a damaged ``slurm`` one: its job is kept)."""
    if dep.kind != "slurm" and dep.valid:
        return False
    return own_job(job, slurm_user) and parse_marker(job.comment) == (dep.key, dep.revision)


def wanted_job(job, dep, state, slurm_user):
    """True when the unfinished ``job`` is the one deployment ``dep`` keeps: it belongs to
    this incarnation (:func:`belongs`) and the state (a :class:`DeploymentState` or None)
    records no job or this one. A job recorded by a ``SubmitFailed`` state (Slurm created
    it while saying no) is not wanted: the sensor reports it as removed and ``cancel``
    cancels it."""
    if not belongs(job, dep, slurm_user):
        return False
    if state is None:
        return True
    if state.status == states.FAILED and state.state_reason == states.SUBMIT_FAILED_REASON:
        return False
    return state.job_id in (None, job.job_id)


def has_marker(job, key):
    """True when ``job`` carries a marker of deployment ``key`` (this or an earlier deployment
    with that key). A job with our label and the name ``sdp-<key>`` but no such marker is a
    lookalike: never adopted, updated or cancelled."""
    marker = parse_marker(job.comment)
    return marker is not None and marker[0] == key


def label_changed(job, dep, mcs_label, slurm_user):
    """True when ``job`` (the job a state of ``dep`` records, as Slurm reports it) is the
    pack user's and carries this incarnation's marker (:func:`belongs`) but another
    mcs_label than ``mcs_label``:
    the deployer's ``release_name`` or ``namespace`` changed since it submitted the job
    (the label is ``sdp_slurm_deployer_{release_name}_{namespace}``). Neither "gone" nor a
    lookalike: the deployment and its job are left alone (no state written, nothing
    cancelled) until the configuration is set back (issue 15, item 3)."""
    return job is not None and job.mcs_label != mcs_label and belongs(job, dep, slurm_user)


def names_deployment(job, key, mcs_label):
    """True when ``job`` has our ``mcs_label`` and the job name ``sdp-<key>``."""
    return job.mcs_label == mcs_label and job.name == job_name(key)


def pick_job(jobs):
    """The job to adopt among several (a non-empty list): the oldest unfinished one if any,
    else the newest."""
    unfinished = [j for j in jobs if not j.finished]
    return min(unfinished, key=lambda j: j.job_id) if unfinished else max(jobs, key=lambda j: j.job_id)


def job_state(key, job):
    """The :class:`DeploymentState` that records ``job`` (a :class:`SlurmJob`) for ``key``:
    its SDP status (:func:`slurmdeploy.states.sdp_status`), state_reason and description; a
    FAILED one says why in ``error_state`` (job state, reason, exit code and signal).

    Raises:
        ValueError: a job state this library does not know.
    """
    status = states.sdp_status(job.job_state)
    error = None
    if status == states.FAILED:
        detail = f"exit code {job.exit_code}" if job.exit_code is not None else "no exit code"
        if job.exit_signal:
            detail += f", signal {job.exit_signal}"
        error = f"Slurm job {job.job_id} ended {job.job_state} (state_reason {job.state_reason}, {detail})"
    return DeploymentState(key, job.job_id, status, job.state_reason, job.state_description, error)


def label_changed_message(key, job_id, job_label, mcs_label):
    """What an operator reads when the job deployment ``key`` records carries another
    mcs_label than the deployer's (:func:`label_changed`): both labels and what to do."""
    return (f"deployment {key!r}: its Slurm job {job_id} carries mcs_label {job_label!r} but this deployer's "
            f"mcs_label is {mcs_label!r} (sdp_slurm_deployer_{{release_name}}_{{namespace}}: release_name or "
            f"namespace changed since the job was submitted). The deployment and its job are left alone: no state "
            f"is written, nothing is cancelled. Fix: set release_name and namespace back so that the mcs_label is "
            f"{job_label!r} and restart the sensor; or, to move the deployment, cancel job {job_id} by hand "
            f"(scancel {job_id}) and create the deployment again")


def label_changed_deleted_message(key, job_id, job_label, mcs_label):
    """What an operator reads when deployment ``key``, whose job carries another mcs_label
    than the deployer's (:func:`label_changed`), was deleted: the job is not the deployer's
    under its configuration, so no ``deployment_removed`` is emitted and nothing cancels it."""
    return (f"deployment {key!r} was deleted, but its Slurm job {job_id} carries mcs_label {job_label!r}, not "
            f"this deployer's {mcs_label!r} (release_name or namespace changed since the job was submitted): "
            f"the deployer does not cancel it and it keeps running. Fix: cancel it by hand (scancel {job_id}), "
            f"or set release_name and namespace back so that the mcs_label is {job_label!r} and restart the "
            f"sensor (it then cancels the job)")


def vanished_state(key, job_id, description=None):
    """The FAILED state (``JobVanished``) of a recorded job slurmctld no longer knows."""
    return DeploymentState(key, job_id, states.FAILED, states.VANISHED_REASON,
                           description or states.vanished_description(job_id))


# ----------------------------------------------------------------------------- observe
def state_event(key, state, job, job_id, revision=None):
    """The ``job_state_changed`` event of deployment ``key`` whose recorded ``state`` differs
    from ``job`` (a :class:`SlurmJob`), or whose job ``job_id`` is gone (``job`` None:
    FAILED, ``JobVanished``); ``revision``: the deployment's create_revision (trace tag)."""
    if job is None:
        status, slurm_state = states.FAILED, "UNKNOWN"
        reason = states.VANISHED_REASON
        description = states.vanished_description(job_id)
    else:
        status, slurm_state = states.sdp_status(job.job_state), job.job_state
        reason, description = job.state_reason, job.state_description
        job_id = job.job_id
    return Event(JOB_STATE_CHANGED, {
        "key": key,
        "job_id": job_id,
        "job_state": slurm_state,
        "previous_status": state.status,
        "status": status,
        "state_reason": reason,
        "state_description": description,
    }, trace_tag(key, revision))


def observe_deployment(dep, state, owner, recorded_job, jobs_named, mcs_label, slurm_user):
    """The events one live ``slurm`` deployment needs (its state not terminal).

    Args:
        dep: the deployment.
        state: its :class:`DeploymentState`.
        owner: the decoded owner value (a submit is in progress), or None.
        recorded_job: the :class:`SlurmJob` with ``state.job_id`` as Slurm reports it, or
            None when Slurm does not know it (ignored when the state records no job).
        jobs_named: our jobs named ``sdp-<key>`` (a list of :class:`SlurmJob`).
        mcs_label: our label.
        slurm_user: the pack's Slurm user (:func:`own_job`).

    Returns:
        A list of :class:`Event`: ``job_state_changed`` when the recorded job's status
        changed or it is gone (its id now carrying another label counts as gone, unless
        the job still carries this deployment's marker: then our label changed,
        :func:`label_changed`, and there is no event); none when the recorded id is now
        another user's job with our label (never touched: the deployer logs it;
        ``update_state`` would refuse it); none while a submit owns the deployment;
        ``job_state_changed`` for a job of this incarnation (and of the pack's user) not
        recorded yet (adoption); else ``deployment_new``.

    Raises:
        ValueError: a job state this library does not know (the deployment is skipped).
    """
    key = dep.key
    if state.job_id is not None:
        job = recorded_job
        if label_changed(job, dep, mcs_label, slurm_user):
            return []  # our configuration changed, not the job: never falsify the state
        if job is not None and job.mcs_label != mcs_label:
            job = None  # the id was reused by someone else's job: ours is gone
        elif job is not None and not own_job(job, slurm_user):
            return []  # another user's job with our label under our id: never touched
        status = states.sdp_status(job.job_state) if job else states.FAILED
        if job is None or status != state.status:
            return [state_event(key, state, job, state.job_id, dep.revision)]
        return []
    if owner is not None:
        return []
    current = [j for j in jobs_named if belongs(j, dep, slurm_user)]
    if current:
        return [state_event(key, state, pick_job(current), None, dep.revision)]
    return [Event(DEPLOYMENT_NEW, {"key": key, "kind": dep.kind, "args": dep.args}, trace_tag(key, dep.revision))]


def unwanted(job, dep, state, slurm_user):
    """True when our unfinished, marked ``job`` (the caller checked it is the pack user's:
    :func:`own_job`) is no deployment's to keep: ``dep`` (None: no deployment with its key)
    does not want it (:func:`wanted_job`). The observation confirms it with a second read
    before it reports ``deployment_removed``."""
    return dep is None or not wanted_job(job, dep, state, slurm_user)


def removed_event(key, job):
    """The ``deployment_removed`` event of ``job`` (a :class:`SlurmJob`) of deployment ``key``,
    traced as the incarnation its marker names (the deployment itself may be gone)."""
    marker = parse_marker(job.comment)
    return Event(DEPLOYMENT_REMOVED, {"key": key, "job_id": job.job_id, "job_state": job.job_state},
                 trace_tag(*marker) if marker and marker[0] == key else None)


# ------------------------------------------------------------------------------ submit
def submit_precheck(key, dep, state, deployment_path):
    """Whether ``submit`` goes on to claim the deployment.

    Args:
        key: deployment key.
        dep: the deployment or None; state: its :class:`DeploymentState` (a stale one reads
            as UNSET).
        deployment_path: ``[prefix]/deploy/<key>``, for the ``not_found`` error.

    Returns:
        A :class:`Decision` (``not_found``, ``not_ours``, ``already_submitted``), or None:
        claim it and submit.
    """
    if dep is None:
        return Decision(_O.NOT_FOUND, False, fields={"error": f"no deployment at {deployment_path}"})
    if dep.kind != "slurm":
        return Decision(_O.NOT_OURS, False, fields={
            "kind": dep.kind,
            "error": f"deployment {key!r} is of kind {dep.kind!r}; this deployer only runs 'slurm' "
                     "deployments and leaves the others (and their state) alone"})
    return already_submitted(state)


def already_submitted(state):
    """``already_submitted`` when ``state`` records a job or is terminal, else None."""
    if state.job_id is not None or state.terminal:
        return Decision(_O.ALREADY_SUBMITTED, fields={"job_id": state.job_id, "status": state.status})
    return None


def adoption(dep, jobs_named, slurm_user):
    """The ``adopted`` decision when one of ``jobs_named`` (our jobs named ``sdp-<key>``,
    listed because a previous attempt left a trace) belongs to this incarnation of ``dep``
    (:func:`belongs`: the pack user's, with the marker): its state records that job
    (:func:`pick_job` among several). None: submit (another user's copy is never adopted).

    Raises:
        ValueError: a job state this library does not know.
    """
    existing = [j for j in jobs_named if belongs(j, dep, slurm_user)]
    if not existing:
        return None
    job = pick_job(existing)
    new = DeploymentState(dep.key, job.job_id, states.sdp_status(job.job_state), job.state_reason,
                          job.state_description)
    return Decision(_O.ADOPTED, state=new, fields={"job_id": job.job_id, "status": new.status}, job=job)


class SubmitStep(Enum):
    """What ``submit`` does next (:func:`submit_next`)."""

    #: done: return the decision, nothing to write (not_found, not_ours, already_submitted,
    #: claimed_elsewhere)
    DONE = "done"
    #: claim the deployment (``/deploy/<key>/owner`` on a lease, compare-and-swap; the same
    #: transaction writes ``/attempt`` and reads the state), then decide again
    CLAIM = "claim"
    #: a previous attempt of this incarnation left a trace (``/attempt``): list our jobs
    #: named ``sdp-<key>`` (under the claim), then decide again
    FIND_JOB = "find_job"
    #: write the decision's state under the claim (compare-and-swap; ends the claim): adopted,
    #: or rejected as invalid
    WRITE = "write"
    #: refresh the claim and send the submit request
    SUBMIT = "submit"


@dataclass(frozen=True)
class SubmitFacts:
    """What ``submit`` has read so far (plain data; :func:`submit_next` decides from it).

    Attributes:
        key: the deployment key; path: ``[prefix]/deploy/<key>`` (for ``not_found``).
        dep: the :class:`Deployment` (with the action's ``args`` when given) or None.
        state: its :class:`DeploymentState` before the claim (a stale one reads as UNSET).
        attempt: the revision ``/deploy/<key>/attempt`` names, or None.
        request: the :class:`JobRequest` built from ``dep`` (``build_job``), or None;
        invalid: why ``build_job`` refused it (str), or None.
        claimed: None (not tried yet), True (the claim is ours) or False (someone else's).
        claim_state: the state the claiming transaction read (None before the claim).
        named: our jobs named ``sdp-<key>`` that carry a marker of ``key`` and are the pack
            user's, as listed under the claim (None: not listed).
    """

    key: str
    path: str
    dep: Optional[object]
    state: Optional[DeploymentState]
    attempt: Optional[int] = None
    request: Optional[object] = None
    invalid: Optional[str] = None
    claimed: Optional[bool] = None
    claim_state: Optional[DeploymentState] = None
    named: Optional[tuple] = None


def submit_next(facts, slurm_user):
    """The next step of ``submit`` from what it has read. Pure.

    Order (each row of ``tests/unit/test_submit_plan.py``): no deployment -> ``not_found``;
    another kind -> ``not_ours``; a state that records a job or is terminal ->
    ``already_submitted``; not claimed yet -> CLAIM; claimed elsewhere ->
    ``claimed_elsewhere``; the state read by the claim records a job -> ``already_submitted``
    (another submit won the race); an attempt trace of this incarnation and no listing yet
    -> FIND_JOB; a listed job of this incarnation (:func:`adoption`) -> WRITE ``adopted``;
    args ``build_job`` refused -> WRITE ``rejected`` (``InvalidDeployment``); else SUBMIT.
    A fresh deployment (no trace) is submitted without listing the cluster: only a
    previous attempt of the same incarnation can have made a job.

    Args:
        facts: a :class:`SubmitFacts`.
        slurm_user: the pack's Slurm user (:func:`own_job`).

    Returns:
        ``(SubmitStep, Decision or None)``: a Decision for DONE and WRITE.

    Raises:
        ValueError: a listed job's state this library does not know (:func:`adoption`).
    """
    decision = submit_precheck(facts.key, facts.dep, facts.state, facts.path)
    if decision is not None:
        return SubmitStep.DONE, decision
    if facts.claimed is None:
        return SubmitStep.CLAIM, None
    if not facts.claimed:
        return SubmitStep.DONE, Decision(_O.CLAIMED_ELSEWHERE)
    decision = already_submitted(facts.claim_state)
    if decision is not None:
        return SubmitStep.DONE, decision
    if facts.attempt == facts.dep.revision:
        if facts.named is None:
            return SubmitStep.FIND_JOB, None
        decision = adoption(facts.dep, facts.named, slurm_user)
        if decision is not None:
            return SubmitStep.WRITE, decision
    if facts.invalid is not None or facts.request is None:
        return SubmitStep.WRITE, invalid_decision(facts.key, facts.invalid or "no job request")
    return SubmitStep.SUBMIT, None


def invalid_decision(key, error):
    """``rejected``: the args cannot make a job (``error``: the message); state FAILED, ``InvalidDeployment``."""
    failed = DeploymentState(key, None, states.FAILED, states.INVALID_DEPLOYMENT_REASON, error, error_state=error)
    return Decision(_O.REJECTED, False, failed, {"status": states.FAILED, "error": error})


def submitted_decision(key, job_id, request):
    """``submitted``: Slurm accepted ``request`` (a :class:`JobRequest`) as ``job_id``; state PENDING."""
    new = DeploymentState(key, job_id, states.PENDING, "Submitted", f"submitted as Slurm job {job_id}")
    return Decision(_O.SUBMITTED, state=new, fields={"job_id": job_id, "job_name": request.name,
                                                    "status": states.PENDING, "mcs_label": request.mcs_label})


def rejection_decision(key, job_id, message):
    """``rejected``: Slurm refused the submit (``message`` says how, and what happened to a
    job ``job_id`` it created anyway, or None); state FAILED, ``SubmitFailed``, recording
    that job so it is never left untracked."""
    failed = DeploymentState(key, job_id, states.FAILED, states.SUBMIT_FAILED_REASON, message, error_state=message)
    return Decision(_O.REJECTED, False, failed, {"job_id": job_id, "status": states.FAILED, "error": message})


# ------------------------------------------------------------------------------ cancel
def cancel_job_decision(key, job, dep, state, force, mcs_label, slurm_user):
    """What ``cancel`` does with ``job`` (a :class:`SlurmJob`) of deployment ``key``.

    Args:
        dep: the deployment or None (gone); state: its state (None when gone).
        force: also cancel the job of a deployment that still exists.
        slurm_user: the pack's Slurm user (:func:`own_job`).

    Returns:
        ``refused`` (not our label and name, no marker of ``key``: a lookalike, or another
        user's job: no cancel request is ever sent for it, whatever ``force`` says - on Slurm
        24.11.5 a refused REST cancel stalls slurmctld, README.md "What the pack trusts"),
        ``already_finished``, ``kept`` (the deployment still wants it), or ``cancelled``:
        send the cancel (``not_found`` when Slurm no longer knows the job).
    """
    if not names_deployment(job, key, mcs_label) or not has_marker(job, key) or not own_job(job, slurm_user):
        return _O.REFUSED
    if job.finished:
        return _O.ALREADY_FINISHED
    if dep is not None and wanted_job(job, dep, state, slurm_user) and not force:
        return _O.KEPT
    return _O.CANCELLED


def cancel_summary(job_outcomes):
    """``(ok, outcome)`` of ``cancel`` from its per-job outcomes: ``refused`` (failed) when
    any job was refused, else ``cancelled`` when any was cancelled, else ``nothing_to_cancel``."""
    if _O.REFUSED in job_outcomes:
        return False, _O.REFUSED
    return True, (_O.CANCELLED if _O.CANCELLED in job_outcomes else _O.NOTHING_TO_CANCEL)


# ------------------------------------------------------------------------ update_state
def update_target(dep, state, job_id):
    """Which job ``update_state`` reads.

    Args:
        dep: the deployment or None; state: its :class:`DeploymentState`.
        job_id: the job id asked for, or None.

    Returns:
        ``(decision, wanted)``: a :class:`Decision` (``deployment_gone``, ``terminal``,
        ``other_job``: done) and None; or None and the job id to read (``wanted``; None:
        find this incarnation's job by name, label and marker).
    """
    if dep is None:
        return Decision(_O.DEPLOYMENT_GONE, fields={"job_id": job_id}), None
    if state.terminal:
        return Decision(_O.TERMINAL, fields={"job_id": state.job_id, "status": state.status}), None
    wanted = job_id if job_id is not None else state.job_id
    if state.job_id is not None and wanted != state.job_id:
        return Decision(_O.OTHER_JOB, fields={"job_id": wanted, "recorded_job_id": state.job_id}), None
    return None, wanted


def update_decision(key, dep, state, wanted, job, mcs_label, slurm_user):
    """The state ``update_state`` writes for the job it read.

    Args:
        dep, state: the deployment and its (non-terminal) state.
        wanted: the job id read (:func:`update_target`), or None when found by name.
        job: the :class:`SlurmJob` read (by id, or :func:`pick_job` of this incarnation's
            jobs found by name), or None when Slurm knows none.
        mcs_label: our label.
        slurm_user: the pack's Slurm user (:func:`own_job`).

    Returns:
        A :class:`Decision`: ``no_job``, ``refused`` (not our label and name, or another
        user's job - even under the recorded id: nothing is written), ``label_changed``
        (the recorded job is the pack user's, carries this deployment's marker and another
        mcs_label: :func:`label_changed`; nothing is written), ``unchanged``, or
        ``updated`` with the state to write (a recorded job gone or whose id now has
        another label: FAILED, ``JobVanished``).

    Raises:
        ValueError: a job state this library does not know.
    """
    if job is None:
        if state.job_id is None:
            return Decision(_O.NO_JOB, fields={"job_id": wanted})
        new = vanished_state(key, wanted)
    elif state.job_id == job.job_id and label_changed(job, dep, mcs_label, slurm_user):
        return Decision(_O.LABEL_CHANGED, False, fields={
            "job_id": job.job_id, "mcs_label": job.mcs_label, "expected_mcs_label": mcs_label,
            "error": label_changed_message(key, job.job_id, job.mcs_label, mcs_label)})
    elif state.job_id == job.job_id and job.mcs_label != mcs_label:
        new = vanished_state(key, wanted,
                             f"Slurm job {wanted} is gone: its id now belongs to a job without our mcs_label")
    else:
        if not names_deployment(job, key, mcs_label):
            return Decision(_O.REFUSED, False, fields={
                "job_id": job.job_id,
                "error": f"Slurm job {job.job_id} is not a job of deployment {key!r} "
                         f"(name {job.name!r}, mcs_label {job.mcs_label!r})"})
        if not own_job(job, slurm_user):
            return Decision(_O.REFUSED, False, fields={
                "job_id": job.job_id,
                "error": f"Slurm job {job.job_id} of deployment {key!r} is not the pack's: its user is "
                         f"{job.user_name!r}, the pack submits as {slurm_user!r}; never updated"})
        if state.job_id is None and not belongs(job, dep, slurm_user):
            return Decision(_O.NO_JOB, fields={"job_id": job.job_id})
        new = job_state(key, job)
    if (new.status, new.job_id, new.state_reason) == (state.status, state.job_id, state.state_reason):
        return Decision(_O.UNCHANGED, fields={"job_id": new.job_id, "status": new.status})
    return Decision(_O.UPDATED, state=new, fields={"job_id": new.job_id, "previous_status": state.status,
                                                  "status": new.status, "state_reason": new.state_reason})


# ------------------------------------------------------------------ one observation pass
class Wake(Enum):
    """Why the sensor observes (:meth:`slurmdeploy.deployer.Deployer.observe`'s ``wake``).

    - ``POLL``: the poll timer (the pack's ``loop_interval``): everything read afresh from
      etcd, the states of every tracked job asked from Slurm.
    - ``WATCH``: an etcd watch event: only the deployments the watched snapshot just changed
      are observed, with the jobs already known (a Slurm request only for a job id not seen
      yet).
    - ``RETRY``: an event the last observation had is due again (:class:`Observer` backoff):
      every deployment is observed with the jobs already known.
    """

    POLL = "poll"
    WATCH = "watch"
    RETRY = "retry"


@dataclass(frozen=True)
class Notice:
    """A log line an observation asks for: ``level`` (``logging`` level), ``identity`` (the
    line is logged once per identity while it keeps being seen; None: every time),
    ``message`` and ``args`` (``logging`` %-style)."""

    level: int
    identity: Optional[tuple]
    message: str
    args: tuple = ()


@dataclass
class ObservationPlan:
    """What :func:`plan_observation` decided from one read of the Configuration DB and Slurm.

    Attributes:
        read_jobs: recorded job ids the jobs read lack (a job the listing or the view did not
            return): read each with ``GET .../job/{id}`` and plan again with them (``read``);
            when not empty, nothing else is decided.
        events: the :class:`Event` list of the live deployments, in key order.
        confirm: ``[(key, SlurmJob)]``: our unfinished jobs no deployment of the snapshot
            wants; each is reported removed (:func:`removed_event`) only when a fresh read of
            its deployment confirms it (:func:`unwanted`: it may have been created after the
            snapshot).
        notices: the :class:`Notice` list to log.
        label_moved: key -> ``(create_revision, SlurmJob)`` of the deployments whose recorded
            job carries another mcs_label (:func:`label_changed`) in this observation;
        label_kept: the observed keys whose recorded job does not (forget them).
    """

    read_jobs: frozenset = frozenset()
    events: list = field(default_factory=list)
    confirm: list = field(default_factory=list)
    notices: list = field(default_factory=list)
    label_moved: dict = field(default_factory=dict)
    label_kept: set = field(default_factory=set)


def tracked(dep, state):
    """True when the deployer watches the job of deployment ``dep`` with ``state``: a ``slurm``
    deployment whose state is not terminal. The one definition used by the observation
    (:func:`plan_observation`) and by the sensor's job view (:func:`recorded_jobs`)."""
    return dep is not None and dep.kind == "slurm" and not state.terminal


def recorded_jobs(snap, keys=None):
    """``job_id -> (key, recorded SDP status, create_revision)`` of the jobs the tracked
    deployments' states record (:func:`tracked`), of ``keys`` only when given.

    Args:
        snap: a :class:`slurmdeploy.configdb.Snapshot`.
        keys: an iterable of deployment keys, or None for all.
    """
    recorded = {}
    for key in snap.states if keys is None else keys:
        entry = snap.states.get(key)
        dep = snap.deployments.get(key)
        if entry is None or entry[0].job_id is None or not tracked(dep, entry[0]):
            continue
        recorded[entry[0].job_id] = (key, entry[0].status, dep.revision)
    return recorded


def vouched_job(key, revision, job_id, job_state, mcs_label, slurm_user):
    """The :class:`SlurmJob` record of a job the pack's own state records, as ``jobs/state``
    reports it (id and state only; no user, name or comment on REST v0.0.40-42:
    ``tests/fixtures/slurm/v0.0.4x/jobs_state.json``).

    The deployer records a job id only after Slurm answered its own submit with it, or after
    it read the job's full record and checked user and marker (adoption, update), so the
    record is the pack user's with this incarnation's marker: :func:`belongs` accepts it
    (``tests/unit/test_observation.py`` pins that). The actions that act on a job (cancel,
    update_state) read its full record from Slurm and check both again.
    """
    return SlurmJob(job_id=job_id, name=job_name(key), job_state=job_state, mcs_label=mcs_label,
                    comment=deployment_marker(key, revision), user_name=slurm_user)


def ours_or_notice(job, key, slurm_user):
    """Whether a job named ``sdp-<key>`` with our label is the pack's, with the notice to log
    when it is not.

    Returns:
        ``(True, None)`` when it carries a marker of ``key`` (:func:`has_marker`) and is the
        pack user's (:func:`own_job`); else ``(False, Notice)``: a lookalike (label and name,
        no marker) or another user's job with the marker (anyone may set both), logged once
        at WARNING and never touched.
    """
    if not has_marker(job, key):
        return False, Notice(logging.WARNING, ("lookalike", job.job_id),
                             "Slurm job %s (user %s) carries our mcs_label %r and the name %r of deployment %r but "
                             "not its marker (comment %r): not ours, never adopted, updated or cancelled by the "
                             "deployer", (job.job_id, job.user_name, job.mcs_label, job.name, key,
                                          (job.comment or "")[:80]))
    if own_job(job, slurm_user):
        return True, None
    return False, foreign_notice(job, key, slurm_user)


def foreign_notice(job, key, slurm_user):
    """The WARNING (once per job) about a job with a marker of ``key`` that is not the pack user's."""
    if not slurm_user:
        return Notice(logging.WARNING, ("no-user", job.job_id),
                      "Slurm job %s of user %s carries the marker of deployment %r, but the pack's own Slurm user "
                      "is unknown: not adopted, updated or cancelled. Fix: set client_id "
                      "(SDP_SLURMDEPLOY_CLIENT_ID) or use a token with a 'sun' claim", (job.job_id, job.user_name, key))
    return Notice(logging.WARNING, ("foreign", job.job_id),
                  "deployment %r: Slurm job %s of user %s carries our mcs_label, name and marker but the pack submits "
                  "as %s: another user's job, never adopted, updated or cancelled by the deployer",
                  (key, job.job_id, job.user_name, slurm_user))


def plan_observation(snap, jobs, keys, mcs_label, slurm_user, read=None):
    """Decide one observation: the events, the second reads, the log lines. Pure.

    Args:
        snap: the :class:`slurmdeploy.configdb.Snapshot` read (fresh, or the sensor's
            watched one).
        jobs: our jobs (:class:`SlurmJob` list with our mcs_label) as read: the whole
            listing, or the sensor's job view.
        keys: the deployment keys to observe (a watch wake), or None for all.
        mcs_label: our label; slurm_user: the pack's Slurm user (:func:`own_job`), or None.
        read: ``job_id -> SlurmJob or None`` of the jobs read by id after an earlier plan's
            :attr:`ObservationPlan.read_jobs` (None: nothing read yet).

    Returns:
        An :class:`ObservationPlan`. Cost O(``keys`` + ``jobs``) when ``keys`` is given
        (no walk over every deployment), O(deployments + jobs) otherwise.
    """
    read = read or {}
    by_id = {job.job_id: job for job in jobs}
    by_key = {}
    for job in jobs:
        key = key_from_job_name(job.name)
        if key is not None:
            by_key.setdefault(key, []).append(job)
    order = sorted(snap.deployments) if keys is None else sorted(k for k in keys if k in snap.deployments)
    live = []
    for key in order:
        dep = snap.deployments[key]
        if dep.kind != "slurm":
            continue
        recorded = snap.states.get(key)  # the UNSET default only when needed: this loop runs per wake
        state = recorded[0] if recorded is not None else DeploymentState.from_dict(key, None)
        live.append((dep, state))
    missing = frozenset(state.job_id for dep, state in live if tracked(dep, state) and state.job_id is not None
                        and state.job_id not in by_id and state.job_id not in read)
    if missing:
        return ObservationPlan(read_jobs=missing)
    plan = ObservationPlan()
    states_now = {}
    for dep, state in live:
        key = dep.key
        states_now[key] = state
        if state.terminal:
            continue
        job = None
        if state.job_id is not None:
            job = by_id.get(state.job_id) or read.get(state.job_id)
            if label_changed(job, dep, mcs_label, slurm_user):
                plan.label_moved[key] = (dep.revision, job)
                plan.notices.append(Notice(logging.ERROR, ("label", key, job.job_id, job.mcs_label), "%s",
                                           (label_changed_message(key, job.job_id, job.mcs_label, mcs_label),)))
            else:
                plan.label_kept.add(key)
            if job is not None and job.mcs_label == mcs_label and not own_job(job, slurm_user):
                plan.notices.append(foreign_notice(job, key, slurm_user))
        else:
            owner = snap.owners.get(key)
            if owner is not None:
                plan.notices.append(Notice(logging.DEBUG, None, "deployment %r is being submitted by pid %s on %s",
                                           (key, owner.get("pid"), owner.get("hostname"))))
        try:
            plan.events.extend(observe_deployment(dep, state, snap.owners.get(key), job, by_key.get(key, []),
                                                  mcs_label, slurm_user))
        except ValueError as exc:  # e.g. a job state this library does not know
            plan.notices.append(Notice(logging.WARNING, None, "deployment %r skipped this poll: %s", (key, exc)))
    for key in sorted(by_key) if keys is None else sorted(k for k in keys if k in by_key):
        for job in by_key[key]:
            if job.finished:
                continue
            ours, notice = ours_or_notice(job, key, slurm_user)
            if notice is not None:
                plan.notices.append(notice)
            if ours and unwanted(job, snap.deployments.get(key), states_now.get(key), slurm_user):
                plan.confirm.append((key, job))
    return plan
