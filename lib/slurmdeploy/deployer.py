"""The deployer's operations: what the sensor observes and what the actions do.

- :meth:`Deployer.observe` (the sensor's poll): compares the Configuration DB with
  Slurm and returns the trigger instances to dispatch (``deployment_new``,
  ``deployment_removed``, ``job_state_changed``). Level-triggered: each call compares
  the whole desired state with the actual state, so nothing is lost while the sensor,
  etcd or slurmrestd was down.
- :meth:`Deployer.submit`, :meth:`Deployer.cancel`, :meth:`Deployer.update_state`
  (the actions): each re-reads what it acts on, so stale or duplicate triggers are
  harmless.

Exactly one Slurm job per deployment (``docs/design.md``): ``submit`` claims the deployment
(``/deploy/<key>/owner`` created on an etcd lease by compare-and-swap); when a previous
attempt left a trace (``/deploy/<key>/attempt``, written by the claiming transaction and
deleted with the owner key by the transaction that records the job id) it looks for a job of this deployment (our
mcs_label, name ``sdp-<key>``, marker ``sdp-deployment:<key>@<create_revision>`` in the
job comment) and adopts it instead of submitting again; the state is written by
compare-and-swap and the claim released.
A crash anywhere leaves either no job (the claim expires, the next poll retries) or a
job that the next poll adopts.

This module is the I/O shell: what each operation decides (the events, the state to write,
the :class:`slurmdeploy.decisions.Outcome`) is a pure function of what it read, in
:mod:`slurmdeploy.decisions`.
"""

import collections
import dataclasses
import hashlib
import json
import logging
import os
import threading
import time

from slurmdeploy import decisions
from slurmdeploy.configdb import ConfigDB
from slurmdeploy.decisions import (DEPLOYMENT_NEW, DEPLOYMENT_REMOVED, JOB_STATE_CHANGED, Event, Outcome, belongs,
                                   pick_job, wanted_job)
from slurmdeploy.errors import ConfigDBError, InvalidDeployment, SlurmAPIError, SubmitOutcomeUnknown, SubmitRejected
from slurmdeploy.jobs import build_job, deployment_marker, job_name, key_from_job_name
from slurmdeploy.settings import Settings
from slurmdeploy.slurm.client import CANCEL_ALREADY_ENDED, CANCEL_NOT_FOUND, CANCEL_SENT, SlurmClient
from slurmdeploy.states import DeploymentState

LOG = logging.getLogger(__name__)

#: Kinds of deployment other deployers run (left alone without a log line at INFO).
OTHER_KINDS = frozenset({"helm"})

#: how many distinct settings keep their shared clients (see :func:`shared_clients`)
SHARED_CLIENTS_KEPT = 8
_SHARED_CLIENTS = collections.OrderedDict()  # sha256 of the settings -> (ConfigDB, SlurmClient)
_SHARED_CLIENTS_LOCK = threading.Lock()


def shared_clients(settings):
    """The Configuration DB and Slurm clients of ``settings``, shared by every caller in this
    process with the same settings (secrets included, so a rotated secret gets new clients).

    Each action execution builds a deployer. Under StackStorm that is one per process, so
    this changes nothing there; under a local runner (packrunner: actions in threads of one
    process) it lets executions reuse the HTTP connections (requests' pooled sessions, which
    are thread-safe) instead of opening and closing two TCP connections per execution. The
    clients hold no per-operation state: the claim, the lease and the state writes are
    etcd transactions, as with separate clients. The last :data:`SHARED_CLIENTS_KEPT`
    settings are kept; older clients are dropped (closed by garbage collection once unused).

    Args:
        settings: :class:`slurmdeploy.settings.Settings`.

    Returns:
        ``(ConfigDB, SlurmClient)``.

    Raises:
        ConfigDBError: etcd authentication failed (nothing is kept).
        ConfigurationError, MissingAuthEnvVar: see :meth:`SlurmClient.from_settings`.
    """
    fingerprint = hashlib.sha256(json.dumps(dataclasses.asdict(settings), sort_keys=True, default=str)
                                 .encode("utf-8")).hexdigest()
    with _SHARED_CLIENTS_LOCK:
        clients = _SHARED_CLIENTS.get(fingerprint)
        if clients is not None:
            _SHARED_CLIENTS.move_to_end(fingerprint)
            return clients
    clients = (ConfigDB.from_settings(settings), SlurmClient.from_settings(settings))
    with _SHARED_CLIENTS_LOCK:
        clients = _SHARED_CLIENTS.setdefault(fingerprint, clients)
        while len(_SHARED_CLIENTS) > SHARED_CLIENTS_KEPT:
            _SHARED_CLIENTS.popitem(last=False)
    return clients


def result(outcome, key, **fields):
    """An action result dict: ``{"outcome", "key", ...}`` with None values dropped.

    Args:
        outcome: an :class:`Outcome` (or its value); stored as the plain ``str`` value, so the
            result is JSON and YAML exactly as StackStorm's python runner and packrunner keep it.
        key: deployment key.
    """
    out = {"outcome": Outcome(outcome).value, "key": key}
    out.update({k: v for k, v in fields.items() if v is not None})
    return out


def decided(key, decision, **fields):
    """``(ok, result)`` of a :class:`slurmdeploy.decisions.Decision` (its fields, then ``fields``)."""
    return decision.ok, result(decision.outcome, key, **dict(decision.fields, **fields))


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
        self._once = OnceLog(LOG)
        self._once_seen = set()
        #: key -> (create_revision, SlurmJob) of the live deployments whose job carries another
        #: mcs_label (:func:`decisions.label_changed`), to tell the operator once when one is deleted
        self._label_moved = {}
        #: where observe gets its snapshot and our jobs (the sensor sets a
        #: slurmdeploy.watch.DeploymentWatch and a slurmdeploy.jobview.JobView; None: read
        #: everything from etcd and list the whole cluster on every call)
        self.watch = None
        self.job_view = None
        #: the keys the last :meth:`observe` looked at (None: every key)
        self.observed_keys = None

    @property
    def slurm_user(self):
        """The Slurm user the pack submits as (:attr:`SlurmClient.user_name`), or None when
        unknown: only jobs whose ``user_name`` is this user are ever adopted, updated or
        cancelled (:func:`slurmdeploy.decisions.own_job`)."""
        return self.slurm.user_name

    @classmethod
    def from_config(cls, config=None, environ=None, get_secret=None, share_clients=False):
        """Build a deployer from a pack config (StackStorm ``self.config``), the datastore
        (``get_secret``, see :meth:`Settings.from_config`) and the environment.

        Args:
            share_clients: reuse this process's clients for the same settings
                (:func:`shared_clients`; the actions do), instead of new ones (the sensor's
                deployer, whose watch and job view are its own).

        Raises:
            ConfigurationError, MissingAuthEnvVar: a setting is missing or wrong.
            ConfigDBError: etcd authentication failed.
        """
        environ = os.environ if environ is None else environ
        settings = Settings.from_config(config, environ, get_secret=get_secret)
        if share_clients:
            configdb, slurm = shared_clients(settings)
        else:
            configdb, slurm = ConfigDB.from_settings(settings), SlurmClient.from_settings(settings)
        return cls(settings, configdb, slurm, environ)

    # ------------------------------------------------------------ observe
    def observe(self, incremental=False):
        """Compare the Configuration DB with Slurm; return the events to dispatch.

        With ``incremental`` (the sensor's watch wake), only the deployments whose keys the
        watched snapshot just applied events for (:attr:`DeploymentWatch.changed`) and
        their jobs are observed; their events are exactly those a full observation gives
        for these keys (the job view has not listed the cluster: if it did, or the snapshot
        was read afresh, the observation is full). :attr:`observed_keys` tells which keys
        were observed (None: all).

        The Configuration DB is read first (a fresh range read, or the sensor's watched
        snapshot: :attr:`watch`), then our jobs (Slurm's whole job list, or the sensor's
        incremental :attr:`job_view`), so a job whose
        deployment seems gone or whose recorded job seems gone is confirmed with a
        second, targeted read before an event is emitted. Also, without an event:

        - logs every entry it cannot use (bad key, non-JSON value, no ``kind``, unknown
          kind) once per key and mod_revision, with the reason;
        - logs once per key and mod_revision, at WARNING, a ``slurm`` deployment updated in
          place (ignored, as the original deployer ignores it) and one whose value's
          ``key`` is not its etcd key (the etcd key is used);
        - logs once, at WARNING, every job that carries our mcs_label and a deployment's
          job name but not that deployment's marker, or is another Slurm user's (a
          lookalike: never adopted, updated or cancelled; no request is sent about it);
        - logs once, at ERROR, a deployment deleted while its job carries another mcs_label
          (our release_name or namespace changed: :func:`slurmdeploy.decisions.label_changed`):
          that job is not this deployer's, so no ``deployment_removed`` is emitted for it;
        - deletes the state and owner left by a deployment deleted without its children
          (``etcdctl del /deploy/<key>``), once its key is absent.

        Returns:
            A list of :class:`Event`, in deployment-key order.

        Raises:
            ConfigDBError, SlurmAPIError: when either side cannot be read (the
            sensor logs it and tries again at the next poll).
        """
        snap = self.configdb.snapshot() if self.watch is None else self.watch.snapshot()
        our_jobs = self.slurm.find_jobs(self.mcs_label) if self.job_view is None else self.job_view.our_jobs(snap)
        keys = None
        if incremental and self.watch is not None and self.job_view is not None and self.job_view.last_mode != "full":
            keys = self.watch.changed
        self.observed_keys = keys
        by_id = {job.job_id: job for job in our_jobs}
        by_key = {}
        for job in our_jobs:
            key = key_from_job_name(job.name)
            if key is not None:
                by_key.setdefault(key, []).append(job)
        self._log_ignored(snap, keys)
        events = []
        states_now = {}
        for key in sorted(snap.deployments) if keys is None else sorted(k for k in keys if k in snap.deployments):
            dep = snap.deployments[key]
            if dep.kind != "slurm":
                continue
            recorded = snap.states.get(key)  # the UNSET default only when needed: this loop runs per wake
            state = recorded[0] if recorded is not None else DeploymentState.from_dict(key, None)
            states_now[key] = state
            if state.terminal:
                continue
            try:
                events.extend(self._observe_deployment(dep, state, snap.owners.get(key), by_id, by_key))
            except ValueError as exc:  # e.g. a job state this library does not know
                LOG.warning("deployment %r skipped this poll: %s", key, exc)
        for key in sorted(by_key) if keys is None else sorted(k for k in keys if k in by_key):
            for job in by_key[key]:
                if job.finished or not self._is_ours(job, key):
                    continue
                if not decisions.unwanted(job, snap.deployments.get(key), states_now.get(key), self.slurm_user):
                    continue
                # confirm: the deployment may have been created after the snapshot
                dep, state, _, _ = self.configdb.read_deployment(key)  # one request
                if decisions.unwanted(job, dep, state, self.slurm_user):
                    events.append(decisions.removed_event(key, job))
        self._report_label_moved_deleted(snap, keys)
        self._drop_orphans(snap, keys)
        if keys is None:  # an incremental observation did not see every identity
            self._once.forget_all_but(self._once_seen)
            self._once_seen = set()
        self.touch_liveness()
        return events

    def _log_once(self, level, identity, message, *args):
        """Log ``message`` once per ``identity`` while it is seen at every poll."""
        self._once_seen.add(identity)
        self._once.log(level, identity, message, *args)

    def _log_ignored(self, snap, keys=None):
        """Log every unusable entry of the snapshot once (per path and mod_revision); of the
        deployments, only those of ``keys`` when given."""
        for path, mod_rev, reason in snap.ignored:
            self._log_once(logging.WARNING, ("ignored", path, mod_rev),
                           "Configuration DB entry %s ignored: %s. Fix: create the deployment again with a key of "
                           "letters, digits and '-' (at most 96 characters)", path[:80], reason)
        deployments = snap.deployments if keys is None else {k: snap.deployments[k] for k in keys
                                                               if k in snap.deployments}
        for key, dep in sorted(deployments.items()):
            if dep.kind is None or (not dep.valid and dep.kind != "slurm"):
                self._log_once(logging.WARNING, ("bad", key, dep.mod_revision),
                               "deployment %r ignored: %s; no state is written (the deployer cannot tell whose "
                               "it is). Fix: write {\"key\", \"kind\": \"slurm\", \"args\": {...}}",
                               key, dep.problem)
            elif dep.kind != "slurm" and dep.kind not in OTHER_KINDS:
                self._log_once(logging.INFO, ("kind", key, dep.mod_revision),
                               "deployment %r ignored: kind %r is not 'slurm' (this deployer runs only 'slurm'; "
                               "helm deployments are the Helm deployer's)", key, dep.kind)
            if dep.kind != "slurm":
                continue
            if dep.updated_in_place:
                self._log_once(logging.WARNING, ("updated", key, dep.mod_revision),
                               "deployment %r was updated in place (create_revision %s, mod_revision %s): the "
                               "update is ignored, as the original SKA deployer ignores it; its job keeps what it "
                               "was submitted with. Fix: delete the deployment and create it again to run the new "
                               "args", key, dep.revision, dep.mod_revision)
            if dep.stored_key is not None and dep.stored_key != key:
                self._log_once(logging.WARNING, ("stored_key", key, dep.mod_revision),
                               "deployment %r: its value says key %s; the deployer goes by the etcd key %r (job "
                               "name sdp-%s, its state at %s). Fix: write the etcd key's last part as the "
                               "value's \"key\"", key, _shown(dep.stored_key), key, key, self.configdb.state_path(key))

    def _report_label_moved_deleted(self, snap, keys=None):
        """Log once, at ERROR, every deployment seen with a label-changed job
        (:func:`slurmdeploy.decisions.label_changed`) that is now deleted (or re-created) while
        its job still runs under the other mcs_label: the job is not this deployer's under its
        configuration, so no ``deployment_removed`` is emitted and it is never cancelled; the
        operator must. Only among ``keys`` when given. One ``GET .../job/{id}`` per such
        deletion (confirms the job still runs with that label)."""
        for key in sorted(self._label_moved) if keys is None else sorted(k for k in keys if k in self._label_moved):
            revision, job = self._label_moved[key]
            dep = snap.deployments.get(key)
            if dep is not None and dep.revision == revision:
                continue
            del self._label_moved[key]
            try:
                now = self.slurm.get_job(job.job_id)
            except SlurmAPIError as exc:
                now = job
                LOG.debug("deployment %r: job %s not read again (%s)", key, job.job_id, exc)
            if now is not None and not now.finished and now.mcs_label == job.mcs_label:
                LOG.error("%s", decisions.label_changed_deleted_message(key, job.job_id, job.mcs_label,
                                                                        self.mcs_label))

    def _drop_orphans(self, snap, keys=None):
        """Delete the state/owner of deployments whose key is gone (see :meth:`observe`);
        only among ``keys`` when given."""
        for key in snap.orphans if keys is None else sorted(k for k in keys if snap.is_orphan(k)):
            try:
                if self.configdb.drop_orphan_state(key):
                    LOG.info("deployment %r is gone: removed its leftover state and owner", key)
            except ConfigDBError as exc:
                LOG.warning("deployment %r is gone but its leftover state could not be removed (next poll "
                            "retries): %s", key, exc)

    def _is_ours(self, job, key):
        """True when a job named ``sdp-<key>`` with our label carries a marker of ``key``
        (this or an earlier deployment with that key) and is the pack user's
        (:func:`slurmdeploy.decisions.own_job`). A lookalike (label and name but no such
        marker, or another user's job with all three: anyone may set them) is logged once,
        at WARNING, and never touched."""
        if decisions.has_marker(job, key):
            if decisions.own_job(job, self.slurm_user):
                return True
            self._log_foreign(job, key)
            return False
        self._log_once(logging.WARNING, ("lookalike", job.job_id),
                       "Slurm job %s (user %s) carries our mcs_label %r and the name %r of deployment %r but not "
                       "its marker (comment %r): not ours, never adopted, updated or cancelled by the deployer",
                       job.job_id, job.user_name, job.mcs_label, job.name, key, (job.comment or "")[:80])
        return False

    def _log_foreign(self, job, key):
        """Log once, at WARNING, a job with a marker of ``key`` that is not the pack user's."""
        if not self.slurm_user:
            self._log_once(logging.WARNING, ("no-user", job.job_id),
                           "Slurm job %s of user %s carries the marker of deployment %r, but the pack's own Slurm "
                           "user is unknown: not adopted, updated or cancelled. Fix: set client_id "
                           "(SDP_SLURMDEPLOY_CLIENT_ID) or use a token with a 'sun' claim", job.job_id,
                           job.user_name, key)
            return
        self._log_once(logging.WARNING, ("foreign", job.job_id),
                       "deployment %r: Slurm job %s of user %s carries our mcs_label, name and marker but the pack "
                       "submits as %s: another user's job, never adopted, updated or cancelled by the deployer",
                       key, job.job_id, job.user_name, self.slurm_user)

    def _observe_deployment(self, dep, state, owner, by_id, by_key):
        """The events of one live deployment (:func:`slurmdeploy.decisions.observe_deployment`),
        reading its recorded job from Slurm when the listing or view lacks it."""
        recorded = None
        if state.job_id is not None:
            recorded = by_id.get(state.job_id) or self.slurm.get_job(state.job_id)
            if decisions.label_changed(recorded, dep, self.mcs_label, self.slurm_user):
                self._label_moved[dep.key] = (dep.revision, recorded)
                self._log_once(logging.ERROR, ("label", dep.key, recorded.job_id, recorded.mcs_label), "%s",
                               decisions.label_changed_message(dep.key, recorded.job_id, recorded.mcs_label,
                                                               self.mcs_label))
            else:
                self._label_moved.pop(dep.key, None)
        elif owner is not None:
            LOG.debug("deployment %r is being submitted by pid %s on %s", dep.key, owner.get("pid"),
                      owner.get("hostname"))
        if (recorded is not None and recorded.mcs_label == self.mcs_label
                and not decisions.own_job(recorded, self.slurm_user)):
            self._log_foreign(recorded, dep.key)
        return decisions.observe_deployment(dep, state, owner, recorded, by_key.get(dep.key, []), self.mcs_label,
                                            self.slurm_user)

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

        The decisions are :mod:`slurmdeploy.decisions`' (``submit_precheck``, ``adoption``,
        ``invalid_decision``, ``submitted_decision``, ``rejection_decision``); this method
        reads, claims, submits and writes.

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
            SubmitOutcomeUnknown: Slurm may or may not have created the job; the claim is
            kept until its lease expires (``claim_ttl``), then the job is adopted or
            submitted.
        """
        dep, state, _, attempt = self.configdb.read_deployment(key)
        decision = decisions.submit_precheck(key, dep, state, self.configdb.deployment_path(key))
        if decision is not None:
            return decided(key, decision)
        if args is not None:
            dep = type(dep)(dep.key, dep.kind, args, dep.revision, isinstance(args, dict),
                            None if isinstance(args, dict) else "args must be an object")
        # only a previous attempt's trace makes a job of this deployment possible: a fresh
        # deployment is submitted without listing the cluster (a listing grows with the queue)
        attempted = attempt == dep.revision
        claim = self.configdb.claim(key, self.settings.claim_ttl, attempt_revision=dep.revision)
        if claim is None:
            owner = self.configdb.get_owner(key) or {}
            owner = {"pid": owner.get("pid"), "hostname": owner.get("hostname")}
            LOG.info("deployment %r is being submitted by pid %s on %s", key, owner["pid"], owner["hostname"])
            return True, result(Outcome.CLAIMED_ELSEWHERE, key, owner=owner)
        release = True
        try:
            ok, res = self._submit_claimed(dep, claim, attempted)
            release = not res.get("state_written")  # the owner key went with the state write
            return ok, res
        except SubmitOutcomeUnknown as exc:
            # keep the claim until its lease expires, so the next attempt finds the job in
            # Slurm's listing (by its marker) and adopts it instead of submitting again
            release = False
            LOG.warning("deployment %r: submit outcome unknown (%s); the claim expires in %s s, then the "
                        "job is adopted or submitted", key, exc, self.settings.claim_ttl)
            raise
        finally:
            if release:
                self.configdb.release(claim)

    def _write_decided(self, dep, mod, decision):
        """Write ``decision.state`` (compare-and-swap on ``mod``, ending the claim) and return
        ``(ok, result)`` with ``state_written``."""
        written = self.configdb.write_state(dep.key, decision.state, mod, dep.revision, done=True)
        return decided(dep.key, decision, state_written=written)

    def _submit_claimed(self, dep, claim, attempted):
        key = dep.key
        # read by the claiming transaction (a state older than the deployment reads as none)
        state, mod = claim.state, claim.state_mod_revision
        decision = decisions.already_submitted(state)
        if decision is not None:
            return decided(key, decision)
        if attempted:
            LOG.info("deployment %r: a previous submit attempt left a trace; looking for its job by name", key)
            named = [j for j in self.slurm.find_jobs(self.mcs_label, job_name(key)) if self._is_ours(j, key)]
            decision = decisions.adoption(dep, named, self.slurm_user)
            if decision is not None:
                ok, res = self._write_decided(dep, mod, decision)
                LOG.info("deployment %r: adopted existing Slurm job %s (%s)", key, decision.job.job_id,
                         decision.job.job_state)
                return ok, res
        try:
            request = build_job(self.settings, dep, self.environ)
        except InvalidDeployment as exc:
            ok, res = self._write_decided(dep, mod, decisions.invalid_decision(key, str(exc)))
            LOG.warning("deployment %r rejected: %s", key, exc)
            return ok, res
        # the claim must outlive the submit request (sent only when provably still ours)
        if not self.configdb.refresh(claim, margin=self.settings.connect_timeout + self.settings.read_timeout):
            LOG.warning("deployment %r: the submission claim expired before the submit; not submitting", key)
            return True, result(Outcome.CLAIM_LOST, key)
        try:
            job_id = self.slurm.submit_job(request)
        except SubmitRejected as exc:
            return self._record_rejection(dep, mod, exc)
        ok, res = self._write_decided(dep, mod, decisions.submitted_decision(key, job_id, request))
        if res["state_written"]:
            LOG.info("deployment %r: submitted Slurm job %s", key, job_id)
        else:
            LOG.warning("deployment %r: submitted Slurm job %s but the deployment changed meanwhile; "
                        "the next poll reconciles it", key, job_id)
        return ok, res

    def _record_rejection(self, dep, mod, exc):
        """Write FAILED (``SubmitFailed``) for a refused submit; a job Slurm created anyway
        is cancelled first and recorded in the state, so it is never left untracked."""
        key = dep.key
        message = f"Slurm rejected the job of deployment {key!r}: {exc}"
        job_id = exc.job_id
        if job_id is None:
            # 24.11 answers e.g. error 2014 with HTTP 500 and no job id, yet lists a FAILED
            # job (BadConstraints) with our marker: record it, so no job of ours is untracked
            made = [j for j in self.slurm.find_jobs(self.mcs_label, job_name(key))
                    if belongs(j, dep, self.slurm_user)]
            job_id = pick_job(made).job_id if made else None
            if job_id is not None:
                message += f"; Slurm lists it as job {job_id}"
        if job_id is not None:
            job = self.slurm.get_job(job_id)
            try:
                if job is not None and not job.finished:
                    answer = self.slurm.cancel_job(job_id)
                    message += f"; job {job_id} {'cancelled' if answer == CANCEL_SENT else 'already gone'}"
            except SlurmAPIError as cancel_exc:
                # recorded anyway: the sensor cancels the job of a SubmitFailed state (wanted_job)
                message += f"; cancelling job {job_id} failed ({cancel_exc}), the deployer retries"
        ok, res = self._write_decided(dep, mod, decisions.rejection_decision(key, job_id, message))
        LOG.warning("%s", message)
        return ok, res

    # -------------------------------------------------------------- cancel
    def cancel(self, key, job_id=None, force=False):
        """Cancel the Slurm job(s) of a deployment that is gone (or replaced).

        Only jobs of the pack's Slurm user (:attr:`slurm_user`) with our mcs_label, the name
        ``sdp-<key>`` and a deployment marker of ``<key>`` in their comment are ever
        cancelled: a lookalike (label and name without the marker, or another user's job
        with all three; any Slurm user can set them) is refused and no cancel request is
        sent for it (on Slurm 24.11.5 a refused REST cancel stalls slurmctld). The decisions
        are :func:`slurmdeploy.decisions.cancel_job_decision` and ``cancel_summary``.

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
        dep, state, _, _ = self.configdb.read_deployment(key)  # one request
        if job_id is not None:
            job = self.slurm.get_job(job_id)
            candidates = [job] if job is not None else []
            if job is None:
                return True, result(Outcome.NOT_FOUND, key,
                                    jobs=[{"job_id": int(job_id), "outcome": Outcome.NOT_FOUND.value}])
        else:
            candidates = [j for j in self.slurm.find_jobs(self.mcs_label, job_name(key))
                          if not j.finished and self._is_ours(j, key)]
        outcomes = []
        for job in candidates:
            outcomes.append({"job_id": job.job_id, "outcome": self._cancel_one(key, job, dep, state, force).value})
        if dep is None:
            self.configdb.drop_orphan_state(key)
        ok, summary = decisions.cancel_summary([o["outcome"] for o in outcomes])
        return ok, result(summary, key, jobs=outcomes)

    def _cancel_one(self, key, job, dep, state, force):
        """Cancel one job as :func:`slurmdeploy.decisions.cancel_job_decision` decides; returns its Outcome."""
        outcome = decisions.cancel_job_decision(key, job, dep, state, force, self.mcs_label, self.slurm_user)
        if outcome is Outcome.REFUSED:
            if not decisions.names_deployment(job, key, self.mcs_label):
                LOG.warning("refusing to cancel Slurm job %s (name %r, mcs_label %r): not a job of deployment %r "
                            "with label %r", job.job_id, job.name, job.mcs_label, key, self.mcs_label)
            else:
                self._is_ours(job, key)  # a lookalike or another user's job: logged once
        elif outcome is Outcome.KEPT:
            LOG.info("deployment %r exists: keeping Slurm job %s (use force=true to cancel it)", key, job.job_id)
        elif outcome is Outcome.CANCELLED:
            answer = self.slurm.cancel_job(job.job_id)
            if answer == CANCEL_NOT_FOUND:
                return Outcome.NOT_FOUND
            if answer == CANCEL_ALREADY_ENDED:
                # another runner cancelled it first (Slurm 24.11: HTTP 200 with error 2021;
                # the client read the job back): done, not a failure
                LOG.info("deployment %r: Slurm job %s had already ended or was being cancelled", key, job.job_id)
                return Outcome.ALREADY_FINISHED
            LOG.info("deployment %r: cancelled Slurm job %s", key, job.job_id)
        return outcome

    # -------------------------------------------------------- update_state
    def update_state(self, key, job_id=None, attempts=3):
        """Record a deployment's job state in the Configuration DB.

        Re-reads the job from Slurm (the trigger may be stale); never overwrites a
        FINISHED, CANCELLED or FAILED state; a recorded job that slurmctld no longer
        knows becomes FAILED with state_reason ``JobVanished``. The decisions are
        :func:`slurmdeploy.decisions.update_target` and ``update_decision``.

        Args:
            key: deployment key.
            job_id: the Slurm job id (default: the one in the state, else this
                deployment's job found by name, label and marker - adoption).
            attempts: compare-and-swap attempts when the state changes concurrently.

        Returns:
            ``(ok, result)``; outcome ``updated``, ``unchanged``, ``terminal``,
            ``deployment_gone``, ``no_job``, ``other_job``, ``conflict``, ``refused`` (not our job) or
            ``label_changed`` (the recorded job carries this deployment's marker but another
            mcs_label: ``release_name`` or ``namespace`` changed; logged at ERROR with both
            labels and the fix, nothing written).
        """
        for _ in range(attempts):
            dep, state, mod, _ = self.configdb.read_deployment(key)  # one request
            decision, wanted = decisions.update_target(dep, state, job_id)
            if decision is not None:
                return decided(key, decision)
            if wanted is None:
                found = [j for j in self.slurm.find_jobs(self.mcs_label, job_name(key))
                         if belongs(j, dep, self.slurm_user)]
                job = pick_job(found) if found else None
            else:
                job = self.slurm.get_job(wanted)
            decision = decisions.update_decision(key, dep, state, wanted, job, self.mcs_label, self.slurm_user)
            if decision.outcome is Outcome.LABEL_CHANGED:
                LOG.error("%s", decision.fields["error"])
            if decision.state is None:
                return decided(key, decision)
            new = decision.state
            if self.configdb.write_state(key, new, mod, dep.revision):
                LOG.info("deployment %r: Slurm job %s %s -> %s (%s)", key, new.job_id, state.status, new.status,
                         new.state_reason)
                return decided(key, decision)
        return True, result(Outcome.CONFLICT, key, job_id=job_id,
                            error=f"the state of deployment {key!r} kept changing; the next poll retries")


def _shown(text, limit=60):
    """``text`` for a log line: repr, cut to ``limit`` characters (a value may be anything)."""
    shown = repr(text)
    return shown if len(shown) <= limit else f"{shown[:limit]}... ({len(text)} characters)"


class OnceLog:
    """Log a message once per identity (a deployment's key and mod_revision, a job id),
    not at every poll. Identities not seen in a poll are forgotten (:meth:`forget_all_but`),
    so memory stays bounded and a value that comes back is logged again.

    Args:
        logger: a ``logging.Logger``.
    """

    def __init__(self, logger):
        self.logger = logger
        self.logged = set()

    def log(self, level, identity, message, *args):
        """Log at ``level`` unless ``identity`` was logged already. Returns True when logged."""
        if identity in self.logged:
            return False
        self.logged.add(identity)
        self.logger.log(level, message, *args)
        return True

    def forget_all_but(self, identities):
        """Forget every identity not in ``identities``."""
        self.logged &= set(identities)


#: seconds before the first re-dispatch of an event that is still observed (see :class:`Observer`)
FIRST_RETRY = 2.0


@dataclasses.dataclass
class _Dispatched:
    """What :class:`Observer` remembers of one event identity."""

    due: float  # clock time from which it may be dispatched again
    delay: float  # seconds the last dispatch waits before the next
    seen: float  # clock time of the last observation that had it
    current: bool = True  # the last observation of its deployment had it


class Observer:
    """Wraps :meth:`Deployer.observe` for a sensor: decides when an event observed again is
    dispatched again.

    Every action re-checks what it acts on and the submit claims the deployment, so a
    duplicate is harmless; but an event still observed after its dispatch means the action
    failed, was lost, or is slow. So an event still observed is dispatched again after
    ``first_retry`` seconds, then after twice the previous wait, up to ``quiet_period``
    (a failed submit, e.g. while etcd was frozen, is retried within seconds; a slow action
    gets a few duplicates, ``log2(quiet_period / first_retry)`` at most in a quiet period;
    one that keeps failing is retried every ``quiet_period``). The wait is per event
    identity (:attr:`Event.identity`); it starts again from ``first_retry`` once the event
    has not been observed for ``quiet_period`` (an event that disappears only while a
    submit holds its claim, and comes back because that submit failed, keeps its backoff:
    the claim hides it, it is not done). Until issue 15 the only wait was ``quiet_period``
    (120 s with the default ``loop_interval``), failed actions included.

    Args:
        deployer: a :class:`Deployer`.
        quiet_period: seconds, the longest wait between two dispatches of an event.
        clock: time source (seconds), for tests.
        first_retry: seconds before the first re-dispatch (capped at ``quiet_period``).
    """

    def __init__(self, deployer, quiet_period, clock=time.monotonic, first_retry=FIRST_RETRY):
        self.deployer = deployer
        self.quiet_period = quiet_period
        self.first_retry = min(first_retry, quiet_period)
        self.clock = clock
        self._sent = {}  # Event.identity -> _Dispatched

    def next_retry(self):
        """The clock time at which an event the last observation still had may be dispatched
        again (the sensor loop observes then), or None when none is waiting. Always None with
        a quiet period of 0 (tests): every observation dispatches everything, and a retry
        timer would make the sensor loop observe without pause."""
        if self.quiet_period <= 0:
            return None
        due = [d.due for d in self._sent.values() if d.current]
        return min(due) if due else None

    def poll(self, incremental=False):
        """Return the events of one observation that are due (see the class docstring).

        Args:
            incremental: observe only the deployments the sensor's watch saw change
                (``Deployer.observe(incremental=True)``); what is remembered of the events of
                the other deployments is kept as it was (the next full observation decides).

        Returns:
            A list of :class:`Event` to dispatch.
        """
        now = self.clock()
        events = self.deployer.observe(incremental=incremental)
        current = {e.identity for e in events}
        keys = self.deployer.observed_keys
        for identity, sent in list(self._sent.items()):
            if identity in current:
                sent.seen, sent.current = now, True
            elif keys is None or identity[1] in keys:
                sent.current = False
                if now - sent.seen >= self.quiet_period:
                    del self._sent[identity]  # gone for a quiet period: the next one starts afresh
        fresh = []
        for event in events:
            sent = self._sent.get(event.identity)
            if sent is None:
                self._sent[event.identity] = _Dispatched(now + self.first_retry, self.first_retry, now)
            elif now >= sent.due:
                sent.delay = min(2 * sent.delay, self.quiet_period)
                sent.due = now + sent.delay
            else:
                continue
            fresh.append(event)
        return fresh


__all__ = ["Deployer", "Observer", "Event", "OnceLog", "Outcome", "DEPLOYMENT_NEW", "DEPLOYMENT_REMOVED",
           "JOB_STATE_CHANGED", "belongs", "deployment_marker", "wanted_job"]
