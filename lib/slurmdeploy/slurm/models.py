"""Version-independent models of Slurm jobs, shared by every REST API version.

Units follow Slurm's job description (``slurm.h`` ``job_desc_msg_t``): ``time_limit``
in minutes, ``memory_per_node`` in MiB; times are epoch seconds.
"""

from dataclasses import dataclass, field
from typing import Optional

#: Slurm's base job states (``enum job_states`` in ``slurm.h``, ``JOB_PENDING`` ..
#: ``JOB_OUT_OF_MEMORY``), as the REST API names them.
BASE_JOB_STATES = frozenset({
    "PENDING", "RUNNING", "SUSPENDED", "COMPLETED", "CANCELLED", "FAILED", "TIMEOUT",
    "NODE_FAIL", "PREEMPTED", "BOOT_FAIL", "DEADLINE", "OUT_OF_MEMORY",
})

#: Base states a job never leaves (every base state but PENDING, RUNNING and SUSPENDED; a
#: requeued job gets a new record). Defined here, with the job model, so that
#: :mod:`slurmdeploy.states` depends on this module and not the other way round.
FINISHED_JOB_STATES = BASE_JOB_STATES - {"PENDING", "RUNNING", "SUSPENDED"}


@dataclass(frozen=True)
class JobRequest:
    """What to submit: a batch script and the job options the deployer sets.

    Attributes:
        name: job name (``sdp-<key>`` for deployments).
        script: the batch script, starting with ``#!``.
        environment: environment of the job, NAME -> value (Slurm requires one; error 2019).
        mcs_label: the deployer's label; only jobs carrying it are ever touched.
        current_working_directory: absolute path (Slurm requires one via REST; error 2063).
        partition, account, qos, comment: strings or None.
        time_limit: minutes, or None for the partition default.
        nodes: node count (int) or None.
        tasks, cpus_per_task: ints or None.
        memory_per_node: MiB, or None.
        standard_output, standard_error: file patterns (``%j`` = job id) or None.
    """

    name: str
    script: str
    environment: dict
    mcs_label: str
    current_working_directory: str
    partition: Optional[str] = None
    account: Optional[str] = None
    qos: Optional[str] = None
    comment: Optional[str] = None
    time_limit: Optional[int] = None
    nodes: Optional[int] = None
    tasks: Optional[int] = None
    cpus_per_task: Optional[int] = None
    memory_per_node: Optional[int] = None
    standard_output: Optional[str] = None
    standard_error: Optional[str] = None

    #: option fields (beyond the mandatory ones), in submission order
    OPTION_FIELDS = (
        "partition", "account", "qos", "comment", "time_limit", "nodes", "tasks",
        "cpus_per_task", "memory_per_node", "standard_output", "standard_error",
    )

    def options(self):
        """Return the set option fields as a dict (None values left out)."""
        return {f: getattr(self, f) for f in self.OPTION_FIELDS if getattr(self, f) is not None}


@dataclass(frozen=True)
class SlurmJob:
    """One job as slurmctld reports it, normalised across API versions.

    Attributes:
        job_id: Slurm job id.
        name: job name.
        job_state: the base state (``PENDING``, ``RUNNING``, ``COMPLETED``...). Where
            the API version shows only a flag (v0.0.38 shows ``COMPLETING`` instead of
            the base state while a job completes), that flag; see :attr:`base_state_known`.
        state_flags: flags beside the base state (``COMPLETING``, ``CONFIGURING``...).
        state_reason: Slurm's reason (``"None"``, ``"Priority"``, ``"NonZeroExitCode"``...).
        state_description: Slurm's longer description, or None.
        mcs_label: the job's MCS label (``""`` when unset).
        exit_code: the batch script's return code, or None while unknown.
        exit_signal: the signal that ended it, or None.
        submit_time, start_time, end_time: epoch seconds or None.
        time_limit: minutes, or None when unset or infinite.
        partition, user_name: strings or None.
        comment: the job's comment (the deployer keeps its deployment marker there).
    """

    job_id: int
    name: str
    job_state: str
    state_flags: tuple = field(default_factory=tuple)
    state_reason: Optional[str] = None
    state_description: Optional[str] = None
    mcs_label: str = ""
    exit_code: Optional[int] = None
    exit_signal: Optional[int] = None
    submit_time: Optional[int] = None
    start_time: Optional[int] = None
    end_time: Optional[int] = None
    time_limit: Optional[int] = None
    partition: Optional[str] = None
    user_name: Optional[str] = None
    comment: Optional[str] = None

    @property
    def base_state_known(self):
        """False when the API version reported only a flag instead of the base state."""
        return self.job_state in BASE_JOB_STATES

    @property
    def finished(self):
        """True when the base state is one a job never leaves (COMPLETED, FAILED...)."""
        return self.job_state in FINISHED_JOB_STATES
