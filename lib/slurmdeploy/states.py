"""Slurm job states -> SDP deployment statuses, and the SKA deployment-state format.

SDP deployers use the statuses PENDING, RUNNING, FINISHED, CANCELLED and FAILED
(UNSET before anything is known). The original deployer's table from Slurm base
states is lost; this is ours (documented in README.md, "State mapping"):

==================  ===========
Slurm base state    SDP status
==================  ===========
PENDING             PENDING
RUNNING             RUNNING
SUSPENDED           PENDING
COMPLETED           FINISHED
CANCELLED           CANCELLED
FAILED, TIMEOUT,    FAILED
NODE_FAIL,
PREEMPTED,
BOOT_FAIL,
DEADLINE,
OUT_OF_MEMORY
==================  ===========

A job that vanished from Slurm before a terminal status was recorded is FAILED
(see :data:`VANISHED_REASON`). Base states come from Slurm's ``job_state_codes``
(``slurm.h``); the REST API v0.0.40+ lists them first in ``job_state``, flags follow.
"""

from dataclasses import dataclass
from typing import Optional

from slurmdeploy.slurm.models import FINISHED_JOB_STATES

PENDING = "PENDING"
RUNNING = "RUNNING"
FINISHED = "FINISHED"
CANCELLED = "CANCELLED"
FAILED = "FAILED"
UNSET = "UNSET"

#: SDP statuses after which the deployer never writes the state again.
TERMINAL_STATUSES = frozenset({FINISHED, CANCELLED, FAILED})

#: Slurm base job state (every one of ``models.BASE_JOB_STATES``) -> SDP status.
SLURM_TO_SDP = {
    "PENDING": PENDING,
    "RUNNING": RUNNING,
    "SUSPENDED": PENDING,
    "COMPLETED": FINISHED,
    "CANCELLED": CANCELLED,
    "FAILED": FAILED,
    "TIMEOUT": FAILED,
    "NODE_FAIL": FAILED,
    "PREEMPTED": FAILED,
    "BOOT_FAIL": FAILED,
    "DEADLINE": FAILED,
    "OUT_OF_MEMORY": FAILED,
}

#: Provisional status of a job whose API version shows a flag *instead of* its base
#: state (v0.0.38's ``job_state_string()`` does so while e.g. ``COMPLETING``). Never
#: terminal, so nothing irreversible is written; the next poll sees the base state.
#: ``REVOKED`` (federation) is deliberately absent: it raises, and the poll skips the job.
SLURM_FLAG_TO_SDP = {
    "COMPLETING": RUNNING,
    "STAGE_OUT": RUNNING,
    "SIGNALING": RUNNING,
    "RESIZING": RUNNING,
    "CONFIGURING": PENDING,
    "STOPPED": PENDING,
    "REQUEUED": PENDING,
    "REQUEUE_FED": PENDING,
    "REQUEUE_HOLD": PENDING,
    "SPECIAL_EXIT": PENDING,
    "RESV_DEL_HOLD": PENDING,
}

#: Slurm base states after which a job never changes again (``slurm.models.FINISHED_JOB_STATES``).
SLURM_FINISHED_STATES = FINISHED_JOB_STATES

#: state_reason written when a job vanished from Slurm before it was seen to end.
VANISHED_REASON = "JobVanished"
#: state_reason written when a deployment could not be turned into a job.
INVALID_DEPLOYMENT_REASON = "InvalidDeployment"
#: state_reason written when submission was rejected by Slurm.
SUBMIT_FAILED_REASON = "SubmitFailed"


def vanished_description(job_id):
    """The state_description of a job that vanished from Slurm before its end was seen."""
    return f"Slurm job {job_id} is no longer known to slurmctld; its end was not observed"


def sdp_status(job_state):
    """Map a Slurm base job state to an SDP status.

    Args:
        job_state: a Slurm base state such as ``"RUNNING"`` (``SlurmJob.job_state``),
            or a flag that an old API version shows instead of it (``COMPLETING``),
            which gets the provisional status of :data:`SLURM_FLAG_TO_SDP`.

    Returns:
        One of PENDING, RUNNING, FINISHED, CANCELLED, FAILED.

    Raises:
        ValueError: for a state Slurm does not define, naming it.
    """
    try:
        return SLURM_TO_SDP[job_state] if job_state in SLURM_TO_SDP else SLURM_FLAG_TO_SDP[job_state]
    except KeyError:
        raise ValueError(
            f"unknown Slurm job state {job_state!r}; expected one of {', '.join(sorted(SLURM_TO_SDP))}"
        ) from None


def is_terminal(status):
    """True when an SDP status is FINISHED, CANCELLED or FAILED."""
    return status in TERMINAL_STATUSES


@dataclass(frozen=True)
class DeploymentState:
    """The state the Slurm deployer writes to ``/deploy/<key>/state``.

    Mirrors ska-sdp-slurmdeploy's ``SlurmDeploymentState(key, job_id, status,
    state_reason=None, state_description=None)``; :meth:`to_dict` gives its format:
    ``{"num_job": 1, "jobs": {key: {"slurm_job_id", "status", "state_reason",
    "state_description"}}}`` plus ``"error_state"`` when the status is FAILED.

    Attributes:
        key: the deployment key.
        job_id: the Slurm job id (int), or None when no job was ever submitted.
        status: an SDP status.
        state_reason: Slurm's ``state_reason`` or one of this module's reasons.
        state_description: a human-readable description (e.g. Slurm's
            ``state_description``, or why a deployment was rejected).
        error_state: why the deployment FAILED (defaults to the description or reason).
    """

    key: str
    job_id: Optional[int]
    status: str
    state_reason: Optional[str] = None
    state_description: Optional[str] = None
    error_state: Optional[str] = None

    def to_dict(self):
        """Return the SKA deployment-state dict (JSON-serialisable)."""
        job = {"slurm_job_id": self.job_id, "status": self.status}
        if self.state_reason is not None:
            job["state_reason"] = self.state_reason
        if self.state_description is not None:
            job["state_description"] = self.state_description
        out = {"num_job": 0 if self.job_id is None else 1, "jobs": {self.key: job}}
        if self.status == FAILED:
            out["error_state"] = (
                self.error_state
                or self.state_description
                or (f"Slurm job {self.job_id} failed: {self.state_reason}" if self.job_id else self.state_reason)
                or "failed"
            )
        return out

    @classmethod
    def from_dict(cls, key, data):
        """Parse a stored state dict; unknown or partial content gives status UNSET.

        Args:
            key: the deployment key.
            data: the decoded JSON value of ``/deploy/<key>/state`` (or None).

        Returns:
            A :class:`DeploymentState`; ``job_id`` None when none is recorded.
        """
        if not isinstance(data, dict):
            return cls(key=key, job_id=None, status=UNSET)
        jobs = data.get("jobs") or {}
        job = jobs.get(key)
        if not isinstance(job, dict) and len(jobs) == 1:
            job = next(iter(jobs.values()))
        if not isinstance(job, dict):
            job = {}
        job_id = job.get("slurm_job_id")
        try:
            job_id = int(job_id) if job_id is not None else None
        except (TypeError, ValueError):
            job_id = None
        return cls(
            key=key,
            job_id=job_id,
            status=job.get("status") or UNSET,
            state_reason=job.get("state_reason"),
            state_description=job.get("state_description"),
            error_state=data.get("error_state"),
        )

    @property
    def terminal(self):
        """True when this state must never be overwritten."""
        return is_terminal(self.status)
