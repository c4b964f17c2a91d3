"""Which of our Slurm jobs the sensor's observation needs, at the cost of what changed.

:meth:`slurmdeploy.deployer.Deployer.observe` wants "our jobs" (mcs_label ours): the jobs
the deployments' states record, plus any other job of ours that may be an orphan or a
duplicate. Listing the whole cluster (``GET .../jobs``) for that costs ~0.3 ms and ~7.7 KB
per job in the queue on Slurm 24.11 and makes slurmrestd grow by hundreds of MB per listing
that it never gives back (~680 MiB at 5,000 jobs, bench/poll.py), so :class:`JobView` lists
the cluster once, at start-up (remembering every other job id as foreign), and resyncs

- every ``resync_interval`` seconds (to find orphans and duplicates), and
- when a deployment carries a submit-attempt trace with no job recorded and no owner left
  (a submitter died after Slurm may have accepted its job: the job must be found), once per
  such trace,

with state-only queries: ``GET .../jobs/state/`` without ids (ids and states, ~40 bytes a
job) and one ``GET .../job/{id}`` for each job id it has never seen (submitted since the last
resync); REST v0.0.38/39 (Slurm 22.05) have no ``jobs/state`` and list everything instead.
Otherwise it asks only about the jobs it tracks (the ids in the non-terminal states and
the unfinished jobs of ours it knows): ``GET .../jobs/state/?job_id=...`` on REST v0.0.40+
(ids and states only, cost independent of the queue), ``GET .../job/{id}`` on older
versions; full job details only for jobs whose state changed (a job the view first sees as
its state records it is :func:`slurmdeploy.decisions.vouched_job`, the one record of "the
pack's state vouches for it" that :func:`slurmdeploy.decisions.belongs` accepts). On a watch
wake (:attr:`slurmdeploy.decisions.Wake.WATCH`) only the changed deployments' jobs are looked
at (an index key -> job ids): the cost of a wake is O(changed deployments), not O(tracked).

Whose job it is: ``jobs/state`` carries ids and states only (24.11.5, v0.0.40-42:
``{"job_id", "state"}``, ``tests/fixtures/slurm/v0.0.4x/jobs_state.json``), no ``user_name``.
A job id is trusted as the pack user's only when its full record (``GET .../jobs`` or
``GET .../job/{id}``, both with ``user_name``/``user_id``) said so, or when the pack's own
state records it: the deployer records a job id only after Slurm answered its own submit with
it, or after it read the job's full record and checked user and marker (adoption, update).
Such a record gets the pack's user, our label and the marker without a GET - unless the
last listing of our label lacked a job the state recorded before it: that job is gone or
carries another mcs_label (``release_name``/``namespace`` changed since its submit,
:func:`slurmdeploy.decisions.label_changed`); the view leaves it out and the observation
reads it (``tests/integration/test_label_change.py``). The actions that act on a job
(``cancel``, ``update_state``) read its full record from Slurm and check both again.
"""

import dataclasses
import enum
import logging
import time

from slurmdeploy import decisions, states
from slurmdeploy.jobs import key_from_job_name

LOG = logging.getLogger(__name__)


#: default :attr:`JobView.resync_reads`: ~3 s of GETs per resync on the bench cluster
RESYNC_READS = 500


class ViewMode(str, enum.Enum):
    """How :meth:`JobView.our_jobs` got our jobs (:attr:`JobView.last_mode`). A ``str``
    subclass: compares equal to its value."""

    #: the whole cluster listed (``GET .../jobs``, our label): every key may have changed
    FULL = "full"
    #: the states of every tracked job asked (one ``jobs/state`` request): a poll
    INCREMENTAL = "incremental"
    #: only ids not known yet asked: a watch wake or a retry
    CACHED = "cached"


class JobView:
    """Supplies :meth:`Deployer.observe` with our jobs, incrementally.

    Args:
        slurm: a :class:`slurmdeploy.slurm.SlurmClient`.
        mcs_label: our label.
        resync_interval: seconds between two resyncs (one full listing at start-up, then
            state-only).
        clock: time source in seconds (tests).
        resync_reads: the most job ids never seen before that one resync reads in full
            (newest first; the others wait for the next resync).

    Attributes:
        full_listings: how many times the whole cluster was listed (``GET .../jobs``: at
            start-up, and at every resync on REST v0.0.38/39).
        state_resyncs: how many resyncs asked only ids and states (``GET .../jobs/state/``
            without ids) and read only the job ids new since the last one.
        resyncs: both together.
        last_mode: the last call's :class:`ViewMode` (None before the first).
    """

    def __init__(self, slurm, mcs_label, resync_interval, clock=time.monotonic, resync_reads=RESYNC_READS):
        self.slurm = slurm
        self.resync_reads = resync_reads
        self.mcs_label = mcs_label
        self.resync_interval = resync_interval
        self.clock = clock
        self._jobs = {}  # job_id -> SlurmJob of ours, as last read
        self._ids_of = {}  # deployment key (from the job name) -> job ids in _jobs
        self._last_full = None
        self._checked_attempts = set()  # (key, revision) already looked for by a listing
        self._unlisted = set()  # recorded job ids the last listing of our label lacked
        self._foreign = None  # job ids read in full and not ours (None: never listed)
        self.full_listings = 0
        self.state_resyncs = 0
        self.resyncs = 0
        self.last_mode = None

    def request_resync(self):
        """List the whole cluster at the next call."""
        self._last_full = None

    def _put(self, job):
        self._jobs[job.job_id] = job
        key = key_from_job_name(job.name)
        if key is not None:
            self._ids_of.setdefault(key, set()).add(job.job_id)

    def _drop(self, job_id):
        job = self._jobs.pop(job_id, None)
        if job is None:
            return
        key = key_from_job_name(job.name)
        ids = self._ids_of.get(key)
        if ids is not None:
            ids.discard(job_id)
            if not ids:
                del self._ids_of[key]

    def _list_everything(self, snap):
        """One full listing (``GET .../jobs``): our jobs kept, every other job id remembered
        as foreign (never read again while Slurm holds it)."""
        everything = self.slurm.list_jobs()
        jobs = sorted((j for j in everything if j.mcs_label == self.mcs_label), key=lambda j: j.job_id)
        self._jobs, self._ids_of = {}, {}
        for job in jobs:
            self._put(job)
        self._foreign = {j.job_id for j in everything if j.mcs_label != self.mcs_label}
        # a job a live state recorded before this listing (the snapshot was read first)
        # and that the listing of our label lacks is gone or carries another label (our
        # release_name or namespace changed since it was submitted): never give it our
        # label without reading it; observe reads it (issue 15, item 3)
        self._unlisted = set(decisions.recorded_jobs(snap)) - set(self._jobs)
        self.full_listings += 1
        self.resyncs += 1
        self.last_mode = ViewMode.FULL
        return jobs

    def _discover(self, snap, states_now):
        """A state-only resync: forget the jobs Slurm no longer holds and read in full (one
        ``GET .../job/{id}`` each) only the job ids never seen before, keeping ours and
        remembering the others as foreign. Cost: one ``jobs/state`` answer (~40 bytes a job)
        plus one GET per job submitted since the last resync."""
        self._foreign &= set(states_now)
        for job_id in [i for i in self._jobs if i not in states_now]:
            self._drop(job_id)
        # newest first (an orphan or a submit attempt's job is recent), at most resync_reads
        # per resync: 5,000 GETs take ~30 s on the bench cluster and the sensor waits meanwhile;
        # the rest are read at the next resyncs
        unknown = sorted((i for i in states_now if i not in self._jobs and i not in self._foreign), reverse=True)
        if unknown:
            LOG.info("resync: reading %d of %d Slurm job(s) not seen before (newest first)",
                     min(len(unknown), self.resync_reads), len(unknown))
        for job_id in unknown[:self.resync_reads]:
            job = self.slurm.get_job(job_id)
            if job is None:
                continue
            if job.mcs_label == self.mcs_label:
                self._put(job)
            else:
                self._foreign.add(job_id)
        self._unlisted = set(decisions.recorded_jobs(snap)) & self._foreign
        self.state_resyncs += 1
        self.resyncs += 1

    def our_jobs(self, snap, refresh=True, keys=None):
        """Our jobs as :meth:`Deployer.observe` needs them.

        Args:
            snap: the :class:`slurmdeploy.configdb.Snapshot` being observed.
            refresh: True (a poll): the states of all tracked jobs are read. False (a watch
                wake or a retry): jobs already known are not asked about again; only recorded
                ids no job is known for yet are read (one ``jobs/state`` request).
            keys: with ``refresh`` False, only the jobs of these deployment keys are looked
                at and returned (a watch wake: cost O(len(keys))); None: all.

        Returns:
            A list of :class:`slurmdeploy.slurm.models.SlurmJob` with our mcs_label, oldest
            first: every job of ours after a full listing (:attr:`last_mode` FULL, whatever
            ``keys`` says), else those of ``keys`` (all when None).

        Raises:
            SlurmAPIError: slurmrestd failed (the view is left as it was).
        """
        now = self.clock()
        attempts = {(k, snap.deployments[k].revision) for k in snap.attempts if snap.attempt_pending(k)}
        unchecked = attempts - self._checked_attempts
        resync = self._last_full is None or now - self._last_full >= self.resync_interval or unchecked
        if resync:
            if unchecked:
                LOG.info("looking through Slurm's jobs for the job of %s (a submit attempt without a recorded job "
                         "id)", ", ".join(sorted(repr(k) for k, _ in unchecked)))
            states_now = None if self._foreign is None else self.slurm.all_job_states()
            if states_now is None:
                # start-up (or REST v0.0.38/39, which has no jobs/state): list everything once
                jobs = self._list_everything(snap)
                self._last_full = now
                self._checked_attempts = attempts
                return jobs
            self._discover(snap, states_now)
            self._last_full = now
            refresh, keys = True, None  # and ask the tracked jobs' states, as a poll does
        self._checked_attempts &= attempts
        if refresh:
            keys = None
        recorded = decisions.recorded_jobs(snap, keys)
        if self._unlisted:  # normally empty: nothing added to a wake's cost
            if keys is None:
                self._unlisted &= set(recorded)
            for job_id in self._unlisted & set(recorded):
                del recorded[job_id]
        if keys is None:
            known = {i for i, j in self._jobs.items() if not j.finished}
        else:
            known = {i for k in keys for i in self._ids_of.get(k, ()) if not self._jobs[i].finished}
        tracked = set(recorded) | known
        if refresh:
            query = tracked
            self.last_mode = ViewMode.FULL if resync else ViewMode.INCREMENTAL
        else:
            query = {i for i in recorded if i not in self._jobs}
            self.last_mode = ViewMode.CACHED
        current = self.slurm.job_states(query) if query else {}
        for job_id in query:
            job_state = current.get(job_id)
            cached = self._jobs.get(job_id)
            if job_state is None:
                self._drop(job_id)  # gone: observe confirms with a GET of its own
            elif cached is not None and cached.job_state == job_state:
                continue
            elif cached is not None and job_id in recorded and _status(job_state) == recorded[job_id][1]:
                # what the state records still holds: keep the details read before (name,
                # label and the comment with the deployment marker, which observe checks
                # before it touches a job) with the new base state; observe compares only
                # the status
                self._jobs[job_id] = dataclasses.replace(cached, job_state=job_state)
            elif job_id in recorded and _status(job_state) == recorded[job_id][1]:
                # new to the view, as its state records it: the pack's state vouches for it
                # (decisions.vouched_job), no GET
                key, _status_recorded, revision = recorded[job_id]
                self._put(decisions.vouched_job(key, revision, job_id, job_state, self.mcs_label,
                                                self.slurm.user_name))
            else:
                # changed: full details for the event (with the comment, which jobs/state
                # does not report)
                job = self.slurm.get_job(job_id)
                self._drop(job_id)
                if job is not None and job.mcs_label == self.mcs_label:
                    self._put(job)
        if keys is None:
            if not resync:  # a resync's finished jobs may be an attempt's: observe adopts them
                for job_id in [i for i in self._jobs if i not in tracked]:
                    self._drop(job_id)  # finished and no longer recorded by a live state
            return sorted(self._jobs.values(), key=lambda j: j.job_id)
        ids = set(recorded) | {i for k in keys for i in self._ids_of.get(k, ())}
        return sorted((self._jobs[i] for i in ids if i in self._jobs), key=lambda j: j.job_id)


def _status(job_state):
    try:
        return states.sdp_status(job_state)
    except ValueError:
        return None  # unknown state: read the job in full; observe reports it
