"""The deployer's operations: what the sensor observes and what the actions do.

- :meth:`Deployer.observe` (the sensor's poll): compares the Configuration DB with
  Slurm and returns the trigger instances to dispatch (``deployment_new``,
  ``deployment_removed``, ``job_state_changed``). Level-triggered: each call compares
  the whole desired state with the actual state, so nothing is lost while the sensor,
  etcd or slurmrestd was down.
- :meth:`Deployer.submit`, :meth:`Deployer.cancel`, :meth:`Deployer.update_state`
  (the actions): each re-reads what it acts on, so stale or duplicate triggers are
  harmless.

Exactly one Slurm job per deployment (design.md): ``submit`` claims the deployment
(``/deploy/<key>/owner`` created on an etcd lease by compare-and-swap); when a previous
attempt left a trace (``/deploy/<key>/attempt``, written by the claiming transaction and
deleted with the owner key by the transaction that records the job id) it looks for a job of this deployment (our
mcs_label, name ``sdp-<key>``, marker ``sdp-deployment:<key>@<create_revision>`` in the
job comment) and adopts it instead of submitting again; the state is written by
compare-and-swap and the claim released.
A crash anywhere leaves either no job (the claim expires, the next poll retries) or a
job that the next poll adopts.
"""

import logging
import os
import time
from dataclasses import dataclass

from slurmdeploy import states
from slurmdeploy.configdb import ConfigDB
from slurmdeploy.errors import InvalidDeployment, SlurmAPIError, SlurmAuthError
from slurmdeploy.jobs import build_job, deployment_marker, job_name, key_from_job_name, parse_marker
from slurmdeploy.settings import Settings
from slurmdeploy.slurm.client import SlurmClient
from slurmdeploy.states import DeploymentState

LOG = logging.getLogger(__name__)

DEPLOYMENT_NEW = "deployment_new"
DEPLOYMENT_REMOVED = "deployment_removed"
JOB_STATE_CHANGED = "job_state_changed"

#: HTTP statuses after which a failed submit may succeed later (not the deployment's fault).
TRANSIENT_STATUSES = frozenset({None, 408, 429, 502, 503, 504})


@dataclass(frozen=True)
class Event:
    """A trigger instance to dispatch: ``trigger`` is the trigger name, ``payload`` a dict."""

    trigger: str
    payload: dict

    @property
    def identity(self):
        """What makes two events the same for re-dispatch suppression."""
        p = self.payload
        return (self.trigger, p.get("key"), p.get("job_id"), p.get("status"))


def result(outcome, key, **fields):
    """An action result dict: ``{"outcome", "key", ...}`` with None values dropped."""
    out = {"outcome": outcome, "key": key}
    out.update({k: v for k, v in fields.items() if v is not None})
    return out


class Deployer:
    """The SKA SDP Slurm Deployer's logic over one Configuration DB and one Slurm.

    Args:
        settings: :class:`slurmdeploy.settings.Settings`.
        configdb: :class:`slurmdeploy.configdb.ConfigDB`.
        slurm: :class:`slurmdeploy.slurm.SlurmClient`.
        environ: the deployer's environment (job environment defaults), default ``os.environ``.
    """

    def __init__(self, settings, configdb, slurm, environ=None):
        self.settings = settings
        self.configdb = configdb
        self.slurm = slurm
        self.environ = os.environ if environ is None else environ
        self.mcs_label = settings.mcs_label
        #: where observe gets its snapshot and our jobs (the sensor sets a
        #: slurmdeploy.watch.DeploymentWatch and a slurmdeploy.jobview.JobView; None: read
        #: everything from etcd and list the whole cluster on every call)
        self.watch = None
        self.job_view = None

    @classmethod
    def from_config(cls, config=None, environ=None):
        """Build a deployer from a pack config (StackStorm ``self.config``) and the environment.

        Raises:
            ConfigurationError, MissingAuthEnvVar: a setting is missing or wrong.
        """
        environ = os.environ if environ is None else environ
        settings = Settings.from_config(config, environ)
        return cls(settings, ConfigDB.from_settings(settings), SlurmClient.from_settings(settings), environ)

    # ------------------------------------------------------------ observe
    def observe(self):
        """Compare the Configuration DB with Slurm; return the events to dispatch.

        The Configuration DB is read first (a fresh range read, or the sensor's watched
        snapshot: :attr:`watch`), then our jobs (Slurm's whole job list, or the sensor's
        incremental :attr:`job_view`), so a job whose
        deployment seems gone or whose recorded job seems gone is confirmed with a
        second, targeted read before an event is emitted.

        Returns:
            A list of :class:`Event`, in deployment-key order.

        Raises:
            ConfigDBError, SlurmAPIError: when either side cannot be read (the
            sensor logs it and tries again at the next poll).
        """
        snap = self.configdb.snapshot() if self.watch is None else self.watch.snapshot()
        our_jobs = self.slurm.find_jobs(self.mcs_label) if self.job_view is None else self.job_view.our_jobs(snap)
        by_id = {job.job_id: job for job in our_jobs}
        by_key = {}
        for job in our_jobs:
            key = key_from_job_name(job.name)
            if key is not None:
                by_key.setdefault(key, []).append(job)
        events = []
        wanted = {}  # key -> the job id its state records
        for key in sorted(snap.deployments):
            dep = snap.deployments[key]
            if dep.kind != "slurm":
                if dep.kind is None:
                    LOG.debug("deployment %r ignored: %s", key, dep.problem)
                continue
            state, _ = snap.states.get(key, (DeploymentState.from_dict(key, None), 0))
            wanted[key] = state.job_id
            if state.terminal:
                continue
            try:
                events.extend(self._observe_deployment(dep, state, snap.owners.get(key), by_id, by_key))
            except ValueError as exc:  # e.g. a job state this library does not know
                LOG.warning("deployment %r skipped this poll: %s", key, exc)
        for key in sorted(by_key):
            for job in by_key[key]:
                if job.finished:
                    continue
                dep = snap.deployments.get(key)
                if dep is not None and self._belongs(job, dep) and wanted.get(key) in (None, job.job_id):
                    continue
                # confirm: the deployment may have been created after the snapshot
                dep = self.configdb.get_deployment(key)
                recorded = self.configdb.get_state(key)[0].job_id if dep is not None else None
                if dep is None or not self._belongs(job, dep) or recorded not in (None, job.job_id):
                    events.append(
                        Event(DEPLOYMENT_REMOVED, {"key": key, "job_id": job.job_id, "job_state": job.job_state})
                    )
        self.touch_liveness()
        return events

    def _observe_deployment(self, dep, state, owner, by_id, by_key):
        key = dep.key
        if state.job_id is not None:
            job = by_id.get(state.job_id) or self.slurm.get_job(state.job_id)
            if job is not None and job.mcs_label != self.mcs_label:
                job = None  # the id was reused by someone else's job: ours is gone
            status = states.sdp_status(job.job_state) if job else states.FAILED
            if job is None or status != state.status:
                return [self._state_event(key, state, job, state.job_id)]
            return []
        if owner is not None:
            LOG.debug("deployment %r is being submitted by pid %s on %s", key, owner.get("pid"), owner.get("hostname"))
            return []
        current = [j for j in by_key.get(key, []) if self._belongs(j, dep)]
        if current:
            return [self._state_event(key, state, _pick(current), None)]
        return [Event(DEPLOYMENT_NEW, {"key": key, "kind": dep.kind, "args": dep.args})]

    def _belongs(self, job, dep):
        """True when ``job`` is the job of this incarnation of deployment ``dep``."""
        if dep.kind != "slurm" and dep.valid:
            return False
        marker = parse_marker(job.comment)
        return marker is None or marker == (dep.key, dep.revision)

    def _state_event(self, key, state, job, job_id):
        if job is None:
            status, job_state = states.FAILED, "UNKNOWN"
            reason = states.VANISHED_REASON
            description = states.vanished_description(job_id)
        else:
            status, job_state = states.sdp_status(job.job_state), job.job_state
            reason, description = job.state_reason, job.state_description
            job_id = job.job_id
        return Event(
            JOB_STATE_CHANGED,
            {
                "key": key,
                "job_id": job_id,
                "job_state": job_state,
                "previous_status": state.status,
                "status": status,
                "state_reason": reason,
                "state_description": description,
            },
        )

    def touch_liveness(self):
        """Touch the liveness file (``liveness_file``), as the original deployer does."""
        path = self.settings.liveness_file
        if not path:
            return
        try:
            with open(path, "a", encoding="utf-8"):
                pass
            os.utime(path, None)
        except OSError as exc:
            LOG.warning("cannot touch liveness file %s: %s", path, exc)

    # -------------------------------------------------------------- submit
    def submit(self, key, args=None):
        """Submit the Slurm job of a deployment, exactly once.

        Args:
            key: deployment key.
            args: deployment args to use instead of the stored ones (default: read
                ``/deploy/<key>`` from the Configuration DB).

        Returns:
            ``(ok, result)``: ``ok`` False when the deployment was rejected (its state is
            now FAILED with ``error_state``). ``result["outcome"]`` is one of
            ``submitted``, ``adopted``, ``already_submitted``, ``claimed_elsewhere``,
            ``claim_lost``; failed: ``rejected``, ``not_found``, ``not_ours`` (another kind;
            nothing is written).

        Raises:
            ConfigDBError, SlurmAPIError: transient failures; nothing was recorded and
            the next poll retries (adopting the job if it was in fact submitted).
        """
        dep, state, _, attempt = self.configdb.read_deployment(key)
        if dep is None:
            return False, result("not_found", key, error=f"no deployment at {self.configdb.deployment_path(key)}")
        if dep.kind != "slurm":
            return False, result("not_ours", key, kind=dep.kind,
                                 error=f"deployment {key!r} is of kind {dep.kind!r}; this deployer only runs 'slurm' "
                                       "deployments and leaves the others (and their state) alone")
        if args is not None:
            dep = type(dep)(dep.key, dep.kind, args, dep.revision, isinstance(args, dict),
                            None if isinstance(args, dict) else "args must be an object")
        if state.job_id is not None or state.terminal:
            return True, result("already_submitted", key, job_id=state.job_id, status=state.status)
        # only a previous attempt's trace makes a job of this deployment possible: a fresh
        # deployment is submitted without listing the cluster (a listing grows with the queue)
        attempted = attempt == dep.revision
        claim = self.configdb.claim(key, self.settings.claim_ttl, attempt_revision=dep.revision)
        if claim is None:
            owner = self.configdb.get_owner(key) or {}
            owner = {"pid": owner.get("pid"), "hostname": owner.get("hostname")}
            LOG.info("deployment %r is being submitted by pid %s on %s", key, owner["pid"], owner["hostname"])
            return True, result("claimed_elsewhere", key, owner=owner)
        release = True
        try:
            ok, res = self._submit_claimed(dep, claim, attempted)
            release = not res.get("state_written")  # the owner key went with the state write
            return ok, res
        except SlurmAPIError as exc:
            if exc.method == "POST" and (exc.status in TRANSIENT_STATUSES or not exc.errors):
                # the submit's outcome is unknown (timeout, reset...): keep the claim until its
                # lease expires, so the next attempt finds the job in Slurm's listing and adopts it
                release = False
                LOG.warning("deployment %r: submit outcome unknown (%s); the claim expires in %s s, then the "
                            "job is adopted or submitted", key, exc, self.settings.claim_ttl)
            raise
        finally:
            if release:
                self.configdb.release(claim)

    def _submit_claimed(self, dep, claim, attempted):
        key = dep.key
        state, mod = claim.state, claim.state_mod_revision  # read by the claiming transaction
        if state.job_id is not None or state.terminal:
            return True, result("already_submitted", key, job_id=state.job_id, status=state.status)
        existing = []
        if attempted:
            LOG.info("deployment %r: a previous submit attempt left a trace; looking for its job by name", key)
            existing = [j for j in self.slurm.find_jobs(self.mcs_label, job_name(key)) if self._belongs(j, dep)]
        if existing:
            job = _pick(existing)
            new = DeploymentState(key, job.job_id, states.sdp_status(job.job_state), job.state_reason,
                                  job.state_description)
            written = self.configdb.write_state(key, new, mod, dep.revision, done=True)
            LOG.info("deployment %r: adopted existing Slurm job %s (%s)", key, job.job_id, job.job_state)
            return True, result("adopted", key, job_id=job.job_id, status=new.status, state_written=written)
        try:
            request = build_job(self.settings, dep, self.environ)
        except InvalidDeployment as exc:
            failed = DeploymentState(key, None, states.FAILED, states.INVALID_DEPLOYMENT_REASON, str(exc),
                                     error_state=str(exc))
            written = self.configdb.write_state(key, failed, mod, dep.revision, done=True)
            LOG.warning("deployment %r rejected: %s", key, exc)
            return False, result("rejected", key, status=states.FAILED, error=str(exc), state_written=written)
        # the claim must outlive the submit request (sent only when provably still ours)
        if not self.configdb.refresh(claim, margin=self.settings.connect_timeout + self.settings.read_timeout):
            LOG.warning("deployment %r: the submission claim expired before the submit; not submitting", key)
            return True, result("claim_lost", key)
        try:
            job_id = self.slurm.submit_job(request)
        except SlurmAPIError as exc:
            if isinstance(exc, SlurmAuthError) or exc.status in TRANSIENT_STATUSES or not exc.errors:
                raise
            message = f"Slurm rejected the job of deployment {key!r}: {exc}"
            failed = DeploymentState(key, None, states.FAILED, states.SUBMIT_FAILED_REASON, message,
                                     error_state=message)
            written = self.configdb.write_state(key, failed, mod, dep.revision, done=True)
            LOG.warning("%s", message)
            return False, result("rejected", key, status=states.FAILED, error=message, state_written=written)
        new = DeploymentState(key, job_id, states.PENDING, "Submitted", f"submitted as Slurm job {job_id}")
        written = self.configdb.write_state(key, new, mod, dep.revision, done=True)
        if written:
            LOG.info("deployment %r: submitted Slurm job %s", key, job_id)
        else:
            LOG.warning("deployment %r: submitted Slurm job %s but the deployment changed meanwhile; "
                        "the next poll reconciles it", key, job_id)
        return True, result("submitted", key, job_id=job_id, job_name=request.name, status=states.PENDING,
                            mcs_label=request.mcs_label, state_written=written)

    # -------------------------------------------------------------- cancel
    def cancel(self, key, job_id=None, force=False):
        """Cancel the Slurm job(s) of a deployment that is gone (or replaced).

        Only jobs with our mcs_label and the name ``sdp-<key>`` are ever cancelled.

        Args:
            key: deployment key.
            job_id: the job to cancel (default: every unfinished job of ours named
                ``sdp-<key>``).
            force: also cancel the job of a deployment that still exists (by hand; the
                next poll then records CANCELLED in its state).

        Returns:
            ``(ok, result)``; ``result["jobs"]`` lists ``{"job_id", "outcome"}`` with outcome
            ``cancelled``, ``already_finished``, ``not_found``, ``kept`` (deployment
            exists), or ``refused`` (not our job: ``ok`` is False).
        """
        dep = self.configdb.get_deployment(key)
        recorded = self.configdb.get_state(key)[0].job_id if dep is not None else None
        if job_id is not None:
            job = self.slurm.get_job(job_id)
            candidates = [job] if job is not None else []
            if job is None:
                return True, result("not_found", key, jobs=[{"job_id": int(job_id), "outcome": "not_found"}])
        else:
            candidates = [j for j in self.slurm.find_jobs(self.mcs_label, job_name(key)) if not j.finished]
        outcomes, ok = [], True
        for job in candidates:
            outcome = self._cancel_one(key, job, dep, recorded, force)
            ok = ok and outcome != "refused"
            outcomes.append({"job_id": job.job_id, "outcome": outcome})
        if dep is None:
            self.configdb.drop_orphan_state(key)
        summary = "cancelled" if any(o["outcome"] == "cancelled" for o in outcomes) else "nothing_to_cancel"
        if not ok:
            summary = "refused"
        return ok, result(summary, key, jobs=outcomes)

    def _cancel_one(self, key, job, dep, recorded, force):
        if job.mcs_label != self.mcs_label or job.name != job_name(key):
            LOG.warning("refusing to cancel Slurm job %s (name %r, mcs_label %r): not a job of deployment %r "
                        "with label %r", job.job_id, job.name, job.mcs_label, key, self.mcs_label)
            return "refused"
        if job.finished:
            return "already_finished"
        if dep is not None and self._belongs(job, dep) and recorded in (None, job.job_id) and not force:
            LOG.info("deployment %r exists: keeping Slurm job %s (use force=true to cancel it)", key, job.job_id)
            return "kept"
        if self.slurm.cancel_job(job.job_id):
            LOG.info("deployment %r: cancelled Slurm job %s", key, job.job_id)
            return "cancelled"
        return "not_found"

    # -------------------------------------------------------- update_state
    def update_state(self, key, job_id=None, attempts=3):
        """Record a deployment's job state in the Configuration DB.

        Re-reads the job from Slurm (the trigger may be stale); never overwrites a
        FINISHED, CANCELLED or FAILED state; a recorded job that slurmctld no longer
        knows becomes FAILED with state_reason ``JobVanished``.

        Args:
            key: deployment key.
            job_id: the Slurm job id (default: the one in the state, else this
                deployment's job found by name, label and marker - adoption).
            attempts: compare-and-swap attempts when the state changes concurrently.

        Returns:
            ``(ok, result)``; outcome ``updated``, ``unchanged``, ``terminal``,
            ``deployment_gone``, ``no_job``, ``other_job`` or ``refused`` (not our job).
        """
        for _ in range(attempts):
            dep = self.configdb.get_deployment(key)
            if dep is None:
                return True, result("deployment_gone", key, job_id=job_id)
            state, mod = self.configdb.get_state(key)
            if state.terminal:
                return True, result("terminal", key, job_id=state.job_id, status=state.status)
            wanted = job_id if job_id is not None else state.job_id
            if state.job_id is not None and wanted != state.job_id:
                return True, result("other_job", key, job_id=wanted, recorded_job_id=state.job_id)
            if wanted is None:
                found = [j for j in self.slurm.find_jobs(self.mcs_label, job_name(key)) if self._belongs(j, dep)]
                if not found:
                    return True, result("no_job", key)
                job = _pick(found)
            else:
                job = self.slurm.get_job(wanted)
            if job is None:
                if state.job_id is None:
                    return True, result("no_job", key, job_id=wanted)
                new = DeploymentState(key, wanted, states.FAILED, states.VANISHED_REASON,
                                      states.vanished_description(wanted))
            elif state.job_id == job.job_id and job.mcs_label != self.mcs_label:
                new = DeploymentState(
                    key, wanted, states.FAILED, states.VANISHED_REASON,
                    f"Slurm job {wanted} is gone: its id now belongs to a job without our mcs_label",
                )
            else:
                if job.mcs_label != self.mcs_label or job.name != job_name(key):
                    return False, result("refused", key, job_id=job.job_id,
                                         error=f"Slurm job {job.job_id} is not a job of deployment {key!r} "
                                               f"(name {job.name!r}, mcs_label {job.mcs_label!r})")
                if state.job_id is None and not self._belongs(job, dep):
                    return True, result("no_job", key, job_id=job.job_id)
                new = self._state_of(key, job)
            if (new.status, new.job_id, new.state_reason) == (state.status, state.job_id, state.state_reason):
                return True, result("unchanged", key, job_id=new.job_id, status=new.status)
            if self.configdb.write_state(key, new, mod, dep.revision):
                LOG.info("deployment %r: Slurm job %s %s -> %s (%s)", key, new.job_id, state.status, new.status,
                         new.state_reason)
                return True, result("updated", key, job_id=new.job_id, previous_status=state.status,
                                    status=new.status, state_reason=new.state_reason)
        return True, result("conflict", key, job_id=job_id,
                            error=f"the state of deployment {key!r} kept changing; the next poll retries")

    @staticmethod
    def _state_of(key, job):
        status = states.sdp_status(job.job_state)
        error = None
        if status == states.FAILED:
            detail = f"exit code {job.exit_code}" if job.exit_code is not None else "no exit code"
            if job.exit_signal:
                detail += f", signal {job.exit_signal}"
            error = f"Slurm job {job.job_id} ended {job.job_state} (state_reason {job.state_reason}, {detail})"
        return DeploymentState(key, job.job_id, status, job.state_reason, job.state_description, error)


def _pick(jobs):
    """The job to adopt among several: an unfinished one if any, else the newest."""
    unfinished = [j for j in jobs if not j.finished]
    return min(unfinished, key=lambda j: j.job_id) if unfinished else max(jobs, key=lambda j: j.job_id)


class Observer:
    """Wraps :meth:`Deployer.observe` for a sensor: suppresses re-dispatching the same
    event within ``quiet_period`` seconds, so a slow action is not flooded with
    duplicates, while a lost or failed action is retried after the quiet period
    (level-triggered). Duplicates are harmless anyway: every action re-checks.

    Args:
        deployer: a :class:`Deployer`.
        quiet_period: seconds.
        clock: time source (seconds), for tests.
    """

    def __init__(self, deployer, quiet_period, clock=time.monotonic):
        self.deployer = deployer
        self.quiet_period = quiet_period
        self.clock = clock
        self._sent = {}

    def poll(self):
        """Return the events of one observation that were not sent within the quiet period."""
        now = self.clock()
        events = self.deployer.observe()
        current = {e.identity for e in events}
        self._sent = {k: t for k, t in self._sent.items() if k in current and now - t < self.quiet_period}
        fresh = []
        for event in events:
            if event.identity in self._sent:
                continue
            self._sent[event.identity] = now
            fresh.append(event)
        return fresh


__all__ = ["Deployer", "Observer", "Event", "DEPLOYMENT_NEW", "DEPLOYMENT_REMOVED", "JOB_STATE_CHANGED",
           "deployment_marker"]
